// Package dedupe provides the relay's in-process memory of delivered events, built on ristretto: a
// concurrent cache that keeps two 64-bit hashes per key (not the key itself) and expires entries after the
// dedupe window.
//
// ristretto is lossy by design: a Set can be dropped when its internal buffer is full, or refused by the
// admission policy when the cache is at capacity. For a deduper that means a duplicate may be delivered
// again (at-least-once still holds); it never means an event is lost. The relay counts refused writes,
// and docs/dedupe.md gives the measured figures.
package dedupe

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/dgraph-io/ristretto/v2"
	"github.com/relaykit/twilio-relay/relay"
)

// Config sizes the cache.
type Config struct {
	// Window is how long an id is remembered: Twilio retries for up to four hours.
	Window time.Duration
	// MaxIDs is how many ids fit; past it, the cache evicts (and may refuse) entries before their window.
	MaxIDs int64
}

// Cache is a relay.Deduper backed by ristretto.
//
// ristretto applies a Set on a goroutine of its own, a little after SetWithTTL returns; the relay needs
// a delivered event's duplicate to be seen from the moment the delivery ends. Remembered keys therefore
// also go into a small map of recent keys, which Seen consults after the cache. A background loop
// retires them in generations: it sets the recent keys aside, waits until ristretto has applied every
// write issued so far, and drops them. The map holds about one settle interval of keys.
type Cache struct {
	c      *ristretto.Cache[string, struct{}]
	window time.Duration

	mu             sync.Mutex
	recent, settle map[string]struct{} // remembered keys ristretto may not show yet
	settling       sync.Mutex          // one settle at a time
	stop, stopped  chan struct{}
	closeOnce      sync.Once
}

// settleEvery is how often the recent keys are retired.
const settleEvery = 100 * time.Millisecond

var _ relay.Deduper = (*Cache)(nil)

// New returns a cache for cfg.
func New(cfg Config) (*Cache, error) {
	if cfg.Window <= 0 || cfg.MaxIDs <= 0 {
		return nil, errors.New("dedupe: window and max ids must be positive")
	}
	c, err := ristretto.NewCache(&ristretto.Config[string, struct{}]{
		// One counter per id is enough: every entry costs 1 and is wanted, so the admission policy's
		// frequency estimates matter only once the cache is full. Ten per id (the usual advice) would
		// spend memory on a sketch the relay barely uses.
		NumCounters:        max(cfg.MaxIDs, 1024),
		MaxCost:            cfg.MaxIDs,
		BufferItems:        64,
		IgnoreInternalCost: true,
	})
	if err != nil {
		return nil, err
	}
	cache := &Cache{c: c, window: cfg.Window, recent: map[string]struct{}{}, stop: make(chan struct{}), stopped: make(chan struct{})}
	go cache.settleLoop()
	return cache, nil
}

// settleLoop retires the recent keys once ristretto shows them.
func (c *Cache) settleLoop() {
	defer close(c.stopped)
	t := time.NewTicker(settleEvery)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
			c.settleRecent()
		}
	}
}

// settleRecent sets the recent keys aside, waits until ristretto has applied every write issued so far
// (theirs included), and drops them.
func (c *Cache) settleRecent() {
	c.settling.Lock()
	defer c.settling.Unlock()
	c.mu.Lock()
	c.settle, c.recent = c.recent, make(map[string]struct{}, len(c.recent))
	c.mu.Unlock()
	c.c.Wait()
	c.mu.Lock()
	c.settle = nil
	c.mu.Unlock()
}

// Seen reports whether key is remembered.
//
// The recent keys are looked at first: a key leaves them only after ristretto has applied it, so a
// key missing from them is either in ristretto or was never remembered (the other order could miss a
// key retired between the two lookups).
func (c *Cache) Seen(key string) bool {
	c.mu.Lock()
	_, recent := c.recent[key]
	if !recent {
		_, recent = c.settle[key]
	}
	c.mu.Unlock()
	if recent {
		return true
	}
	_, ok := c.c.Get(key)
	return ok
}

// Remember records key for the window; Seen finds it from the moment Remember returns true. ristretto
// drops a write when its buffer is full; Remember then waits for the buffer to drain and tries again,
// twice at most, so that a burst costs a little latency instead of missed duplicates. It returns false
// when the write was still dropped.
func (c *Cache) Remember(key string) bool {
	for attempt := 0; ; attempt++ {
		if c.c.SetWithTTL(key, struct{}{}, 1, c.window) {
			c.mu.Lock()
			c.recent[key] = struct{}{}
			c.mu.Unlock()
			return true
		}
		if attempt == 2 {
			return false
		}
		c.c.Wait()
	}
}

// Wait blocks until ristretto itself holds every key remembered so far (Seen finds them before that
// already). Tests and measurements use it.
func (c *Cache) Wait() { c.settleRecent() }

// Close stops the cache's goroutines and releases its memory. It never fails; the context is there for
// the shape every long-lived component of the relay shares.
func (c *Cache) Close(context.Context) error {
	c.closeOnce.Do(func() {
		close(c.stop)
		<-c.stopped
		c.c.Close()
	})
	return nil
}
