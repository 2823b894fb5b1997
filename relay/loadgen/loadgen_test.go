package loadgen

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relaykit/twilio-relay/relay/twilio"
)

func TestSchedule(t *testing.T) {
	for _, c := range []struct {
		rate  float64
		batch int
		d     time.Duration
		n     int
		every time.Duration
	}{
		{1000, 1, time.Second, 1000, time.Millisecond},
		{2000, 1, 15 * time.Second, 30000, 500 * time.Microsecond},
		{1000, 10, time.Second, 100, 10 * time.Millisecond},
		{1000, 3, time.Second, 334, 3 * time.Millisecond}, // rounded up to whole bodies
		{0, 1, time.Second, 0, 0},
	} {
		n, every := Schedule(c.rate, c.batch, c.d)
		if n != c.n || every != c.every {
			t.Errorf("Schedule(%v, %d, %v) = %d, %v; want %d, %v", c.rate, c.batch, c.d, n, every, c.n, c.every)
		}
	}
}

func TestSummarize(t *testing.T) {
	h := NewHistogram()
	for us := int64(1); us <= 10000; us++ { // 1 µs .. 10 ms, uniform
		_ = h.RecordValue(us * 1)
	}
	l := Summarize(h)
	near := func(name string, got, want float64) {
		if got < want*0.995 || got > want*1.005 {
			t.Errorf("%s = %v ms, want %v ms ±0.5%%", name, got, want)
		}
	}
	near("p50", l.P50, 5)
	near("p90", l.P90, 9)
	near("p99", l.P99, 9.9)
	near("p99.9", l.P999, 9.99)
	near("max", l.Max, 10)
	if l.N != 10000 {
		t.Errorf("n = %d", l.N)
	}
}

// TestPayloads: with DupResend every duplicate is an earlier event's bytes exactly, in a body with fresh
// events; with DupReusedID it is an earlier id on another sample (another source), so a new key.
func TestPayloads(t *testing.T) {
	for _, mode := range []string{DupResend, DupReusedID} {
		t.Run(mode, func(t *testing.T) {
			p, err := NewPayloads("x", 0.5, mode, 7)
			if err != nil {
				t.Fatal(err)
			}
			byID := map[string]string{} // id → the bytes of its first event
			dups, again := 0, 0
			for range 200 {
				body, keys, d := p.Body(3)
				var evs []json.RawMessage
				if err := json.Unmarshal(body, &evs); err != nil || len(evs) != 3 || len(keys) != 3 {
					t.Fatalf("body %s: %v", body, err)
				}
				for i, raw := range evs {
					var ev struct{ ID, Source, Type string }
					_ = json.Unmarshal(raw, &ev)
					if ev.Type == "com.twilio.eventstreams.test-event" {
						t.Fatal("the sink test event is never deduplicated: it must not be in the load")
					}
					if keys[i] != (Key{ev.Source, ev.ID}) {
						t.Fatalf("key %v for an event of source %s id %s", keys[i], ev.Source, ev.ID)
					}
					first, seen := byID[ev.ID]
					if !seen {
						byID[ev.ID] = string(raw)
						continue
					}
					again++
					var f struct{ Source string }
					_ = json.Unmarshal([]byte(first), &f)
					if mode == DupResend && first != string(raw) {
						t.Fatalf("a re-send differs from the event it re-sends:\n%s\n%s", first, raw)
					}
					if mode == DupReusedID && f.Source == ev.Source {
						t.Fatalf("a reused id kept its source %s", ev.Source)
					}
				}
				dups += d
			}
			if dups != again || dups < 200 || dups > 400 { // about half of 600
				t.Errorf("%d duplicates counted, %d seen, of 600 events with ratio 0.5", dups, again)
			}
		})
	}
	if _, err := NewPayloads("x", 0.1, "same-id", 1); err == nil {
		t.Error("an unknown dup mode was accepted")
	}
}

