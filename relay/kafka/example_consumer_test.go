package kafka_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/relaykit/twilio-relay/relay"
	"github.com/relaykit/twilio-relay/relay/kafka"
	"github.com/relaykit/twilio-relay/relay/relaytest/kafkaserver"
)

// A consumer of the relay's topics sees each event at least once: kafka-go has no idempotent producer,
// so a batch the broker appended but whose acknowledgement was lost is appended again when it is retried
// (docs/kafka.md). The consumer drops the repeats by the event's CloudEvents identity, which the relay
// puts in every record's headers: ce_source and ce_id. A repeat has the same key as the original, so it
// is in the same partition and reaches the same member of a consumer group.

// header returns the value of the record's header name, "" when absent.
func header(m kafkago.Message, name string) string {
	for _, h := range m.Headers {
		if h.Key == name {
			return string(h.Value)
		}
	}
	return ""
}

// consumeOnce reads r until ctx ends or handle fails, hands each event to handle once, and commits
// every record it has read. It remembers an event for window (Twilio retries for 4 hours) after the
// record's time: a consumer that must survive its own restarts keeps this memory where it writes its
// results (a unique key on ce_source + ce_id, an upsert).
func consumeOnce(ctx context.Context, r *kafkago.Reader, window time.Duration, handle func(kafkago.Message) error) error {
	type seenAt struct {
		key string
		at  time.Time
	}
	seen := map[string]bool{}
	var order []seenAt // oldest first, to forget what is older than window
	for {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			return err
		}
		key := header(m, "ce_source") + "\x00" + header(m, "ce_id")
		if !seen[key] {
			if err := handle(m); err != nil {
				return err // not committed: read again after a restart
			}
			seen[key] = true
			order = append(order, seenAt{key, m.Time})
		}
		for len(order) > 0 && m.Time.Sub(order[0].at) > window {
			delete(seen, order[0].key)
			order = order[1:]
		}
		if err := r.CommitMessages(ctx, m); err != nil {
			return err
		}
	}
}

// A consumer group member that handles each Twilio event once, however many times it is in the topic.
func Example_consumeOnce() {
	r := kafkago.NewReader(kafkago.ReaderConfig{
		Brokers: []string{"kafka-1:9092"},
		GroupID: "billing",
		Topic:   "twilio.messaging",
	})
	defer r.Close()
	err := consumeOnce(context.Background(), r, 4*time.Hour, func(m kafkago.Message) error {
		fmt.Printf("%s %s %s\n", header(m, "ce_type"), header(m, "ce_id"), m.Value)
		return nil
	})
	log.Fatal(err)
}

// TestConsumeOnce runs the example's consumer against a real broker holding duplicates, as the relay
// writes them: each event is handled once.
func TestConsumeOnce(t *testing.T) {
	srv := kafkaserver.Start(t, kafkaserver.LibsFromEnv(t))
	topic := "consume-once"
	srv.CreateTopic(t, topic, 3)
	s := newSink(t, srv.Addr(), kafka.Config{})
	msg := func(id, sid string) relay.Message {
		return relay.Message{Topic: topic, Key: []byte(sid), Event: &relay.Event{Endpoint: "events", SpecVersion: "1.0",
			ID: id, Source: "/src", Type: "com.twilio.messaging.message.delivered", Data: []byte(`{"id":"` + id + `"}`)}}
	}
	mustWrite(t, s, msg("EZ1", "SM1"), msg("EZ2", "SM2"), msg("EZ3", "SM3"))
	mustWrite(t, s, msg("EZ2", "SM2"), msg("EZ3", "SM3")) // a retry after a lost acknowledgement
	mustWrite(t, s, msg("EZ3", "SM3"), msg("EZ4", "SM4"))
	// Last in each resource's partition: once the consumer has handled these, it has read every record.
	mustWrite(t, s, msg("end1", "SM1"), msg("end2", "SM2"), msg("end3", "SM3"), msg("end4", "SM4"))
	r := kafkago.NewReader(kafkago.ReaderConfig{Brokers: []string{srv.Addr()}, GroupID: "once", Topic: topic,
		StartOffset: kafkago.FirstOffset, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	handled, ends := map[string]int{}, 0
	err := consumeOnce(ctx, r, 4*time.Hour, func(m kafkago.Message) error {
		if id := header(m, "ce_id"); id[:2] == "EZ" {
			handled[id]++
		} else if ends++; ends == 4 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("consume: %v (handled %v, %d of 4 ends)", err, handled, ends)
	}
	if fmt.Sprint(handled) != "map[EZ1:1 EZ2:1 EZ3:1 EZ4:1]" {
		t.Fatalf("handled %v, want each of the 4 events of the 7 records once", handled)
	}
}
