package inspector

import (
	"time"

	"github.com/relaykit/twilio-relay/relay"
)

// This file feeds the record: a processed batch on the request path, and outcomes settled later.

// prepared is what Processed works out for an event before it takes the lock.
type prepared struct {
	sid  string
	key  uint64 // only for an event that may be settled later (see pending)
	data []byte
}

// pending reports whether an event's outcome may still change: the spool delivers it later, or a write
// the request gave up on is acknowledged late.
func pending(f relay.Fate) bool { return f == relay.Spooled || f == relay.Failed }

// Processed records what became of a batch's events (the record is a receiver.Monitor): one slot per
// event, from its relay.EventOutcome. The work that needs no lock (the resource SID, found in data; the
// key's hash; the redacted data when kept) is done first, then the whole batch under one lock.
func (r *Record) Processed(b *relay.Batch, out relay.Outcome, _ error) {
	var buf [8]prepared
	ps := buf[:0]
	if len(out.Events) > len(buf) {
		ps = make([]prepared, 0, len(out.Events))
	}
	for i := range out.Events {
		ev := out.Events[i].Event
		p := prepared{sid: ev.ResourceSID()}
		if pending(out.Events[i].Fate) {
			p.key = r.keyHash(ev.Endpoint, ev.Source, ev.ID)
		}
		if r.cfg.KeepData {
			p.data = r.redactData(ev)
		}
		ps = append(ps, p)
	}
	at := unixNano(b.ReceivedAt)
	r.mu.Lock()
	defer r.mu.Unlock()
	ep := r.stats.endpoint(b.Endpoint)
	ep.Verified++
	ep.Events += int64(len(out.Events))
	for i := range out.Events {
		o := &out.Events[i]
		r.countRoutes(o)
		var flags uint8
		if pending(o.Fate) && r.early[ps[i].key] {
			delete(r.early, ps[i].key)
			flags = superseded // Settle has already recorded what became of it
		}
		r.add(at, o.Event.Endpoint, o.Event.Type, o.Fate, ps[i].key, flags, r.entry(o, &ps[i]))
	}
}

// entry is what the record keeps of an outcome: its strings are the event's, not copies.
func (r *Record) entry(o *relay.EventOutcome, p *prepared) *entry {
	ev := o.Event
	e := &r.building
	*e = entry{id: ev.ID, source: ev.Source, sid: p.sid, reason: o.Reason, detail: o.Detail,
		deadLetter: o.DeadLetterAt, data: p.data, sinks: e.sinks[:0]}
	if v, ok := ev.SchemaVersion(); ok {
		e.schema = v
	}
	if o.Fate == relay.Failed && o.Err != nil {
		e.detail = o.Err.Error()
	}
	for _, s := range o.Sinks {
		d := delivery{route: s.Route, sink: s.Sink, topic: s.Topic, spooled: s.Spooled, attempts: s.Attempts, took: s.Took, pos: s.Position}
		if s.Err != nil {
			d.err = s.Err.Error()
		}
		e.sinks = append(e.sinks, d)
	}
	return e
}

// countRoutes counts the routes the event matched (its deliveries are in route order), or NoRoute.
func (r *Record) countRoutes(o *relay.EventOutcome) {
	if o.Reason == relay.ReasonNoRoute {
		r.stats.routes[NoRoute]++
		return
	}
	last := ""
	for _, s := range o.Sinks {
		if s.Route != last {
			r.stats.routes[s.Route]++
			last = s.Route
		}
	}
}

// add records an event: its payload into the arena, its slot into the ring. An event that is spooled or
// failed may be settled later (Settle, Redelivered): its key is kept to find it.
func (r *Record) add(at int64, endpoint, typ string, fate relay.Fate, key uint64, flags uint8, e *entry) {
	r.scratch = r.names.encode(r.scratch[:0], e)
	s := r.push()
	s.at, s.key, s.fate, s.flags = at, key, fate, flags
	s.endpoint, s.typ = r.names.number(endpoint), r.names.number(typ)
	switch {
	case flags&superseded != 0:
	case pending(fate):
		if len(r.pending) < maxPending {
			r.pending[key] = s.seq
		}
	case flags&late != 0:
		delete(r.pending, key)
	}
}

// Settle records an event's outcome settled after its request was answered (a write acknowledged late):
// it supersedes what the record said of the event, which keeps its time of arrival.
func (r *Record) Settle(o relay.EventOutcome) {
	p := prepared{sid: o.Event.ResourceSID(), key: r.keyHash(o.Event.Endpoint, o.Event.Source, o.Event.ID)}
	if r.cfg.KeepData {
		p.data = r.redactData(o.Event)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	at := time.Now().UnixNano()
	if old := r.pendingSlot(p.key); old != nil {
		at, old.flags = old.at, old.flags|superseded
	} else if len(r.early) < maxPending {
		// The write landed before the receiver told the record about its request, which it is about to:
		// that entry (failed, still being written) is older news than this one.
		r.early[p.key] = true
	}
	r.add(at, o.Event.Endpoint, o.Event.Type, o.Fate, p.key, late, r.entry(&o, &p))
}

// Redelivered records what the spool's drainer delivered to sink: each message acknowledged (errs[i]
// nil) leaves the spool, and its event's delivery to sink is no longer spooled, at the Position the sink
// gave, if any. (A message the sink refused for good was dead-lettered, and is also nil: without a
// Position the record says it left the spool.)
func (r *Record) Redelivered(sink string, msgs []relay.Message, errs []error) {
	for i, m := range msgs {
		if errs[i] != nil || m.Event == nil {
			continue
		}
		key := r.keyHash(m.Event.Endpoint, m.Event.Source, m.Event.ID)
		r.mu.Lock()
		if old := r.pendingSlot(key); old != nil {
			r.unspool(old, sink, m.Position)
		}
		r.mu.Unlock()
	}
}

// unspool supersedes old with the same event whose delivery to sink has left the spool.
func (r *Record) unspool(old *slot, sink string, at relay.Position) {
	e := r.names.decode(r.payload(old))
	fate := relay.Delivered
	for i := range e.sinks {
		d := &e.sinks[i]
		if d.sink == sink && d.spooled {
			d.spooled, d.pos = false, at
			if !at.Set {
				d.err = "left the spool: delivered, or dead-lettered if the sink refused it for good"
			}
		}
		if d.spooled {
			fate = relay.Spooled
		}
	}
	old.flags |= superseded
	endpoint, typ := r.names.name(old.endpoint), r.names.name(old.typ)
	r.add(old.at, endpoint, typ, fate, old.key, late, &e)
}

// pendingSlot returns the slot of a spooled or failed event by its key's hash, while the ring holds it.
func (r *Record) pendingSlot(key uint64) *slot {
	seq, ok := r.pending[key]
	if !ok {
		return nil
	}
	if !r.holds(seq) {
		delete(r.pending, key)
		return nil
	}
	if s := r.slotAt(seq); s.key == key && s.flags&superseded == 0 {
		return s
	}
	return nil
}
