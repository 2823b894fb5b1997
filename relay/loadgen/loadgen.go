// Package loadgen is an open-loop load generator for Twilio Event Streams webhooks: requests are sent
// on a fixed schedule (the arrival rate), whatever the server's answers do, and each latency is taken from
// the request's scheduled start, so a slow server cannot slow the load down and hide its own latency
// (coordinated omission). It backs `relay bench`.
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
	Rate      float64 // offered events per second
	Duration  time.Duration
	Batch     int     // events per POST body (Twilio's Event Streams sends up to 500)
	DupRatio  float64 // share of events that are duplicates (see DupMode), in [0,1)
	DupMode   string  // DupResend (the default) or DupReusedID
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
	OfferedRate  float64 `json:"offered_events_per_s"`
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
	n, every := Schedule(c.Rate, c.Batch, c.Duration)
	if n == 0 {
		return nil, errors.New("rate, batch and duration must be positive")
	}
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
	res := &Result{URL: c.URL, Signed: c.Token != "", OfferedRate: c.Rate, Batch: c.Batch, DupRatio: c.DupRatio,
		DupMode: pl.mode, Concurrency: c.Concurrency, Requests: int64(n)}
	var (
		mu       sync.Mutex
		hist     = NewHistogram()
		accepted []Key
		dups     atomic.Int64
		wg       sync.WaitGroup
		sem      = make(chan struct{}, c.Concurrency)
		events   atomic.Int64
		okEvents atomic.Int64
		lastDone atomic.Int64
	)
	count := func(status int, err error) {
		mu.Lock()
		defer mu.Unlock()
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
	send := func(sched time.Time) {
		defer wg.Done()
		defer func() { <-sem }()
		body, keys, d := pl.Body(c.Batch)
		dups.Add(int64(d))
		u := *target
		var sig string
		if c.Token != "" {
			signed, s := twilio.Sign(c.Token, signBase, body)
			if i := strings.IndexByte(signed, '?'); i >= 0 {
				u.RawQuery = signed[i+1:]
			}
			sig = s
		}
		rctx, cancel := context.WithTimeout(context.Background(), c.Timeout)
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
			if resp, err = client.Do(req); err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				status = resp.StatusCode
			}
		}
		now := time.Now()
		lat := now.Sub(sched)
		lastDone.Store(now.UnixNano())
		count(status, err)
		mu.Lock()
		_ = hist.RecordValue(max(1, lat.Microseconds()))
		if err == nil && status >= 200 && status < 300 {
			accepted = append(accepted, keys...)
			okEvents.Add(int64(c.Batch))
		}
		mu.Unlock()
	}

	start := time.Now()
	// The run may overrun its schedule (requests waiting for a slot) by at most one request timeout.
	cutoff := start.Add(c.Duration + c.Timeout)
	for i := range n {
		sched := start.Add(time.Duration(i) * every)
		if d := time.Until(sched); d > 0 {
			select {
			case <-time.After(d):
			case <-ctx.Done():
			}
		}
		if ctx.Err() != nil || time.Now().After(cutoff) {
			break
		}
		select {
		case sem <- struct{}{}:
		default:
			res.Late++ // latency counts from sched all the same
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
			}
			if ctx.Err() != nil {
				break
			}
		}
		if ctx.Err() != nil {
			break
		}
		res.Sent++
		events.Add(int64(c.Batch))
		wg.Add(1)
		go send(sched)
	}
	wg.Wait()
	end := time.Unix(0, lastDone.Load())
	if end.Before(start) {
		end = time.Now()
	}
	res.DurationS = end.Sub(start).Seconds()
	res.Events = events.Load()
	res.Duplicates = dups.Load()
	res.Errors = res.Sent - res.Status2xx
	if res.DurationS > 0 {
		res.AchievedRate = float64(okEvents.Load()) / max(res.DurationS, c.Duration.Seconds())
	}
	res.Latency = Summarize(hist)
	res.Accepted = accepted
	return res, ctx.Err()
}
