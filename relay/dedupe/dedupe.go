// Package dedupe provides the relay's in-process memory of delivered events, built on ristretto: a
// concurrent cache that keeps two 64-bit hashes per key (not the key itself) and expires entries after the
// dedupe window.
//
// ristretto is lossy by design: a Set can be dropped when its internal buffer is full, or refused by the
// admission policy when the cache is at capacity. For a deduper that means a duplicate may be delivered
// again (at-least-once still holds); it never means an event is lost. The relay counts refused writes,
// and docs/dedupe.md gives the measured figures.
//
// The memory survives a graceful restart: Close writes the remembered ids with their expiry to a snapshot
// file, and New loads what has not expired. ristretto cannot list what it holds, so the cache keeps the
// ids beside it in a bounded log (log.go), keyed like ristretto by a fixed 128-bit hash of the key. The
// ids loaded at start are kept apart, as a sorted read-only set searched when ristretto misses.
package dedupe

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
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
	// Snapshot, when set, is the file Close writes the remembered ids to and New reads them from.
	Snapshot string
}

// Cache is a relay.Deduper backed by ristretto.
//
// ristretto applies a Set on a goroutine of its own, a little after SetWithTTL returns; the relay needs
// a delivered event's duplicate to be seen from the moment the delivery ends. Remembered keys therefore
// also go into a small map of recent keys, which Seen consults after the cache. A background loop
// retires them in generations: it sets the recent keys aside, waits until ristretto has applied every
// write issued so far, and drops them. The map holds about one settle interval of keys.
type Cache struct {
	c        *ristretto.Cache[string, struct{}]
	window   time.Duration
	snapshot string
	log      *slog.Logger

	mu             sync.Mutex
	recent, settle map[id]struct{} // remembered keys ristretto may not show yet
	ids            idLog           // the ids remembered since start, for the snapshot
	loaded         *frozen         // the ids the snapshot held at start; nil once all have expired
	settling       sync.Mutex      // one settle at a time
	stop, stopped  chan struct{}
	closeOnce      sync.Once
	closeErr       error
}

// settleEvery is how often the recent keys are retired.
const settleEvery = 100 * time.Millisecond

var _ relay.Deduper = (*Cache)(nil)

// New returns a cache for cfg, holding what the snapshot remembers when there is one. A snapshot that
// cannot be read, is damaged or is not one is logged and ignored: the cache then starts empty.
func New(cfg Config, log *slog.Logger) (*Cache, error) {
	if cfg.Window <= 0 || cfg.MaxIDs <= 0 {
		return nil, errors.New("dedupe: window and max ids must be positive")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c, err := ristretto.NewCache(&ristretto.Config[string, struct{}]{
		// One counter per id is enough: every entry costs 1 and is wanted, so the admission policy's
		// frequency estimates matter only once the cache is full. Ten per id (the usual advice) would
		// spend memory on a sketch the relay barely uses.
		NumCounters:        max(cfg.MaxIDs, 1024),
		MaxCost:            cfg.MaxIDs,
		BufferItems:        64,
		IgnoreInternalCost: true,
		KeyToHash:          keyToHash,
	})
	if err != nil {
		return nil, err
	}
	cache := &Cache{c: c, window: cfg.Window, snapshot: cfg.Snapshot, log: log.With(slog.String("component", "dedupe")),
		recent: map[id]struct{}{}, ids: idLog{max: int(cfg.MaxIDs)}, stop: make(chan struct{}), stopped: make(chan struct{})}
	if cfg.Snapshot != "" {
		cache.load()
	}
	go cache.settleLoop()
	return cache, nil
}

// load reads the snapshot.
func (c *Cache) load() {
	start := time.Now()
	now := unixSeconds(start)
	f, expired, err := readSnapshot(c.snapshot, now)
	switch {
	case errors.Is(err, os.ErrNotExist):
		c.log.Info("no dedupe snapshot: starting with an empty memory", slog.String("file", c.snapshot))
		return
	case err != nil:
		c.log.Error("dedupe snapshot ignored: starting with an empty memory", slog.String("file", c.snapshot), slog.Any("error", err))
		return
	}
	limit := unixSeconds(start.Add(c.window)) // the window may have shrunk since the snapshot
	f.maxExp = min(f.maxExp, limit)
	for i := range f.entries {
		f.entries[i].exp = min(f.entries[i].exp, limit)
	}
	if len(f.entries) > 0 {
		c.loaded = f
	}
	c.log.Info("dedupe snapshot loaded", slog.String("file", c.snapshot), slog.Int("ids", len(f.entries)),
		slog.Int("expired", expired), slog.Duration("took", time.Since(start)))
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
		case now := <-t.C:
			c.settleRecent()
			c.mu.Lock()
			if c.loaded != nil && c.loaded.maxExp <= unixSeconds(now) {
				c.loaded = nil // all expired: free it
			}
			c.mu.Unlock()
		}
	}
}

