package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relaykit/twilio-relay/relay"
	"github.com/relaykit/twilio-relay/relay/relaytest/ledger"
	"github.com/relaykit/twilio-relay/relay/twilio"
	"github.com/relaykit/twilio-relay/relay/twilio/twiliotest"
)

// Issue #7: hostile or broken input. Each case proves that the answer is the one docs/responses.md
// documents, and, at the end, that nothing forged reached a topic; a background sender posts genuine
// events the whole time and every one answered 200 must be in Kafka.

// forgedPrefix marks the id of every event in a request that must never reach a sink.
const forgedPrefix = "EZforged"

const (
	badReadTimeout = time.Second
	badMaxBody     = 256 << 10
)

// badInputYAML is testConfig with a short read timeout, a connection limit from ${MAX_CONNECTIONS} and a
// 256 KiB body limit.
func badInputYAML(t *testing.T) string {
	t.Helper()
	y := testConfig
	for _, r := range [][2]string{
		{`limits: { request_deadline: "${DEADLINE:-1500ms}" }`,
			"limits:\n  request_deadline: 3s\n  read_timeout: 1s\n  max_connections: ${MAX_CONNECTIONS}"},
		{`    auth_tokens: [ "old-token-that-no-longer-signs,${TOKEN}" ]`,
			`    auth_tokens: [ "old-token-that-no-longer-signs,${TOKEN}" ]` + "\n    max_body: 256KiB"},
	} {
		if !strings.Contains(y, r[0]) {
			t.Fatalf("testConfig changed: %q is not in it", r[0])
		}
		y = strings.Replace(y, r[0], r[1], 1)
	}
	return y
}

// goodTraffic posts genuine events in the background, one per request, each retried on any other answer
// than 200 as Twilio would, until stopped or its bounds (count and time) are reached.
type goodTraffic struct {
	mu       sync.Mutex
	attempts map[string]int // id → attempts up to its 200
	failed   []string       // ids never answered 200
	non200   map[int]int    // other answers (0: no answer)
	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{}
}

func sendGoodTraffic(h *harness, prefix string, maxEvents int, maxTime time.Duration) *goodTraffic {
	g := &goodTraffic{attempts: map[string]int{}, non200: map[int]int{}, stop: make(chan struct{}), done: make(chan struct{})}
	sender := *h.sender
	sender.Client = &http.Client{Timeout: 10 * time.Second}
	go func() {
		defer close(g.done)
		end := time.Now().Add(maxTime)
		for i := 0; i < maxEvents && time.Now().Before(end); i++ {
			select {
			case <-g.stop:
				return
			case <-time.After(10 * time.Millisecond): // pacing, not an assertion
			}
			typ := "com.twilio.messaging.message.delivered"
			if i%2 == 1 {
				typ = "com.twilio.voice.insights.call-summary.complete"
			}
			id := fmt.Sprintf("%s%05d", prefix, i)
			g.post(&sender, id, event(id, typ, fmt.Sprintf("SMgood%d", i%7)))
		}
	}()
	return g
}

func (g *goodTraffic) post(s *twiliotest.Sender, id string, ev json.RawMessage) {
	for attempt := 1; attempt <= 10; attempt++ {
		resp, err := s.Post(context.Background(), []json.RawMessage{ev})
		g.mu.Lock()
		if err == nil && resp.Status == http.StatusOK {
			g.attempts[id] = attempt
			g.mu.Unlock()
			return
		}
		g.non200[resp.Status]++
		g.mu.Unlock()
		time.Sleep(200 * time.Millisecond) // Twilio's backoff, shortened
	}
	g.mu.Lock()
	g.failed = append(g.failed, id)
	g.mu.Unlock()
}

func (g *goodTraffic) served() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.attempts)
}

// waitServed waits until n more events than before have been answered 200: the relay still serves.
func (g *goodTraffic) waitServed(t *testing.T, before, n int, what string) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); g.served() < before+n; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: genuine traffic stalled (%d answered 200 before, %d now)", what, before, g.served())
		}
	}
}

// finish stops the sender and returns the attempts per id answered 200.
func (g *goodTraffic) finish(t *testing.T) map[string]int {
	t.Helper()
	g.stopOnce.Do(func() { close(g.stop) })
	select {
	case <-g.done:
	case <-time.After(2 * time.Minute):
		t.Fatal("the genuine sender did not stop")
	}
	if len(g.failed) > 0 {
		t.Errorf("genuine events never answered 200: %v", g.failed)
	}
	t.Logf("genuine traffic: %d events answered 200; other answers on the way: %v", len(g.attempts), g.non200)
	return g.attempts
}

