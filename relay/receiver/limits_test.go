package receiver_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/relaykit/twilio-relay/relay"
	"github.com/relaykit/twilio-relay/relay/receiver"
	"github.com/relaykit/twilio-relay/relay/twilio"
)

// The limits that protect the listener from hostile or broken input (issue #7): Content-Type, events per
// body, connections, slow clients.

// TestContentTypeIgnored: the signature covers the raw bytes, whatever the Content-Type says. An
// authentic body is decoded as JSON with any Content-Type (Twilio sends application/json; a 4xx would make
// it drop the events), and a forged one is refused with any Content-Type, multipart included.
func TestContentTypeIgnored(t *testing.T) {
	forged := strings.Replace(oneEvent, "EZ1", "EZ2", 1)
	for _, ct := range []string{"application/json", "text/plain", "application/x-www-form-urlencoded",
		"multipart/form-data; boundary=x", "application/json; charset=utf-16", ""} {
		t.Run(ct, func(t *testing.T) {
			p := &processor{}
			s, _ := newServer(t, p, nil)
			authentic, tampered := signed(oneEvent), signed(oneEvent)
			tampered.Body, tampered.ContentLength = io.NopCloser(strings.NewReader(forged)), int64(len(forged))
			for _, r := range []*http.Request{authentic, tampered} {
				if r.Header.Del("Content-Type"); ct != "" {
					r.Header.Set("Content-Type", ct)
				}
			}
			if a := do(t, s, authentic); a.status != 200 || len(p.batches) != 1 || len(p.batches[0].Events) != 1 {
				t.Fatalf("authentic: status %d %v, %d batches; want 200 and the event decoded", a.status, a.body, len(p.batches))
			}
			if a := do(t, s, tampered); a.status != 503 || a.body["reason"] != "body_hash_mismatch" || len(p.batches) != 1 {
				t.Fatalf("tampered: status %d %v, %d batches; want 503 body_hash_mismatch and nothing processed", a.status, a.body, len(p.batches))
			}
		})
	}
}

// TestMaxEvents: with DecodeOptions.MaxEvents, a JSON array of more elements is handed on as one malformed_body reject
// of the whole body (dead-lettered once, answered 200), not decoded element by element.
func TestMaxEvents(t *testing.T) {
	p := &processor{}
	s := receiver.New(receiver.Config{Endpoints: []receiver.Endpoint{{Name: "hook", Path: "/hook", SignedURLs: []string{public},
		Verifier: twilio.NewVerifier([]string{token}), MaxBody: 4096, RejectStatus: 503, Decode: twilio.DecodeOptions{MaxEvents: 3}}},
		Deadline: time.Second, MaxInFlight: 2},
		p, &observer{}, slog.New(slog.DiscardHandler))
	for _, body := range []string{"[1,2,3]", "[1,2,3,4]", "[" + strings.Repeat("0,", 1000) + "0]", oneEvent} {
		if a := do(t, s, signed(body)); a.status != 200 {
			t.Fatalf("%.20s: status %d, want 200", body, a.status)
		}
	}
	whole := func(b *relay.Batch) bool {
		return len(b.Events) == 0 && len(b.Rejects) == 1 && b.Rejects[0].Reason == relay.ReasonMalformedBody
	}
	if b := p.batches; len(b[0].Rejects) != 3 || whole(b[0]) || !whole(b[1]) || string(b[1].Rejects[0].Raw) != "[1,2,3,4]" ||
		!whole(b[2]) || len(b[3].Events) != 1 {
		t.Fatalf("batches %+v: want 3 invalid events, then two bodies rejected whole, then one event", b)
	}
}

// listening serves the usual endpoint with cfg's limits on a local listener until the test ends.
func listening(t *testing.T, cfg receiver.Config) (string, *processor) {
	t.Helper()
	p := &processor{}
	cfg.Endpoints = []receiver.Endpoint{{Name: "hook", Path: "/hook", SignedURLs: []string{public},
		Verifier: twilio.NewVerifier([]string{token}), MaxBody: 4096, RejectStatus: 503}}
	cfg.Deadline, cfg.MaxInFlight = time.Second, 10
	s := receiver.New(cfg, p, &observer{}, slog.New(slog.DiscardHandler))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return ln.Addr().String(), p
}

// dialRaw opens a connection closed at the end of the test.
func dialRaw(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn, bufio.NewReader(conn)
}

