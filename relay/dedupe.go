package relay

import (
	"context"
	"sync"
)

// Deduper remembers the keys of events that every sink they were routed to has acknowledged.
//
// Seen reports whether key was remembered within the window. Remember records key; once it returns true,
// Seen(key) is true (the pipeline relies on it: a duplicate arriving just after its original was
// delivered must find it). It returns false when the store refused or dropped the write (a lossy cache
// may), which makes a later duplicate possible but never loses an event. Both are safe for concurrent use.
type Deduper interface {
	Seen(key string) bool
	Remember(key string) bool
}

// flight is an event being delivered by one request. Requests that receive the same event meanwhile wait
// for it instead of producing it a second time.
type flight struct {
	done chan struct{}
	ok   bool // set before done is closed: the owner delivered the event
}

// flights tracks the events in flight by dedupe key.
type flights struct {
	mu sync.Mutex
	m  map[string]*flight
}

// claim returns the flight for key and whether the caller owns it (and must call land).
func (fs *flights) claim(key string) (*flight, bool) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if f, ok := fs.m[key]; ok {
		return f, false
	}
	if fs.m == nil {
		fs.m = make(map[string]*flight)
	}
	f := &flight{done: make(chan struct{})}
	fs.m[key] = f
	return f, true
}

// land ends the owner's flight for key with its outcome and wakes the waiters.
func (fs *flights) land(key string, f *flight, ok bool) {
	fs.mu.Lock()
	delete(fs.m, key)
	fs.mu.Unlock()
	f.ok = ok
	close(f.done)
}

// wait blocks until f lands or ctx ends, and reports whether the owner delivered the event.
func (f *flight) wait(ctx context.Context) bool {
	select {
	case <-f.done:
		return f.ok
	case <-ctx.Done():
		return false
	}
}
