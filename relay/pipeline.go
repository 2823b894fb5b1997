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
	// AttemptTimeout bounds one write attempt to a sink, which may outlive the request's deadline
	// (DefaultAttemptTimeout when zero); MaxLateWrites bounds the requests whose writes outlive them at
	// once (DefaultMaxLateWrites when zero). See late.go.
	AttemptTimeout time.Duration
	MaxLateWrites  int
	// Settled, when set, is told the final outcome of each event whose delivery outlived its request
	// (the request answered it failed, ErrStillWriting): the inspector's record of it. It is called on
	// the delivery's goroutine once the delivery ends, and must not keep the outcome's slices.
	Settled func(EventOutcome)
}

// Pipeline takes the events of a request through dedupe, routing and delivery, and tells the caller
// whether all of them are safe: delivered to every sink they route to, spooled, dead-lettered, dropped by
// policy, or duplicates of events already delivered. It is safe for concurrent use.
//
// This file holds the steps of Process that decide about events (claim, remember, answer); deliver.go
// holds those that write (route, write with retries or to the spool, dead-letter) and Redeliver; late.go
// what lets a write outlive its request.
type Pipeline struct {
	cfg     PipelineConfig
	flights flights
	late    lateWrites
	spooled spooledWrites
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
	if cfg.AttemptTimeout <= 0 {
		cfg.AttemptTimeout = DefaultAttemptTimeout
	}
	if cfg.MaxLateWrites <= 0 {
		cfg.MaxLateWrites = DefaultMaxLateWrites
	}
	return &Pipeline{cfg: cfg, late: lateWrites{limit: cfg.MaxLateWrites, obs: cfg.Observer}}, errors.Join(errs...)
}

// item is an event of the batch the request delivers (owned) or waits for (another request owns it).
type item struct {
	ev  *Event
	idx int // its place in the batch
	// res is what became of it while its delivery writes it, and pending how many of its messages (to
	// sinks, or its dead letter) are not settled yet, -1 before routing: the delivery writes both under
	// its lock, and Process copies res into the Outcome once pending is 0.
	res     EventOutcome
	pending int
	key     Key // zero for events never deduplicated (test events)
	fl      *flight
	shared  bool // claimed in the shared tier: commit or release it
}

// Process delivers the batch and returns nil only when every event in it is safe (see Pipeline). Otherwise
// the error has code EUNAVAILABLE: the sender must retry the whole request, and the events that were
// delivered meanwhile are remembered, so the retry does not produce them again. Either way the Outcome
// says what became of each event. Process returns when every sink has answered or ctx ends.
//
// A write still in flight when ctx ends goes on (see late.go): its events fail with ErrStillWriting in
// the Outcome, stay claimed until it ends, and are remembered if it lands. No new attempt starts after
// ctx's deadline. While more than PipelineConfig.MaxLateWrites requests have writes outliving them,
// Process refuses new batches with EUNAVAILABLE.
//
// The steps are those of docs/architecture.md: claim (skip duplicates), route, write, dead-letter,
// remember.
func (p *Pipeline) Process(ctx context.Context, b *Batch) (Outcome, error) {
	if err := p.late.admit(); err != nil {
		return Outcome{}, err
	}
	out := Outcome{Events: make([]EventOutcome, len(b.Events))}
	owned, waits := p.claim(ctx, b, out.Events)
	first := p.deliver(ctx, b, owned, b.Rejects)
	// An event another request was writing, and failed to: this request writes it itself.
	second := p.deliver(ctx, b, p.await(ctx, b, waits, out.Events), nil)
	dlErr := errors.Join(p.settleDelivery(ctx, first, out.Events), p.settleDelivery(ctx, second, out.Events))
	out.count(out.Events)
	out.DeadLettered += len(b.Rejects)
	return out, p.verdict(ctx, b, out.Events, dlErr)
}

