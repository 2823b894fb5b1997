package receiver_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/relaykit/twilio-relay/relay/receiver"
	"github.com/relaykit/twilio-relay/relay/twilio"
)

// Request smuggling (issue #17): a request whose body length the relay and a proxy in front of it could
// read differently is refused with 400 and the connection closed, before the handler, so that nothing
// hidden in its body is answered or delivered. Each case fails if what refuses it regressed: fasthttp's
// parser (v1.78: a repeated Content-Length or Transfer-Encoding, a Transfer-Encoding other than chunked
// or identity, refused before the body) or the receiver's framing guard (Content-Length with
// Transfer-Encoding, any value but exactly "chunked").

// rawRequest is a signed request for body as raw header lines, without Content-Length or
// Transfer-Encoding: the cases add their own.
func rawRequest(body string) string {
	req := signed(body)
	return fmt.Sprintf("POST %s HTTP/1.1\r\nHost: relay.example.com\r\nContent-Type: application/json\r\n%s: %s\r\n",
		req.URL.RequestURI(), twilio.SignatureHeader, req.Header.Get(twilio.SignatureHeader))
}

func chunked(body string) string { return fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(body), body) }

// smuggled is a complete, validly signed request: hidden in another request's body, it must never be
// answered.
var smuggled = func() string {
	body := strings.Replace(oneEvent, "EZ1", "EZsmuggled", 1)
	return rawRequest(body) + fmt.Sprintf("Content-Length: %d\r\n\r\n%s", len(body), body)
}()

// framingCase is a request with ambiguous framing: its head (request line and headers) and the rest
// written after it, a signed request for oneEvent with something hidden after it. parser marks the cases
// fasthttp's parser refuses at the head, before reading any of the body.
type framingCase struct {
	name, head, rest string
	parser           bool
}

func framingCases() []framingCase {
	head := rawRequest(oneEvent)
	teBody := chunked(oneEvent) + smuggled
	cases := []framingCase{
		{"Content-Length and Transfer-Encoding", head + fmt.Sprintf("Content-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n", len(teBody)), teBody, false},
		{"Transfer-Encoding and Content-Length", head + fmt.Sprintf("Transfer-Encoding: chunked\r\nContent-Length: %d\r\n\r\n", len(teBody)), teBody, false},
		{"two different Content-Length", head + fmt.Sprintf("Content-Length: %d\r\nContent-Length: %d\r\n\r\n", len(oneEvent), len(oneEvent)+len(smuggled)),
			oneEvent + smuggled, true},
		{"Content-Length repeated", head + fmt.Sprintf("Content-Length: %d\r\nContent-Length: %d\r\n\r\n", len(oneEvent), len(oneEvent)), oneEvent, true},
		{"Transfer-Encoding repeated", head + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", teBody, true},
		{"Transfer-Encoding Chunked", head + "Transfer-Encoding: Chunked\r\n\r\n", teBody, false},
		{"Transfer-Encoding identity", head + "Transfer-Encoding: identity\r\n\r\n", teBody, false},
	}
	for _, te := range []string{"xchunked", "gzip", "chunked, identity", "gzip, chunked"} {
		cases = append(cases, framingCase{"Transfer-Encoding " + te, head + "Transfer-Encoding: " + te + "\r\n\r\n", teBody, true})
	}
	return cases
}

// TestAmbiguousFramingRefused: each case is answered 400 with Connection: close, the connection is
// closed, and nothing reaches the pipeline. The cases fasthttp's parser refuses are sent without their
// body: the answer must come at once, not at the read timeout (it would, were the guard alone to refuse
// them: it runs once the body is read).
func TestAmbiguousFramingRefused(t *testing.T) {
	const readTimeout = 5 * time.Second
	addr, p := listening(t, receiver.Config{ReadTimeout: readTimeout})
	for _, tc := range framingCases() {
		t.Run(tc.name, func(t *testing.T) {
			conn, br := dialRaw(t, addr)
			wire := tc.head + tc.rest
			if tc.parser {
				wire = tc.head
			}
			go func() { _, _ = io.WriteString(conn, wire) }()
			_ = conn.SetReadDeadline(time.Now().Add(readTimeout / 2))
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("no answer within %v: %v", readTimeout/2, err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest || !resp.Close {
				t.Errorf("status %d, Connection: close %v (%s); want 400 and close", resp.StatusCode, resp.Close, b)
			}
			if !closedBy(conn, br, 3*time.Second) {
				t.Error("the connection is still open: a request hidden in the body could be read next")
			}
			if p.mu.Lock(); len(p.batches) != 0 {
				t.Errorf("%d batches reached the pipeline, want none", len(p.batches))
			}
			p.batches = nil
			p.mu.Unlock()
		})
	}
}

// TestPlainFramingServed: what Twilio and ordinary clients send, a Content-Length or exactly
// "Transfer-Encoding: chunked", is served, and keep-alive goes on.
func TestPlainFramingServed(t *testing.T) {
	addr, p := listening(t, receiver.Config{ReadTimeout: 5 * time.Second})
	conn, br := dialRaw(t, addr)
	head := rawRequest(oneEvent)
	for _, wire := range []string{
		head + fmt.Sprintf("Content-Length: %d\r\n\r\n", len(oneEvent)) + oneEvent,
		head + "Transfer-Encoding: chunked\r\n\r\n" + chunked(oneEvent),
	} {
		if _, err := io.WriteString(conn, wire); err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Close {
			t.Fatalf("%.60q: status %d close %v, want 200 and the connection kept", wire, resp.StatusCode, resp.Close)
		}
	}
	if p.mu.Lock(); len(p.batches) != 2 {
		t.Errorf("%d batches, want 2", len(p.batches))
	}
	p.mu.Unlock()
}
