package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// EnvDoSBound runs TestDenialOfServiceBound (docs/security.md); it is skipped otherwise.
const EnvDoSBound = "RELAY_DOS_BOUND"

// TestDenialOfServiceBound measures what it takes someone without the token to deny service. Against a
// relay with max_connections 100 (read_timeout 2 s, idle_timeout 12 s: the shipped defaults' ratio,
// shortened so that a run takes a minute), an attacker keeps 100 connections, each in one of two ways:
//
//   - forged requests: a forged request every idle_timeout - 1 s, on the same connection while the relay
//     keeps it (so that it never goes idle long enough to be closed), else on a new one;
//   - empty connections: a connection that sends nothing, replaced as soon as the relay closes it.
//
// Meanwhile a genuine client posts a signed event every 100 ms on a new connection, as a retry of
// Twilio's would arrive. After a warm-up of idle_timeout, for 12 s: the share of genuine requests
// answered 200, and what the attacker spent (forged requests and new connections a second). A
// measurement, not a test: it fails only when the relay cannot be run.
//
//	RELAY_DOS_BOUND=1 go test -count=1 -run TestDenialOfServiceBound -v ./cmd/relay/
func TestDenialOfServiceBound(t *testing.T) {
	if os.Getenv(EnvDoSBound) == "" {
		t.Skipf("set %s=1 to measure the denial-of-service bound (docs/security.md)", EnvDoSBound)
	}
	const (
		maxConns    = 100
		readTimeout = 2 * time.Second
		idleTimeout = 12 * time.Second
		measure     = 12 * time.Second
	)
	t.Logf("max_connections %d, read_timeout %v, idle_timeout %v; %d attacking connections; genuine: 10 requests/s, each on a new connection",
		maxConns, readTimeout, idleTimeout, maxConns)
	for _, forged := range []bool{true, false} {
		h := startDoSRelay(t, maxConns, readTimeout, idleTimeout)
		r := dosRound(t, h, maxConns, forged, idleTimeout, measure)
		name := "empty connections"
		if forged {
			name = "forged requests"
		}
		t.Logf("%-17s genuine answered 200: %3d of %3d (%3.0f %%); attacker: %6.1f forged requests/s, %6.1f new connections/s",
			name, r.ok, r.all, 100*float64(r.ok)/float64(max(r.all, 1)), r.requests, r.conns)
	}
}

// startDoSRelay runs a relay with a file sink and the given limits until the test ends.
func startDoSRelay(t *testing.T, maxConns int, read, idle time.Duration) *harness {
	path := filepath.Join(t.TempDir(), "events.jsonl")
	return startRelayWith(t, nil, fmt.Sprintf(`
listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:0 }
limits: { max_connections: %d, read_timeout: %s, idle_timeout: %s }
endpoints:
  - { name: events, path: /twilio/events, public_url: %s, auth_tokens: [ "${TOKEN}" ] }
sinks:
  - { name: file, file: { path: %q, no_sync: true } }
routes:
  - { name: all, match: { types: [ "*" ] }, to: [ { sink: file, topic: events } ] }
dead_letter: { sink: file, topic: deadletter }
`, maxConns, read, idle, publicURL, path), nil)
}

// dosResult is one round: genuine requests answered 200 and sent during the measurement, and the
// attacker's forged requests and new connections a second over it.
type dosResult struct {
	ok, all         int
	requests, conns float64
}

// dosRound attacks h with n connections (forged requests, or empty connections) for warm-up + measure
// while the genuine client posts every 100 ms.
func dosRound(t *testing.T, h *harness, n int, forged bool, idle, measure time.Duration) dosResult {
	ctx, cancel := context.WithTimeout(t.Context(), idle+measure)
	defer cancel()
	body := forgedBody("dos")
	req := twilioRequest(h.relay.Addr, body)
	req.Header.Set("X-Twilio-Signature", "AAAA")
	wire := rawHead(req, fmt.Sprintf("Content-Length: %d", len(body))) + string(body)
	var requests, conns atomic.Int64
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if forged {
				forgedConnection(ctx, h.relay.Addr, wire, idle-time.Second, &requests, &conns)
			} else {
				emptyConnection(ctx, h.relay.Addr, &conns)
			}
		}()
	}
	genuine := *h.sender
	genuine.Client = &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	var r dosResult
	start := time.Now()
	var reqs0, conns0 int64
	counting := false
	for i := 0; ctx.Err() == nil; i++ {
		if !counting && time.Since(start) >= idle { // the attacker's effort over the measurement only
			counting, reqs0, conns0 = true, requests.Load(), conns.Load()
		}
		resp, err := genuine.Post(ctx, []json.RawMessage{event(fmt.Sprintf("EZdos%x-%d", start.UnixNano(), i), "com.twilio.messaging.message.sent", "SMdos")})
		if time.Since(start) >= idle && ctx.Err() == nil {
			r.all++
			if err == nil && resp.Status == http.StatusOK {
				r.ok++
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
	r.requests = float64(requests.Load()-reqs0) / measure.Seconds()
	r.conns = float64(conns.Load()-conns0) / measure.Seconds()
	wg.Wait()
	return r
}

// forgedConnection sends a forged request every pace, on its connection for as long as the relay keeps
// it, else on a new one, until ctx ends.
func forgedConnection(ctx context.Context, addr, wire string, pace time.Duration, requests, conns *atomic.Int64) {
	var c net.Conn
	var br *bufio.Reader
	defer func() {
		if c != nil {
			c.Close()
		}
	}()
	for ctx.Err() == nil {
		if c == nil {
			var err error
			if c, err = net.DialTimeout("tcp", addr, time.Second); err != nil {
				c = nil
				time.Sleep(10 * time.Millisecond)
				continue
			}
			conns.Add(1)
			br = bufio.NewReader(c)
		}
		requests.Add(1)
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		_, err := io.WriteString(c, wire)
		var resp *http.Response
		if err == nil {
			resp, err = http.ReadResponse(br, nil)
		}
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		if err != nil || resp.Close { // the relay closes it: the next request on a new connection
			c.Close()
			c = nil
		}
		select {
		case <-ctx.Done():
		case <-time.After(pace):
		}
	}
}

// emptyConnection holds a connection that sends nothing, and opens a new one as soon as the relay closes
// it, until ctx ends.
func emptyConnection(ctx context.Context, addr string, conns *atomic.Int64) {
	for ctx.Err() == nil {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		conns.Add(1)
		stop := context.AfterFunc(ctx, func() { c.Close() })
		_, _ = io.Copy(io.Discard, c)
		stop()
		c.Close()
	}
}