// claim records every event of the batch in events and sorts them: duplicates (recorded as such), those
// this request delivers (owned), those another request of this process is delivering right now (waits),
// and those another replica is delivering (recorded failed: Twilio retries them).
func (p *Pipeline) claim(ctx context.Context, b *Batch, events []EventOutcome) (owned, waits []*item) {
	owned = make([]*item, 0, len(b.Events))
	var inBatch map[[16]byte]bool
	if len(b.Events) > 1 {
		inBatch = make(map[[16]byte]bool, len(b.Events))
	}
	for i, ev := range b.Events {
		o := &events[i]
		o.Event = ev
		p.cfg.Observer.EventReceived(b.Endpoint, ev.Type)
		it := &item{ev: ev, idx: i, res: EventOutcome{Event: ev}}
		if ev.IsTest() {
			owned = append(owned, it)
			continue
		}
		it.key = ev.Key()
		if inBatch[it.key.Sum] {
			p.duplicate(b, o)
			continue
		}
		if inBatch != nil {
			inBatch[it.key.Sum] = true
		}
		switch p.claimKey(ctx, it) {
		case claimedDuplicate:
			p.duplicate(b, o)
		case claimedBusy:
			o.fail(errBusy)
		case claimedWait:
			waits = append(waits, it)
		default:
			owned = append(owned, it)
		}
	}
	return owned, waits
}

// claimed is what claimKey made of an event.
type claimed int

const (
	claimedOwned     claimed = iota // this request delivers it: it.fl is its flight, to land
	claimedDuplicate                // delivered before
	claimedWait                     // another request of this process delivers it: wait for it.fl
	claimedBusy                     // another replica delivers it right now
)

// claimKey looks the event up in the dedupe memory, then claims it in the in-flight table and, when this
// request owns it, in the shared tier.
func (p *Pipeline) claimKey(ctx context.Context, it *item) claimed {
	if p.cfg.Dedupe.Seen(it.key) {
		return claimedDuplicate
	}
	fl, owner := p.flights.claim(it.key)
	it.fl = fl
	if !owner {
		return claimedWait
	}
	// Another request may have delivered the event, remembered it and landed its flight between the Seen
	// above and this claim: look again now that no one else can deliver it. (Deduper promises that a
	// remembered key is seen before the owner lands.)
	if p.cfg.Dedupe.Seen(it.key) {
		p.flights.land(it.key, fl, true)
		return claimedDuplicate
	}
	switch p.claimShared(ctx, it) {
	case ClaimDuplicate:
		p.flights.land(it.key, fl, true)
		p.cfg.Dedupe.Remember(it.key)
		return claimedDuplicate
	case ClaimBusy:
		p.flights.land(it.key, fl, false)
		return claimedBusy
	}
	return claimedOwned
}

// errBusy is the failure of an event another replica is delivering right now.
var errBusy = errors.New("being delivered by another replica right now")

func (p *Pipeline) duplicate(b *Batch, o *EventOutcome) {
	o.Fate = Duplicate
	p.cfg.Observer.EventDuplicate(b.Endpoint, o.Event.Type)
}

// claimShared asks the shared tier about an owned event. When the tier fails, the event is treated as
// owned: local dedupe only.
func (p *Pipeline) claimShared(ctx context.Context, it *item) ClaimResult {
	if p.cfg.Shared == nil {
		return ClaimOwned
	}
	res, err := p.cfg.Shared.Claim(ctx, it.key)
	if err != nil {
		p.cfg.Observer.SharedDedupeError("claim")
		return ClaimOwned
	}
	it.shared = res == ClaimOwned
	return res
}

// remember remembers the owned events that are safe, commits their shared claims and releases those of
// the others, then lands their flights. The delivery calls it for each event once all the event's
// messages are settled, after the request's deadline when its writes outlived it, so the shared claims
// are settled without the request's context.
func (p *Pipeline) remember(ctx context.Context, owned []*item) {
	for _, it := range owned {
		failed := it.res.Fate == Failed
		if !failed && it.key.Text != "" && !p.cfg.Dedupe.Remember(it.key) {
			p.cfg.Observer.DedupeRememberRefused()
		}
		if !it.shared {
			continue
		}
		op, settle := "commit", p.cfg.Shared.Commit
		if failed {
			op, settle = "release", p.cfg.Shared.Release
		}
		if err := settle(context.WithoutCancel(ctx), it.key); err != nil {
			p.cfg.Observer.SharedDedupeError(op)
		}
	}
	p.land(owned)
}

