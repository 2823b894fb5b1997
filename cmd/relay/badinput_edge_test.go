package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relaykit/twilio-relay/relay"
)

// The rows of TestBadInput for issue #17: the HTTP edge against someone without the token (framing,
// lock-out, log flood, admin Host) and with one (label flood, duplicate keys, dead-letter
// amplification). Each failed on the code before the issue.

// deadLetterWant is a record the dead-letter topic must hold: the bytes and the reason.
type deadLetterWant struct {
	raw    []byte
	reason string
}

// smuggledRequest is a complete request for one event with a forged id, validly signed: hidden in
// another request's body, it must never be answered, nor its event delivered.
func smuggledRequest(addr, name string) string {
	body := forgedBody(name)
	return rawHead(twilioRequest(addr, body), fmt.Sprintf("Content-Length: %d", len(body))) + string(body)
}

func chunkedBody(b []byte) string { return fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(b), b) }

// framingRow is one framing weakness: requests whose length two HTTP parsers could read differently,
// each with a request hidden after the body a Transfer-Encoding parser sees.
type framingRow struct {
	name  string
	wires []string
}

func framingRows(addr string) (rows []framingRow, forged []string) {
	wire := func(name string, framing func(body []byte, smuggled string) (headers []string, rest string)) string {
		body, smuggled := forgedBody(name), smuggledRequest(addr, name+"-smuggled")
		forged = append(forged, forgedPrefix+"-"+name, forgedPrefix+"-"+name+"-smuggled")
		headers, rest := framing(body, smuggled)
		return rawHead(twilioRequest(addr, body), headers...) + rest
	}
	te := func(values ...string) func([]byte, string) ([]string, string) {
		return func(body []byte, smuggled string) ([]string, string) {
			var h []string
			for _, v := range values {
				h = append(h, "Transfer-Encoding: "+v)
			}
			return h, chunkedBody(body) + smuggled
		}
	}
	rows = []framingRow{
		{"Content-Length with Transfer-Encoding", []string{wire("cl-te", func(body []byte, smuggled string) ([]string, string) {
			rest := chunkedBody(body) + smuggled
			return []string{fmt.Sprintf("Content-Length: %d", len(rest)), "Transfer-Encoding: chunked"}, rest
		})}},
		{"Transfer-Encoding other than exactly chunked", []string{wire("te-case", te("Chunked")), wire("te-identity", te("identity")),
			wire("te-x", te("xchunked")), wire("te-gzip", te("gzip")), wire("te-list", te("chunked, identity"))}},
		{"two different Content-Length", []string{wire("cl-cl", func(body []byte, smuggled string) ([]string, string) {
			return []string{fmt.Sprintf("Content-Length: %d", len(body)), fmt.Sprintf("Content-Length: %d", len(body)+len(smuggled))}, string(body) + smuggled
		})}},
		{"Content-Length or Transfer-Encoding repeated", []string{wire("cl-twice", func(body []byte, smuggled string) ([]string, string) {
			cl := fmt.Sprintf("Content-Length: %d", len(body))
			return []string{cl, cl}, string(body) + smuggled
		}), wire("te-twice", te("chunked", "chunked"))}},
	}
	return rows, forged
}

// testFraming: every request with ambiguous framing is answered 400 and its connection closed, so that
// the request hidden in its body is never read (the topics are checked for them at the end).
func testFraming(t *testing.T, addr string, good *goodTraffic) (forged []string) {
	rows, forged := framingRows(addr)
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			before := good.served()
			for _, w := range row.wires {
				a := rawExchange(t, addr, 5*time.Second, func(c net.Conn) error { _, err := io.WriteString(c, w); return err })
				if a.status != http.StatusBadRequest || !a.closed {
					t.Errorf("%.60q…: status %d closed %v (%s), want 400 and closed", w, a.status, a.closed, a.body)
				}
			}
			good.waitServed(t, before, 1, row.name)
		})
	}
	return forged
}

