package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relaykit/twilio-relay/relay/kafka"
	"github.com/relaykit/twilio-relay/relay/relaytest/kafkaserver"
	"github.com/relaykit/twilio-relay/relay/twilio"
)

// The cases of TestBadInput (badinput_test.go).

type refusedCase struct {
	name   string
	req    func() *http.Request
	status int
	reason string // the reason in the JSON body, when the answer has one
}

// refusedCases are requests the relay must refuse before decoding, with the answer docs/responses.md
// gives. Every body holds one event whose id starts with forgedPrefix.
func refusedCases(addr string) []refusedCase {
	const reject = http.StatusServiceUnavailable // the default reject_status
	signed := func(name string, change func(r *http.Request, body []byte)) func() *http.Request {
		return func() *http.Request {
			body := forgedBody(name)
			r := twilioRequest(addr, body)
			change(r, body)
			return r
		}
	}
	tamper := func(r *http.Request, body []byte) {
		replaceBody(r, bytes.Replace(body, []byte("SMforged"), []byte("SMtamper"), 1))
	}
	withType := func(ct string) func(r *http.Request, body []byte) {
		return func(r *http.Request, body []byte) {
			tamper(r, body)
			if r.Header.Del("Content-Type"); ct != "" {
				r.Header.Set("Content-Type", ct)
			}
		}
	}
	return []refusedCase{
		{"missing signature", signed("nosig", func(r *http.Request, _ []byte) { r.Header.Del(twilio.SignatureHeader) }), reject, "no_signature"},
		{"signature that is not base64", signed("garbage-sig", func(r *http.Request, _ []byte) {
			r.Header.Set(twilio.SignatureHeader, "not a signature!")
		}), reject, "signature_mismatch"},
		{"signature of another request", signed("other-sig", func(r *http.Request, _ []byte) {
			_, sig := twilio.Sign(token, publicURL, forgedBody("the-other-request"))
			r.Header.Set(twilio.SignatureHeader, sig)
		}), reject, "signature_mismatch"},
		{"signature by a wrong token", signed("wrong-token", func(r *http.Request, body []byte) {
			_, sig := twilio.Sign("not-the-token", publicURL, body)
			r.Header.Set(twilio.SignatureHeader, sig)
		}), reject, "signature_mismatch"},
		{"signature for another URL", signed("other-url", func(r *http.Request, body []byte) {
			u, sig := twilio.Sign(token, "https://evil.example.com/twilio/events", body)
			r.URL.RawQuery, _ = strings.CutPrefix(u[strings.IndexByte(u, '?'):], "?")
			r.Header.Set(twilio.SignatureHeader, sig)
		}), reject, "signature_mismatch"},
		{"valid signature replayed with a tampered body", signed("replay", tamper), reject, "body_hash_mismatch"},
		{"valid signature, bodySHA256 changed to the tampered body's", signed("query-hash", func(r *http.Request, body []byte) {
			tampered := bytes.Replace(body, []byte("SMforged"), []byte("SMtamper"), 1)
			sum := sha256.Sum256(tampered)
			replaceBody(r, tampered)
			r.URL.RawQuery = "bodySHA256=" + hex.EncodeToString(sum[:])
		}), reject, "signature_mismatch"},
		{"valid signature, extra query parameter", signed("query-extra", func(r *http.Request, _ []byte) { r.URL.RawQuery += "&extra=1" }),
			reject, "signature_mismatch"},
		{"valid signature, bodySHA256 removed", signed("query-removed", func(r *http.Request, _ []byte) { r.URL.RawQuery = "" }),
			reject, "no_body_hash"},
		{"valid signature, bodySHA256 repeated", signed("query-repeated", func(r *http.Request, _ []byte) {
			r.URL.RawQuery += "&" + r.URL.RawQuery // twilio-go reads the first; the signature covers one
		}), reject, "signature_mismatch"},
		{"tampered body sent as text/plain", signed("ctype-text", withType("text/plain")), reject, "body_hash_mismatch"},
		{"tampered body sent as a form", signed("ctype-form", withType("application/x-www-form-urlencoded")), reject, "body_hash_mismatch"},
		{"tampered body sent as multipart", signed("ctype-multipart", withType("multipart/form-data; boundary=x")), reject, "body_hash_mismatch"},
		{"tampered body without Content-Type", signed("ctype-none", withType("")), reject, "body_hash_mismatch"},
		{"unknown path", signed("path", func(r *http.Request, _ []byte) { r.URL.Path = "/twilio/nope" }), http.StatusNotFound, ""},
		{"GET on the endpoint", signed("get", func(r *http.Request, _ []byte) { r.Method = http.MethodGet }), http.StatusMethodNotAllowed, ""},
		{"HEAD on the endpoint", signed("head", func(r *http.Request, _ []byte) { r.Method = http.MethodHead }), http.StatusMethodNotAllowed, ""},
		{"PUT on the endpoint", signed("put", func(r *http.Request, _ []byte) { r.Method = http.MethodPut }), http.StatusMethodNotAllowed, ""},
		{"a method Fiber does not know", signed("brew", func(r *http.Request, _ []byte) { r.Method = "BREW" }), http.StatusBadRequest, ""},
	}
}

