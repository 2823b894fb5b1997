package inspector

import (
	"encoding/binary"
	"strings"
	"time"

	"github.com/relaykit/twilio-relay/relay"
)

// This file is the payload of a slot: the variable parts of an event, encoded into the arena.

// entry is what the record keeps of an event besides its slot. On the way in its strings are the event's
// own (nothing is copied before the arena); decoded, they are new.
type entry struct {
	id, source, sid string
	schema          int
	reason, detail  string
	sinks           []delivery
	deadLetter      relay.Position
	data            []byte // nil unless KeepData
}

// delivery is one of an event's deliveries: a relay.SinkOutcome with its error as text.
type delivery struct {
	route, sink, topic string
	spooled            bool
	attempts           int
	took               time.Duration
	pos                relay.Position
	err                string
}

// maxText bounds a detail or error text in the record.
const maxText = 512

// encode appends e to dst; names are interned in n.
func (n *names) encode(dst []byte, e *entry) []byte {
	dst = appendString(dst, e.id)
	dst = appendString(dst, e.source)
	dst = appendString(dst, e.sid)
	dst = binary.AppendUvarint(dst, uint64(max(0, e.schema)))
	dst = n.appendName(dst, e.reason)
	dst = appendString(dst, clip(e.detail))
	dst = append(dst, byte(min(len(e.sinks), 255)))
	for i := range e.sinks[:min(len(e.sinks), 255)] {
		d := &e.sinks[i]
		dst = n.appendName(dst, d.route)
		dst = n.appendName(dst, d.sink)
		dst = n.appendName(dst, d.topic)
		var flags byte
		if d.spooled {
			flags |= 1
		}
		dst = append(dst, flags)
		dst = binary.AppendUvarint(dst, uint64(d.attempts))
		dst = binary.AppendUvarint(dst, uint64(max(0, d.took/time.Microsecond)))
		dst = n.appendPosition(dst, d.pos)
		dst = appendString(dst, clip(d.err))
	}
	dst = n.appendPosition(dst, e.deadLetter)
	dst = binary.AppendUvarint(dst, uint64(len(e.data)))
	return append(dst, e.data...)
}

func (n *names) appendPosition(dst []byte, p relay.Position) []byte {
	if !p.Set {
		return append(dst, 0)
	}
	dst = append(dst, 1)
	dst = binary.AppendVarint(dst, int64(p.Partition))
	dst = binary.AppendVarint(dst, p.Offset)
	dst = n.appendName(dst, p.Stream)
	return appendString(dst, p.ID)
}

// appendName appends a name by its number, or inline when the table is full.
func (n *names) appendName(dst []byte, s string) []byte {
	if id, ok := n.id(s); ok {
		return binary.AppendUvarint(dst, uint64(id)+1)
	}
	return appendString(append(dst, 0), s)
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

func clip(s string) string {
	if len(s) <= maxText {
		return s
	}
	return strings.ToValidUTF8(s[:maxText], "") + "…"
}

// reader decodes a payload. A payload is only ever decoded by the code that encoded it, under the lock,
// so it is well formed; a short read yields zero values rather than a panic all the same.
type reader struct {
	b     []byte
	names *names
}

func (r *reader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.b = nil
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.b = nil
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) byte() byte {
	if len(r.b) == 0 {
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

// bytes returns the next string's bytes, in place.
func (r *reader) bytes() []byte {
	l := r.uvarint()
	if l > uint64(len(r.b)) {
		r.b = nil
		return nil
	}
	s := r.b[:l]
	r.b = r.b[l:]
	return s
}

func (r *reader) string() string { return string(r.bytes()) }

func (r *reader) name() string {
	id := r.uvarint()
	if id == 0 {
		return r.string()
	}
	return r.names.name(uint16(id - 1))
}

func (r *reader) position() relay.Position {
	if r.byte() == 0 {
		return relay.Position{}
	}
	return relay.Position{Set: true, Partition: int32(r.varint()), Offset: r.varint(), Stream: r.name(), ID: r.string()}
}

// decode reads a whole payload.
func (n *names) decode(b []byte) entry {
	r := &reader{b: b, names: n}
	e := entry{id: r.string(), source: r.string(), sid: r.string(), schema: int(r.uvarint()), reason: r.name(), detail: r.string()}
	e.sinks = make([]delivery, r.byte())
	for i := range e.sinks {
		d := &e.sinks[i]
		d.route, d.sink, d.topic = r.name(), r.name(), r.name()
		d.spooled = r.byte()&1 != 0
		d.attempts = int(r.uvarint())
		d.took = time.Duration(r.uvarint()) * time.Microsecond
		d.pos = r.position()
		d.err = r.string()
	}
	e.deadLetter = r.position()
	if data := r.bytes(); len(data) > 0 {
		e.data = append([]byte(nil), data...)
	}
	return e
}

// idAndSID reads the first two strings of a payload in place: what a search by id or SID compares.
func idAndSID(b []byte) (id, sid []byte) {
	r := &reader{b: b}
	id = r.bytes()
	r.bytes() // source
	return id, r.bytes()
}

// names interns the names the record repeats (endpoints, types, routes, sinks, topics, reasons, streams)
// as numbers; past maxNames distinct ones, the others are stored inline.
type names struct {
	ids  map[string]uint16
	list []string
	// recent remembers the last name seen in each of a few slots: events repeat their endpoint, type,
	// route, sink and topic, and a string compare (pointers first) is cheaper than hashing for the map.
	recent [64]struct {
		s  string
		id uint16
	}
}

const maxNames = 4096

func (n *names) id(s string) (uint16, bool) {
	slot := 0
	if len(s) > 0 {
		slot = (len(s) ^ int(s[len(s)-1])<<1) & (len(n.recent) - 1)
	}
	if r := &n.recent[slot]; r.s == s { // the zero entry is right too: "" is name 0
		return r.id, true
	}
	id, ok := n.lookup(s)
	if ok {
		n.recent[slot].s, n.recent[slot].id = n.list[id], id
	}
	return id, ok
}

func (n *names) lookup(s string) (uint16, bool) {
	if n.ids == nil {
		n.ids, n.list = map[string]uint16{"": 0}, []string{""}
	}
	if id, ok := n.ids[s]; ok {
		return id, true
	}
	if len(n.list) >= maxNames {
		return 0, false
	}

	s = strings.Clone(s) // not the event's memory
	id := uint16(len(n.list))
	n.ids[s] = id
	n.list = append(n.list, s)
	return id, true
}

// number returns s's number for a slot field (endpoint, type): 0xFFFF when the table is full.
func (n *names) number(s string) uint16 {
	if id, ok := n.id(s); ok {
		return id
	}
	return 0xFFFF
}

func (n *names) name(id uint16) string {
	if int(id) < len(n.list) {
		return n.list[id]
	}
	return "(too many names)"
}