// settleRecent sets the recent keys aside, waits until ristretto has applied every write issued so far
// (theirs included), and drops them.
func (c *Cache) settleRecent() {
	c.settling.Lock()
	defer c.settling.Unlock()
	c.mu.Lock()
	c.settle, c.recent = c.recent, make(map[id]struct{}, len(c.recent))
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
func (c *Cache) Seen(key relay.Key) bool {
	h := id(key.Sum)
	c.mu.Lock()
	_, recent := c.recent[h]
	if !recent {
		_, recent = c.settle[h]
	}
	loaded := c.loaded
	c.mu.Unlock()
	if recent {
		return true
	}
	if _, ok := c.c.Get(cacheKey(h)); ok {
		return true
	}
	return loaded.has(h, unixSeconds(time.Now()))
}

// Remember records key for the window; Seen finds it from the moment Remember returns true. ristretto
// drops a write when its buffer is full; Remember then waits for the buffer to drain and tries again,
// twice at most, so that a burst costs a little latency instead of missed duplicates. It returns false
// when the write was still dropped.
func (c *Cache) Remember(key relay.Key) bool {
	h := id(key.Sum)
	for attempt := 0; ; attempt++ {
		if c.c.SetWithTTL(cacheKey(h), struct{}{}, 1, c.window) {
			now := time.Now()
			c.mu.Lock()
			c.recent[h] = struct{}{}
			c.ids.add(entry{id: h, exp: unixSeconds(now.Add(c.window))}, unixSeconds(now))
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

// Close stops the cache's goroutines, writes the snapshot when there is one, and releases its memory.
// It fails only when the snapshot cannot be written (the next run then starts with the last snapshot,
// or none). The context is there for the shape every long-lived component of the relay shares: the
// snapshot is written whole however long it takes.
func (c *Cache) Close(context.Context) error {
	c.closeOnce.Do(func() {
		close(c.stop)
		<-c.stopped
		if c.snapshot != "" {
			c.closeErr = c.writeSnapshot()
		}
		c.c.Close()
	})
	return c.closeErr
}

// writeSnapshot writes the remembered ids that have not expired, those loaded at start included, to the
// snapshot file.
func (c *Cache) writeSnapshot() error {
	start := time.Now()
	now := unixSeconds(start)
	c.mu.Lock()
	entries := make([]entry, 0, c.ids.n+len(c.loaded.all()))
	c.ids.each(now, func(e entry) { entries = append(entries, e) })
	for _, e := range c.loaded.all() {
		if e.exp > now {
			entries = append(entries, e)
		}
	}
	c.mu.Unlock()
	entries = sortEntries(entries)
	n := len(entries)
	err := writeSnapshot(c.snapshot, entries)
	if err != nil {
		c.log.Error("dedupe snapshot not written: the next start remembers less", slog.String("file", c.snapshot), slog.Any("error", err))
		return fmt.Errorf("dedupe: snapshot: %w", err)
	}
	c.log.Info("dedupe snapshot written", slog.String("file", c.snapshot), slog.Int("ids", n), slog.Duration("took", time.Since(start)))
	return nil
}