// testRawRefusals: a body over max_body, declared by Content-Length (refused before it is read) or
// chunked (refused when the limit is passed), is answered reject_status with reason body_too_large; bytes
// that are no HTTP request, or a header section over fasthttp's 4 KiB read buffer, are answered 400 and
// 431 (no Twilio request is either) and the connection is closed.
func testRawRefusals(t *testing.T, addr string, good *goodTraffic) {
	body := append(forgedBody("too-large"), bytes.Repeat([]byte(" "), badMaxBody)...)
	req := twilioRequest(addr, body)
	declared := rawHead(req, fmt.Sprintf("Content-Length: %d", len(body)))
	chunked := rawHead(req, "Transfer-Encoding: chunked")
	small := forgedBody("big-header")
	bigHeader := rawHead(twilioRequest(addr, small), fmt.Sprintf("Content-Length: %d", len(small)), "X-Padding: "+strings.Repeat("a", 8<<10))
	write := func(s string) func(net.Conn) error {
		return func(c net.Conn) error { _, err := io.WriteString(c, s); return err }
	}
	for _, tc := range []struct {
		name   string
		write  func(net.Conn) error
		status int
		reason string
	}{
		{"body over max_body, declared", write(declared + string(body)), http.StatusServiceUnavailable, "body_too_large"},
		{"body over max_body, chunked", func(c net.Conn) error {
			w := bufio.NewWriter(c)
			w.WriteString(chunked)
			for rest := body; len(rest) > 0; {
				n := min(len(rest), 16<<10)
				fmt.Fprintf(w, "%x\r\n%s\r\n", n, rest[:n])
				rest = rest[n:]
			}
			w.WriteString("0\r\n\r\n")
			return w.Flush()
		}, http.StatusServiceUnavailable, "body_too_large"},
		{"headers over 4 KiB", write(bigHeader + string(small)), http.StatusRequestHeaderFieldsTooLarge, ""},
		{"not HTTP", write("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not HTTP\r\n\r\n" + string(forgedBody("not-http"))), http.StatusBadRequest, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := good.served()
			a := rawExchange(t, addr, 10*time.Second, tc.write)
			if a.status != tc.status || a.reason != tc.reason || !a.closed {
				t.Errorf("status %d reason %q closed %v (%s), want %d %q and closed", a.status, a.reason, a.closed, a.body, tc.status, tc.reason)
			}
			good.waitServed(t, before, 1, tc.name)
		})
	}
}

// peakWhile watches the process (the relay runs in it) while fn runs: the peak heap and goroutine count.
func peakWhile(fn func()) (peakHeap uint64, peakGoroutines int) {
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			peakHeap, peakGoroutines = max(peakHeap, ms.HeapAlloc), max(peakGoroutines, runtime.NumGoroutine())
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	fn()
	close(stop)
	<-done
	return peakHeap, peakGoroutines
}

// testJSONBombs posts signed bodies built to exhaust a parser. Each must be answered (the HTTP client's
// timeout bounds the wait) with the documented answer, and the process's heap and goroutines must stay
// within rough bounds. It returns the bodies that must be dead-lettered as malformed and the ids that
// must be delivered.
func testJSONBombs(t *testing.T, addr string, good *goodTraffic) (deadLetters [][]byte, ids []string) {
	deepData := fmt.Sprintf(`[{"specversion":"1.0","type":"com.twilio.messaging.message.sent","source":"/s","id":"EZdeepdata",`+
		`"data":{"messageSid":"SMdeep","x":%s%s}}]`, strings.Repeat("[", 5000), strings.Repeat("]", 5000))
	tiny := "[" + strings.Repeat("0,", badMaxBody/2-8) + "0]"
	for _, tc := range []struct {
		name, body string
		want       string // in the 200 answer
	}{
		{"100k unclosed [", strings.Repeat("[", 100_000), `"dead_lettered":1`},
		{"5000 levels inside an event's data", deepData, `"delivered":1`},
		{"an array of 131k tiny elements, over max_events", tiny, `"dead_lettered":1`}, // dead-lettered whole
	} {
		t.Run(tc.name, func(t *testing.T) {
			runtime.GC()
			var base runtime.MemStats
			runtime.ReadMemStats(&base)
			baseG, before := runtime.NumGoroutine(), good.served()
			var a badAnswer
			heap, goroutines := peakWhile(func() { a = postBad(t, twilioRequest(addr, []byte(tc.body))) })
			t.Logf("answer %d %s; heap %d MiB → peak %d MiB; goroutines %d → peak %d", a.status, a.body,
				base.HeapAlloc>>20, heap>>20, baseG, goroutines)
			if a.status != http.StatusOK || !strings.Contains(a.body, tc.want) {
				t.Errorf("%d %s, want 200 with %s", a.status, a.body, tc.want)
			}
			if heap > base.HeapAlloc+64<<20 || goroutines > baseG+100 { // before max_events: +300 MiB
				t.Errorf("the relay's heap grew by %d MiB and goroutines by %d for one %d KiB body",
					(heap-base.HeapAlloc)>>20, goroutines-baseG, len(tc.body)>>10)
			}
			good.waitServed(t, before, 1, tc.name)
		})
	}
	return [][]byte{[]byte(strings.Repeat("[", 100_000)), []byte(tiny)}, []string{"EZdeepdata"}
}

