// Package devkafka provides an in-process, in-memory Kafka-protocol broker (franz-go's kfake) and a tail
// of everything written to it, for `relay dev`. It is not Kafka and keeps nothing: never use it for
// real events.
package devkafka

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Broker is a single in-memory broker on 127.0.0.1.
type Broker struct {
	c *kfake.Cluster
}

// Start starts the broker on port (0 for any free port); topics are created when first written.
func Start(port int) (*Broker, error) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(port), kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(3))
	if err != nil {
		return nil, fmt.Errorf("devkafka: %w", err)
	}
	return &Broker{c: c}, nil
}

// Addr returns the broker's host:port.
func (b *Broker) Addr() string { return b.c.ListenAddrs()[0] }

// Close stops the broker; everything it held is gone. It never fails.
func (b *Broker) Close(context.Context) error {
	b.c.Close()
	return nil
}

// Tail prints every record written to any topic, as it arrives, until ctx ends.
func (b *Broker) Tail(ctx context.Context, w io.Writer) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.ConsumeRegex(), kgo.ConsumeTopics(".*"),
		kgo.MetadataMinAge(200*time.Millisecond), kgo.MetadataMaxAge(time.Second))
	if err != nil {
		return fmt.Errorf("devkafka: tail: %w", err)
	}
	defer cl.Close()
	for ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		fs.EachRecord(func(r *kgo.Record) {
			hs := make([]string, 0, len(r.Headers))
			for _, h := range r.Headers {
				hs = append(hs, h.Key+"="+string(h.Value))
			}
			sort.Strings(hs)
			fmt.Fprintf(w, "── topic=%s partition=%d offset=%d key=%s\n   headers: %s\n   value: %s\n",
				r.Topic, r.Partition, r.Offset, r.Key, strings.Join(hs, " "), r.Value)
		})
	}
	return nil
}