// readAnswer reads one HTTP answer from br within d and returns its status, or 0.
func readAnswer(conn net.Conn, br *bufio.Reader, d time.Duration) int {
	_ = conn.SetReadDeadline(time.Now().Add(d))
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// closedBy reports whether the server closes conn (EOF or reset) within d.
func closedBy(conn net.Conn, br *bufio.Reader, d time.Duration) bool {
	_ = conn.SetReadDeadline(time.Now().Add(d))
	_, err := br.ReadByte()
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

// TestMaxConnections: a connection over MaxConnections is answered 503 and closed before its request is
// read; once a connection closes, a new one is served.
func TestMaxConnections(t *testing.T) {
	addr, _ := listening(t, receiver.Config{MaxConnections: 2})
	post := func(conn net.Conn, br *bufio.Reader) int {
		r := signed(oneEvent)
		if r.RequestURI = ""; r.Write(conn) != nil {
			return 0
		}
		return readAnswer(conn, br, 5*time.Second)
	}
	var held []net.Conn
	for range 2 { // two keep-alive connections, each served once and left open
		conn, br := dialRaw(t, addr)
		if st := post(conn, br); st != 200 {
			t.Fatalf("connection %d: status %d, want 200", len(held), st)
		}
		held = append(held, conn)
	}
	conn, br := dialRaw(t, addr) // the third is answered before it sends anything
	if st := readAnswer(conn, br, 5*time.Second); st != http.StatusServiceUnavailable || !closedBy(conn, br, 5*time.Second) {
		t.Fatalf("connection over the limit: status %d, want 503 and the connection closed", st)
	}
	held[0].Close()
	// The slot is free once the server has seen the close: a retry, as Twilio's, gets in.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if conn, br := dialRaw(t, addr); post(conn, br) == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no connection served within 5s after one of the two closed")
		}
	}
}

// TestReadTimeoutStopsSlowClients: headers or a body trickled byte by byte are cut off when the read
// timeout passes, counted from the connection's opening: the answer is 503 (a 408 would make Twilio drop
// the events of a genuine but slow request), and the connection is closed.
func TestReadTimeoutStopsSlowClients(t *testing.T) {
	const readTimeout = 300 * time.Millisecond
	req := signed(oneEvent)
	head := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: x\r\n%s: %s\r\nContent-Length: %d\r\n\r\n",
		req.URL.RequestURI(), twilio.SignatureHeader, req.Header.Get(twilio.SignatureHeader), len(oneEvent))
	for _, tc := range []struct{ name, fast, slow string }{{"headers trickled", "", head + oneEvent}, {"body trickled", head, oneEvent}} {
		t.Run(tc.name, func(t *testing.T) {
			addr, p := listening(t, receiver.Config{ReadTimeout: readTimeout})
			conn, br := dialRaw(t, addr)
			go func() { // one byte every 50ms: the whole request would take far longer than the timeout
				_, err := io.WriteString(conn, tc.fast)
				for i := 0; err == nil && i < len(tc.slow); i++ {
					time.Sleep(50 * time.Millisecond)
					_, err = conn.Write([]byte{tc.slow[i]})
				}
			}()
			if st := readAnswer(conn, br, readTimeout+3*time.Second); st != http.StatusServiceUnavailable || !closedBy(conn, br, 3*time.Second) {
				t.Fatalf("status %d, want 503 and the connection closed", st)
			}
			if p.mu.Lock(); len(p.batches) != 0 {
				t.Error("a request cut off by the read timeout reached the pipeline")
			}
			p.mu.Unlock()
		})
	}
}

// TestReadTimeoutNothingSent: a connection that sends nothing is closed without an answer when the read
// timeout passes (a 503 there would answer no request: an HTTP client's spare connection would read it as
// the answer to its next request); one that sent part of a request gets its 503 (issue #20).
func TestReadTimeoutNothingSent(t *testing.T) {
	const readTimeout = 300 * time.Millisecond
	addr, _ := listening(t, receiver.Config{ReadTimeout: readTimeout})
	idle, idleBR := dialRaw(t, addr)
	started, startedBR := dialRaw(t, addr)
	if _, err := io.WriteString(started, "POST /hook HTTP/1.1\r\nHost: x\r\n"); err != nil {
		t.Fatal(err)
	}
	_ = idle.SetReadDeadline(time.Now().Add(readTimeout + 3*time.Second))
	if b, err := idleBR.ReadByte(); err != io.EOF {
		t.Errorf("a connection that sent nothing: read %q, %v; want EOF (closed without an answer)", b, err)
	}
	if st := readAnswer(started, startedBR, readTimeout+3*time.Second); st != http.StatusServiceUnavailable || !closedBy(started, startedBR, 3*time.Second) {
		t.Errorf("a request started and not finished: status %d, want 503 and the connection closed", st)
	}
}
