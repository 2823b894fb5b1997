package admin

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestAuth: with credentials set, every path but the probes needs them (POST /drain too), by bearer token
// or Basic (the token as the password, or the user and password); without them nothing does. The Host
// check comes first: a name not allowed gets 421 and no Basic challenge, whatever the credentials.
func TestAuth(t *testing.T) {
	root := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) })
	h := New(Config{Registry: prometheus.NewRegistry(), Spool: nil, Root: root, Pprof: true,
		Auth: &Auth{Token: "0123456789abcdef0123", Username: "ops", Password: "s3cret-pass"}})
	do := func(path string, set func(*http.Request)) int {
		method := http.MethodGet
		if path == "/drain" {
			method = http.MethodPost
		}
		req := httptest.NewRequest(method, path, nil)
		req.Host = "127.0.0.1:9090"
		if set != nil {
			set(req)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code == http.StatusUnauthorized && w.Header().Get("WWW-Authenticate") == "" {
			t.Errorf("%s: 401 without a challenge", path)
		}
		return w.Code
	}
	bearer := func(tok string) func(*http.Request) {
		return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
	}
	basic := func(u, p string) func(*http.Request) { return func(r *http.Request) { r.SetBasicAuth(u, p) } }
	for _, path := range []string{"/healthz", "/readyz"} {
		if code := do(path, nil); code == http.StatusUnauthorized {
			t.Errorf("%s needs credentials: the kubelet's probes have none", path)
		}
	}
	for _, path := range []string{"/metrics", "/", "/api/events", "/debug/pprof/", "/anything", "/drain"} {
		if code := do(path, nil); code != http.StatusUnauthorized {
			t.Errorf("%s without credentials: %d", path, code)
		}
		for name, set := range map[string]func(*http.Request){
			"wrong token": bearer("0123456789abcdef0124"), "wrong password": basic("ops", "s3cret-pasS"),
			"token as user": basic("0123456789abcdef0123", "x"), "empty": basic("", ""),
		} {
			if code := do(path, set); code != http.StatusUnauthorized {
				t.Errorf("%s with %s: %d", path, name, code)
			}
		}
		for name, set := range map[string]func(*http.Request){
			"token": bearer("0123456789abcdef0123"), "basic": basic("ops", "s3cret-pass"), "token as password": basic("anyone", "0123456789abcdef0123"),
		} {
			if code := do(path, set); code == http.StatusUnauthorized {
				t.Errorf("%s with the %s: 401", path, name)
			}
		}
	}
	if code := do("/", bearer("0123456789abcdef0123")); code != http.StatusTeapot {
		t.Errorf("/ is Root's: %d", code)
	}
	rebound := func(r *http.Request) { r.Host = "attacker.example:9090" }
	for _, path := range []string{"/", "/healthz"} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, path, nil)
		bearer("0123456789abcdef0123")(req)
		rebound(req)
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusMisdirectedRequest || rec.Header().Get("WWW-Authenticate") != "" {
			t.Errorf("%s from a rebound name, with the token: %d %q, want 421 without a challenge", path, rec.Code, rec.Header().Get("WWW-Authenticate"))
		}
		rec = httptest.NewRecorder()
		req = httptest.NewRequest(http.MethodGet, path, nil)
		rebound(req)
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusMisdirectedRequest || rec.Header().Get("WWW-Authenticate") != "" {
			t.Errorf("%s from a rebound name, no credentials: %d %q, want 421 without a challenge", path, rec.Code, rec.Header().Get("WWW-Authenticate"))
		}
	}
	open := New(Config{Registry: prometheus.NewRegistry()})
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	req.Host = "localhost:9090"
	open.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Errorf("/metrics without auth configured: %d", rec.Code)
	}
}

// TestRootKeeps405: with Root serving every other path, a path registered for one method still answers
// another with 405 and Allow (GET /drain must not reach the inspector's 404), and Root still gets the
// paths no one else has.
func TestRootKeeps405(t *testing.T) {
	root := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) })
	noop := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	h := New(Config{Registry: prometheus.NewRegistry(), Root: root, Handlers: map[string]http.Handler{"POST /drain": noop}})
	for _, tt := range []struct {
		method, path string
		code         int
		allow        string
	}{
		{http.MethodGet, "/drain", http.StatusMethodNotAllowed, "POST"},
		{http.MethodPost, "/metrics", http.StatusMethodNotAllowed, "GET, HEAD"},
		{http.MethodPost, "/drain", http.StatusOK, ""},
		{http.MethodGet, "/api/events", http.StatusTeapot, ""},
	} {
		req := httptest.NewRequest(tt.method, tt.path, nil)
		req.Host = "127.0.0.1"
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tt.code || rec.Header().Get("Allow") != tt.allow {
			t.Errorf("%s %s: %d Allow %q, want %d Allow %q", tt.method, tt.path, rec.Code, rec.Header().Get("Allow"), tt.code, tt.allow)
		}
	}
}
