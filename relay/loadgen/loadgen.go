// Package loadgen is a load generator for Twilio Event Streams webhooks. Open loop (the default):
// requests are sent on a fixed schedule (the arrival rate), whatever the server's answers do, and each
// latency is taken from the request's scheduled start, so a slow server cannot slow the load down and hide
// its own latency (coordinated omission). Closed loop: a fixed number of requests in flight, each sent as
// soon as the one before it was answered, which finds the most a server sustains at that concurrency. It
// backs `relay bench`.
package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/relaykit/twilio-relay/relay/twilio"
)

// Config is one run.
type Config struct {
	URL       string  // where the requests go
	PublicURL string  // the URL signed instead of URL, when set
	Token     string  // auth token to sign with; empty: unsigned requests (for peers that do not verify)
	Rate      float64 // offered events per second (open loop)
	// Closed runs Concurrency requests back to back for Duration instead of offering Rate.
	Closed   bool
	Duration time.Duration
	Batch    int     // events per POST body (Twilio's Event Streams sends up to 500)
	DupRatio float64 // share of events that are duplicates (see DupMode), in [0,1)
	DupMode  string  // DupResend (the default) or DupReusedID
	// Concurrency caps requests in flight. A request due while the cap is reached is "late": it waits
	// for a slot, and its latency still counts from its scheduled start.
	Concurrency int
	Timeout     time.Duration // per request; 10 s when zero
	Seed        uint64        // for the duplicate choice; 1 when zero
	IDPrefix    string        // makes ids unique across runs; the start time when empty
	Client      *http.Client  // nil: one sized for Concurrency
}

// Result is what a run measured. Latencies are in milliseconds.
type Result struct {
	URL          string  `json:"url"`
	Signed       bool    `json:"signed"`
	Closed       bool    `json:"closed_loop,omitempty"`
	OfferedRate  float64 `json:"offered_events_per_s"`  // 0 in a closed loop
	AchievedRate float64 `json:"achieved_events_per_s"` // events answered 2xx per second of the run
	DurationS    float64 `json:"duration_s"`            // from the first scheduled start to the last answer
	Batch        int     `json:"batch"`
	DupRatio     float64 `json:"dup_ratio"`
	DupMode      string  `json:"dup_mode,omitempty"`
	Concurrency  int     `json:"concurrency"`

	Requests   int64  `json:"requests"`    // scheduled
	Sent       int64  `json:"sent"`        // actually sent (less than Requests only when the run was cut short)
	Events     int64  `json:"events"`      // in the bodies sent
	Duplicates int64  `json:"duplicates"`  // events in the bodies sent that are duplicates (DupMode)
	Late       int64  `json:"late"`        // requests that found the concurrency cap reached
	Status2xx  int64  `json:"status_2xx"`  // requests
	Status429  int64  `json:"status_429"`  // requests
	Status5xx  int64  `json:"status_5xx"`  // requests
	StatusElse int64  `json:"status_else"` // other statuses
	Transport  int64  `json:"transport_errors"`
	Errors     int64  `json:"errors"` // everything not 2xx
	FirstError string `json:"first_error,omitempty"`

	Latency Latency `json:"latency_ms"`

	Verify *Verification `json:"verify,omitempty"`

	// Accepted lists the events in bodies answered 2xx, by dedupe key, for Verify (a key may repeat).
	Accepted []Key `json:"-"`
}

// Key is what the relay deduplicates an event by within an endpoint: its source and id (CloudEvents:
// "(source, id) identifies an event").
type Key struct{ Source, ID string }

func (k Key) String() string { return k.Source + " " + k.ID }

// The kinds of duplicates a run sends (Config.DupMode).
const (
	// DupResend: a duplicate is a byte-identical re-send of an earlier event (same source, type, id and
	// data), as Twilio's at-least-once delivery re-sends it, in a body with other events. The relay
	// delivers each such event once.
	DupResend = "resend"
	// DupReusedID: a "duplicate" is a new event that reuses an earlier event's id with another sample's
	// source and type. Twilio does not send these; to the relay, which keys by source + id, each is a
	// different event and is delivered. For tests of what the dedupe key is.
	DupReusedID = "reused-id"
)

