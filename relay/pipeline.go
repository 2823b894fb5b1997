package relay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// NoRoutePolicy says what happens to an event no route matches.
type NoRoutePolicy int

const (
	NoRouteDeadLetter NoRoutePolicy = iota // send it to the dead-letter destination
	NoRouteDrop                            // drop it, counting it in the metrics
)

// Batch is what one request carried: the events that parsed, and the parts that did not.
type Batch struct {
	Endpoint   string
	ReceivedAt time.Time
	Events     []*Event
	Rejects    []Reject
}

// Outcome counts what became of a batch's events.
type Outcome struct {
	Delivered    int `json:"delivered"`
	Duplicates   int `json:"duplicates"`
	DeadLettered int `json:"dead_lettered"`
	Dropped      int `json:"dropped"`
}

// PipelineConfig holds what a Pipeline needs. Sinks maps sink names to sinks; every route target and the
// dead-letter target must name one of them.
type PipelineConfig struct {
	Router     *Router
	Sinks      map[string]Sink
	DeadLetter DeadLetterTarget
	NoRoute    NoRoutePolicy
	Dedupe     Deduper
	Backoff    Backoff
	Observer   Observer
	Logger     *slog.Logger
	// Spool, when set, stores what the sinks named in SpoolSinks could not take in time; SpoolReserve is
	// the part of each request's deadline kept for writing to it.
	Spool        Spool
	SpoolSinks   map[string]bool
	SpoolReserve time.Duration
	// Shared, when set, is the dedupe tier shared with the other replicas.
	Shared SharedDeduper
}

// Pipeline takes the events of a request through dedupe, routing and delivery, and tells the caller
// whether all of them are safe: delivered to every sink they route to, dead-lettered, dropped by policy,
// or duplicates of events already delivered. It is safe for concurrent use.
type Pipeline struct {
	cfg     PipelineConfig
	flights flights
}