// testSlowClients: headers or a body trickled a byte per 200ms are answered 503 read_timeout and closed
// once read_timeout (1s) has passed, and a connection that sends nothing is closed without an answer
// (issue #20: a 503 there answers no request), while genuine traffic goes on.
func testSlowClients(t *testing.T, addr string, good *goodTraffic) {
	body := forgedBody("slowloris")
	head := rawHead(twilioRequest(addr, body), fmt.Sprintf("Content-Length: %d", len(body)))
	cases := []struct {
		name  string
		write func(net.Conn) error
	}{
		{"headers trickled", func(c net.Conn) error { return trickle(c, head+string(body), 200*time.Millisecond) }},
		{"body trickled", func(c net.Conn) error {
			if _, err := io.WriteString(c, head); err != nil {
				return err
			}
			return trickle(c, string(body), 200*time.Millisecond)
		}},
		{"nothing sent", func(net.Conn) error { return nil }},
	}
	before := good.served()
	answers, servedAt := make([]rawReply, len(cases)), make([]int, len(cases))
	var wg sync.WaitGroup
	for i, tc := range cases {
		wg.Add(1)
		go func() {
			defer wg.Done()
			answers[i] = rawExchange(t, addr, badReadTimeout+3*time.Second, tc.write)
			servedAt[i] = good.served()
		}()
	}
	wg.Wait()
	for i, tc := range cases {
		a := answers[i]
		if tc.name == "nothing sent" {
			if a.status != 0 || !a.closed {
				t.Errorf("%s: status %d closed %v (%s), want no answer and the connection closed within %v",
					tc.name, a.status, a.closed, a.body, badReadTimeout+3*time.Second)
			}
		} else if a.status != http.StatusServiceUnavailable || a.reason != "read_timeout" || !a.closed {
			t.Errorf("%s: status %d reason %q closed %v (%s), want 503 read_timeout and the connection closed within %v",
				tc.name, a.status, a.reason, a.closed, a.body, badReadTimeout+3*time.Second)
		}
		if servedAt[i] == before {
			t.Errorf("%s: no genuine event was answered 200 while the slow client held its connection", tc.name)
		}
	}
}