// Latency summarises a histogram, in milliseconds.
type Latency struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p99_9"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
	N    int64   `json:"n"`
}

// Schedule returns how many requests a run sends and the interval between their scheduled starts:
// rate×duration events rounded up to whole bodies of batch events.
func Schedule(rate float64, batch int, d time.Duration) (n int, every time.Duration) {
	if rate <= 0 || batch <= 0 || d <= 0 {
		return 0, 0
	}
	n = int(math.Ceil(rate * d.Seconds() / float64(batch)))
	every = time.Duration(float64(time.Second) * float64(batch) / rate)
	return n, every
}

// NewHistogram covers 1 µs to 5 min at 3 significant digits, in microseconds.
func NewHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(1, int64(5*time.Minute/time.Microsecond), 3)
}

// Summarize reads the percentiles off h (recorded in microseconds).
func Summarize(h *hdrhistogram.Histogram) Latency {
	ms := func(us int64) float64 { return float64(us) / 1000 }
	return Latency{
		P50: ms(h.ValueAtQuantile(50)), P90: ms(h.ValueAtQuantile(90)), P99: ms(h.ValueAtQuantile(99)),
		P999: ms(h.ValueAtQuantile(99.9)), Max: ms(h.Max()), Mean: h.Mean() / 1000, N: h.TotalCount(),
	}
}

// Payloads builds the bodies: Twilio's sample events in turn (the sink test event left out: it is never
// deduplicated), each with a fresh id, or, for the duplicate share, a duplicate of an event sent before
// (DupResend: the same bytes; DupReusedID: its id on another sample). An event is a function of its
// sequence number (the sample is seq modulo the samples, the id prefix + seq), so a re-send rebuilds the
// same bytes from the number alone.
type Payloads struct {
	prefix string
	tmpl   []template
	next   int64
	rnd    *rand.Rand
	dup    float64
	mode   string
	mu     sync.Mutex
}

// template is a sample split around its id value, its source, and the samples of other sources.
type template struct {
	before, after []byte
	source        string
	others        []int
}

