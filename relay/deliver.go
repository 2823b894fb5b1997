package relay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// This file holds the steps of Process that write: route, write to every sink with retries (or to the
// spool), dead-letter; and Redeliver, which shares them.

// delivery is the writing part of one request's work on some of its events: route, write, dead-letter,
// remember. It runs on a goroutine of its own, so that the request can answer at its deadline while a
// write in flight goes on; the events stay claimed until it ends.
type delivery struct {
	items []*item
	done  chan struct{}
	work  *tracked

	// mu guards the items' res and pending while the delivery runs, so that the request can tell, at
	// its deadline, the events whose fate is final from those still being written; and what follows.
	mu      sync.Mutex
	rejects int   // dead letters of the body's rejects not written yet
	dlErr   error // the first dead letter not acknowledged
}

// deliver starts the delivery of the owned events and of the dead letters of rejects.
func (p *Pipeline) deliver(ctx context.Context, b *Batch, owned []*item, rejects []Reject) *delivery {
	d := &delivery{items: owned, done: make(chan struct{}), rejects: len(rejects)}
	if len(owned) == 0 && len(rejects) == 0 {
		close(d.done)
		return d
	}
	for _, it := range owned {
		it.pending = -1 // not routed yet
	}
	d.work = p.late.start(false)
	go func() {
		defer close(d.done)
		defer p.land(owned) // whatever happens, so that waiters never hang
		bySink, dls, ready := p.route(b, d, rejects)
		p.remember(ctx, ready)
		dls = append(dls, p.writeAll(ctx, b, d, bySink)...)
		p.deadLetterAll(ctx, d, dls)
		failed, first := 0, d.dlErr
		for _, it := range owned {
			if it.res.Fate == Failed {
				if failed++; first == nil {
					first = it.res.Err
				}
			}
		}
		late := p.late.finish(d.work, first == nil)
		if late && first != nil {
			p.cfg.Logger.LogAttrs(ctx, slog.LevelWarn, "a write that outlived its request failed: its events are retried",
				slog.String("endpoint", b.Endpoint), slog.Int("failed", failed), slog.Int("events", len(owned)), slog.Any("error", first))
		}
		if late && p.cfg.Settled != nil {
			for _, it := range owned { // the delivery has ended: nothing writes res any more
				p.cfg.Settled(it.res)
			}
		}
	}()
	return d
}

// waitDelivery waits for d until ctx ends and reports whether it finished. Otherwise d outlives the
// request from then on, counted as a late write.
func (p *Pipeline) waitDelivery(ctx context.Context, d *delivery) bool {
	select {
	case <-d.done:
		return true
	case <-ctx.Done():
	}
	if d.work == nil || !p.late.markLate(d.work) {
		<-d.done // it finished just now
		return true
	}
	return false
}

// pending is one message on its way to a sink: the item it belongs to (nil for a body-level reject's dead
// letter) and, for a routed message, which of the item's deliveries it is.
type pending struct {
	it       *item
	delivery int
	msg      Message
}

// route turns the delivery's events into messages per sink, recording each event's deliveries in its
// outcome and how many messages it waits for, and into dead letters where routing fails or no route
// matches and the policy says so; rejects become dead letters too. ready are the events it settled
// (dropped by policy): nothing to write.
func (p *Pipeline) route(b *Batch, d *delivery, rejects []Reject) (bySink map[string][]pending, dls []pending, ready []*item) {
	d.mu.Lock()
	defer d.mu.Unlock()
	owned := d.items
	bySink = make(map[string][]pending, 1)
	dls = p.rejectLetters(b, rejects)
	var sinks []SinkOutcome // every event's deliveries, one array for the batch
	first := make([]int, len(owned))
	for i, it := range owned {
		first[i] = len(sinks)
		ds, err := p.cfg.Router.Route(it.ev)
		it.pending = len(ds)
		switch {
		case err != nil:
			it.pending = 1
			dls = append(dls, p.deadLetter(b, it, ReasonRouteError, err.Error()))
			continue
		case len(ds) == 0 && p.cfg.NoRoute == NoRouteDrop:
			it.res.Fate, it.res.Reason = Dropped, ReasonNoRoute
			p.cfg.Observer.EventDropped(b.Endpoint, it.ev.Type, ReasonNoRoute)
			ready = append(ready, it)
			continue
		case len(ds) == 0:
			it.pending = 1
			dls = append(dls, p.deadLetter(b, it, ReasonNoRoute, "no route matches the event"))
			continue
		}
		for j, dst := range ds {
			sinks = append(sinks, SinkOutcome{Route: dst.Route, Sink: dst.Sink, Topic: dst.Topic})
			bySink[dst.Sink] = append(bySink[dst.Sink], pending{it: it, delivery: j, msg: dst.Message})
		}
	}
	for i, it := range owned { // now that the array no longer grows
		end := len(sinks)
		if i+1 < len(owned) {
			end = first[i+1]
		}
		if first[i] < end {
			it.res.Sinks = sinks[first[i]:end:end]
		}
	}
	return bySink, dls, ready
}

