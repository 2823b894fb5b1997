package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// EnvDoSBound runs TestDenialOfServiceBound (docs/security.md); it is skipped otherwise.
const EnvDoSBound = "RELAY_DOS_BOUND"

// TestDenialOfServiceBound measures what it takes someone without the token to deny service: against a
// relay with max_connections 100 (read_timeout 2 s, idle_timeout 12 s: the shipped defaults' ratio,
// shortened), an attacker opens connections at a fixed rate, each either sending one forged request and
// keeping the connection open for as long as the relay does, or sending nothing. Meanwhile a genuine
// client posts a signed event every 100 ms on a new connection, as a Twilio retry would arrive. For each
// rate, after a warm-up of the longest hold (idle_timeout), the share of genuine requests answered 200
// in the next 6 s; the bound is the lowest rate at which fewer than half are. A measurement, not a test:
// it fails only when the relay cannot be run.
//
//	RELAY_DOS_BOUND=1 go test -count=1 -run TestDenialOfServiceBound -v -timeout 30m ./cmd/relay/
func TestDenialOfServiceBound(t *testing.T) {
	if os.Getenv(EnvDoSBound) == "" {
		t.Skipf("set %s=1 to measure the denial-of-service bound (docs/security.md)", EnvDoSBound)
	}
	const (
		maxConns    = 100
		readTimeout = 2 * time.Second
		idleTimeout = 12 * time.Second
		measure     = 6 * time.Second
	)
	rates := []float64{1, 2, 4, 8, 16, 32, 64, 128}
	if s := os.Getenv(EnvDoSBound); strings.Contains(s, ",") {
		rates = nil
		for _, f := range strings.Split(s, ",") {
			r, _ := strconv.ParseFloat(f, 64)
			rates = append(rates, r)
		}
	}
	t.Logf("max_connections %d, read_timeout %v, idle_timeout %v; genuine: 10 requests/s, each on a new connection", maxConns, readTimeout, idleTimeout)
	for _, attack := range []struct {
		name string
		send bool // one forged request, then wait for the relay to close; else send nothing
	}{{"forged request, connection kept open", true}, {"connection sending nothing", false}} {
		bound := 0.0
		for _, rate := range rates {
			h := startDoSRelay(t, maxConns, readTimeout, idleTimeout)
			ok, all := dosRound(t, h, rate, attack.send, idleTimeout, measure)
			share := float64(ok) / float64(max(all, 1))
			t.Logf("%-38s %6.0f connections/s: genuine answered 200 %3d of %3d (%3.0f %%)", attack.name, rate, ok, all, 100*share)
			if share < 0.5 && bound == 0 {
				bound = rate
			}
		}
		if bound == 0 {
			t.Logf("%s: no denial up to %v connections/s", attack.name, rates[len(rates)-1])
		} else {
			t.Logf("%s: denied from %v connections/s (max_connections / hold: %d / %v = %.1f/s for a kept connection, %.1f/s for an empty one)",
				attack.name, bound, maxConns, idleTimeout, maxConns/idleTimeout.Seconds(), maxConns/readTimeout.Seconds())
		}
	}
}

// startDoSRelay runs a relay with a file sink and the given limits until the test ends.
func startDoSRelay(t *testing.T, maxConns int, read, idle time.Duration) *harness {
	path := filepath.Join(t.TempDir(), "events.jsonl")
	return startRelayWith(t, nil, fmt.Sprintf(`
listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:0 }
log: { level: error }
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

// dosRound attacks h at rate connections/s for warm-up + measure while the genuine client posts every
// 100 ms; it returns the genuine requests answered 200 during measure, and all of them.
func dosRound(t *testing.T, h *harness, rate float64, send bool, warmup, measure time.Duration) (ok, all int) {
	ctx, cancel := context.WithTimeout(t.Context(), warmup+measure)
	defer cancel()
	body := forgedBody("dos")
	req := twilioRequest(h.relay.Addr, body)
	req.Header.Set("X-Twilio-Signature", "AAAA")
	forged := rawHead(req, fmt.Sprintf("Content-Length: %d", len(body))) + string(body)
	var wg sync.WaitGroup
	var open atomic.Int64
	wg.Add(1)
	go func() { // the attacker: a connection every 1/rate, held until the relay closes it or the round ends
		defer wg.Done()
		tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			c, err := net.DialTimeout("tcp", h.relay.Addr, time.Second)
			if err != nil {
				continue
			}
			open.Add(1)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer open.Add(-1)
				defer c.Close()
				stop := context.AfterFunc(ctx, func() { c.Close() })
				defer stop()
				if send {
					_, _ = io.WriteString(c, forged)
				}
				_, _ = io.Copy(io.Discard, c) // until the relay closes it
			}()
		}
	}()
	genuine := *h.sender
	genuine.Client = &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	start := time.Now()
	for i := 0; ctx.Err() == nil; i++ {
		r, err := genuine.Post(ctx, []json.RawMessage{event(fmt.Sprintf("EZdos%x-%d", start.UnixNano(), i), "com.twilio.messaging.message.sent", "SMdos")})
		if time.Since(start) >= warmup && ctx.Err() == nil {
			all++
			if err == nil && r.Status == http.StatusOK {
				ok++
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
	cancel()
	wg.Wait()
	return ok, all
}
