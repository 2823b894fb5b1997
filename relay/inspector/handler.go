package inspector

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/relaykit/twilio-relay/relay"
)

// Actions is what the page and the API show besides the record, and what they may do; every field is
// optional (a nil function hides its part of the page).
type Actions struct {
	// Name names this relay on the page (the pod's host name).
	Name string
	// Spool describes the durable spool per sink.
	Spool func() []relay.SpoolStat
	// Routes are the configured routes, in order.
	Routes []RouteInfo
	// DeadLetters reads the dead letters of a file dead-letter sink, filtered by reason and endpoint
	// ("" for any); nil when the dead-letter sink is not a file.
	DeadLetters func(ctx context.Context, reason, endpoint string) ([]DeadLetter, error)
	// Replay sends the dead letters the filters select through the routes again (`relay dlq replay`) and
	// says what became of them; nil unless inspector.allow_replay is set.
	Replay func(ctx context.Context, reason, endpoint string) (string, error)
	// SinkTest runs Twilio's sink test for an endpoint (`relay twilio test`) and returns its report; nil
	// without Twilio credentials. SinkTestEndpoints are the endpoints it can test.
	SinkTest          func(ctx context.Context, endpoint string) (string, error)
	SinkTestEndpoints []string
}

// RouteInfo describes a configured route for the page.
type RouteInfo struct {
	Name    string `json:"name"`
	Match   string `json:"match"`
	Targets string `json:"targets"`
}

// DeadLetter is one record of a file dead-letter sink.
type DeadLetter struct {
	Line       int    `json:"line"`
	Endpoint   string `json:"endpoint"`
	Reason     string `json:"reason"`
	OriginalID string `json:"original_id"`
	Bytes      int    `json:"bytes"`
}

// SpoolSink is a relay.SpoolStat for the API.
type SpoolSink struct {
	Sink       string    `json:"sink"`
	Depth      int       `json:"depth"`
	Bytes      int64     `json:"bytes"`
	Oldest     time.Time `json:"oldest,omitzero"`
	AgeSeconds float64   `json:"age_seconds"`
	Spooled    uint64    `json:"spooled"`
	Drained    uint64    `json:"drained"`
}

// server serves the page, the API and the actions.
type server struct {
	rec  *Record
	acts Actions
	csrf string // the page's form token: random per process

	mu    sync.Mutex
	tests map[string]testRun // the last sink test per endpoint
}

type testRun struct {
	Endpoint string
	Started  time.Time
	Running  bool
	Report   string
	Failed   bool
}

// Handler serves, on the admin listener: the page at /, its assets under /static/, the JSON API under
// /api/ (events, refusals, endpoints, spool, routes, deadletters), and the page's POST actions under
// /actions/ (replay, sink-test), which need the page's form token and a same-origin request.
func Handler(rec *Record, acts Actions) http.Handler {
	token := make([]byte, 32)
	_, _ = rand.Read(token) // crypto/rand never fails on supported platforms
	s := &server{rec: rec, acts: acts, csrf: hex.EncodeToString(token), tests: map[string]testRun{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.page)
	mux.Handle("GET /static/", http.FileServerFS(assets))
	mux.HandleFunc("GET /api/events", s.apiEvents)
	mux.HandleFunc("GET /api/refusals", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"refusals": rec.Refusals(r.URL.Query().Get("endpoint"), limit(r.URL.Query(), 100))})
	})
	mux.HandleFunc("GET /api/endpoints", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"endpoints": rec.Endpoints()})
	})
	mux.HandleFunc("GET /api/spool", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"sinks": s.spool()})
	})
	mux.HandleFunc("GET /api/routes", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"routes": s.routes()})
	})
	mux.HandleFunc("GET /api/deadletters", s.apiDeadLetters)
	mux.HandleFunc("POST /actions/replay", s.guard(s.replay))
	mux.HandleFunc("POST /actions/sink-test", s.guard(s.sinkTest))
	return mux
}

