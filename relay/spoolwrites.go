package relay

import (
	"context"
	"sync"
)

// This file keeps a spooled message from reaching its sink twice. When only the spool reserve of a
// request's deadline is left and a write to a sink that spools is still in flight, the messages go to
// the spool (the request can then answer 200) and the write goes on. If it lands, the spooled copy must
// not be delivered again: the spool's drainer, through Redeliver, waits for the write still in flight and
// skips the messages it landed. What this cannot cover is said in docs/durability.md: a write that timed
// out after the sink stored it, and a write that lands after the drainers stopped (shutdown, crash).

// spooledWrites are the writes in flight whose messages the spool holds, by message.
type spooledWrites struct {
	mu sync.Mutex
	m  map[spoolKey]spooledRef
}

// spoolKey names a message in the spool: its sink, topic and event.
type spoolKey struct{ sink, topic, event string }

// spooledRef is a message's place in a write still in flight.
type spooledRef struct {
	w *spooledWrite
	i int
}

// spooledWrite is one write still in flight: errs holds one outcome per message once done is closed.
type spooledWrite struct {
	done chan struct{}
	errs []error
}

func keyOf(sink string, m Message) (spoolKey, bool) {
	if m.Event == nil || m.Event.IsTest() { // test events share their id: never matched
		return spoolKey{}, false
	}
	return spoolKey{sink, m.Topic, m.Event.DedupeKey()}, true
}

// add records w as the write in flight of ps, and returns the keys it recorded.
func (s *spooledWrites) add(sink string, ps []pending, w *spooledWrite) []spoolKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[spoolKey]spooledRef{}
	}
	keys := make([]spoolKey, 0, len(ps))
	for i, pd := range ps {
		if k, ok := keyOf(sink, pd.msg); ok {
			s.m[k] = spooledRef{w, i}
			keys = append(keys, k)
		}
	}
	return keys
}

// remove forgets the keys that still name w.
func (s *spooledWrites) remove(keys []spoolKey, w *spooledWrite) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range keys {
		if s.m[k].w == w {
			delete(s.m, k)
		}
	}
}

// landed tells the drainer about a spooled message: whether a write of it was in flight when it was
// spooled (known), and if so, waiting for that write within ctx, whether it landed. A message whose
// write failed is forgotten here: the drainer writes it. err is ctx's error when ctx ended first; the
// message then stays known, for the drainer's next pass.
func (s *spooledWrites) landed(ctx context.Context, sink string, m Message) (landed, known bool, err error) {
	k, ok := keyOf(sink, m)
	if !ok {
		return false, false, nil
	}
	s.mu.Lock()
	ref, ok := s.m[k]
	s.mu.Unlock()
	if !ok {
		return false, false, nil
	}
	select {
	case <-ref.w.done:
	case <-ctx.Done():
		return false, true, ctx.Err()
	}
	s.remove([]spoolKey{k}, ref.w)
	return ref.w.errs[ref.i] == nil, true, nil
}

// spoolInFlight spools ps, whose write res will deliver, while that write goes on. It reports false when
// the spool did not take them: the caller then waits for the write's own outcome.
func (p *Pipeline) spoolInFlight(s Spool, name string, ps []pending, res <-chan []error) ([]error, bool) {
	w := &spooledWrite{done: make(chan struct{})}
	keys := p.spooled.add(name, ps, w) // before the spool holds them: the drainer must find the write
	errs := p.spool(s, name, ps, allIndexes(len(ps)), make([]error, len(ps)))
	if errs[0] != errSpooled { // the spool takes all of them or none
		p.spooled.remove(keys, w)
		return nil, false
	}
	work := p.late.start(true)
	go func() {
		w.errs = <-res
		close(w.done)
		landed := true
		for _, err := range w.errs {
			landed = landed && err == nil
		}
		p.late.finish(work, landed)
	}()
	return errs, true
}