// testConnectionLimit runs a second relay with max_connections 8: eight keep-alive connections hold every
// slot, more are answered 503 and closed (Twilio retries), and once the eight close new requests are
// served. It returns the ids that must be delivered.
func testConnectionLimit(t *testing.T, k *kafkaserver.Server, good *goodTraffic) []string {
	const limit = 8
	h := startRelayWith(t, k, badInputYAML(t), map[string]string{"MAX_CONNECTIONS": fmt.Sprint(limit)})
	var ids []string
	t.Run("no lock-out by refused requests", func(t *testing.T) { ids = testLockOut(t, h, limit) })
	var held []net.Conn
	for i := range limit {
		id := fmt.Sprintf("EZheld%d", i)
		body, _ := json.Marshal([]json.RawMessage{event(id, "com.twilio.messaging.message.sent", "SMheld")})
		conn, err := net.DialTimeout("tcp", h.relay.Addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		req := twilioRequest(h.relay.Addr, body)
		if _, err := io.WriteString(conn, rawHead(req, fmt.Sprintf("Content-Length: %d", len(body)))+string(body)); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("held connection %d: %v %v, want 200", i, resp, err)
		}
		resp.Body.Close() // the connection stays open, idle: it keeps its slot
		ids, held = append(ids, id), append(held, conn)
	}
	before := good.served()
	for i := range 4 {
		a := rawExchange(t, h.relay.Addr, 5*time.Second, func(net.Conn) error { return nil })
		if a.status != http.StatusServiceUnavailable || !a.closed {
			t.Errorf("connection %d over the limit: status %d closed %v (%s), want 503 and closed", limit+i, a.status, a.closed, a.body)
		}
	}
	refused := event("EZrefused", "com.twilio.messaging.message.sent", "SMheld")
	body, _ := json.Marshal([]json.RawMessage{refused})
	head := rawHead(twilioRequest(h.relay.Addr, body), fmt.Sprintf("Content-Length: %d", len(body)))
	a := rawExchange(t, h.relay.Addr, 5*time.Second, func(c net.Conn) error {
		_, err := io.WriteString(c, head+string(body))
		return err
	})
	if a.status != http.StatusServiceUnavailable || !a.closed {
		t.Errorf("a genuine request over the connection limit: %d closed %v (%s), want 503 and closed (Twilio retries)",
			a.status, a.closed, a.body)
	}
	good.waitServed(t, before, 1, "the other relay, while this one is full")
	sender := *h.sender
	sender.Client = &http.Client{Timeout: 10 * time.Second}
	for _, c := range held {
		c.Close()
	}
	// The slots are free once the relay has seen the closes; Twilio's retry, here bounded, gets in.
	for attempt := 0; ; attempt++ {
		r, err := sender.Post(context.Background(), []json.RawMessage{refused})
		if err == nil && r.Status == http.StatusOK {
			break
		}
		if attempt == 50 {
			t.Fatalf("the refused event is still not taken after the held connections closed: %v %v", r, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for i := range 3 {
		id := fmt.Sprintf("EZafter%d", i)
		ev := event(id, "com.twilio.messaging.message.sent", "SMheld")
		if r, err := sender.Post(context.Background(), []json.RawMessage{ev}); err != nil || r.Status != http.StatusOK {
			t.Errorf("after the held connections closed: %v %v, want 200", r, err)
		}
		ids = append(ids, id)
	}
	return append(ids, "EZrefused")
}

// checkBadInputTopics reads every topic: no record carries a forged id anywhere (key, headers or
// value); every genuine event answered 200 is there, once when its first answer was 200 (after a 503 the
// write the relay gave up on may have landed too: at-least-once); the other expected events are there
// once, and nothing else; the dead-letter topic holds exactly the expected dead letters, byte for byte
// with their reasons. It returns the records per event id in the event topics.
func checkBadInputTopics(t *testing.T, addr string, attempts map[string]int, delivered map[string]bool, want []deadLetterWant) map[string]int {
	t.Helper()
	events := append(readTopic(t, addr, "twilio.messaging"), readTopic(t, addr, "twilio.other")...)
	dls := readTopic(t, addr, "twilio.deadletter")
	for _, m := range append(append([]kafka.Record(nil), events...), dls...) {
		found := bytes.Contains(m.Key, []byte(forgedPrefix)) || bytes.Contains(m.Value, []byte(forgedPrefix))
		for _, h := range m.Headers {
			found = found || bytes.Contains(h.Value, []byte(forgedPrefix))
		}
		if found {
			t.Errorf("a forged event reached %s: key %q ce_id %q ce_originalid %q value %.80q", m.Topic, m.Key,
				header(m, "ce_id"), header(m, "ce_originalid"), m.Value)
		}
	}
	got := countByID(events)
	for id, n := range attempts {
		if got[id] < 1 || (n == 1 && got[id] != 1) {
			t.Errorf("genuine event %s (answered 200 at attempt %d) is in Kafka %d times", id, n, got[id])
		}
	}
	for id := range delivered {
		if got[id] != 1 {
			t.Errorf("%s is in Kafka %d times, want 1", id, got[id])
		}
	}
	for id, n := range got {
		if _, ok := attempts[id]; !ok && !delivered[id] {
			t.Errorf("unexpected event %s in Kafka (%d times)", id, n)
		}
	}
	unexpected, examples := 0, []string{}
	for _, m := range dls {
		reason := header(m, "ce_deadletterreason")
		if i := slices.IndexFunc(want, func(w deadLetterWant) bool { return w.reason == reason && bytes.Equal(w.raw, m.Value) }); i >= 0 {
			want = slices.Delete(want, i, i+1)
			continue
		}
		if unexpected++; len(examples) < 5 {
			examples = append(examples, fmt.Sprintf("%s %.60q", reason, m.Value))
		}
	}
	if len(want) > 0 || unexpected > 0 {
		t.Errorf("dead letters: %d records; %d expected missing (e.g. %.60q); %d unexpected (e.g. %v)",
			len(dls), len(want), firstRaw(want), unexpected, examples)
	}
	return got
}

func firstRaw(ws []deadLetterWant) []byte {
	if len(ws) == 0 {
		return nil
	}
	return ws[0].raw
}