// forgedBody is a body of one event whose id starts with forgedPrefix.
func forgedBody(name string) []byte {
	b, _ := json.Marshal([]json.RawMessage{event(forgedPrefix+"-"+name, "com.twilio.messaging.message.sent", "SMforged")})
	return b
}

// twilioRequest is body posted to the relay at addr as Twilio would, before any change.
func twilioRequest(addr string, body []byte) *http.Request {
	signedURL, sig := twilio.Sign(token, publicURL, body)
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/twilio/events"+signedURL[strings.IndexByte(signedURL, '?'):], bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(twilio.SignatureHeader, sig)
	return req
}

// replaceBody replaces a request's body, keeping its query and signature.
func replaceBody(r *http.Request, body []byte) {
	r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
}

type badAnswer struct {
	status int
	reason string
	body   string
}

func postBad(t *testing.T, req *http.Request) badAnswer {
	t.Helper()
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var e struct{ Reason string }
	_ = json.Unmarshal(b, &e)
	return badAnswer{status: resp.StatusCode, reason: e.Reason, body: string(b)}
}

// rawReply is what a raw TCP client got: the status of the one answer (0: none within the bound), its
// body, and whether the server closed the connection after it.
type rawReply struct {
	badAnswer
	closed bool
}

// rawExchange opens a connection, runs write on it in the background (the server may close it before
// write is done: write errors are expected) and reads one answer, waiting at most within.
func rawExchange(t *testing.T, addr string, within time.Duration, write func(net.Conn) error) rawReply {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	go func() { _ = write(conn) }()
	_ = conn.SetReadDeadline(time.Now().Add(within))
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	var ne net.Error
	if err != nil { // no answer: closed without one, or nothing within the bound
		return rawReply{closed: !(errors.As(err, &ne) && ne.Timeout())}
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var e struct{ Reason string }
	_ = json.Unmarshal(b, &e)
	a := rawReply{badAnswer: badAnswer{status: resp.StatusCode, reason: e.Reason, body: string(b)}}
	_, err = br.ReadByte()
	a.closed = err != nil && !(errors.As(err, &ne) && ne.Timeout())
	return a
}

// rawHead is the request line and headers of req, for a raw client, with extra header lines.
func rawHead(req *http.Request, extra ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\n", req.Method, req.URL.RequestURI(), req.URL.Host)
	for k, vs := range req.Header {
		for _, v := range vs {
			fmt.Fprintf(&b, "%s: %s\r\n", k, v)
		}
	}
	for _, l := range extra {
		b.WriteString(l + "\r\n")
	}
	b.WriteString("\r\n")
	return b.String()
}

// trickle writes s one byte per interval; bounded by len(s), and stops at the first write error.
func trickle(c net.Conn, s string, interval time.Duration) error {
	for i := range len(s) {
		time.Sleep(interval)
		if _, err := c.Write([]byte{s[i]}); err != nil {
			return err
		}
	}
	return nil
}

func TestBadInput(t *testing.T) {
	k := startKafka(t)
	h := startRelayWith(t, k, badInputYAML(t), map[string]string{"MAX_CONNECTIONS": "64"})
	addr := h.relay.Addr
	good := sendGoodTraffic(h, "EZgood", 3000, 3*time.Minute)
	t.Cleanup(func() { good.stopOnce.Do(func() { close(good.stop) }) }) // if the test stops early
	delivered := map[string]bool{}                                      // ids of events other than the genuine traffic that must be in Kafka once
	var deadLetters []deadLetterWant                                    // what must be in twilio.deadletter
	var forged []string                                                 // forged ids sent besides refusedCases'

	t.Run("refused requests", func(t *testing.T) {
		for _, tc := range refusedCases(addr) {
			t.Run(tc.name, func(t *testing.T) {
				before := good.served()
				a := postBad(t, tc.req())
				if a.status != tc.status || a.reason != tc.reason {
					t.Errorf("status %d reason %q (%s), want %d %q", a.status, a.reason, a.body, tc.status, tc.reason)
				}
				good.waitServed(t, before, 1, tc.name)
			})
		}
	})

	t.Run("an authentic body is taken whatever its Content-Type", func(t *testing.T) {
		for i, ct := range []string{"text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", ""} {
			id := fmt.Sprintf("EZctype%d", i)
			body, _ := json.Marshal([]json.RawMessage{event(id, "com.twilio.messaging.message.sent", "SMct")})
			req := twilioRequest(addr, body)
			if req.Header.Del("Content-Type"); ct != "" {
				req.Header.Set("Content-Type", ct)
			}
			if a := postBad(t, req); a.status != http.StatusOK || !strings.Contains(a.body, `"delivered":1`) {
				t.Errorf("Content-Type %q: %d %s, want 200 and the event delivered", ct, a.status, a.body)
			}
			delivered[id] = true
		}
	})

	t.Run("an authentic malformed body is answered 200 and dead-lettered", func(t *testing.T) {
		body := []byte(`[{"specversion":"1.0","id":"EZmalformed","type":"com.twilio.messaging.message.sent",`)
		a := postBad(t, twilioRequest(addr, body))
		if a.status != http.StatusOK || !strings.Contains(a.body, `"dead_lettered":1`) {
			t.Fatalf("%d %s, want 200 with dead_lettered 1", a.status, a.body)
		}
		deadLetters = append(deadLetters, deadLetterWant{body, relay.ReasonMalformedBody})
	})

	t.Run("refused raw requests", func(t *testing.T) {
		testRawRefusals(t, addr, good)
	})

	t.Run("ambiguous framing", func(t *testing.T) {
		forged = append(forged, testFraming(t, addr, good)...)
	})

	t.Run("refusals are logged sampled", func(t *testing.T) {
		testLogFlood(t, h, good)
		forged = append(forged, forgedPrefix+"-logflood")
	})

	t.Run("admin listener Host", func(t *testing.T) {
		testAdminHost(t, h.relay.AdminAddr)
	})

	t.Run("type label flood", func(t *testing.T) {
		for _, id := range testLabelFlood(t, addr, h.relay.AdminAddr) {
			delivered[id] = true
		}
	})

	t.Run("duplicate keys", func(t *testing.T) {
		dls, ids := testDuplicateKeys(t, addr)
		deadLetters = append(deadLetters, dls...)
		for _, id := range ids {
			delivered[id] = true
		}
	})

	t.Run("dead-letter amplification", func(t *testing.T) {
		deadLetters = append(deadLetters, testDeadLetterAmplification(t, addr, k.Addr())...)
	})

	t.Run("JSON bombs", func(t *testing.T) {
		dls, ids := testJSONBombs(t, addr, good)
		for _, dl := range dls {
			deadLetters = append(deadLetters, deadLetterWant{dl, relay.ReasonMalformedBody})
		}
		for _, id := range ids {
			delivered[id] = true
		}
	})

	t.Run("slow clients are cut off by read_timeout", func(t *testing.T) {
		testSlowClients(t, addr, good)
	})

	t.Run("connections over max_connections", func(t *testing.T) {
		for _, id := range testConnectionLimit(t, k, good) {
			delivered[id] = true
		}
		forged = append(forged, forgedPrefix+"-lockout")
	})

	attempts := good.finish(t)
	found := checkBadInputTopics(t, k.Addr(), attempts, delivered, deadLetters)
	saveBadInputReport(t, addr, good, attempts, delivered, found, forged)
}

// saveBadInputReport adds the suite's row to the ledger table: the genuine events sent meanwhile and
// the other events answered 200, against the event topics.
func saveBadInputReport(t *testing.T, addr string, good *goodTraffic, attempts map[string]int, delivered map[string]bool, found map[string]int, forged []string) {
	l := ledger.New()
	for id := range attempts {
		l.Record([]string{id}, http.StatusOK, nil)
	}
	for id := range delivered {
		l.Record([]string{id}, http.StatusOK, nil)
	}
	refused := refusedCases(addr)
	for _, tc := range refused {
		l.Forged(forgedPrefix + "-" + tc.name)
	}
	l.Forged(forged...)
	r := l.Check(fmt.Sprintf("bad input: %d kinds of forged or broken requests, ambiguous framing, JSON bombs, slow clients, "+
		"a connection flood and lock-out, a log flood, a foreign admin Host; with a token: a type flood, duplicate keys, "+
		"10,000 rejects in a body; under genuine traffic", len(refused)), found)
	good.mu.Lock()
	for status, n := range good.non200 {
		key := strconv.Itoa(status)
		if status == 0 {
			key = "transport"
		}
		r.Statuses[key] += n
	}
	good.mu.Unlock()
	r.Note = "each bad request got its documented answer (docs/responses.md); no forged id in any topic, dead-letter topic included"
	r.DupTarget = ledger.DupsAtMost(0)
	t.Log(r)
	for _, p := range r.Problems() {
		t.Error(p)
	}
	if err := r.Save(); err != nil {
		t.Errorf("save the report: %v", err)
	}
}
