// Package inspector answers "where is my event?": a bounded record, in the relay's memory, of the events
// it received (metadata only: what became of each and where each sink stored it) and of the requests it
// refused, with the JSON API and the web page the admin listener serves over it.
//
// The record is fed on the request path, so it is built to cost little there: one lock per batch, a ring
// of fixed-size slots holding no pointers (the garbage collector never scans it), the variable parts of
// each event copied once into a byte arena that wraps, and names (endpoints, types, routes, sinks,
// topics) interned. Nothing is indexed on the way in: queries scan, newest first, in short steps under
// the lock. It never holds the signature, a token or the event's data, unless KeepData is set, and then
// the data with the Redact paths replaced.
package inspector

import (
	"errors"
	"hash/maphash"
	"sync"
	"time"

	"github.com/relaykit/twilio-relay/relay"
)

// Config bounds the record.
type Config struct {
	// MaxEvents bounds how many events the record holds; the oldest go first.
	MaxEvents int
	// MaxBytes bounds the memory of the event record: its slots and the arena of their variable parts.
	MaxBytes int64
	// MaxRefusals bounds how many refused requests it holds.
	MaxRefusals int
	// KeepData keeps each event's data, with the Redact paths replaced by "[redacted]".
	KeepData bool
	// Redact are the paths in data (dot-separated keys, * for any key or element) whose values KeepData
	// never keeps.
	Redact []string
	// DeadLetterSink names the dead-letter sink, for the page.
	DeadLetterSink string
}

// Defaults that hold an hour of Twilio's 100 events/s per sink.
const (
	DefaultMaxEvents   = 360_000
	DefaultMaxBytes    = 128 << 20
	DefaultMaxRefusals = 10_000
)

// DefaultRedact are the fields of Twilio's payloads that hold personal data: addresses, phone numbers,
// message bodies, names.
var DefaultRedact = []string{"to", "from", "body", "messageBody", "recipient", "sender", "address",
	"caller", "called", "callerName", "forwardedFrom", "attributes", "friendlyName", "identity", "email"}

// Defaults fills in what c leaves at zero.
func (c Config) Defaults() Config {
	if c.MaxEvents == 0 {
		c.MaxEvents = DefaultMaxEvents
	}
	if c.MaxBytes == 0 {
		c.MaxBytes = DefaultMaxBytes
	}
	if c.MaxRefusals == 0 {
		c.MaxRefusals = DefaultMaxRefusals
	}
	if c.Redact == nil {
		c.Redact = DefaultRedact
	}
	return c
}

// Validate reports every problem with c, which has its Defaults.
func (c Config) Validate() []error {
	var errs []error
	if c.MaxEvents < 1 {
		errs = append(errs, errors.New("max_events: must be at least 1"))
	}
	if min := int64(c.MaxEvents)*slotSize + arenaChunk; c.MaxBytes < min {
		errs = append(errs, errors.New("max_bytes: must hold max_events slots of 48 B and 1 MiB of ids and deliveries: at least "+
			formatBytes(min)))
	}
	if c.MaxRefusals < 1 {
		errs = append(errs, errors.New("max_refusals: must be at least 1"))
	}
	for _, p := range c.Redact {
		if p == "" {
			errs = append(errs, errors.New("redact: an empty path"))
		}
	}
	return errs
}

// slot is one event in the ring. It holds no pointer: its strings are in the arena (payload) or interned
// (the uint16 names).
type slot struct {
	seq      uint64 // 1, 2, 3 … in order of recording
	at       int64  // received, Unix nanoseconds
	key      uint64 // hash of the event's dedupe key, when its outcome may change: finds it again
	pos      uint64 // the payload's logical position in the arena
	size     uint32 // the payload's length
	endpoint uint16
	typ      uint16
	fate     relay.Fate
	flags    uint8
	_        [2]byte
}

const slotSize = 48

// Slot flags.
const (
	superseded uint8 = 1 << iota // a later slot holds the event's settled outcome
	late                         // the outcome was settled after the request was answered
)

// Record is the bounded record of recent events and refusals. It is safe for concurrent use.
type Record struct {
	cfg    Config
	seed   maphash.Seed
	redact [][]string

	mu       sync.Mutex
	slots    [][]slot // chunks of slotChunk, allocated as the ring fills
	nslots   int      // capacity in slots: MaxEvents
	seq      uint64   // of the newest slot; the oldest held is seq-n+1
	n        int      // slots held
	arena    arena
	names    names
	scratch  []byte            // the payload being encoded
	building entry             // the entry being recorded
	pending  map[uint64]uint64 // key hash → seq of spooled or failed events, for late outcomes
	early    map[uint64]bool   // keys settled late before the receiver told the record of their request
	stats    stats
}

