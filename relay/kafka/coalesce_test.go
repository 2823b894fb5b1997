package kafka_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/relaykit/twilio-relay/relay"
	"github.com/relaykit/twilio-relay/relay/kafka"
	"github.com/relaykit/twilio-relay/relay/relaytest/kafkaserver"
)

// queuedWrite is one write made while the partition's request is in flight: its messages, how long it
// may wait, and what each message should come to.
type queuedWrite struct {
	name    string
	msgs    []relay.Message
	timeout time.Duration
	want    []string
}

// TestSinkCoalescedWrites: writes that queue behind a partition's request in flight go together in the
// next request, and each gets exactly its own messages' results: its own offsets, a refused message
// pinned on the write that holds it, the context's error for a write that gives up while queued (and
// none of its messages sent), and the writes' records contiguous, in the order the writes came.
func TestSinkCoalescedWrites(t *testing.T) {
	t.Parallel()
	srv := kafkaserver.Start(t, kafkaserver.LibsFromEnv(t))
	const topic = "coalesced"
	srv.CreateTopicWithConfig(t, topic, 1, map[string]string{"max.message.bytes": "4096"})
	s := newSink(t, srv.Addr(), kafka.Config{WriteTimeout: relay.Duration(10 * time.Second)})
	mustWrite(t, s, msg(topic, "SM1", event("EZwarm", "SM1")))
	big := event("EZbig", "SM1") // under the sink's max_message_bytes, over the topic's
	big.Data = fmt.Appendf(nil, `{"body":%q}`, make([]byte, 5000))
	three := func(prefix string) []relay.Message {
		var msgs []relay.Message
		for i := range 3 {
			id := fmt.Sprintf("EZ%s%d", prefix, i)
			msgs = append(msgs, msg(topic, "SM1", event(id, "SM1")))
		}
		return msgs
	}

	// Round 1: B, C and D queue behind A and share one request; E gives up while queued.
	before, _ := produceRequests(t, kafka.NewCollector(s))
	writes := []queuedWrite{
		{name: "B", msgs: three("b"), timeout: 20 * time.Second, want: []string{acked, acked, acked}},
		{name: "E", msgs: three("e")[:2], timeout: 300 * time.Millisecond, want: []string{transient, transient}},
		{name: "C", msgs: three("c"), timeout: 20 * time.Second, want: []string{acked, acked, acked}},
		{name: "D", msgs: three("d"), timeout: 20 * time.Second, want: []string{acked, acked, acked}},
	}
	behindPaused(t, srv, s, three("a"), writes)
	after, _ := produceRequests(t, kafka.NewCollector(s))
	if after-before != 2 {
		t.Errorf("%v produce requests for A and the three writes queued behind it, want 2 (A's, then B, C and D together)", after-before)
	}

	// Round 2: the queued writes' shared request is refused for C's big message: only that one fails.
	cBig := three("C")
	cBig = append(cBig[:1], append([]relay.Message{msg(topic, "SM1", big)}, cBig[1:]...)...)
	writes2 := []queuedWrite{
		{name: "B2", msgs: three("B"), timeout: 20 * time.Second, want: []string{acked, acked, acked}},
		{name: "C2", msgs: cBig, timeout: 20 * time.Second, want: []string{acked, permanent, acked, acked}},
		{name: "D2", msgs: three("D"), timeout: 20 * time.Second, want: []string{acked, acked, acked}},
	}
	behindPaused(t, srv, s, three("A"), writes2)

	// Every acknowledged message where its write said, and in the order the writes came.
	recs := readTopic(t, srv.Addr(), topic)
	var order []string
	for _, r := range recs {
		order = append(order, headers(t, r)["ce_id"])
	}
	want := "[EZwarm EZa0 EZa1 EZa2 EZb0 EZb1 EZb2 EZc0 EZc1 EZc2 EZd0 EZd1 EZd2 " +
		"EZA0 EZA1 EZA2 EZB0 EZB1 EZB2 EZC0 EZC1 EZC2 EZD0 EZD1 EZD2]"
	if fmt.Sprint(order) != want {
		t.Errorf("records in the partition:\n %v\nwant\n %s", order, want)
	}
	got := byID(t, recs)
	for _, w := range append(writes, writes2...) {
		for _, m := range w.msgs {
			r, ok := got[m.Event.ID]
			at := relay.Position{Set: true, Partition: int32(r.Partition), Offset: r.Offset}
			if ok != m.Position.Set || (ok && m.Position != at) {
				t.Errorf("write %s, %s: Write said %+v; in Kafka: %v at %+v", w.name, m.Event.ID, m.Position, ok, at)
			}
		}
	}
}

// behindPaused pauses the broker, writes first (its request waits on the broker), then each of writes
// in turn (they queue behind it), waits for the short-lived ones to give up, resumes the broker and
// checks every write's outcomes.
func behindPaused(t *testing.T, srv *kafkaserver.Server, s *kafka.Sink, first []relay.Message, writes []queuedWrite) {
	t.Helper()
	srv.Pause(t)
	results := make([]chan error, len(writes)+1)
	for i := range results {
		results[i] = make(chan error, 1)
	}
	go func() { results[0] <- write(t, s, 20*time.Second, first...) }()
	time.Sleep(200 * time.Millisecond) // its request now waits on the paused broker
	for i, w := range writes {
		go func() { results[i+1] <- write(t, s, w.timeout, w.msgs...) }()
		time.Sleep(50 * time.Millisecond) // queued in this order
	}
	for i, w := range writes {
		if w.timeout < time.Second { // gives up while the broker is paused
			wantOutcomes(t, <-results[i+1], w.want...)
			results[i+1] = nil
		}
	}
	srv.Resume(t)
	if err := <-results[0]; err != nil {
		t.Fatalf("the write in flight while the broker was paused: %v", err)
	}
	for i, w := range writes {
		if results[i+1] != nil {
			t.Run(w.name, func(t *testing.T) { wantOutcomes(t, <-results[i+1], w.want...) })
		}
	}
}
