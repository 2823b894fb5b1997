package relay_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/relaykit/twilio-relay/relay"
	"github.com/relaykit/twilio-relay/relay/relaytest"
)

// held is a sink whose writes wait until released (or their own context ends), then write to the
// embedded recording sink: a write that outlives its request.
type held struct {
	relaytest.Sink
	mu      sync.Mutex
	release chan struct{}
	entered chan struct{}
}

func newHeld() *held {
	return &held{release: make(chan struct{}), entered: make(chan struct{}, 16)}
}

func (h *held) Write(ctx context.Context, msgs []relay.Message) error {
	h.mu.Lock()
	release := h.release
	h.mu.Unlock()
	select {
	case h.entered <- struct{}{}:
	default:
	}
	select {
	case <-release:
	case <-ctx.Done():
		return ctx.Err()
	}
	return h.Sink.Write(ctx, msgs)
}

// open lets every write through from now on.
func (h *held) open() {
	h.mu.Lock()
	defer h.mu.Unlock()
	select {
	case <-h.release:
	default:
		close(h.release)
	}
}

// lateObserver records the late-write metrics.
type lateObserver struct {
	relay.NopObserver
	mu       sync.Mutex
	inFlight int
	landed   int
	failed   int
	refused  int
}

func (o *lateObserver) LateWrites(n int) { o.mu.Lock(); o.inFlight = n; o.mu.Unlock() }
func (o *lateObserver) LateWriteRefused() {
	o.mu.Lock()
	o.refused++
	o.mu.Unlock()
}
func (o *lateObserver) LateWriteEnded(landed bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if landed {
		o.landed++
	} else {
		o.failed++
	}
}
func (o *lateObserver) get() (inFlight, landed, failed, refused int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.inFlight, o.landed, o.failed, o.refused
}

