// Package relaytest provides test doubles for the relay's domain: a recording sink whose failures a test
// scripts, and an exact (map-based) deduper. They stand in for real sinks only in the domain's own unit
// tests; every sink package is tested against its real server.
package relaytest

import (
	"context"
	"errors"
	"sync"

	"github.com/relaykit/twilio-relay/relay"
)

// ErrDown is the transient error a Sink returns while it is down.
var ErrDown = errors.New("relaytest: sink down")

// Sink records the messages it acknowledges. By default it acknowledges everything at once. It says where
// each acknowledged message landed: Position.Offset is its index in Acked.
type Sink struct {
	mu       sync.Mutex
	acked    []relay.Message
	writes   int
	down     bool
	block    bool
	failNext int
	reject   func(relay.Message) error // per-message verdict, nil to acknowledge
	closed   bool
}

var _ relay.Sink = (*Sink)(nil)

// SetDown makes every write fail with ErrDown (true) or succeed again (false).
func (s *Sink) SetDown(down bool) { s.mu.Lock(); s.down = down; s.mu.Unlock() }

// SetBlock makes every write wait until its context ends, like a sink that hangs.
func (s *Sink) SetBlock(block bool) { s.mu.Lock(); s.block = block; s.mu.Unlock() }

// FailNext makes the next n writes fail with ErrDown.
func (s *Sink) FailNext(n int) { s.mu.Lock(); s.failNext = n; s.mu.Unlock() }

// SetReject installs a per-message verdict: a non-nil error fails that message (use relay.Permanent for
// a permanent failure); the others are acknowledged.
func (s *Sink) SetReject(f func(relay.Message) error) { s.mu.Lock(); s.reject = f; s.mu.Unlock() }

// Write implements relay.Sink.
func (s *Sink) Write(ctx context.Context, msgs []relay.Message) error {
	s.mu.Lock()
	s.writes++
	block := s.block
	s.mu.Unlock()
	if block {
		<-ctx.Done()
		return ctx.Err()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("relaytest: write after close")
	}
	if s.down || s.failNext > 0 {
		if s.failNext > 0 {
			s.failNext--
		}
		return ErrDown
	}
	errs := make(relay.WriteErrors, len(msgs))
	for i, m := range msgs {
		if s.reject != nil {
			if errs[i] = s.reject(m); errs[i] != nil {
				continue
			}
		}
		msgs[i].Position = relay.Position{Set: true, Partition: relay.NoPartition, Offset: int64(len(s.acked))}
		s.acked = append(s.acked, msgs[i])
	}
	if errs.Count() > 0 {
		return errs
	}
	return nil
}

// Close implements relay.Sink.
func (s *Sink) Close(context.Context) error { s.mu.Lock(); s.closed = true; s.mu.Unlock(); return nil }

// Acked returns the messages acknowledged so far.
func (s *Sink) Acked() []relay.Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]relay.Message(nil), s.acked...)
}

// Writes returns how many times Write was called.
func (s *Sink) Writes() int { s.mu.Lock(); defer s.mu.Unlock(); return s.writes }

// Deduper is an exact relay.Deduper: it never forgets and never refuses.
type Deduper struct {
	// AfterSeen, when set, runs in every Seen after the answer is read and before it is returned: a test
	// can let another request deliver the same event in between.
	AfterSeen func(key string)

	mu   sync.Mutex
	keys map[string]bool
}

// Seen implements relay.Deduper.
func (d *Deduper) Seen(key relay.Key) bool {
	d.mu.Lock()
	seen := d.keys[key.Text]
	d.mu.Unlock()
	if d.AfterSeen != nil {
		d.AfterSeen(key.Text)
	}
	return seen
}

// Remember implements relay.Deduper.
func (d *Deduper) Remember(key relay.Key) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.keys == nil {
		d.keys = map[string]bool{}
	}
	d.keys[key.Text] = true
	return true
}
