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
	"errors"
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
type Cache struct {
	c      *ristretto.Cache[string, struct{}]
	window time.Duration
}

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
	return &Cache{c: c, window: cfg.Window}, nil
}

// Seen reports whether key is remembered.
func (c *Cache) Seen(key string) bool {
	_, ok := c.c.Get(key)
	return ok
}

// Remember records key for the window. ristretto drops a write when its buffer is full; Remember then
// waits for the buffer to drain and tries again, twice at most, so that a burst costs a little latency
// instead of missed duplicates. It returns false when the write was still dropped.
func (c *Cache) Remember(key string) bool {
	for attempt := 0; ; attempt++ {
		if c.c.SetWithTTL(key, struct{}{}, 1, c.window) {
			return true
		}
		if attempt == 2 {
			return false
		}
		c.c.Wait()
	}
}

// Wait blocks until every Remember so far is visible to Seen. Tests and measurements use it.
func (c *Cache) Wait() { c.c.Wait() }

// Close stops the cache's goroutines.
func (c *Cache) Close() { c.c.Close() }
