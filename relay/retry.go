package relay

import (
	"context"
	"math/rand/v2"
	"time"
)

// Backoff is a jittered exponential backoff policy: the n-th wait (from 0) is a random duration between
// half and all of min(Initial·Multiplier^n, Max) ("equal jitter"), which spreads retries of many requests
// without ever waiting much less than the policy intends.
type Backoff struct {
	Initial    time.Duration
	Max        time.Duration
	Multiplier float64
}

// DefaultBackoff is the policy the relay uses when the configuration sets none: it fits several attempts
// inside the default four-second request deadline.
var DefaultBackoff = Backoff{Initial: 50 * time.Millisecond, Max: time.Second, Multiplier: 2}

// Delay returns the wait before retry number attempt (0 for the first retry).
func (b Backoff) Delay(attempt int) time.Duration {
	d := float64(b.Initial)
	for i := 0; i < attempt && d < float64(b.Max); i++ {
		d *= b.Multiplier
	}
	if d > float64(b.Max) {
		d = float64(b.Max)
	}
	half := d / 2
	return time.Duration(half + rand.Float64()*half)
}

// Wait sleeps for the delay before retry number attempt. It returns false without sleeping when ctx's
// deadline would pass before the wait is over (no attempt could follow it), and false as soon as ctx ends.
func (b Backoff) Wait(ctx context.Context, attempt int) bool {
	d := b.Delay(attempt)
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= d {
		return false
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