// NewPayloads returns a payload source; ids are prefix + a sequence number. mode is DupResend (also
// when empty) or DupReusedID.
func NewPayloads(prefix string, dupRatio float64, mode string, seed uint64) (*Payloads, error) {
	switch mode {
	case "":
		mode = DupResend
	case DupResend, DupReusedID:
	default:
		return nil, fmt.Errorf("dup mode %q: want %s or %s", mode, DupResend, DupReusedID)
	}
	s, err := twilio.Samples()
	if err != nil {
		return nil, err
	}
	p := &Payloads{prefix: prefix, dup: dupRatio, mode: mode, rnd: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
	names := make([]string, 0, len(s))
	for n := range s {
		if n != "test-event" {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	for _, n := range names {
		var ev struct {
			ID     string `json:"id"`
			Source string `json:"source"`
		}
		var compact bytes.Buffer
		if err := json.Compact(&compact, s[n]); err != nil {
			return nil, fmt.Errorf("sample %s: %w", n, err)
		}
		if err := json.Unmarshal(compact.Bytes(), &ev); err != nil || ev.ID == "" {
			return nil, fmt.Errorf("sample %s: no id", n)
		}
		b := compact.Bytes()
		i := bytes.Index(b, []byte(`"id":"`+ev.ID+`"`))
		if i < 0 {
			return nil, fmt.Errorf("sample %s: id not found", n)
		}
		i += len(`"id":"`)
		p.tmpl = append(p.tmpl, template{before: slices.Clone(b[:i]), after: slices.Clone(b[i+len(ev.ID):]), source: ev.Source})
	}
	for i := range p.tmpl {
		for j := range p.tmpl {
			if p.tmpl[j].source != p.tmpl[i].source {
				p.tmpl[i].others = append(p.tmpl[i].others, j)
			}
		}
		if mode == DupReusedID && len(p.tmpl[i].others) == 0 {
			return nil, fmt.Errorf("dup mode %s: no sample of another source than %s", mode, p.tmpl[i].source)
		}
	}
	return p, nil
}

func (p *Payloads) id(seq int64) string { return fmt.Sprintf("EZ%s%016d", p.prefix, seq) }

// Body returns one JSON array of n events, the key of each, and how many of them are duplicates.
func (p *Payloads) Body(n int) (body []byte, keys []Key, dups int) {
	var b bytes.Buffer
	b.WriteByte('[')
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		p.mu.Lock()
		seq := p.next // the event's number: its sample and its id
		t := &p.tmpl[int(seq%int64(len(p.tmpl)))]
		if p.next > 0 && p.dup > 0 && p.rnd.Float64() < p.dup {
			seq = p.rnd.Int64N(p.next) // an event sent before
			t = &p.tmpl[int(seq%int64(len(p.tmpl)))]
			if p.mode == DupReusedID { // the same id on a sample of another source
				t = &p.tmpl[t.others[p.rnd.IntN(len(t.others))]]
			}
			dups++
		} else {
			p.next++
		}
		p.mu.Unlock()
		id := p.id(seq)
		b.Write(t.before)
		b.WriteString(id)
		b.Write(t.after)
		keys = append(keys, Key{Source: t.source, ID: id})
	}
	b.WriteByte(']')
	return b.Bytes(), keys, dups
}

// Run sends the load and waits for every answer (or its timeout). ctx cuts the run short.
func Run(ctx context.Context, c Config) (*Result, error) {
	if c.Batch <= 0 {
		c.Batch = 1
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 256
	}
	if c.Timeout <= 0 {
		c.Timeout = 10 * time.Second
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
	if c.DupRatio < 0 || c.DupRatio >= 1 {
		return nil, fmt.Errorf("dup ratio %v not in [0,1)", c.DupRatio)
	}
	n, every := 0, time.Duration(0)
	if c.Closed {
		if c.Duration <= 0 {
			return nil, errors.New("duration must be positive")
		}
		c.Rate = 0
	} else if n, every = Schedule(c.Rate, c.Batch, c.Duration); n == 0 {
		return nil, errors.New("rate, batch and duration must be positive")
	}
	r, err := newRunner(c)
	if err != nil {
		return nil, err
	}
	r.res.Requests = int64(n)
	start := time.Now()
	if c.Closed {
		r.closedLoop(ctx, start)
	} else {
		r.openLoop(ctx, start, n, every)
	}
	r.wg.Wait()
	return r.finish(start), ctx.Err()
}

// runner holds one run's state; send may be called concurrently.
type runner struct {
	c        Config
	target   *url.URL
	signBase string
	pl       *Payloads
	client   *http.Client
	wg       sync.WaitGroup

	mu       sync.Mutex // res's counters, hist, accepted
	res      *Result
	hist     *hdrhistogram.Histogram
	accepted []Key
	dups     atomic.Int64
	events   atomic.Int64
	okEvents atomic.Int64
	lastDone atomic.Int64
}

func newRunner(c Config) (*runner, error) {
	target, err := url.Parse(c.URL)
	if err != nil {
		return nil, fmt.Errorf("url: %w", err)
	}
	signBase := c.PublicURL
	if signBase == "" {
		signBase = c.URL
	}
	if c.IDPrefix == "" {
		c.IDPrefix = fmt.Sprintf("%x", time.Now().UnixNano())
	}
	pl, err := NewPayloads(c.IDPrefix, c.DupRatio, c.DupMode, c.Seed)
	if err != nil {
		return nil, err
	}
	client := c.Client
	if client == nil {
		client = &http.Client{Transport: &http.Transport{
			MaxIdleConns: c.Concurrency, MaxIdleConnsPerHost: c.Concurrency, IdleConnTimeout: time.Minute,
		}}
	}
	return &runner{c: c, target: target, signBase: signBase, pl: pl, client: client, hist: NewHistogram(),
		res: &Result{URL: c.URL, Signed: c.Token != "", Closed: c.Closed, OfferedRate: c.Rate, Batch: c.Batch,
			DupRatio: c.DupRatio, DupMode: pl.mode, Concurrency: c.Concurrency}}, nil
}

// openLoop starts request i at start + i·every, counting a request late when the concurrency cap holds
// it back.
func (r *runner) openLoop(ctx context.Context, start time.Time, n int, every time.Duration) {
	sem := make(chan struct{}, r.c.Concurrency)
	// The run may overrun its schedule (requests waiting for a slot) by at most one request timeout.
	cutoff := start.Add(r.c.Duration + r.c.Timeout)
	for i := range n {
		sched := start.Add(time.Duration(i) * every)
		if d := time.Until(sched); d > 0 {
			select {
			case <-time.After(d):
			case <-ctx.Done():
			}
		}
		if ctx.Err() != nil || time.Now().After(cutoff) {
			return
		}
		select {
		case sem <- struct{}{}:
		default:
			r.res.Late++ // latency counts from sched all the same
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
		}
		r.res.Sent++
		r.events.Add(int64(r.c.Batch))
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			defer func() { <-sem }()
			r.send(sched)
		}()
	}
}

// closedLoop keeps Concurrency requests in flight until Duration has passed.
func (r *runner) closedLoop(ctx context.Context, start time.Time) {
	end := start.Add(r.c.Duration)
	var sent atomic.Int64
	for range r.c.Concurrency {
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			for ctx.Err() == nil && time.Now().Before(end) {
				sent.Add(1)
				r.events.Add(int64(r.c.Batch))
				r.send(time.Now())
			}
		}()
	}
	r.wg.Wait()
	r.res.Sent = sent.Load()
	r.res.Requests = r.res.Sent
}

// send posts one body and records its answer and its latency from sched.
func (r *runner) send(sched time.Time) {
	body, keys, d := r.pl.Body(r.c.Batch)
	r.dups.Add(int64(d))
	u := *r.target
	var sig string
	if r.c.Token != "" {
		signed, s := twilio.Sign(r.c.Token, r.signBase, body)
		if i := strings.IndexByte(signed, '?'); i >= 0 {
			u.RawQuery = signed[i+1:]
		}
		sig = s
	}
	rctx, cancel := context.WithTimeout(context.Background(), r.c.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, u.String(), bytes.NewReader(body))
	status := 0
	if err == nil {
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("User-Agent", "TwilioProxy/1.1")
		if sig != "" {
			req.Header.Set(twilio.SignatureHeader, sig)
		}
		var resp *http.Response
		if resp, err = r.client.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			status = resp.StatusCode
		}
	}
	now := time.Now()
	r.lastDone.Store(now.UnixNano())
	r.mu.Lock()
	defer r.mu.Unlock()
	r.count(status, err)
	_ = r.hist.RecordValue(max(1, now.Sub(sched).Microseconds()))
	if err == nil && status >= 200 && status < 300 {
		r.accepted = append(r.accepted, keys...)
		r.okEvents.Add(int64(r.c.Batch))
	}
}

// count tallies one answer; under mu.
func (r *runner) count(status int, err error) {
	res := r.res
	switch {
	case err != nil:
		res.Transport++
		if res.FirstError == "" {
			res.FirstError = err.Error()
		}
	case status >= 200 && status < 300:
		res.Status2xx++
	case status == http.StatusTooManyRequests:
		res.Status429++
	case status >= 500:
		res.Status5xx++
	default:
		res.StatusElse++
	}
	if (err == nil && status >= 300) && res.FirstError == "" {
		res.FirstError = fmt.Sprintf("status %d", status)
	}
}

// finish fills in the totals once every request has been answered.
func (r *runner) finish(start time.Time) *Result {
	res := r.res
	end := time.Unix(0, r.lastDone.Load())
	if end.Before(start) {
		end = time.Now()
	}
	res.DurationS = end.Sub(start).Seconds()
	res.Events = r.events.Load()
	res.Duplicates = r.dups.Load()
	res.Errors = res.Sent - res.Status2xx
	if res.DurationS > 0 {
		res.AchievedRate = float64(r.okEvents.Load()) / max(res.DurationS, r.c.Duration.Seconds())
	}
	res.Latency = Summarize(r.hist)
	res.Accepted = r.accepted
	return res
}