// query reads a Query from URL parameters: id, sid, q (id or SID), type, outcome, endpoint, limit,
// before.
func query(v url.Values) Query {
	q := Query{ID: v.Get("id"), SID: v.Get("sid"), Type: v.Get("type"), Outcome: v.Get("outcome"),
		Endpoint: v.Get("endpoint"), Limit: limit(v, 50)}
	q.Before, _ = strconv.ParseUint(v.Get("before"), 10, 64)
	return q
}

func limit(v url.Values, def int) int {
	if n, err := strconv.Atoi(v.Get("limit")); err == nil && n > 0 {
		return min(n, 1000)
	}
	return def
}

// search answers a query, where q= matches an id or a resource SID.
func (s *server) search(v url.Values) []Event {
	q := query(v)
	any := v.Get("q")
	if any == "" {
		return s.rec.Events(q)
	}
	byID, bySID := q, q
	byID.ID, bySID.SID = any, any
	out := s.rec.Events(byID)
	for _, e := range s.rec.Events(bySID) {
		if e.ID != any {
			out = append(out, e)
		}
	}
	return out
}

func (s *server) apiEvents(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"events": s.search(r.URL.Query())})
}

func (s *server) apiDeadLetters(w http.ResponseWriter, r *http.Request) {
	if s.acts.DeadLetters == nil {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "the dead-letter sink is not a file sink"})
		return
	}
	dls, err := s.acts.DeadLetters(r.Context(), r.URL.Query().Get("reason"), r.URL.Query().Get("endpoint"))
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"dead_letters": dls})
}

func (s *server) spool() []SpoolSink {
	out := []SpoolSink{}
	if s.acts.Spool == nil {
		return out
	}
	for _, st := range s.acts.Spool() {
		sp := SpoolSink{Sink: st.Sink, Depth: st.Depth, Bytes: st.Bytes, Oldest: st.Oldest, Spooled: st.Spooled, Drained: st.Drained}
		if !st.Oldest.IsZero() {
			sp.AgeSeconds = time.Since(st.Oldest).Seconds()
		}
		out = append(out, sp)
	}
	return out
}

// routeRow is a configured route with its hits.
type routeRow struct {
	RouteInfo
	Hits int64 `json:"hits"`
}

func (s *server) routes() []routeRow {
	hits := map[string]int64{}
	for _, h := range s.rec.Routes() {
		hits[h.Route] = h.Hits
	}
	out := make([]routeRow, 0, len(s.acts.Routes)+1)
	for _, ri := range s.acts.Routes {
		out = append(out, routeRow{RouteInfo: ri, Hits: hits[ri.Name]})
	}
	if n, ok := hits[NoRoute]; ok {
		out = append(out, routeRow{RouteInfo: RouteInfo{Name: NoRoute, Match: "no route matched", Targets: "no_route policy"}, Hits: n})
	}
	return out
}

// guard admits a POST only with the page's form token and, when the browser says where it comes from,
// from the page's own origin: another site cannot make an operator's browser replay dead letters.
func (s *server) guard(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		if err := r.ParseForm(); err != nil {
			http.Error(w, "bad form", http.StatusBadRequest)
			return
		}
		site := r.Header.Get("Sec-Fetch-Site")
		origin := r.Header.Get("Origin")
		sameOrigin := (site == "" || site == "same-origin" || site == "none") &&
			(origin == "" || origin == "null" && site == "same-origin" || sameHost(origin, r.Host))
		if subtle.ConstantTimeCompare([]byte(r.PostForm.Get("csrf")), []byte(s.csrf)) != 1 || !sameOrigin {
			http.Error(w, "forbidden: the form token is missing or wrong, or the request comes from another site; reload the page", http.StatusForbidden)
			return
		}
		next(w, r)
	}
}

func sameHost(origin, host string) bool {
	u, err := url.Parse(origin)
	return err == nil && u.Host == host
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
