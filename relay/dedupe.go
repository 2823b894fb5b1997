package relay

import (
	"context"
	"crypto/sha256"
	"sync"
)

// Key is an event's dedupe key, made once per event (Event.Key): Text identifies the event (see
// Event.DedupeKey), and Sum is the first 128 bits of Text's SHA-256, under which the in-process memory, its
// snapshot and the shared tier keep it. A key is hashed once, however many lookups it goes through.
type Key struct {
	Text string
	Sum  [16]byte
}

// NewKey returns the key of text.
func NewKey(text string) Key {
	var buf [192]byte // Twilio's keys fit: hashed from the stack, not from a copy on the heap
	sum := sha256.Sum256(append(buf[:0], text...))
	return Key{Text: text, Sum: [16]byte(sum[:16])}
}

// Deduper remembers the keys of events that every sink they were routed to has acknowledged.
//
// Seen reports whether key was remembered within the window. Remember records key; once it returns true,
// Seen(key) is true (the pipeline relies on it: a duplicate arriving just after its original was
// delivered must find it). It returns false when the store refused or dropped the write (a lossy cache
// may), which makes a later duplicate possible but never loses an event. Both are safe for concurrent use.
type Deduper interface {
	Seen(key Key) bool
	Remember(key Key) bool
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
	m  map[[16]byte]*flight
}

// claim returns the flight for key and whether the caller owns it (and must call land).
func (fs *flights) claim(key Key) (*flight, bool) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if f, ok := fs.m[key.Sum]; ok {
		return f, false
	}
	if fs.m == nil {
		fs.m = make(map[[16]byte]*flight)
	}
	f := &flight{done: make(chan struct{})}
	fs.m[key.Sum] = f
	return f, true
}

// land ends the owner's flight for key with its outcome and wakes the waiters.
func (fs *flights) land(key Key, f *flight, ok bool) {
	fs.mu.Lock()
	delete(fs.m, key.Sum)
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
