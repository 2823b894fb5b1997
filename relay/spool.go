package relay

import (
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
