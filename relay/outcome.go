package relay

import "time"

// Fate is what became of one event of a batch.
type Fate uint8

// The fates of an event. Only Failed leaves it unsafe: the request must then be retried.
const (
	Delivered    Fate = iota // every sink it was routed to acknowledged it
	Spooled                  // the spool holds it for at least one sink; the others acknowledged it
	Duplicate                // delivered before: by this process, by a concurrent request, or by another replica
	DeadLettered             // in the dead-letter destination; Reason says why
	Dropped                  // no route matches it and no_route is drop
	Failed                   // not safe yet: Err says why
)

var fateNames = [...]string{"delivered", "spooled", "duplicate", "dead_lettered", "dropped", "failed"}

// String returns the fate's name as the relay writes it (metrics, JSON): "dead_lettered" …
func (f Fate) String() string {
	if int(f) < len(fateNames) {
		return fateNames[f]
	}
	return "unknown"
}

// MarshalText writes the fate's name.
func (f Fate) MarshalText() ([]byte, error) { return []byte(f.String()), nil }

// Counts counts what became of a batch's events. It is the body of a 200 answer.
type Counts struct {
	Delivered    int `json:"delivered"` // spooled events count as delivered: they are safe
	Duplicates   int `json:"duplicates"`
	DeadLettered int `json:"dead_lettered"` // body-level rejects included
	Dropped      int `json:"dropped"`
}

// Outcome is what became of a batch: counted, and event by event.
type Outcome struct {
	Counts
	// Events holds one entry per event of the batch, in the batch's order.
	Events []EventOutcome `json:"-"`
}

// EventOutcome is what became of one event, and of each of its deliveries.
type EventOutcome struct {
	Event *Event
	Fate  Fate
	// Reason is the dead-letter reason (ReasonNoRoute, ReasonSinkRejected …) of a dead-lettered or dropped
	// event, and Detail the dead letter's detail for people.
	Reason, Detail string
	// Err is why a failed event is not safe: its first failure.
	Err error
	// Sinks are the event's deliveries, in route and target order, each with its sink's final answer.
	Sinks []SinkOutcome
	// DeadLetterAt is where the dead-letter sink stored the event's dead letter, when it says.
	DeadLetterAt Position
}

// SinkOutcome is one delivery of an event: the route that chose it, the sink, the topic, and the answer.
type SinkOutcome struct {
	Route, Sink, Topic string
	// Err is the sink's final error; nil when it acknowledged the message or the spool took it.
	Err     error
	Spooled bool
	// Position is where the sink stored the message, when it says (see Sink).
	Position Position
	// Attempts is how many writes to the sink the message took; Took is the time from the first to the
	// sink's final answer (or to the spool's).
	Attempts int
	Took     time.Duration
}

// fail marks the event failed with err, unless it failed already: the first failure is the one kept.
func (o *EventOutcome) fail(err error) {
	if o.Fate != Failed {
		o.Fate, o.Err = Failed, err
	}
}

// deadLetter marks the event dead-lettered, unless it failed or was dead-lettered already.
func (o *EventOutcome) deadLetter(reason, detail string) {
	if o.Fate != Failed && o.Fate != DeadLettered {
		o.Fate, o.Reason, o.Detail = DeadLettered, reason, detail
	}
}

// count adds the events' fates to c.
func (c *Counts) count(events []EventOutcome) {
	for i := range events {
		switch events[i].Fate {
		case Delivered, Spooled:
			c.Delivered++
		case Duplicate:
			c.Duplicates++
		case DeadLettered:
			c.DeadLettered++
		case Dropped:
			c.Dropped++
		}
	}
}
