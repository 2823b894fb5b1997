package relay

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// pending is one message on its way to a sink with the item it belongs to (nil for a body-level reject's
// dead letter).
type pending struct {
	it  *item
	msg Message
}

// result is the final outcome of one pending message at one sink.
type result struct {
	it   *item
	sink string
	err  error
}

// route turns the owned events into messages per sink, and into dead letters where routing fails or no
// route matches and the policy says so.
func (p *Pipeline) route(b *Batch, owned []*item) (map[string][]pending, []pending) {
	bySink := make(map[string][]pending, 1)
	var dls []pending
	for _, r := range b.Rejects {
		p.cfg.Observer.EventDeadLettered(b.Endpoint, "", r.Reason)
		dl := NewDeadLetter(b.Endpoint, r.Raw, r.Reason, r.Detail, nil, b.ReceivedAt)
		dls = append(dls, pending{msg: Message{Event: dl, Topic: p.cfg.DeadLetter.Topic}})
	}
	for _, it := range owned {
		ds, err := p.cfg.Router.Route(it.ev)
		switch {
		case err != nil:
			dls = append(dls, p.deadLetter(b, it, ReasonRouteError, err.Error()))
			continue
		case len(ds) == 0 && p.cfg.NoRoute == NoRouteDrop:
			it.dropped = true
			p.cfg.Observer.EventDropped(b.Endpoint, it.ev.Type, ReasonNoRoute)
			continue
		case len(ds) == 0:
			dls = append(dls, p.deadLetter(b, it, ReasonNoRoute, "no route matches the event"))
			continue
		}
		for _, d := range ds {
			bySink[d.Sink] = append(bySink[d.Sink], pending{it: it, msg: d.Message})
		}
	}
	return bySink, dls
}

// deadLetter makes the dead letter for an owned event and marks it dead-lettered.
func (p *Pipeline) deadLetter(b *Batch, it *item, reason, detail string) pending {
	it.deadLettered = true
	p.cfg.Observer.EventDeadLettered(b.Endpoint, it.ev.Type, reason)
	dl := NewDeadLetter(b.Endpoint, it.ev.Raw, reason, detail, it.ev, b.ReceivedAt)
	var key []byte
	if it.ev.ID != "" {
		key = []byte(it.ev.ID)
	}
	return pending{it: it, msg: Message{Event: dl, Topic: p.cfg.DeadLetter.Topic, Key: key}}
}

// writeAll writes to every sink at once, each with retries, and returns one result per message.
func (p *Pipeline) writeAll(ctx context.Context, bySink map[string][]pending) []result {
	var (
		mu  sync.Mutex
		out []result
		wg  sync.WaitGroup
	)
	for name, ps := range bySink {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs := p.write(ctx, name, ps)
			mu.Lock()
			defer mu.Unlock()
			for i, pd := range ps {
				out = append(out, result{it: pd.it, sink: name, err: errs[i]})
			}
		}()
	}
	wg.Wait()
	return out
}

// writeDeadLetters writes the dead letters to the dead-letter sink with retries. An event whose dead letter
// is not acknowledged fails; so does the whole request when a body-level reject's dead letter is not.
func (p *Pipeline) writeDeadLetters(ctx context.Context, b *Batch, dls []pending) error {
	if len(dls) == 0 {
		return nil
	}
	var errs []error
	for i, err := range p.write(ctx, p.cfg.DeadLetter.Sink, dls) {
		if safe(err) {
			continue
		}
		errs = append(errs, err)
		if it := dls[i].it; it != nil {
			it.failed = true
			if it.err == nil {
				it.err = fmt.Errorf("dead letter: %w", err)
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("dead letter to sink %s: %w", p.cfg.DeadLetter.Sink, errs[0])
	}
	return nil
}

// write writes ps to the named sink, retrying the messages that failed transiently with backoff until
// they are acknowledged, fail permanently, or ctx leaves no time for another attempt. It returns one
// final error per message. For a sink that spools, what is still failing when only the spool reserve of
// the deadline is left goes to the spool (nil error once it is on disk), and while the spool holds
// messages for the sink, new ones go straight behind them.
func (p *Pipeline) write(ctx context.Context, name string, ps []pending) []error {
	spool := p.spoolFor(name)
	if spool == nil {
		return p.attempt(ctx, name, ps)
	}
	if spool.Has(name) {
		return p.spool(spool, name, ps, allIndexes(len(ps)), make([]error, len(ps)))
	}
	wctx := ctx
	if dl, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		wctx, cancel = context.WithDeadline(ctx, dl.Add(-p.cfg.SpoolReserve))
		defer cancel()
	}
	errs := p.attempt(wctx, name, ps)
	var failed []int
	for i, err := range errs {
		if err != nil && !IsPermanent(err) {
			failed = append(failed, i)
		}
	}
	if len(failed) == 0 {
		return errs
	}
	return p.spool(spool, name, ps, failed, errs)
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

// attempt is write without the spool.
func (p *Pipeline) attempt(ctx context.Context, name string, ps []pending) []error {
	sink := p.cfg.Sinks[name]
	errs := make([]error, len(ps))
	todo := allIndexes(len(ps))
	msgs := make([]Message, 0, len(ps))
	for attempt := 0; ; attempt++ {
		msgs = msgs[:0]
		for _, i := range todo {
			msgs = append(msgs, ps[i].msg)
		}
		start := time.Now()
		err := sink.Write(ctx, msgs)
		p.cfg.Observer.SinkWrite(name, len(msgs), time.Since(start), err)
		each := PerMessage(err, len(msgs))
		next := todo[:0]
		for j, i := range todo {
			e := each[j]
			errs[i] = e
			if e != nil && !IsPermanent(e) {
				next = append(next, i)
			}
		}
		todo = next
		if len(todo) == 0 || ctx.Err() != nil || !p.cfg.Backoff.Wait(ctx, attempt) {
			return errs
		}
	}
}