// deadLetter marks an owned event dead-lettered and returns its dead letter.
func (p *Pipeline) deadLetter(b *Batch, it *item, reason, detail string) pending {
	it.res.deadLetter(reason, detail)
	return pending{it: it, msg: p.deadLetterMessage(b.Endpoint, it.ev, it.ev.Raw, reason, detail, b.ReceivedAt)}
}

// deadLetterMessage counts a dead letter and addresses it to the dead-letter destination, keyed by the
// original event's id when there is one.
func (p *Pipeline) deadLetterMessage(endpoint string, orig *Event, raw []byte, reason, detail string, at time.Time) Message {
	typ := ""
	var key []byte
	if orig != nil {
		typ = orig.Type
		if orig.ID != "" {
			key = []byte(orig.ID)
		}
	}
	p.cfg.Observer.EventDeadLettered(endpoint, typ, reason)
	return Message{Event: NewDeadLetter(endpoint, raw, reason, detail, orig, at), Topic: p.cfg.DeadLetter.Topic, Key: key}
}

// sinkRefused is the detail of a dead letter a sink refused for good.
func sinkRefused(sink string, err error) string { return fmt.Sprintf("sink %s: %v", sink, err) }

// writeAll writes to every sink at once, each with retries, records each sink's final answer in the
// deliveries of the events, remembers each event once all its messages are settled (so that a slower
// sink does not hold the others' events), and returns the dead letters of the messages a sink refused
// for good.
func (p *Pipeline) writeAll(ctx context.Context, b *Batch, d *delivery, bySink map[string][]pending) []pending {
	var (
		dls []pending
		wg  sync.WaitGroup
	)
	for name, ps := range bySink {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			errs, t := p.write(ctx, name, ps)
			took := time.Since(start)
			var ready []*item
			d.mu.Lock()
			for i, pd := range ps {
				pd.it.pending--
				t.record(&pd.it.res.Sinks[pd.delivery], i, errs[i], took)
				if dl, ok := p.settle(b, name, pd, errs[i]); ok {
					pd.it.pending++ // its dead letter now
					dls = append(dls, dl)
				}
				if pd.it.pending == 0 {
					ready = append(ready, pd.it)
				}
			}
			d.mu.Unlock()
			p.remember(ctx, ready)
		}()
	}
	wg.Wait()
	return dls
}

// settle records one sink's final answer to one message in its event's outcome, and returns the dead
// letter when the sink refused it for good.
func (p *Pipeline) settle(b *Batch, sink string, pd pending, err error) (pending, bool) {
	it := pd.it
	d := &it.res.Sinks[pd.delivery]
	switch {
	case err == errSpooled:
		d.Spooled = true
		if it.res.Fate == Delivered {
			it.res.Fate = Spooled
		}
		p.cfg.Observer.EventSpooled(b.Endpoint, it.ev.Type, sink)
	case err == nil:
		p.cfg.Observer.EventDelivered(b.Endpoint, it.ev.Type, sink)
	case IsPermanent(err):
		d.Err = err
		return p.deadLetter(b, it, ReasonSinkRejected, sinkRefused(sink, err)), true
	default:
		d.Err = err
		it.res.fail(fmt.Errorf("sink %s: %w", sink, err))
	}
	return pending{}, false
}