// testLockOut (on a relay with max_connections = limit): limit connections each send one forged request
// and stay open on the client's side. Each is closed by the relay after its refusal, so a genuine
// request gets in at once; before issue #17 they held every slot for idle_timeout (60 s).
func testLockOut(t *testing.T, h *harness, limit int) []string {
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	body := forgedBody("lockout")
	req := twilioRequest(h.relay.Addr, body)
	req.Header.Set("X-Twilio-Signature", "AAAA")
	wire := rawHead(req, fmt.Sprintf("Content-Length: %d", len(body))) + string(body)
	closed := 0
	for range limit {
		c, err := net.DialTimeout("tcp", h.relay.Addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.WriteString(c, wire); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("forged request: %v %v, want 503", resp, err)
		}
		if resp.Close {
			closed++
		}
	}
	if closed != limit {
		t.Errorf("%d of %d connections closed after their refusal", closed, limit)
	}
	id := "EZafterlockout"
	sender := *h.sender // a connection of its own, closed after the answer: the slots are the test's
	sender.Client = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := time.Now().Add(2 * time.Second) // idle_timeout is 60 s: a lock-out lasts far longer
	for {
		r, err := sender.Post(t.Context(), []json.RawMessage{event(id, "com.twilio.messaging.message.sent", "SMlock")})
		if err == nil && r.Status == http.StatusOK {
			return []string{id}
		}
		if time.Now().After(deadline) {
			t.Fatalf("a genuine request while %d refused connections stay open: %v %v; want 200 within 2 s", limit, r, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// testLogFlood: 1,000 forged requests write at most a burst of warn lines (10 per endpoint and reason
// and 10 s), the rest counted in relay_requests_rejected_unlogged_total; before, one line each.
func testLogFlood(t *testing.T, h *harness, good *goodTraffic) {
	const forged = 1000
	admin := "http://" + h.relay.AdminAddr
	lines := func() int {
		return strings.Count(h.logs.String(), `msg="request rejected" endpoint=events reason=signature_mismatch`)
	}
	linesBefore, before := lines(), good.served()
	unloggedBefore, _ := metricSum(t, admin, "relay_requests_rejected_unlogged_total", true)
	body := forgedBody("logflood")
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &http.Client{Timeout: 5 * time.Second}
			for i := w; i < forged; i += 8 {
				req := twilioRequest(h.relay.Addr, body)
				req.Header.Set("X-Twilio-Signature", "AAAA")
				if resp, err := c.Do(req); err == nil {
					resp.Body.Close()
				}
			}
		}()
	}
	wg.Wait()
	logged := lines() - linesBefore
	unlogged, _ := metricSum(t, admin, "relay_requests_rejected_unlogged_total", true)
	if logged > 10 || unlogged-unloggedBefore < forged-10 {
		t.Errorf("%d forged requests: %d lines logged, %v counted as not logged; want at most 10 lines, the rest counted",
			forged, logged, unlogged-unloggedBefore)
	}
	good.waitServed(t, before, 1, "log flood")
}

// testAdminHost: the admin listener refuses a Host that is not its own (a DNS-rebinding page), on every
// path, and answers its own names.
func testAdminHost(t *testing.T, adminAddr string) {
	get := func(host, path string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, "http://"+adminAddr+path, nil)
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	_, port, _ := net.SplitHostPort(adminAddr)
	for _, path := range []string{"/metrics", "/twilio/test-events", "/readyz"} {
		if st, body := get("rebind.attacker.example:"+port, path); st != http.StatusMisdirectedRequest || strings.Contains(body, "relay_") {
			t.Errorf("Host rebind.attacker.example %s: %d %.60q, want 421 and nothing of the relay's", path, st, body)
		}
	}
	for _, host := range []string{"localhost:" + port, adminAddr} {
		if st, _ := get(host, "/metrics"); st != http.StatusOK {
			t.Errorf("Host %s /metrics: %d, want 200", host, st)
		}
	}
}

// testLabelFlood: one signed body of 2,000 events of 2,000 made-up types adds at most one series to a
// per-type metric (the "other" label); before, 2,000. The events are delivered: the ids returned.
func testLabelFlood(t *testing.T, addr, adminAddr string) []string {
	const n = 2000
	admin := "http://" + adminAddr
	_, seriesBefore := metricSum(t, admin, "relay_events_received_total", true)
	var evs []string
	var ids []string
	for i := range n {
		id := fmt.Sprintf("EZlabel%04d", i)
		ids = append(ids, id)
		evs = append(evs, fmt.Sprintf(`{"specversion":"1.0","type":"com.attacker.type%04d","source":"/s","id":%q,"data":{}}`, i, id))
	}
	a := postBad(t, twilioRequest(addr, []byte("["+strings.Join(evs, ",")+"]")))
	if a.status != http.StatusOK || !strings.Contains(a.body, fmt.Sprintf(`"delivered":%d`, n)) {
		t.Fatalf("%d %s, want 200 with %d delivered", a.status, a.body, n)
	}
	if _, series := metricSum(t, admin, "relay_events_received_total", true); series > seriesBefore+1 {
		t.Errorf("relay_events_received_total: %d series before, %d after %d types; want at most one more (other)", seriesBefore, series, n)
	}
	return ids
}

// testDuplicateKeys: an event that repeats its id, and one that repeats a key of its data, are
// dead-lettered with reason duplicate_key, and neither id reaches an event topic; the body's other event
// is delivered.
func testDuplicateKeys(t *testing.T, addr string) (dls []deadLetterWant, delivered []string) {
	repeatedID := `{"specversion":"1.0","id":"EZdupkeyA","type":"com.twilio.messaging.message.sent","source":"/s","data":{"messageSid":"SMdupA"},"id":"EZdupkeyB"}`
	repeatedData := `{"specversion":"1.0","id":"EZdupdata","type":"com.twilio.messaging.message.sent","source":"/s","data":{"messageSid":"SMdupC","messageSid":"SMdupD"}}`
	ok := string(event("EZdupok", "com.twilio.messaging.message.sent", "SMdupok"))
	a := postBad(t, twilioRequest(addr, []byte("["+repeatedID+","+repeatedData+","+ok+"]")))
	if a.status != http.StatusOK || !strings.Contains(a.body, `"delivered":1`) || !strings.Contains(a.body, `"dead_lettered":2`) {
		t.Errorf("%d %s, want 200 with 1 delivered, 2 dead-lettered", a.status, a.body)
	}
	return []deadLetterWant{{[]byte(repeatedID), relay.ReasonDuplicateKey}, {[]byte(repeatedData), relay.ReasonDuplicateKey}}, []string{"EZdupok"}
}

// testDeadLetterAmplification: one 30 KB body of 10,000 "{}" makes at most MaxRejectLetters dead letters
// (99 of "{}" and one holding the other 9,901 as a JSON array), not 10,000.
func testDeadLetterAmplification(t *testing.T, addr, broker string) []deadLetterWant {
	const n = 10_000
	before := len(readTopic(t, broker, "twilio.deadletter"))
	body := "[" + strings.Repeat("{},", n-1) + "{}]"
	a := postBad(t, twilioRequest(addr, []byte(body)))
	if a.status != http.StatusOK || !strings.Contains(a.body, fmt.Sprintf(`"dead_lettered":%d`, n)) {
		t.Errorf("%d %s, want 200 with %d dead-lettered", a.status, a.body, n)
	}
	if added := len(readTopic(t, broker, "twilio.deadletter")) - before; added > relay.MaxRejectLetters {
		t.Errorf("one body of %d rejects added %d dead letters, want at most %d", n, added, relay.MaxRejectLetters)
	}
	var want []deadLetterWant
	for range relay.MaxRejectLetters - 1 {
		want = append(want, deadLetterWant{[]byte("{}"), relay.ReasonInvalidEvent})
	}
	rest := n - relay.MaxRejectLetters + 1
	return append(want, deadLetterWant{[]byte("[" + strings.Repeat("{},", rest-1) + "{}]"), relay.ReasonInvalidEvent})
}
