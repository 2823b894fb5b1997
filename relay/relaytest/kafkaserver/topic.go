package kafkaserver

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

const topicTimeout = 30 * time.Second

// createTopic creates a topic through the brokers at addrs and waits until the metadata of every
// one of them shows each partition with a live leader and a full ISR of rf replicas, and every
// partition answers ListOffsets (so a produce would not get NOT_LEADER_OR_FOLLOWER).
func createTopic(t testing.TB, addrs []string, name string, partitions, rf int, configs map[string]string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), topicTimeout)
	defer cancel()
	client, done := newClient(addrs, 10*time.Second)
	defer done()

	entries := make([]kafka.ConfigEntry, 0, len(configs))
	for k, v := range configs {
		entries = append(entries, kafka.ConfigEntry{ConfigName: k, ConfigValue: v})
	}
	for {
		res, err := client.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{
			Topic:             name,
			NumPartitions:     partitions,
			ReplicationFactor: rf,
			ConfigEntries:     entries,
		}}})
		if err == nil {
			err = res.Errors[name]
		}
		if err == nil || errors.Is(err, kafka.TopicAlreadyExists) {
			break
		}
		if !retriableCreate(err) || ctx.Err() != nil {
			t.Fatalf("kafkaserver: create topic %q: %v", name, err)
		}
		sleep(ctx, 100*time.Millisecond)
	}

	// One client per broker, so that each broker's own metadata is checked.
	clients := make([]*kafka.Client, len(addrs))
	for i, addr := range addrs {
		c, done := newClient([]string{addr}, 10*time.Second)
		defer done()
		clients[i] = c
	}
	var last string
	for ctx.Err() == nil {
		last = ""
		for i, c := range clients {
			if last = topicReady(ctx, c, name, partitions, rf); last != "" {
				last = addrs[i] + ": " + last
				break
			}
		}
		// The metadata cache names the leader a moment before the partition is online in the
		// replica manager; until then a produce gets NOT_LEADER_OR_FOLLOWER. ListOffsets takes
		// the same path as a produce.
		if last == "" {
			if last = partitionsOnline(ctx, client, name, partitions); last == "" {
				return
			}
		}
		sleep(ctx, 50*time.Millisecond)
	}
	t.Fatalf("kafkaserver: topic %q not ready after %v: %s", name, topicTimeout, last)
}

// DeleteTopic deletes a topic and waits until the broker's metadata no longer has it.
func (s *Server) DeleteTopic(t testing.TB, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), topicTimeout)
	defer cancel()
	client, done := s.client(10 * time.Second)
	defer done()
	res, err := client.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: []string{name}})
	if err == nil {
		err = res.Errors[name]
	}
	if err != nil {
		t.Fatalf("kafkaserver: delete topic %q: %v", name, err)
	}
	for ctx.Err() == nil {
		md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{name}})
		if err == nil && len(md.Topics) == 1 && errors.Is(md.Topics[0].Error, kafka.UnknownTopicOrPartition) {
			return
		}
		sleep(ctx, 50*time.Millisecond)
	}
	t.Fatalf("kafkaserver: topic %q still there %v after it was deleted", name, topicTimeout)
}

// topicReady returns "" when the metadata from client shows every partition of topic with a
// leader and rf in-sync replicas, all of them live brokers, else why not.
func topicReady(ctx context.Context, client *kafka.Client, topic string, partitions, rf int) string {
	md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	switch {
	case err != nil:
		return err.Error()
	case len(md.Topics) != 1 || md.Topics[0].Error != nil:
		return fmt.Sprintf("topic metadata: %+v", md.Topics)
	case len(md.Topics[0].Partitions) != partitions:
		return fmt.Sprintf("%d partitions, want %d", len(md.Topics[0].Partitions), partitions)
	}
	for _, p := range md.Topics[0].Partitions {
		// kafka-go reports a leader or replica that is not a live broker as Broker{} (no host).
		ready := p.Error == nil && p.Leader.Host != "" && len(p.Isr) == rf
		for _, r := range p.Isr {
			ready = ready && r.Host != ""
		}
		if !ready {
			return fmt.Sprintf("partition %d not ready: leader %d, ISR %v, error %v", p.ID, p.Leader.ID, p.Isr, p.Error)
		}
	}
	return ""
}

// retriableCreate reports whether a CreateTopics failure may pass: a network error, or a broker
// briefly fenced when a loaded machine delays its heartbeats (BROKER_NOT_AVAILABLE, or
// INVALID_REPLICATION_FACTOR since too few brokers are unfenced to hold the replicas).
func retriableCreate(err error) bool {
	var kerr kafka.Error
	if !errors.As(err, &kerr) {
		return true
	}
	return kerr.Temporary() || kerr == kafka.BrokerNotAvailable || kerr == kafka.InvalidReplicationFactor
}

// partitionsOnline returns "" when every partition of topic answers ListOffsets, else why not.
func partitionsOnline(ctx context.Context, client *kafka.Client, topic string, partitions int) string {
	reqs := make([]kafka.OffsetRequest, partitions)
	for p := range reqs {
		reqs[p] = kafka.LastOffsetOf(p)
	}
	res, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	if err != nil {
		return "list offsets: " + err.Error()
	}
	if len(res.Topics[topic]) != partitions {
		return fmt.Sprintf("list offsets: %+v", res.Topics)
	}
	for _, p := range res.Topics[topic] {
		if p.Error != nil {
			return fmt.Sprintf("list offsets of partition %d: %v", p.Partition, p.Error)
		}
	}
	return ""
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