const (
	slotChunk  = 4096
	maxPending = 1 << 16
)

// New returns an empty record bounded by cfg, which has its Defaults and passed Validate.
func New(cfg Config) *Record {
	r := &Record{cfg: cfg, seed: maphash.MakeSeed(), nslots: cfg.MaxEvents, pending: map[uint64]uint64{}, early: map[uint64]bool{}}
	r.arena.capacity = max(1, uint64(cfg.MaxBytes-int64(cfg.MaxEvents)*slotSize)/arenaChunk) * arenaChunk
	r.redact = splitPaths(cfg.Redact)
	r.stats.init(cfg.MaxRefusals)
	return r
}

// slotAt returns the slot of seq, which the ring holds.
func (r *Record) slotAt(seq uint64) *slot {
	i := int((seq - 1) % uint64(r.nslots))
	return &r.slots[i/slotChunk][i%slotChunk]
}

// holds reports whether the ring still holds seq.
func (r *Record) holds(seq uint64) bool { return seq != 0 && seq <= r.seq && r.seq-seq < uint64(r.n) }

// push appends an event whose payload is in r.scratch, evicting the oldest events for the room; it
// returns the new slot, whose payload fields are set.
func (r *Record) push() *slot {
	size := uint64(len(r.scratch))
	pos := r.arena.reserve(size)
	for r.n > 0 && (r.n == r.nslots || r.slotAt(r.seq-uint64(r.n)+1).pos+r.arena.capacity < pos+size) {
		r.n-- // the oldest: out of count, or its payload is about to be overwritten
	}
	r.arena.write(pos, r.scratch)
	r.seq++
	i := int((r.seq - 1) % uint64(r.nslots))
	if i/slotChunk == len(r.slots) {
		r.slots = append(r.slots, make([]slot, min(slotChunk, r.nslots-i)))
	}
	r.n++
	s := r.slotAt(r.seq)
	*s = slot{seq: r.seq, pos: pos, size: uint32(size)}
	return s
}

// payload returns the payload of a slot the ring holds; it is valid until the lock is released.
func (r *Record) payload(s *slot) []byte { return r.arena.read(s.pos, uint64(s.size)) }

// arena is a ring of bytes in chunks of arenaChunk, allocated as it fills; a payload never straddles two
// chunks. Positions are logical and only grow; a position p is held while p+capacity is past the end.
type arena struct {
	capacity uint64
	chunks   [][]byte
	end      uint64 // logical position of the next byte
}

const arenaChunk = 1 << 20

// maxPayload bounds one event's payload (its data, when kept, is cut to fit).
const maxPayload = 64 << 10

func (a *arena) nchunks() uint64 { return a.capacity / arenaChunk }

// reserve returns the position of size bytes, moving to the next chunk when they do not fit in this one.
func (a *arena) reserve(size uint64) uint64 {
	if off := a.end % arenaChunk; off+size > arenaChunk {
		a.end += arenaChunk - off
	}
	pos := a.end
	a.end += size
	return pos
}

func (a *arena) chunk(pos uint64) []byte {
	i := (pos / arenaChunk) % a.nchunks()
	for uint64(len(a.chunks)) <= i {
		a.chunks = append(a.chunks, make([]byte, arenaChunk))
	}
	return a.chunks[i]
}

func (a *arena) write(pos uint64, b []byte) { copy(a.chunk(pos)[pos%arenaChunk:], b) }

func (a *arena) read(pos, size uint64) []byte {
	off := pos % arenaChunk
	return a.chunk(pos)[off : off+size]
}

// keyHash hashes an event's dedupe key (endpoint, source, id) without building it.
func (r *Record) keyHash(endpoint, source, id string) uint64 {
	var h maphash.Hash
	h.SetSeed(r.seed)
	h.WriteString(endpoint)
	h.WriteByte(0)
	h.WriteString(source)
	h.WriteByte(0)
	h.WriteString(id)
	return h.Sum64()
}

// Memory returns the bytes the event record has allocated: its slots and its arena chunks.
func (r *Record) Memory() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := int64(len(r.arena.chunks)) * arenaChunk
	for _, c := range r.slots {
		n += int64(len(c)) * slotSize
	}
	return n
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return time.Now().UnixNano()
	}
	return t.UnixNano()
}