// deadLetterAll writes the dead letters to the dead-letter sink with retries. An event whose dead letter is
// not acknowledged fails; the first dead letter not acknowledged (d.dlErr) fails the whole request.
func (p *Pipeline) deadLetterAll(ctx context.Context, d *delivery, dls []pending) {
	errs, t := p.writeDeadLetters(ctx, dls)
	var ready []*item
	d.mu.Lock()
	for i, err := range errs {
		it := dls[i].it
		if it == nil {
			d.rejects--
		}
		if err != nil && d.dlErr == nil {
			d.dlErr = fmt.Errorf("dead letter to sink %s: %w", p.cfg.DeadLetter.Sink, err)
		}
		if it == nil {
			continue
		}
		if err != nil {
			it.res.fail(fmt.Errorf("dead letter: %w", err))
		} else if t != nil {
			it.res.DeadLetterAt = t.at[i]
		}
		if it.pending--; it.pending == 0 {
			ready = append(ready, it)
		}
	}
	d.mu.Unlock()
	p.remember(ctx, ready)
}

// writeDeadLetters writes dead letters with retries (and to the spool when the dead-letter sink spools),
// and returns one error per dead letter: nil when it is safe; and what the write learned (see write).
func (p *Pipeline) writeDeadLetters(ctx context.Context, dls []pending) ([]error, *tries) {
	if len(dls) == 0 {
		return nil, nil
	}
	errs, t := p.write(ctx, p.cfg.DeadLetter.Sink, dls)
	for i, err := range errs {
		if safe(err) {
			errs[i] = nil
		}
	}
	return errs, t
}

// tries is what writing learned of each message besides its final error: how many attempts it took
// and, once the sink acknowledged it, where the sink stored it (see Sink). Only the write's own goroutine
// fills it in; the caller reads it once that write has returned.
type tries struct {
	n  []int
	at []Position
}

func newTries(n int) *tries { return &tries{n: make([]int, n), at: make([]Position, n)} }

// record copies what was learned of message i into its delivery, with the time to its final answer.
// A nil tries (the write still in flight when the spool took the messages) has nothing to say.
func (t *tries) record(d *SinkOutcome, i int, err error, took time.Duration) {
	d.Took = took
	if t == nil {
		return
	}
	d.Attempts = t.n[i]
	if err == nil {
		d.Position = t.at[i]
	}
}

// write writes ps to the named sink, retrying the messages that failed transiently with backoff until
// they are acknowledged, fail permanently, or ctx leaves no time for another attempt. It returns one
// final error per message. For a sink that spools, what is still failing when only the spool reserve of
// the deadline is left goes to the spool (errSpooled once it is on disk), and while the spool holds
// messages for the sink, new ones go straight behind them. The tries are nil when no attempt was made or
// the attempts were still going on when the spool took the messages (they go on behind its back).
func (p *Pipeline) write(ctx context.Context, name string, ps []pending) ([]error, *tries) {
	spool := p.spoolFor(name)
	t := newTries(len(ps))
	if spool == nil {
		return p.attempt(ctx, name, ps, t), t
	}
	if spool.Has(name) {
		return p.spool(spool, name, ps, allIndexes(len(ps)), make([]error, len(ps))), nil
	}
	wctx := ctx
	if dl, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		wctx, cancel = context.WithDeadline(ctx, dl.Add(-p.cfg.SpoolReserve))
		defer cancel()
	}
	res := make(chan []error, 1)
	go func() { res <- p.attempt(wctx, name, ps, t) }()
	var errs []error
	select {
	case errs = <-res:
	case <-wctx.Done():
		if errs, ok := p.spoolInFlight(spool, name, ps, res); ok {
			return errs, nil // the attempt goes on, and owns t
		}
		errs = <-res // the spool did not take them: wait for the write's own outcome
	}
	var failed []int
	for i, err := range errs {
		if err != nil && !IsPermanent(err) {
			failed = append(failed, i)
		}
	}
	if len(failed) == 0 {
		return errs, t
	}
	return p.spool(spool, name, ps, failed, errs), t
}

// spoolFor returns the spool for the named sink, or nil when that sink does not spool.
func (p *Pipeline) spoolFor(sink string) Spool {
	if p.cfg.Spool == nil || !p.cfg.SpoolSinks[sink] {
		return nil
	}
	return p.cfg.Spool
}

// errSpooled is the outcome of a message the spool took: safe, but not delivered yet.
var errSpooled = errors.New("spooled")

// safe reports whether a write's outcome leaves the message safe: delivered or spooled.
func safe(err error) bool { return err == nil || err == errSpooled }

// spool appends the messages at idx to the spool and records the outcome in errs.
func (p *Pipeline) spool(s Spool, name string, ps []pending, idx []int, errs []error) []error {
	msgs := make([]Message, len(idx))
	for j, i := range idx {
		msgs[j] = ps[i].msg
	}
	err := s.Append(name, msgs)
	if err != nil {
		err = fmt.Errorf("spool: %w", err)
	} else {
		err = errSpooled
	}
	for _, i := range idx {
		errs[i] = err
	}
	return errs
}