// land lands every owned flight still up with its outcome; it may be called more than once.
func (p *Pipeline) land(owned []*item) {
	for _, it := range owned {
		if it.fl != nil {
			p.flights.land(it.key, it.fl, it.res.Fate != Failed)
			it.fl = nil
		}
	}
}

// await waits, within ctx, for the events other requests were delivering: each is a duplicate once its
// owner delivered it. When the owner's delivery failed, this request claims the event again, and returns
// those it now owns: it writes them itself.
func (p *Pipeline) await(ctx context.Context, b *Batch, waits []*item, events []EventOutcome) (owned []*item) {
	for _, w := range waits {
		o := &events[w.idx]
		for {
			if w.fl.wait(ctx) {
				p.duplicate(b, o)
				break
			}
			if ctx.Err() != nil {
				o.fail(fmt.Errorf("event %s: %w by an earlier request", w.ev.ID, ErrStillWriting))
				break
			}
			c := p.claimKey(ctx, w)
			if c == claimedWait {
				continue // yet another request took it over first
			}
			switch c {
			case claimedDuplicate:
				p.duplicate(b, o)
			case claimedBusy:
				o.fail(errBusy)
			default:
				owned = append(owned, w)
			}
			break
		}
	}
	return owned
}

// settleDelivery waits for d within ctx and records what became of its events in events. A delivery still
// writing when ctx ends goes on, counted as late: its events whose messages are all settled are recorded
// as they are, the others failed with ErrStillWriting, and it remembers them itself when it ends. It
// returns the first dead letter not acknowledged, or ErrStillWriting while a dead letter of the body's
// rejects is still being written.
func (p *Pipeline) settleDelivery(ctx context.Context, d *delivery, events []EventOutcome) error {
	finished := p.waitDelivery(ctx, d)
	d.mu.Lock() // a late delivery still writes
	defer d.mu.Unlock()
	for _, it := range d.items {
		if finished || it.pending == 0 {
			events[it.idx] = it.res
		} else {
			events[it.idx].fail(fmt.Errorf("event %s: %w", it.ev.ID, ErrStillWriting))
		}
	}
	if d.dlErr == nil && d.rejects > 0 && !finished {
		return fmt.Errorf("dead letters of the body: %w", ErrStillWriting)
	}
	return d.dlErr
}

// verdict is Process's answer: nil when every event is safe and every dead letter acknowledged, else the
// EUNAVAILABLE error that makes the sender retry, logged with the first failure.
func (p *Pipeline) verdict(ctx context.Context, b *Batch, events []EventOutcome, dlErr error) error {
	if dlErr != nil {
		p.cfg.Logger.LogAttrs(ctx, slog.LevelError, "dead letters not acknowledged",
			slog.String("endpoint", b.Endpoint), slog.Any("error", dlErr))
		return &Error{Code: EUNAVAILABLE, Reason: "dead_letter_unavailable",
			Message: "the dead-letter destination did not acknowledge in time; retry", RetryAfter: time.Second}
	}
	failed := 0
	var first error
	for i := range events {
		if events[i].Fate == Failed {
			if failed++; first == nil {
				first = events[i].Err
			}
		}
	}
	if failed == 0 {
		return nil
	}
	p.cfg.Logger.LogAttrs(ctx, slog.LevelWarn, "events not acknowledged",
		slog.String("endpoint", b.Endpoint), slog.Int("failed", failed),
		slog.Int("events", len(b.Events)), slog.Any("error", first))
	why := "not acknowledged by their sinks in time"
	if IsMisconfigured(first) {
		why = "refused by a sink until its configuration is fixed (the relay's /readyz says how)"
	}
	return &Error{Code: EUNAVAILABLE, Reason: "sink_unavailable",
		Message:    fmt.Sprintf("%d of %d events %s; retry", failed, len(b.Events), why),
		RetryAfter: time.Second}
}