func latePipeline(t *testing.T, s relay.Sink, obs relay.Observer, maxLate int, sp relay.Spool) *relay.Pipeline {
	t.Helper()
	cfg := relay.PipelineConfig{
		Router:         &relay.Router{Routes: []relay.Route{{Name: "all", Targets: []relay.Target{{Sink: "s", Topic: relay.MustParseTemplate("t")}}}}},
		Sinks:          map[string]relay.Sink{"s": s, "dlq": &relaytest.Sink{}},
		DeadLetter:     relay.DeadLetterTarget{Sink: "dlq", Topic: "dead"},
		Dedupe:         &relaytest.Deduper{},
		Backoff:        relay.Backoff{Initial: time.Millisecond, Max: 5 * time.Millisecond, Multiplier: 2},
		Observer:       obs,
		AttemptTimeout: 5 * time.Second,
		MaxLateWrites:  maxLate,
	}
	if sp != nil {
		cfg.Spool, cfg.SpoolSinks, cfg.SpoolReserve = sp, map[string]bool{"s": true}, 400*time.Millisecond
	}
	p, err := relay.NewPipeline(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := p.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return p
}

func processWithin(p *relay.Pipeline, d time.Duration, evs ...*relay.Event) (relay.Outcome, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return p.Process(ctx, batch(evs...))
}

// TestLateWriteLandsAndItsRetryIsADuplicate: a write still in flight at the deadline is answered 503,
// goes on, and lands; a retry that arrives meanwhile waits for it and is answered as a duplicate, and the
// sink holds one copy.
func TestLateWriteLandsAndItsRetryIsADuplicate(t *testing.T) {
	h := newHeld()
	obs := &lateObserver{}
	p := latePipeline(t, h, obs, 0, nil)
	out, err := processWithin(p, 100*time.Millisecond, ev("1", "a.x"))
	if relay.ErrorCode(err) != relay.EUNAVAILABLE || out.Events[0].Fate != relay.Failed || !errors.Is(out.Events[0].Err, relay.ErrStillWriting) {
		t.Fatalf("first request: %+v %v; want 503 with the event still being written", out.Events, err)
	}
	if n, _, _, _ := obs.get(); n != 1 {
		t.Fatalf("late writes in flight = %d, want 1", n)
	}
	retry := make(chan relay.Outcome, 1)
	go func() {
		out, err := processWithin(p, 2*time.Second, ev("1", "a.x"))
		if err != nil {
			t.Errorf("retry: %v", err)
		}
		retry <- out
	}()
	time.Sleep(100 * time.Millisecond) // the retry waits for the write in flight
	h.open()
	if out := <-retry; out.Counts != (relay.Counts{Duplicates: 1}) {
		t.Fatalf("retry: %+v, want a duplicate of the write that landed", out.Counts)
	}
	if n := len(h.Acked()); n != 1 {
		t.Fatalf("the sink holds %d copies, want 1", n)
	}
	if out, err := processWithin(p, time.Second, ev("1", "a.x")); err != nil || out.Duplicates != 1 {
		t.Fatalf("a later retry: %+v %v, want a duplicate", out.Counts, err)
	}
	waitWrites(t, p) // the delivery lands its event a moment before it ends
	if n, landed, failed, _ := obs.get(); n != 0 || landed != 1 || failed != 0 {
		t.Fatalf("late writes: in flight %d, landed %d, failed %d; want 0, 1, 0", n, landed, failed)
	}
}

// TestLateWriteFailsAndTheRetryWritesIt: when the write in flight fails, the retry waiting for it writes
// the event itself, within its own deadline.
func TestLateWriteFailsAndTheRetryWritesIt(t *testing.T) {
	h := newHeld()
	h.FailNext(1) // the held write fails; the retry's own write succeeds
	obs := &lateObserver{}
	p := latePipeline(t, h, obs, 0, nil)
	if _, err := processWithin(p, 100*time.Millisecond, ev("1", "a.x")); relay.ErrorCode(err) != relay.EUNAVAILABLE {
		t.Fatalf("first request: %v, want 503", err)
	}
	retry := make(chan error, 1)
	go func() {
		out, err := processWithin(p, 3*time.Second, ev("1", "a.x"))
		if err == nil && out.Delivered != 1 {
			err = errors.New("not delivered")
		}
		retry <- err
	}()
	time.Sleep(100 * time.Millisecond)
	h.open()
	if err := <-retry; err != nil {
		t.Fatalf("retry: %v, want it to write the event itself", err)
	}
	if n := len(h.Acked()); n != 1 {
		t.Fatalf("the sink holds %d copies, want 1", n)
	}
	waitWrites(t, p) // the first delivery lands its event before it ends
	if _, landed, failed, _ := obs.get(); landed != 0 || failed != 1 {
		t.Fatalf("late writes landed %d, failed %d; want 0, 1", landed, failed)
	}
}

// TestNoAttemptAfterTheDeadline: a sink failing fast is retried within the deadline, and never after it.
func TestNoAttemptAfterTheDeadline(t *testing.T) {
	s := &relaytest.Sink{}
	s.SetDown(true)
	p := latePipeline(t, s, nil, 0, nil)
	if _, err := processWithin(p, 100*time.Millisecond, ev("1", "a.x")); relay.ErrorCode(err) != relay.EUNAVAILABLE {
		t.Fatalf("%v, want 503", err)
	}
	n := s.Writes()
	if n < 2 {
		t.Fatalf("%d writes within the deadline, want retries", n)
	}
	time.Sleep(200 * time.Millisecond)
	if m := s.Writes(); m != n {
		t.Fatalf("%d writes after the deadline", m-n)
	}
}

// TestMaxLateWrites: beyond the limit of writes outliving their requests, new requests are refused with
// 503 at once; Close waits for the writes in flight.
func TestMaxLateWrites(t *testing.T) {
	h := newHeld()
	obs := &lateObserver{}
	p := latePipeline(t, h, obs, 1, nil)
	if _, err := processWithin(p, 50*time.Millisecond, ev("1", "a.x")); relay.ErrorCode(err) != relay.EUNAVAILABLE {
		t.Fatalf("first: %v", err)
	}
	_, err := processWithin(p, time.Second, ev("2", "a.x"))
	var rerr *relay.Error
	if !errors.As(err, &rerr) || rerr.Code != relay.EUNAVAILABLE || rerr.Reason != "late_writes" {
		t.Fatalf("second: %v, want 503 late_writes", err)
	}
	if _, _, _, refused := obs.get(); refused != 1 {
		t.Fatalf("refused = %d, want 1", refused)
	}
	short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := p.Close(short); err == nil {
		t.Fatal("Close returned while a write was in flight")
	}
	h.open()
	ctx, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel2()
	if err := p.Close(ctx); err != nil {
		t.Fatalf("close: %v", err)
	}
	if out, err := processWithin(p, time.Second, ev("2", "a.x")); err != nil || out.Delivered != 1 {
		t.Fatalf("after the write landed: %+v %v", out.Counts, err)
	}
}

// TestSpooledWhileInFlight: a write to a sink that spools, still in flight when only the spool reserve is
// left, is spooled (the request answers 200) and goes on; the drainer does not write again what it
// landed, and writes what it failed to.
func TestSpooledWhileInFlight(t *testing.T) {
	for _, lands := range []bool{true, false} {
		t.Run(map[bool]string{true: "lands", false: "fails"}[lands], func(t *testing.T) {
			h := newHeld()
			if !lands {
				h.FailNext(1)
			}
			sp := &memSpool{}
			p := latePipeline(t, h, nil, 0, sp)
			b := batch(ev("1", "a.x"))
			// The reserve (400 ms) leaves the spooling plenty of time on a loaded machine.
			ctx, cancel := context.WithTimeout(context.Background(), 600*time.Millisecond)
			defer cancel()
			out, err := p.Process(ctx, b)
			if got := fates(t, b, out); err != nil || got != "1=spooled" {
				t.Fatalf("%s (%v), want spooled", got, err)
			}
			drained := make(chan []error, 1)
			go func() { drained <- p.Redeliver(context.Background(), "s", sp.msgs["s"]) }()
			time.Sleep(50 * time.Millisecond) // the drainer waits for the write in flight
			h.open()
			if errs := <-drained; errs[0] != nil {
				t.Fatalf("redeliver: %v", errs)
			}
			if n := len(h.Acked()); n != 1 {
				t.Fatalf("the sink holds %d copies, want 1", n)
			}
		})
	}
}

// TestLateWriteHoldsOnlyItsOwnEvents: in a request whose events go to a slow sink and a fast one, the
// event the fast sink acknowledged is reported delivered and remembered at once, so that its retry is a
// duplicate while the slow sink's write is still in flight.
func TestLateWriteHoldsOnlyItsOwnEvents(t *testing.T) {
	slow, fast := newHeld(), &relaytest.Sink{}
	p, err := relay.NewPipeline(relay.PipelineConfig{
		Router: &relay.Router{Routes: []relay.Route{
			{Name: "a", Match: relay.Match{Types: []relay.Glob{"a.*"}}, Targets: []relay.Target{{Sink: "slow", Topic: relay.MustParseTemplate("t")}}},
			{Name: "b", Match: relay.Match{Types: []relay.Glob{"b.*"}}, Targets: []relay.Target{{Sink: "fast", Topic: relay.MustParseTemplate("t")}}},
		}},
		Sinks:      map[string]relay.Sink{"slow": slow, "fast": fast},
		DeadLetter: relay.DeadLetterTarget{Sink: "fast", Topic: "dead"},
		Dedupe:     &relaytest.Deduper{},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer waitWrites(t, p)
	defer slow.open()
	b := batch(ev("1", "a.x"), ev("2", "b.x"))
	out, err := processWithin(p, 100*time.Millisecond, b.Events...)
	if got := fates(t, b, out); relay.ErrorCode(err) != relay.EUNAVAILABLE || got != "1=failed 2=delivered" || !errors.Is(out.Events[0].Err, relay.ErrStillWriting) {
		t.Fatalf("%s (%v), want 1 still being written and 2 delivered", got, err)
	}
	// Were 2 still claimed by the delivery the slow sink holds, this retry would wait its whole deadline
	// and fail.
	if out, err := processWithin(p, time.Second, ev("2", "b.x")); err != nil || out.Duplicates != 1 {
		t.Fatalf("retry of 2: %+v %v, want a duplicate", out.Counts, err)
	}
}

// TestLateWriteIsSettled: the outcome of an event whose write outlived its request is told to Settled
// once the write lands, delivered, while the request had answered it failed.
func TestLateWriteIsSettled(t *testing.T) {
	h := newHeld()
	settled := make(chan relay.EventOutcome, 1)
	p, err := relay.NewPipeline(relay.PipelineConfig{
		Router:     &relay.Router{Routes: []relay.Route{{Name: "all", Targets: []relay.Target{{Sink: "s", Topic: relay.MustParseTemplate("t")}}}}},
		Sinks:      map[string]relay.Sink{"s": h, "dlq": &relaytest.Sink{}},
		DeadLetter: relay.DeadLetterTarget{Sink: "dlq", Topic: "dead"},
		Dedupe:     &relaytest.Deduper{},
		Backoff:    relay.Backoff{Initial: time.Millisecond, Max: 5 * time.Millisecond, Multiplier: 2},
		Settled:    func(o relay.EventOutcome) { settled <- o },
	})
	if err != nil {
		t.Fatal(err)
	}
	out, err := processWithin(p, 100*time.Millisecond, ev("1", "a.x"))
	if relay.ErrorCode(err) != relay.EUNAVAILABLE || out.Events[0].Fate != relay.Failed {
		t.Fatalf("request: %+v %v; want it failed, still being written", out.Events, err)
	}
	select {
	case o := <-settled:
		t.Fatalf("settled before the write landed: %+v", o)
	default:
	}
	h.open()
	select {
	case o := <-settled:
		if o.Fate != relay.Delivered || o.Event.ID != "1" || len(o.Sinks) != 1 || !o.Sinks[0].Position.Set || o.Sinks[0].Attempts != 1 {
			t.Fatalf("settled %+v, want delivered where the sink stored it", o)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the late write's outcome was never settled")
	}
	waitWrites(t, p)
}