func allIndexes(n int) []int {
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	return idx
}

// attempt is write without the spool: writeOnce, again for what failed transiently, with backoff. What
// failed for good or for a misconfiguration (IsMisconfigured) is not tried again. No attempt starts once
// ctx has ended; the one in flight then goes on (writeOnce).
func (p *Pipeline) attempt(ctx context.Context, name string, ps []pending, t *tries) []error {
	errs := make([]error, len(ps))
	todo := allIndexes(len(ps))
	msgs := make([]Message, 0, len(ps))
	for attempt := 0; ; attempt++ {
		if ctx.Err() != nil {
			for _, i := range todo {
				if errs[i] == nil {
					errs[i] = errNoTime
				}
			}
			return errs
		}
		msgs = msgs[:0]
		for _, i := range todo {
			msgs = append(msgs, ps[i].msg)
		}
		each := p.writeOnce(ctx, name, msgs)
		next := todo[:0]
		for j, i := range todo {
			e := each[j]
			errs[i] = e
			t.n[i]++
			if e == nil {
				t.at[i] = msgs[j].Position
			}
			if e != nil && !IsPermanent(e) && !IsMisconfigured(e) {
				next = append(next, i)
			}
		}
		todo = next
		if len(todo) == 0 || ctx.Err() != nil || !p.cfg.Backoff.Wait(ctx, attempt) {
			return errs
		}
	}
}

// writeOnce makes one Write of msgs to the named sink, observed, and returns one error per message. The
// write has its own context (attemptContext): it is not cut short when ctx ends, so that its outcome is
// known. A sink the pipeline does not know refuses them for good.
func (p *Pipeline) writeOnce(ctx context.Context, name string, msgs []Message) []error {
	sink, ok := p.cfg.Sinks[name]
	if !ok {
		return PerMessage(Permanent(errors.New("no sink named "+name)), len(msgs))
	}
	actx, cancel := p.attemptContext(ctx)
	defer cancel()
	start := time.Now()
	err := sink.Write(actx, msgs)
	p.cfg.Observer.SinkWrite(name, len(msgs), time.Since(start), err)
	return PerMessage(err, len(msgs))
}

// Redeliver makes one attempt to write spooled messages to their sink, and dead-letters the ones the sink
// refuses for good (retrying the dead letters within ctx). It returns one error per message: nil when the
// message is delivered or safely dead-lettered and may leave the spool, else the transient failure. A
// message spooled while a write of it was in flight is not written again if that write landed
// (spoolwrites.go): Redeliver waits for it within ctx.
func (p *Pipeline) Redeliver(ctx context.Context, sink string, msgs []Message) []error {
	errs := make([]error, len(msgs))
	todo := make([]int, 0, len(msgs))
	for i, m := range msgs {
		landed, _, err := p.spooled.landed(ctx, sink, m)
		switch {
		case err != nil:
			errs[i] = err
		case landed:
			p.cfg.Observer.EventDelivered(m.Event.Endpoint, m.Event.Type, sink)
		default:
			todo = append(todo, i)
		}
	}
	if len(todo) == 0 {
		return errs
	}
	if err := ctx.Err(); err != nil { // stopping: what is left stays in the spool
		for _, i := range todo {
			errs[i] = err
		}
		return errs
	}
	batch := make([]Message, len(todo))
	for j, i := range todo {
		batch[j] = msgs[i]
	}
	var dls []pending
	var refused []int
	for j, err := range p.writeOnce(ctx, sink, batch) {
		i := todo[j]
		errs[i] = err
		ev := msgs[i].Event
		switch {
		case err == nil:
			msgs[i].Position = batch[j].Position // where the sink stored it, for the caller
			p.cfg.Observer.EventDelivered(ev.Endpoint, ev.Type, sink)
		case IsPermanent(err):
			dls = append(dls, pending{msg: p.deadLetterMessage(ev.Endpoint, ev, ev.Raw, ReasonSinkRejected, sinkRefused(sink, err), time.Now())})
			refused = append(refused, i)
		}
	}
	dlErrs, _ := p.writeDeadLetters(ctx, dls)
	for j, err := range dlErrs {
		errs[refused[j]] = err
	}
	return errs
}
