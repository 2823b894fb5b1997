package relay

import (
	"context"
	"errors"
	"fmt"
	"strconv"
)

// Message is one event addressed to one sink: the event, the topic (or subject, stream, path: whatever
// the sink calls it) and the partition key chosen by the route.
type Message struct {
	Event *Event
	Topic string
	Key   []byte
	// Position is where the sink stored the message, when it can tell (see Sink); zero until then.
	Position Position
}

// Position is where a destination stored a message, in its own terms: Kafka's partition and offset, a
// JetStream stream and sequence, a Redis stream entry id, a file sink's byte offset. Set is false when the
// sink did not say. It is for people (the inspector, `relay trace`), never for delivery decisions.
type Position struct {
	Set bool
	// Partition is Kafka's partition; NoPartition for destinations without partitions.
	Partition int32
	// Offset is the message's number in its log: Kafka's offset, JetStream's stream sequence, or the byte
	// offset of the file sink's line.
	Offset int64
	// Stream names the log when the topic does not: the JetStream stream that stored the message.
	Stream string
	// ID is the destination's own id for the message, where it has one: a Redis stream entry id.
	ID string
}

// NoPartition is the Partition of a Position in a destination without partitions.
const NoPartition = -1

// String describes the position for people: "partition 3 offset 1207", "stream TWILIO seq 52",
// "id 1712345678901-0", "offset 4096"; "" when it is not set.
func (p Position) String() string {
	switch {
	case !p.Set:
		return ""
	case p.ID != "":
		return "id " + p.ID
	case p.Stream != "":
		return "stream " + p.Stream + " seq " + strconv.FormatInt(p.Offset, 10)
	case p.Partition != NoPartition:
		return "partition " + strconv.FormatInt(int64(p.Partition), 10) + " offset " + strconv.FormatInt(p.Offset, 10)
	}
	return "offset " + strconv.FormatInt(p.Offset, 10)
}

// Sink delivers messages to one destination.
//
// Write returns nil only when the destination has acknowledged every message. Otherwise it returns either
// a WriteErrors (one entry per message, nil where that message was acknowledged) or any other error, which
// means no message may be taken as acknowledged. Errors are transient unless marked with Permanent or
// Misconfigured; a permanent error means this message can never be written (too large, invalid topic)
// and the caller dead-letters it; a misconfigured one means the destination refuses every message until
// someone acts (missing topic, refused credentials), and the caller neither retries it within the
// request nor dead-letters it. Write does not retry beyond what one attempt needs: the Pipeline retries transient
// failures with backoff inside the request deadline, and gives up when ctx ends. Write is safe for
// concurrent use.
//
// A sink that can tell where a message landed (a Kafka offset, a Redis stream entry id …) sets
// msgs[i].Position on each message it acknowledged, before Write returns, and touches nothing else of
// msgs; a sink that cannot leaves Position alone. Position is information for people only: nothing
// depends on it, so a sink without it is still complete.
//
// Close flushes what is buffered and releases the sink's resources; the owner calls it once, after the
// last Write has returned.
type Sink interface {
	Write(ctx context.Context, msgs []Message) error
	Close(ctx context.Context) error
}

// Pinger is implemented by sinks that can tell whether their destination is reachable. /readyz uses it.
type Pinger interface {
	Ping(ctx context.Context) error
}

// WriteErrors reports, message by message, the outcome of a Write: nil where the message was acknowledged.
type WriteErrors []error

func (es WriteErrors) Error() string {
	n, first := 0, error(nil)
	for _, e := range es {
		if e != nil {
			if first == nil {
				first = e
			}
			n++
		}
	}
	if n == 0 {
		return "no errors"
	}
	return fmt.Sprintf("%d of %d messages failed, first: %v", n, len(es), first)
}

// PerMessage spreads the result of a Write of n messages over the messages: the WriteErrors entries when
// err is a WriteErrors of n, else err for every message (nil for all when err is nil).
func PerMessage(err error, n int) []error {
	out := make([]error, n)
	var we WriteErrors
	switch {
	case err == nil:
	case errors.As(err, &we) && len(we) == n:
		copy(out, we)
	default:
		for i := range out {
			out[i] = err
		}
	}
	return out
}

// Unwrap returns the per-message errors, so that errors.Is and errors.As see them.
func (es WriteErrors) Unwrap() []error {
	out := make([]error, 0, len(es))
	for _, e := range es {
		if e != nil {
			out = append(out, e)
		}
	}
	return out
}

// Count returns how many messages failed.
func (es WriteErrors) Count() int {
	n := 0
	for _, e := range es {
		if e != nil {
			n++
		}
	}
	return n
}
