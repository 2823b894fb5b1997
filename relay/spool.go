package relay

import (
	"context"
	"errors"
	"time"
)

// ErrSpoolFull is returned by Spool.Append when the spool cannot take more: the relay then answers 503 and
// Twilio keeps the events.
var ErrSpoolFull = errors.New("spool full")

// Spool durably stores the messages a sink could not take within a request's deadline, so that the relay
// can answer 200 and deliver them later, in the order they were stored.
//
// Append returns nil only once the messages are on disk (fsync'd). Has reports whether a sink has stored
// messages not yet delivered: new messages for that sink then go behind them instead of overtaking them.
// Both are safe for concurrent use. The spool's own drainer delivers what it holds, through
// Pipeline.Redeliver.
type Spool interface {
	Has(sink string) bool
	Append(sink string, msgs []Message) error
}

// SpoolStat describes what a spool holds for one sink.
type SpoolStat struct {
	Sink    string
	Depth   int       // messages waiting
	Bytes   int64     // their size on disk
	Oldest  time.Time // when the oldest waiting message was stored; zero when empty
	Spooled uint64    // messages stored since start
	Drained uint64    // messages delivered from the spool since start
}

// spoolFor returns the spool for the named sink, or nil when that sink does not spool.
func (p *Pipeline) spoolFor(sink string) Spool {
	if p.cfg.Spool == nil || !p.cfg.SpoolSinks[sink] {
		return nil
	}
	return p.cfg.Spool
}

// Redeliver makes one attempt to write spooled messages to their sink, and dead-letters the ones the sink
// refuses for good (retrying the dead letters within ctx). It returns one error per message: nil when the
// message is delivered or safely dead-lettered and may leave the spool, else the transient failure.
func (p *Pipeline) Redeliver(ctx context.Context, sink string, msgs []Message) []error {
	s, ok := p.cfg.Sinks[sink]
	var errs []error
	if !ok {
		errs = PerMessage(Permanent(errors.New("no sink named "+sink)), len(msgs))
	} else {
		start := time.Now()
		err := s.Write(ctx, msgs)
		p.cfg.Observer.SinkWrite(sink, len(msgs), time.Since(start), err)
		errs = PerMessage(err, len(msgs))
	}
	var dls []pending
	var idx []int
	for i, err := range errs {
		if err != nil && IsPermanent(err) {
			ev := msgs[i].Event
			p.cfg.Observer.EventDeadLettered(ev.Endpoint, ev.Type, ReasonSinkRejected)
			dl := NewDeadLetter(ev.Endpoint, ev.Raw, ReasonSinkRejected, "sink "+sink+": "+err.Error(), ev, time.Now())
			dls = append(dls, pending{msg: Message{Event: dl, Topic: p.cfg.DeadLetter.Topic, Key: []byte(ev.ID)}})
			idx = append(idx, i)
		} else if err == nil {
			p.cfg.Observer.EventDelivered(msgs[i].Event.Endpoint, msgs[i].Event.Type, sink)
		}
	}
	if len(dls) > 0 {
		for j, err := range p.write(ctx, p.cfg.DeadLetter.Sink, dls) {
			if safe(err) {
				err = nil // the dead letter is safe
			}
			errs[idx[j]] = err
		}
	}
	return errs
}
