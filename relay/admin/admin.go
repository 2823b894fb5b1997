// Package admin provides the relay's admin listener: /healthz (the process is alive), /readyz (it can
// deliver: every sink answers, its checks hold nothing against it, and it is not shutting down),
// /metrics, /spool, /debug/pprof when enabled, and whatever Root serves (the inspector). Every request
// passes the Host check (Hosts) first; then, with Auth, everything but /healthz and /readyz (POST /drain
// too) needs credentials.
// It is kept off the webhook listener so that probes and scrapes never compete with Twilio's requests
// and are never exposed where Twilio reaches.
package admin

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/relaykit/twilio-relay/relay"
)

// Config configures the handler.
type Config struct {
	// Pingers are checked by /readyz, by name.
	Pingers map[string]relay.Pinger
	// Registry is served on /metrics.
	Registry *prometheus.Registry
	Pprof    bool
	// Spool, when set, describes the spool on /spool.
	Spool func() []relay.SpoolStat
	// Spooled names the sinks that spool: while one of them is down the relay still accepts events (into
	// the spool), so /readyz stays 200 and reports the sink as degraded instead.
	Spooled map[string]bool
	// CheckEvery is how long a readiness verdict is reused; probes then cost the sinks nothing extra.
	CheckEvery time.Duration
	// Handlers are more endpoints, by ServeMux pattern with its method ("GET /twilio/test-events": what
	// `relay twilio test` reads; "POST /drain"). Another method on the path is answered 405.
	Handlers map[string]http.Handler
	// Preflight, when set, returns by sink why its checks say it cannot take what the configuration
	// sends it (a missing topic, refused credentials); /readyz counts such a sink as failing, like one
	// that does not answer a ping. It must be cheap: the checks run elsewhere, periodically.
	Preflight func() map[string]string
	// Hosts are the names the listener answers to besides addresses and localhost (nil: NewHosts()).
	Hosts *Hosts
	// Root, when set, serves every path the others do not (the inspector's page, /api/, /actions/).
	Root http.Handler
	// Auth, when set, is required for every path but /healthz and /readyz, behind the Host check.
	Auth *Auth
}

// Handler serves the admin endpoints, on its own listener (Serve) until Close.
type Handler struct {
	mux      *http.ServeMux
	handler  http.Handler // mux, behind Auth when set, behind the Host check
	cfg      Config
	srv      *http.Server
	draining atomic.Bool

	mu       sync.Mutex
	checked  time.Time
	failures map[string]string
}

// New returns the admin handler.
func New(cfg Config) *Handler {
	if cfg.CheckEvery == 0 {
		cfg.CheckEvery = time.Second
	}
	if cfg.Hosts == nil {
		cfg.Hosts = NewHosts()
	}
	h := &Handler{mux: http.NewServeMux(), cfg: cfg}
	// The Host check comes first: a page rebinding its name to this address gets 421, never a Basic
	// challenge that would have the browser ask the operator for credentials on that page's behalf.
	h.handler = h.mux
	if cfg.Auth != nil {
		h.handler = cfg.Auth.require(h.mux)
	}
	h.handler = cfg.Hosts.Check(h.handler)
	h.srv = &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	m := methods{h.mux, map[string][]string{}}
	m.handle("GET /healthz", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	}))
	m.handle("GET /readyz", http.HandlerFunc(h.ready))
	if cfg.Spool != nil {
		m.handle("GET /spool", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			writeJSON(w, http.StatusOK, map[string]any{"sinks": cfg.Spool()})
		}))
	}
	if cfg.Registry != nil {
		m.handle("GET /metrics", promhttp.HandlerFor(cfg.Registry, promhttp.HandlerOpts{Registry: cfg.Registry}))
	}
	for pattern, handler := range cfg.Handlers {
		m.handle(pattern, handler)
	}
	if cfg.Root != nil {
		m.notAllowed()
		h.mux.Handle("/", cfg.Root)
	}
	if cfg.Pprof {
		h.mux.HandleFunc("/debug/pprof/", pprof.Index)
		h.mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		h.mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		h.mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		h.mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return h
}

// methods registers patterns on a mux and remembers each path's methods. Root, registered for "/" and
// every method, would otherwise answer another method on such a path (GET /drain) with its own 404
// where the mux alone answers 405.
type methods struct {
	mux    *http.ServeMux
	byPath map[string][]string
}

func (m methods) handle(pattern string, handler http.Handler) {
	m.mux.Handle(pattern, handler)
	if method, path, ok := strings.Cut(pattern, " "); ok {
		m.byPath[path] = append(m.byPath[path], method)
	}
}

// notAllowed answers 405, with Allow, every other method on the paths registered with methods.
func (m methods) notAllowed() {
	for path, ms := range m.byPath {
		if slices.Contains(ms, http.MethodGet) {
			ms = append(ms, http.MethodHead)
		}
		allow := strings.Join(ms, ", ")
		m.mux.HandleFunc(path, func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Allow", allow)
			http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
		})
	}
}

// ServeHTTP implements http.Handler: the Host check, then the credentials (Auth), then the endpoints.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.handler.ServeHTTP(w, r) }

// Serve serves the admin endpoints on ln until Close, and then returns nil.
func (h *Handler) Serve(ln net.Listener) error {
	if err := h.srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Drain makes /readyz fail from now on, so that load balancers stop sending before the listeners close:
// the first step of shutting down, Close the last.
func (h *Handler) Drain() { h.draining.Store(true) }

// Close stops the listener and waits for the requests in flight, within ctx.
func (h *Handler) Close(ctx context.Context) error { return h.srv.Shutdown(ctx) }

func (h *Handler) ready(w http.ResponseWriter, r *http.Request) {
	if h.draining.Load() {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "draining"})
		return
	}
	failures := h.check(r.Context())
	if h.cfg.Preflight != nil {
		failures = merge(failures, h.cfg.Preflight())
	}
	blocking := 0
	for name := range failures {
		if !h.cfg.Spooled[name] {
			blocking++
		}
	}
	switch {
	case blocking > 0:
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "unavailable", "sinks": failures})
	case len(failures) > 0: // only spooled sinks are down: events still land in the spool
		writeJSON(w, http.StatusOK, map[string]any{"status": "degraded", "spooling": failures})
	default:
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	}
}

// check pings every sink, or reuses the last verdict when it is recent.
func (h *Handler) check(ctx context.Context) map[string]string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.checked.IsZero() && time.Since(h.checked) < h.cfg.CheckEvery {
		return h.failures
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	failures := map[string]string{}
	for name, p := range h.cfg.Pingers {
		if err := p.Ping(ctx); err != nil {
			failures[name] = err.Error()
		}
	}
	h.checked, h.failures = time.Now(), failures
	return failures
}

// merge returns the failures of a and b by sink in a new map, both reasons when both name a sink.
func merge(a, b map[string]string) map[string]string {
	out := make(map[string]string, len(a)+len(b))
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		if out[k] != "" {
			v = out[k] + "; " + v
		}
		out[k] = v
	}
	return out
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