// NewPipeline checks that every sink named by the routes and the dead-letter target exists.
func NewPipeline(cfg PipelineConfig) (*Pipeline, error) {
	var errs []error
	if _, ok := cfg.Sinks[cfg.DeadLetter.Sink]; !ok {
		errs = append(errs, fmt.Errorf("dead letter: no sink named %q", cfg.DeadLetter.Sink))
	}
	for _, r := range cfg.Router.Routes {
		for _, t := range r.Targets {
			if _, ok := cfg.Sinks[t.Sink]; !ok {
				errs = append(errs, fmt.Errorf("route %s: no sink named %q", r.Name, t.Sink))
			}
		}
	}
	if cfg.Observer == nil {
		cfg.Observer = NopObserver{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Backoff == (Backoff{}) {
		cfg.Backoff = DefaultBackoff
	}
	if cfg.Dedupe == nil {
		errs = append(errs, errors.New("no deduper"))
	}
	return &Pipeline{cfg: cfg}, errors.Join(errs...)
}

// item is one event the request owns: it delivers it and lands its flight.
type item struct {
	ev           *Event
	key          string // "" for events never deduplicated (test events)
	fl           *flight
	failed       bool  // a message of it was not acknowledged: the request must be retried
	err          error // the first transient failure, for the log
	deadLettered bool
	dropped      bool
	shared       bool // claimed in the shared tier: commit or release it
}

// Process delivers the batch and returns nil only when every event in it is safe (see Pipeline). Otherwise
// the error has code EUNAVAILABLE: the sender must retry the whole request, and the events that were
// delivered meanwhile are remembered, so the retry does not produce them again. Process returns when every
// sink has answered or ctx ends.
func (p *Pipeline) Process(ctx context.Context, b *Batch) (Outcome, error) {
	var out Outcome
	owned, waits, busy := p.claim(ctx, b, &out)
	defer p.land(owned) // whatever happens, so that waiters never hang

	msgs, deadLetters := p.route(b, owned)
	for _, r := range p.writeAll(ctx, msgs) {
		it := r.it
		switch {
		case r.err == errSpooled:
			p.cfg.Observer.EventSpooled(b.Endpoint, it.ev.Type, r.sink)
		case r.err == nil:
			p.cfg.Observer.EventDelivered(b.Endpoint, it.ev.Type, r.sink)
		case IsPermanent(r.err):
			deadLetters = append(deadLetters, p.deadLetter(b, it, ReasonSinkRejected, fmt.Sprintf("sink %s: %v", r.sink, r.err)))
		default:
			it.failed = true
			if it.err == nil {
				it.err = fmt.Errorf("sink %s: %w", r.sink, r.err)
			}
		}
	}
	dlErr := p.writeDeadLetters(ctx, b, deadLetters)

	failed := 0
	var firstErr error
	for _, it := range owned {
		switch {
		case it.failed:
			failed++
			if firstErr == nil {
				firstErr = it.err
			}
			continue
		case it.deadLettered:
			out.DeadLettered++
		case it.dropped:
			out.Dropped++
		default:
			out.Delivered++
		}
		if it.key != "" && !p.cfg.Dedupe.Remember(it.key) {
			p.cfg.Observer.DedupeRememberRefused()
		}
	}
	p.settleShared(ctx, owned)
	out.DeadLettered += len(b.Rejects)
	p.land(owned)

	for _, w := range waits {
		if w.fl.wait(ctx) {
			out.Duplicates++
			p.cfg.Observer.EventDuplicate(b.Endpoint, w.ev.Type)
			continue
		}
		failed++
		if firstErr == nil {
			firstErr = fmt.Errorf("event %s: a concurrent delivery of the same event did not complete", w.ev.ID)
		}
	}
	if dlErr != nil {
		p.cfg.Logger.LogAttrs(ctx, slog.LevelError, "dead letters not acknowledged",
			slog.String("endpoint", b.Endpoint), slog.Any("error", dlErr))
		return out, &Error{Code: EUNAVAILABLE, Reason: "dead_letter_unavailable",
			Message: "the dead-letter destination did not acknowledge in time; retry", RetryAfter: time.Second}
	}
	if busy > 0 {
		failed += busy
		if firstErr == nil {
			firstErr = fmt.Errorf("%d events are being delivered by another replica right now", busy)
		}
	}
	if failed > 0 {
		p.cfg.Logger.LogAttrs(ctx, slog.LevelWarn, "events not acknowledged",
			slog.String("endpoint", b.Endpoint), slog.Int("failed", failed),
			slog.Int("events", len(b.Events)), slog.Any("error", firstErr))
		return out, &Error{Code: EUNAVAILABLE, Reason: "sink_unavailable",
			Message:    fmt.Sprintf("%d of %d events not acknowledged by their sinks in time; retry", failed, len(b.Events)),
			RetryAfter: time.Second}
	}
	return out, nil
}

// claim sorts the batch's events into those this request delivers (owned), those another request of
// this process is delivering right now (waits), those another replica is delivering (busy, counted), and
// duplicates, which it counts.
func (p *Pipeline) claim(ctx context.Context, b *Batch, out *Outcome) (owned, waits []*item, busy int) {
	owned = make([]*item, 0, len(b.Events))
	var inBatch map[string]bool
	if len(b.Events) > 1 {
		inBatch = make(map[string]bool, len(b.Events))
	}
	for _, ev := range b.Events {
		p.cfg.Observer.EventReceived(b.Endpoint, ev.Type)
		if ev.IsTest() {
			owned = append(owned, &item{ev: ev})
			continue
		}
		key := ev.DedupeKey()
		if inBatch[key] || p.cfg.Dedupe.Seen(key) {
			out.Duplicates++
			p.cfg.Observer.EventDuplicate(b.Endpoint, ev.Type)
			continue
		}
		if inBatch != nil {
			inBatch[key] = true
		}
		fl, owner := p.flights.claim(key)
		it := &item{ev: ev, key: key, fl: fl}
		if !owner {
			waits = append(waits, it)
			continue
		}
		// Another request may have delivered the event, remembered it and landed its flight between the
		// Seen above and this claim: look again now that no one else can deliver it. (Deduper promises
		// that a remembered key is seen before the owner lands.)
		if p.cfg.Dedupe.Seen(key) {
			p.flights.land(key, fl, true)
			out.Duplicates++
			p.cfg.Observer.EventDuplicate(b.Endpoint, ev.Type)
			continue
		}
		switch p.claimShared(ctx, it) {
		case ClaimDuplicate:
			p.flights.land(key, fl, true)
			p.cfg.Dedupe.Remember(key)
			out.Duplicates++
			p.cfg.Observer.EventDuplicate(b.Endpoint, ev.Type)
		case ClaimBusy:
			p.flights.land(key, fl, false)
			busy++
		default:
			owned = append(owned, it)
		}
	}
	return owned, waits, busy
}

// land lands every owned flight still up with its outcome; it may be called more than once.
func (p *Pipeline) land(owned []*item) {
	for _, it := range owned {
		if it.fl != nil {
			p.flights.land(it.key, it.fl, !it.failed)
			it.fl = nil
		}
	}
}
