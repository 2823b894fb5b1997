package admin

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/relaykit/twilio-relay/relay"
)

type pinger struct {
	err   atomic.Pointer[error]
	calls atomic.Int32
}

func (p *pinger) Ping(context.Context) error {
	p.calls.Add(1)
	if e := p.err.Load(); e != nil {
		return *e
	}
	return nil
}

func get(t *testing.T, h http.Handler, path string) (int, map[string]any) {
	t.Helper()
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	req.Host = "localhost:9090"
	h.ServeHTTP(rec, req)
	var body map[string]any
	_ = json.Unmarshal(rec.Body.Bytes(), &body)
	return rec.Code, body
}

func TestReadiness(t *testing.T) {
	p := &pinger{}
	h := New(Config{Pingers: map[string]relay.Pinger{"kafka": p}, Registry: prometheus.NewRegistry(), CheckEvery: time.Nanosecond})
	if code, _ := get(t, h, "/healthz"); code != 200 {
		t.Fatalf("/healthz = %d", code)
	}
	if code, _ := get(t, h, "/readyz"); code != 200 {
		t.Fatalf("/readyz with a healthy sink = %d", code)
	}
	down := errors.New("no broker answered")
	p.err.Store(&down)
	code, body := get(t, h, "/readyz")
	if code != 503 || body["sinks"].(map[string]any)["kafka"] != "no broker answered" {
		t.Fatalf("/readyz with a failing sink = %d %v", code, body)
	}
	p.err.Store(nil)
	h.Drain()
	if code, body := get(t, h, "/readyz"); code != 503 || body["status"] != "draining" {
		t.Fatalf("/readyz while draining = %d %v", code, body)
	}
	if code, _ := get(t, h, "/metrics"); code != 200 {
		t.Fatalf("/metrics = %d", code)
	}
	if code, _ := get(t, h, "/debug/pprof/"); code != 404 {
		t.Fatalf("pprof served without being enabled: %d", code)
	}
}

func TestReadinessIsCached(t *testing.T) {
	p := &pinger{}
	h := New(Config{Pingers: map[string]relay.Pinger{"kafka": p}, CheckEvery: time.Hour})
	for range 5 {
		get(t, h, "/readyz")
	}
	if n := p.calls.Load(); n != 1 {
		t.Fatalf("5 probes pinged the sink %d times, want 1", n)
	}
}

// TestReadinessWithSpool: a sink that spools and is down leaves the relay ready (it still accepts
// events, into the spool) and says so; a sink that does not spool still makes it unready.
func TestReadinessWithSpool(t *testing.T) {
	spooled, plain := &pinger{}, &pinger{}
	down := errors.New("down")
	spooled.err.Store(&down)
	h := New(Config{Pingers: map[string]relay.Pinger{"kafka": spooled, "http": plain},
		Spooled: map[string]bool{"kafka": true}, CheckEvery: time.Nanosecond})
	code, body := get(t, h, "/readyz")
	if code != 200 || body["status"] != "degraded" || body["spooling"].(map[string]any)["kafka"] != "down" {
		t.Fatalf("/readyz with the spooled sink down = %d %v", code, body)
	}
	plain.err.Store(&down)
	if code, _ := get(t, h, "/readyz"); code != 503 {
		t.Fatalf("/readyz with a sink that does not spool down = %d, want 503", code)
	}
}

// TestReadinessWithPreflight: what the checks hold against a sink counts like a failed ping, with the
// reason in the body, joined to the ping's when both fail; a sink that spools stays degraded-but-ready.
func TestReadinessWithPreflight(t *testing.T) {
	p := &pinger{}
	held := map[string]string{} // the handler runs in this goroutine (get)
	h := New(Config{Pingers: map[string]relay.Pinger{"kafka": p, "redis": &pinger{}}, Spooled: map[string]bool{"redis": true},
		CheckEvery: time.Nanosecond, Preflight: func() map[string]string { return maps.Clone(held) }})
	set := func(sink, reason string) { held[sink] = reason }
	if code, _ := get(t, h, "/readyz"); code != 200 {
		t.Fatalf("/readyz with nothing held = %d", code)
	}
	set("kafka", "preflight: topic t: does not exist")
	code, body := get(t, h, "/readyz")
	if code != 503 || body["sinks"].(map[string]any)["kafka"] != "preflight: topic t: does not exist" {
		t.Fatalf("/readyz with a missing topic = %d %v", code, body)
	}
	down := errors.New("no broker answered")
	p.err.Store(&down)
	if _, body := get(t, h, "/readyz"); body["sinks"].(map[string]any)["kafka"] != "no broker answered; preflight: topic t: does not exist" {
		t.Fatalf("/readyz with both = %v, want both reasons", body)
	}
	p.err.Store(nil)
	delete(held, "kafka")
	set("redis", "preflight: stream s: the key holds a hash")
	if code, body := get(t, h, "/readyz"); code != 200 || body["status"] != "degraded" {
		t.Fatalf("/readyz with a spooled sink held = %d %v, want 200 degraded", code, body)
	}
}

// TestServeAndClose: the admin listener serves until Close, and Serve then returns nil.
func TestServeAndClose(t *testing.T) {
	h := New(Config{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- h.Serve(ln) }()
	resp, err := http.Get("http://" + ln.Addr().String() + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /healthz: %v %v", resp, err)
	}
	resp.Body.Close()
	if err := h.Close(context.Background()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve after Close: %v", err)
	}
	if _, err := http.Get("http://" + ln.Addr().String() + "/healthz"); err == nil {
		t.Fatal("the listener still answers after Close")
	}
}
