package kafka

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	kafkago "github.com/segmentio/kafka-go"
)

// Record is a record read back from a topic.
type Record struct {
	Topic      string
	Partition  int
	Offset     int64
	Key, Value []byte
	Headers    []Header
	Time       time.Time
}

// Header is a record header.
type Header struct {
	Key   string
	Value []byte
}

// Header returns the value of the record's first header named key, "" when it has none.
func (r Record) Header(key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

func recordOf(m kafkago.Message) Record {
	hs := make([]Header, len(m.Headers))
	for i, h := range m.Headers {
		hs[i] = Header{Key: h.Key, Value: h.Value}
	}
	return Record{Topic: m.Topic, Partition: m.Partition, Offset: m.Offset, Key: m.Key, Value: m.Value, Headers: hs, Time: m.Time}
}

// ReadTopic calls fn for every record of topic, partition by partition, from the first offset to the end
// offset each partition has when ReadTopic reaches it: records written meanwhile are not read. cfg is a
// sink configuration with its Defaults: ReadTopic uses its brokers, TLS and SASL. `relay dlq replay` reads
// the dead-letter topic with it, and the load generator counts what reached Kafka.
func ReadTopic(ctx context.Context, cfg Config, topic string, fn func(Record) error) error {
	tlsCfg, err := cfg.TLS.tlsConfig()
	if err != nil {
		return err
	}
	mech, err := cfg.SASL.mechanism()
	if err != nil {
		return err
	}
	d := &kafkago.Dialer{Timeout: time.Duration(cfg.DialTimeout), ClientID: cfg.ClientID, TLS: tlsCfg, SASLMechanism: mech, DualStack: true}
	var conn *kafkago.Conn
	for _, b := range cfg.Brokers {
		if conn, err = d.DialContext(ctx, "tcp", b); err == nil {
			break
		}
	}
	if conn == nil {
		return fmt.Errorf("kafka: no broker answered: %w", err)
	}
	parts, err := conn.ReadPartitions(topic)
	conn.Close()
	if err != nil {
		return fmt.Errorf("kafka: partitions of %s: %w", topic, err)
	}
	slices.SortFunc(parts, func(a, b kafkago.Partition) int { return a.ID - b.ID })
	for _, p := range parts {
		if err := readPartition(ctx, d, cfg.Brokers[0], topic, p.ID, fn); err != nil {
			return err
		}
	}
	return nil
}

func readPartition(ctx context.Context, d *kafkago.Dialer, broker, topic string, partition int, fn func(Record) error) error {
	pc, err := d.DialLeader(ctx, "tcp", broker, topic, partition)
	if err != nil {
		return fmt.Errorf("kafka: leader of %s/%d: %w", topic, partition, err)
	}
	defer pc.Close()
	first, last, err := pc.ReadOffsets()
	if err != nil {
		return fmt.Errorf("kafka: offsets of %s/%d: %w", topic, partition, err)
	}
	if _, err := pc.Seek(first, kafkago.SeekAbsolute); err != nil {
		return err
	}
	for off := first; off < last; {
		if dl, ok := ctx.Deadline(); ok {
			_ = pc.SetReadDeadline(dl)
		} else {
			_ = pc.SetReadDeadline(time.Now().Add(30 * time.Second))
		}
		batch := pc.ReadBatch(1, 16<<20)
		for off < last {
			m, err := batch.ReadMessage()
			if err != nil {
				break
			}
			off = m.Offset + 1
			if err := fn(recordOf(m)); err != nil {
				batch.Close()
				return err
			}
		}
		if err := batch.Close(); err != nil && off < last && !errors.Is(err, context.Canceled) {
			return fmt.Errorf("kafka: read %s/%d at %d: %w", topic, partition, off, err)
		}
	}
	return nil
}