// The server answers by request order: 2xx, 429, 500, and a stalled answer beyond the timeout. Every
// request is signed like Twilio and every event id answered 2xx is reported accepted.
func TestRun(t *testing.T) {
	const token, public = "tok", "https://relay.example.com/twilio/events"
	v := twilio.NewVerifier([]string{token})
	var (
		n        atomic.Int64
		mu       sync.Mutex
		received = map[string]int{}
		bad      atomic.Int64
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := v.Verify([]string{public}, r.URL.RawQuery, body, r.Header.Get(twilio.SignatureHeader)); err != nil {
			bad.Add(1)
		}
		var evs []struct{ ID string }
		_ = json.Unmarshal(body, &evs)
		i := n.Add(1)
		switch i % 10 {
		case 1:
			w.WriteHeader(http.StatusTooManyRequests)
			return
		case 2:
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		mu.Lock()
		for _, e := range evs {
			received[e.ID]++
		}
		mu.Unlock()
	}))
	defer srv.Close()
	res, err := Run(context.Background(), Config{
		URL: srv.URL + "/twilio/events", PublicURL: public, Token: token,
		Rate: 2000, Duration: 100 * time.Millisecond, Batch: 2, Concurrency: 4, IDPrefix: "t",
	})
	if err != nil {
		t.Fatal(err)
	}
	if bad.Load() != 0 {
		t.Errorf("%d requests failed verification", bad.Load())
	}
	if res.Requests != 100 || res.Sent != 100 || res.Events != 200 {
		t.Errorf("requests %d sent %d events %d, want 100/100/200", res.Requests, res.Sent, res.Events)
	}
	if res.Status429 != 10 || res.Status5xx != 10 || res.Status2xx != 80 || res.Errors != 20 || res.Transport != 0 {
		t.Errorf("statuses %+v", res)
	}
	if res.Latency.N != 100 {
		t.Errorf("latencies recorded %d, want 100", res.Latency.N)
	}
	if len(res.Accepted) != 160 {
		t.Errorf("%d accepted events, want 160", len(res.Accepted))
	}
	for _, k := range res.Accepted {
		if received[k.ID] != 1 || !strings.HasPrefix(k.ID, "EZt") || k.Source == "" {
			t.Errorf("accepted %s received %d times", k, received[k.ID])
		}
	}
}

// With one slot and a server that holds each request until released, the requests due meanwhile find
// the cap reached and are counted late; all are still sent and timed from their scheduled start.
func TestRunLate(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release }))
	defer srv.Close()
	done := make(chan *Result, 1)
	go func() {
		// 5 requests due within 5 µs: all but the first are due while the first is held.
		res, err := Run(context.Background(), Config{URL: srv.URL, Rate: 1e6, Duration: 5 * time.Microsecond, Concurrency: 1})
		if err != nil {
			t.Error(err)
		}
		done <- res
	}()
	for range 5 {
		release <- struct{}{}
	}
	res := <-done
	if res.Sent != 5 || res.Late < 1 || res.Late > 4 || res.Status2xx != 5 || res.Latency.N != 5 || res.Signed {
		t.Errorf("sent %d late %d 2xx %d timed %d signed %v; want 5, 1..4, 5, 5, false", res.Sent, res.Late, res.Status2xx, res.Latency.N, res.Signed)
	}
}

// A closed loop keeps exactly Concurrency requests in flight: with a server that answers after 2 ms, at
// most Concurrency are ever held at once, and each new one follows an answer.
func TestRunClosed(t *testing.T) {
	var inFlight, most, total atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		total.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		time.Sleep(2 * time.Millisecond)
	}))
	defer srv.Close()
	const conc = 3
	res, err := Run(context.Background(), Config{URL: srv.URL, Closed: true, Duration: 200 * time.Millisecond, Batch: 5, Concurrency: conc})
	if err != nil {
		t.Fatal(err)
	}
	if m := most.Load(); m != conc {
		t.Errorf("at most %d requests in flight, want %d", m, conc)
	}
	// 200 ms / 2 ms per request × 3 in flight: up to 300 requests; a loaded machine does fewer.
	if res.Sent != total.Load() || res.Sent < conc || res.Sent > 300+conc || res.Status2xx != res.Sent || res.Requests != res.Sent {
		t.Errorf("sent %d (server saw %d) 2xx %d requests %d", res.Sent, total.Load(), res.Status2xx, res.Requests)
	}
	if res.Events != 5*res.Sent || len(res.Accepted) != int(res.Events) || res.Latency.N != res.Sent || !res.Closed || res.OfferedRate != 0 {
		t.Errorf("events %d accepted %d timed %d closed %v offered %v", res.Events, len(res.Accepted), res.Latency.N, res.Closed, res.OfferedRate)
	}
	if want := float64(res.Events) / res.DurationS; res.AchievedRate < want*0.8 || res.AchievedRate > want*1.01 {
		t.Errorf("achieved %.0f/s, want about %.0f/s", res.AchievedRate, want)
	}
}
