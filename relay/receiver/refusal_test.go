package receiver_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relaykit/twilio-relay/relay/receiver"
	"github.com/relaykit/twilio-relay/relay/twilio"
)

// TestRefusalClosesConnection: after every refused request the connection is closed, so that whoever
// sent it cannot keep a slot of max_connections idle for idle_timeout (issue #17: 100 forged requests
// locked Twilio out for a minute); after a 200 it stays open for the next request.
func TestRefusalClosesConnection(t *testing.T) {
	p := &processor{}
	eps := []receiver.Endpoint{
		{Name: "hook", Path: "/hook", SignedURLs: []string{public}, Verifier: twilio.NewVerifier([]string{token}), MaxBody: 4096, RejectStatus: 503},
		{Name: "auth", Path: "/auth", SignedURLs: []string{"https://relay.example.com/auth"}, Verifier: twilio.NewVerifier([]string{token}),
			MaxBody: 4096, RejectStatus: 503, BasicAuth: &receiver.BasicAuth{User: "u", Password: "p"}},
		{Name: "cidr", Path: "/cidr", SignedURLs: []string{"https://relay.example.com/cidr"}, Verifier: twilio.NewVerifier([]string{token}),
			MaxBody: 4096, RejectStatus: 503, AllowedCIDRs: []netip.Prefix{netip.MustParsePrefix("35.90.102.128/25")}},
		{Name: "small", Path: "/small", SignedURLs: []string{"https://relay.example.com/small"}, Verifier: twilio.NewVerifier([]string{token}),
			MaxBody: 16, RejectStatus: 401},
	}
	s := receiver.New(receiver.Config{Endpoints: eps, Deadline: time.Second, MaxInFlight: 10, IdleTimeout: time.Minute}, p, &observer{},
		slog.New(slog.DiscardHandler))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	forged := func(path string) string {
		return fmt.Sprintf("POST %s?bodySHA256=00 HTTP/1.1\r\nHost: x\r\n%s: AAAA\r\nContent-Length: %d\r\n\r\n%s",
			path, twilio.SignatureHeader, len(oneEvent), oneEvent)
	}
	head := rawRequest(oneEvent) + fmt.Sprintf("Content-Length: %d\r\n", len(oneEvent))
	for _, tc := range []struct {
		name, wire string
		status     int
		closed     bool
	}{
		{"signature", forged("/hook"), 503, true},
		{"basic credentials", forged("/auth"), 503, true},
		{"source address", forged("/cidr"), 503, true},
		{"size", forged("/small"), 401, true},
		{"framing", head + "Transfer-Encoding: chunked\r\n\r\n" + chunked(oneEvent), 400, true},
		{"unknown path", strings.Replace(forged("/hook"), "/hook", "/nope", 1), 404, true},
		{"method", strings.Replace(forged("/hook"), "POST", "PUT", 1), 405, true},
		{"not HTTP", "\x16\x03\x01\x02\x00 not HTTP\r\n\r\n", 400, true},
		{"a genuine request", head + "\r\n" + oneEvent, 200, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, br := dialRaw(t, ln.Addr().String())
			if _, err := io.WriteString(conn, tc.wire); err != nil {
				t.Fatal(err)
			}
			st := readAnswer(conn, br, 5*time.Second)
			closed := closedBy(conn, br, time.Second)
			if st != tc.status || closed != tc.closed {
				t.Errorf("status %d, connection closed %v; want %d, closed %v", st, closed, tc.status, tc.closed)
			}
		})
	}
}

// syncBuffer is a log destination safe for the refusal log's timer goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// lines returns the JSON log lines written so far with the given message.
func (s *syncBuffer) lines(msg string) []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	for l := range bytes.Lines(s.b.Bytes()) {
		var m map[string]any
		if json.Unmarshal(l, &m) == nil && m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// TestRefusalLogSampled: per endpoint and reason, the first RejectLogBurst refusals of an interval are
// logged one by one; the rest are counted (RejectedUnlogged) and summed up in one line when the interval
// ends; another reason has its own burst.
func TestRefusalLogSampled(t *testing.T) {
	const burst, interval, forged = 3, 300 * time.Millisecond, 50
	var logs syncBuffer
	o := &observer{}
	s := receiver.New(receiver.Config{Endpoints: []receiver.Endpoint{{Name: "hook", Path: "/hook", SignedURLs: []string{public},
		Verifier: twilio.NewVerifier([]string{token}), MaxBody: 4096, RejectStatus: 503}},
		Deadline: time.Second, MaxInFlight: 10, RejectLogBurst: burst, RejectLogInterval: interval},
		&processor{}, o, slog.New(slog.NewJSONHandler(&logs, nil)))
	for range forged {
		r := signed(oneEvent)
		r.Header.Set(twilio.SignatureHeader, "AAAA")
		do(t, s, r)
	}
	r := signed(oneEvent)
	r.Header.Del(twilio.SignatureHeader)
	do(t, s, r) // another reason: logged
	got := logs.lines("request rejected")
	if len(got) != burst+1 || got[burst]["reason"] != "no_signature" {
		t.Fatalf("%d lines logged one by one (%v), want %d of signature_mismatch and 1 of no_signature", len(got), got, burst)
	}
	o.mu.Lock()
	unlogged := len(o.unlogged)
	o.mu.Unlock()
	if unlogged != forged-burst {
		t.Errorf("%d refusals counted as not logged, want %d", unlogged, forged-burst)
	}
	var summary []map[string]any
	for deadline := time.Now().Add(interval + 3*time.Second); len(summary) == 0 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		summary = logs.lines("requests rejected, not logged one by one")
	}
	if len(summary) != 1 || summary[0]["count"] != float64(forged-burst) || summary[0]["reason"] != "signature_mismatch" {
		t.Fatalf("summary lines %v, want one counting %d", summary, forged-burst)
	}
	// A new interval: logged again from the first.
	r = signed(oneEvent)
	r.Header.Set(twilio.SignatureHeader, "AAAA")
	do(t, s, r)
	if n := len(logs.lines("request rejected")); n != burst+2 {
		t.Errorf("%d lines after the interval, want %d", n, burst+2)
	}
}
