package inspector

import (
	"context"
	"embed"
	"html/template"
	"io/fs"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/relaykit/twilio-relay/relay"
)

//go:embed static page.html
var files embed.FS

// assets are the page's script and style, served under /static/.
var assets fs.FS = files

var page = template.Must(template.New("page.html").Funcs(template.FuncMap{
	"ago": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return time.Since(t).Round(time.Second).String() + " ago"
	},
	"clock": func(t time.Time) string { return t.UTC().Format("15:04:05.000") },
	"stamp": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"bytes": func(n int64) string { return formatBytes(n) },
}).ParseFS(files, "page.html"))

// pageData is what page.html renders.
type pageData struct {
	Name       string
	Now        time.Time
	CSRF       string
	Form       url.Values
	Events     []Event
	Endpoints  []EndpointStats
	Refusals   []Refusal
	Spool      []SpoolSink
	Routes     []routeRow
	Outcomes   []string
	Types      []string
	Held       int
	Memory     int64
	DLQ        bool // the dead-letter sink is a file: its records are listed
	DeadLetter []DeadLetter
	DLQError   string
	Replay     bool // replay is allowed
	Preview    []DeadLetter
	Message    string // what an action did
	SinkTests  []testRun
	CanTest    bool
	TestEps    []string
	KeepData   bool
}

func (s *server) data(r *http.Request) *pageData {
	v := r.URL.Query()
	d := &pageData{Name: s.acts.Name, Now: time.Now().UTC(), CSRF: s.csrf, Form: v, Events: s.search(v),
		Endpoints: s.rec.Endpoints(), Refusals: s.rec.Refusals("", 20), Spool: s.spool(), Routes: s.routes(),
		Held: s.rec.Len(), Memory: s.rec.Memory(), DLQ: s.acts.DeadLetters != nil, Replay: s.acts.Replay != nil,
		CanTest: s.acts.SinkTest != nil, TestEps: s.acts.SinkTestEndpoints, KeepData: s.rec.cfg.KeepData}
	for f := relay.Delivered; f <= relay.Failed; f++ {
		d.Outcomes = append(d.Outcomes, f.String())
	}
	d.Types = s.rec.types()
	if d.DLQ {
		dls, err := s.acts.DeadLetters(r.Context(), "", "")
		if err != nil {
			d.DLQError = err.Error()
		}
		d.DeadLetter = newest(dls, 20)
	}
	s.mu.Lock()
	for _, ep := range slices.Sorted(maps.Keys(s.tests)) {
		d.SinkTests = append(d.SinkTests, s.tests[ep])
	}
	s.mu.Unlock()
	return d
}

func newest(dls []DeadLetter, n int) []DeadLetter {
	out := slices.Clone(dls[max(0, len(dls)-n):])
	slices.Reverse(out)
	return out
}

func (s *server) render(w http.ResponseWriter, status int, d *pageData) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	// Everything the page needs is its own: no other origin, no inline script, no framing.
	w.Header().Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(status)
	if err := page.Execute(w, d); err != nil {
		_, _ = w.Write([]byte("<p>render: " + template.HTMLEscapeString(err.Error()) + "</p>"))
	}
}

func (s *server) page(w http.ResponseWriter, r *http.Request) { s.render(w, http.StatusOK, s.data(r)) }

// replay previews (dry_run) or replays the dead letters the form's filters select.
func (s *server) replay(w http.ResponseWriter, r *http.Request) {
	reason, endpoint := r.PostForm.Get("reason"), r.PostForm.Get("endpoint")
	d := s.data(r)
	switch {
	case s.acts.DeadLetters == nil:
		d.Message = "no dead letters to replay: the dead-letter sink is not a file sink (use relay dlq replay)"
	case r.PostForm.Get("dry_run") != "":
		dls, err := s.acts.DeadLetters(r.Context(), reason, endpoint)
		if err != nil {
			d.Message = "reading the dead letters: " + err.Error()
			break
		}
		d.Preview, d.Message = dls, "dry run: "+strconv.Itoa(len(dls))+" dead letters would be replayed"
	case s.acts.Replay == nil:
		s.render(w, http.StatusForbidden, withMessage(d, "replay is off: set inspector.allow_replay: true to allow it from this page"))
		return
	default:
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Minute)
		defer cancel()
		msg, err := s.acts.Replay(ctx, reason, endpoint)
		if err != nil {
			msg = "replay: " + err.Error() + " " + msg
		}
		d.Message = msg
	}
	s.render(w, http.StatusOK, d)
}

func withMessage(d *pageData, msg string) *pageData { d.Message = msg; return d }

// sinkTest starts Twilio's sink test for an endpoint in the background; the page shows its report.
func (s *server) sinkTest(w http.ResponseWriter, r *http.Request) {
	ep := r.PostForm.Get("endpoint")
	if s.acts.SinkTest == nil || !slices.Contains(s.acts.SinkTestEndpoints, ep) {
		s.render(w, http.StatusBadRequest, withMessage(s.data(r), "no sink test for endpoint "+ep+" (are Twilio credentials configured?)"))
		return
	}
	s.mu.Lock()
	if s.tests[ep].Running {
		s.mu.Unlock()
		http.Redirect(w, r, "/#sink-test", http.StatusSeeOther)
		return
	}
	s.tests[ep] = testRun{Endpoint: ep, Started: time.Now().UTC(), Running: true}
	s.mu.Unlock()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		report, err := s.acts.SinkTest(ctx, ep)
		s.mu.Lock()
		defer s.mu.Unlock()
		run := s.tests[ep]
		run.Running, run.Report, run.Failed = false, report, err != nil
		if err != nil {
			run.Report += "\n" + err.Error()
		}
		s.tests[ep] = run
	}()
	http.Redirect(w, r, "/#sink-test", http.StatusSeeOther)
}

// types returns the event types the record has seen, sorted.
func (r *Record) types() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	seen := map[uint16]bool{}
	for i := 0; i < r.n; i++ {
		seen[r.slotAt(r.seq-uint64(i)).typ] = true
		if len(seen) >= 200 || i >= scanStep {
			break
		}
	}
	out := make([]string, 0, len(seen))
	for id := range seen {
		out = append(out, r.names.name(id))
	}
	slices.Sort(out)
	return out
}
