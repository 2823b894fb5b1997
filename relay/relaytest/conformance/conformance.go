// Package conformance is the suite every relay.Sink passes against its real destination. A sink's test
// starts the destination, then runs
//
//	conformance.Run(t, func(t *testing.T) (relay.Sink, conformance.Reader) {
//		return newSinkUnderTest(t), reader // reader reads the destination back
//	})
//
// The suite checks the relay.Sink contract: Write returns nil only when every message is readable back;
// a failed Write reports per message (a WriteErrors as long as the batch, nil where acknowledged);
// order per key holds within one Write and across sequential Writes; the CloudEvents attributes and the
// data bytes arrive intact (JSON object, binary, empty); a message the sink can never write fails
// permanently while the others in its batch succeed; an ended context makes Write return promptly with
// a transient error; Writes from many goroutines at once all land (run it with -race); Write after
// Close fails, and a second Close neither panics nor hangs. Where the Reader tells where a record is
// held, the Position the sink set on the message says the same.
package conformance

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/relaykit/twilio-relay/relay"
)

// Record is one message as the destination holds it, mapped back to CloudEvents terms by the Reader.
type Record struct {
	// Attributes holds the context attributes and extensions by name: specversion, id, source, type,
	// subject, time, dataschema, datacontenttype (from the binding's content type in binary mode) and
	// each extension. Bindings carry no empty attribute, so none is listed.
	Attributes map[string]string
	// Data is the event data as stored: the payload in binary mode, decoded from data or data_base64 in
	// structured mode.
	Data []byte
	// Key is the message key as the destination keeps it; checked only when the Reader KeepsKeys.
	Key []byte
	// Position is where the destination holds the record (Kafka partition and offset, Redis entry id,
	// JetStream stream and sequence), when the Reader can tell. When it is set, the sink must have set
	// the same Position on the message it acknowledged.
	Position relay.Position
}

// Reader reads back what a sink's destination holds, and knows what the suite needs of it.
type Reader interface {
	// Prepare readies a fresh topic for writing (Kafka: create it; JetStream: a stream that captures
	// the subject). The suite calls it once per topic, before the first write to it.
	Prepare(t *testing.T, topic string)
	// Read returns every record the destination holds under topic, oldest first. It does not wait:
	// what Write acknowledged must be readable at once.
	Read(t *testing.T, topic string) []Record
	// KeepsKeys reports whether the destination keeps message keys (Record.Key is then checked).
	KeepsKeys() bool
	// Refused returns a message to topic that the sink refuses with a permanent error, or false when
	// the sink has no such message (the check is skipped).
	Refused(topic string) (relay.Message, bool)
	// Stall makes writes to topic (which the suite does not Prepare) hang at the destination until
	// release is called, or returns false when the destination cannot be made to hang (the check is
	// skipped).
	Stall(t *testing.T, topic string) (release func(), ok bool)
}

// Prompt bounds how long after its context ends a Write may take to return.
const Prompt = 2 * time.Second

// Run runs the suite. newSink returns a fresh sink and the Reader of its destination; every subtest
// takes its own sink and its own topics, and the suite closes each sink it takes.
func Run(t *testing.T, newSink func(t *testing.T) (relay.Sink, Reader)) {
	s := &suite{newSink: newSink, run: fmt.Sprintf("%06x", rand.Uint32()>>8)}
	t.Run("WriteReadBack", s.writeReadBack)
	t.Run("OrderPerKeyInOneWrite", s.orderInOneWrite)
	t.Run("OrderAcrossWrites", s.orderAcrossWrites)
	t.Run("PerMessageResults", s.perMessageResults)
	t.Run("CancelledContext", s.cancelledContext)
	t.Run("DeadlineWhileStalled", s.deadlineWhileStalled)
	t.Run("CancelMidWrite", s.cancelMidWrite)
	t.Run("ConcurrentWrites", s.concurrentWrites)
	t.Run("Close", s.close)
}

type suite struct {
	newSink func(t *testing.T) (relay.Sink, Reader)
	run     string // tells this run's topics and ids from another's on a shared destination
	topics  int
	ids     int
}

// open takes a fresh sink that is closed at the end of the test.
func (s *suite) open(t *testing.T) (relay.Sink, Reader) {
	t.Helper()
	sink, r := s.newSink(t)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := sink.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return sink, r
}

// write calls Write under a generous deadline and checks the shape of its result.
func write(t *testing.T, sink relay.Sink, msgs []relay.Message) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := sink.Write(ctx, msgs)
	checkShape(t, msgs, err)
	return err
}

// checkShape checks that a WriteErrors is as long as the batch and holds at least one error.
func checkShape(t *testing.T, msgs []relay.Message, err error) {
	t.Helper()
	var we relay.WriteErrors
	if errors.As(err, &we) {
		if len(we) != len(msgs) {
			t.Errorf("WriteErrors has %d entries for %d messages", len(we), len(msgs))
		}
		if we.Count() == 0 {
			t.Errorf("Write returned a WriteErrors without an error; want nil when every message is acknowledged")
		}
	}
}

// results spreads a Write's result over the messages: nil where acknowledged.
func results(msgs []relay.Message, err error) []error { return relay.PerMessage(err, len(msgs)) }

func mustWrite(t *testing.T, sink relay.Sink, msgs []relay.Message) {
	t.Helper()
	if err := write(t, sink, msgs); err != nil {
		t.Fatalf("Write of %d messages: %v", len(msgs), err)
	}
}
