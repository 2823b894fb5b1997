package kafkaserver

import (
	"context"
	"testing"
	"time"

	"github.com/relaykit/twilio-relay/relay"
	"github.com/relaykit/twilio-relay/relay/kafka"
)

// ReadTopic returns every record of topic on the broker at addr, partition by partition (so in order
// per key), read with the relay's own topic reader. addr may list several brokers, comma-separated
// (Cluster.Bootstrap): the partitions are listed through the first that answers, and each
// partition's leader is looked up through the first one, which must be up.
func ReadTopic(t testing.TB, addr, topic string) []kafka.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out []kafka.Record
	err := kafka.ReadTopic(ctx, kafka.Config{Brokers: relay.ParseList(addr)}.Defaults(), topic, func(r kafka.Record) error {
		out = append(out, r)
		return nil
	})
	if err != nil {
		t.Fatalf("read topic %s: %v", topic, err)
	}
	return out
}
