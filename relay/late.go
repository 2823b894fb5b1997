package relay

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// This file holds what lets a write outlive the request that started it. A request answers at its
// deadline, but a write still in flight then is not abandoned: it goes on, bounded by the attempt
// timeout, and its outcome counts. The events stay claimed until it ends, are remembered if it landed,
// and a retry that arrives meanwhile waits for it instead of writing the events a second time.

// Defaults of the limits on writes that outlive their requests.
const (
	// DefaultAttemptTimeout bounds one write attempt. kafka-go bounds one produce request by its
	// write_timeout (5 s), but queues a partition's batches behind each other: while a leader restarts,
	// a batch can wait longer than that before it is even sent. 30 s is the Java producer's
	// request.timeout.ms; with 10 s, the three-broker fault scenario made 221-231 duplicates of 1,201
	// (attempts given up on while kafka-go still held their batch), with 30 s 15 (docs/dedupe.md).
	DefaultAttemptTimeout = 30 * time.Second
	// DefaultMaxLateWrites is how many requests may have writes outliving them at once.
	DefaultMaxLateWrites = 1024
)

// ErrStillWriting is the failure of an event whose write was still in flight at the request's deadline.
// The write goes on; if it lands, the event is remembered and Twilio's retry is answered as a duplicate.
var ErrStillWriting = errors.New("still being written at the request deadline")

// errNoTime is the failure of a message whose write could not start before the request's deadline.
var errNoTime = errors.New("the request deadline passed before the write could start")

// tracked is one piece of work that may outlive its request: a request's delivery, or a spooled write
// still in flight. Its fields are guarded by lateWrites.mu.
type tracked struct {
	late, finished bool
}

// lateWrites counts the pieces of work in flight, those of them that outlived their requests, and lets
// Close wait for them.
type lateWrites struct {
	limit int
	obs   Observer

	mu      sync.Mutex
	active  int           // work in flight, late or not
	late    int           // of which outlived its request
	drained chan struct{} // closed when active reaches 0, while Close waits
}

// admit refuses a new request while too many writes outlive theirs: each holds its request's events
// and goroutines, and a sink that slow is better given time than more work.
func (l *lateWrites) admit() error {
	l.mu.Lock()
	n := l.late
	l.mu.Unlock()
	if n < l.limit {
		return nil
	}
	l.obs.LateWriteRefused()
	return &Error{Code: EUNAVAILABLE, Reason: "late_writes",
		Message:    fmt.Sprintf("%d writes are still in flight after their requests' deadlines (limits.max_late_writes); retry", n),
		RetryAfter: time.Second}
}

// start records new work in flight.
func (l *lateWrites) start(late bool) *tracked {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.active++
	w := &tracked{}
	if late {
		l.markLocked(w)
	}
	return w
}

// markLate records that w outlives its request, unless it finished already; it reports whether it did.
func (l *lateWrites) markLate(w *tracked) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if w.finished {
		return false
	}
	l.markLocked(w)
	return true
}

func (l *lateWrites) markLocked(w *tracked) {
	w.late = true
	l.late++
	l.obs.LateWrites(l.late)
}

// finish records that w ended; landed says whether everything it wrote is safe. It reports whether w
// had outlived its request.
func (l *lateWrites) finish(w *tracked, landed bool) (late bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	w.finished = true
	if w.late {
		l.late--
		l.obs.LateWrites(l.late)
		l.obs.LateWriteEnded(landed)
	}
	if l.active--; l.active == 0 && l.drained != nil {
		close(l.drained)
		l.drained = nil
	}
	return w.late
}

// wait blocks until no work is in flight or ctx ends.
func (l *lateWrites) wait(ctx context.Context) error {
	l.mu.Lock()
	if l.active == 0 {
		l.mu.Unlock()
		return nil
	}
	if l.drained == nil {
		l.drained = make(chan struct{})
	}
	drained := l.drained
	l.mu.Unlock()
	select {
	case <-drained:
		return nil
	case <-ctx.Done():
		l.mu.Lock()
		n := l.late
		l.mu.Unlock()
		return fmt.Errorf("%d writes still in flight after their requests: %w", n, ctx.Err())
	}
}

// Close waits, within ctx, for the writes still in flight: those that outlived their requests, and the
// spooled ones whose outcome the spool's drainers wait for. Call it once the receiver has stopped, and
// before the sinks close. It is the pipeline's whole shutdown.
func (p *Pipeline) Close(ctx context.Context) error {
	if err := p.late.wait(ctx); err != nil {
		return fmt.Errorf("pipeline: %w", err)
	}
	return nil
}

// attemptContext returns the context of one write attempt: it does not end with the request, only when
// the attempt timeout has passed, so that a write in flight at the deadline can finish and be counted.
func (p *Pipeline) attemptContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), p.cfg.AttemptTimeout)
}
