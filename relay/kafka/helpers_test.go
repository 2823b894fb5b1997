package kafka_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/relaykit/twilio-relay/relay"
	"github.com/relaykit/twilio-relay/relay/kafka"
	"github.com/relaykit/twilio-relay/relay/relaytest/kafkaserver"
	kafkago "github.com/segmentio/kafka-go"
)

// newSink returns a sink for cfg (brokers filled in from addr when empty) closed in t.Cleanup.
func newSink(t testing.TB, addr string, cfg kafka.Config) *kafka.Sink {
	t.Helper()
	if len(cfg.Brokers) == 0 {
		cfg.Brokers = []string{addr}
	}
	s, err := kafka.New("test", cfg.Defaults(), discardLogger())
	if err != nil {
		t.Fatalf("kafka.New: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = s.Close(ctx)
	})
	return s
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// write calls s.Write with a timeout.
func write(t testing.TB, s *kafka.Sink, timeout time.Duration, msgs ...relay.Message) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return s.Write(ctx, msgs)
}

// mustWrite fails the test unless s.Write acknowledges every message.
func mustWrite(t testing.TB, s *kafka.Sink, msgs ...relay.Message) {
	t.Helper()
	if err := write(t, s, 20*time.Second, msgs...); err != nil {
		t.Fatalf("Write: %v", err)
	}
}

// writeErrors returns err as relay.WriteErrors of length n, failing the test otherwise.
func writeErrors(t testing.TB, err error, n int) relay.WriteErrors {
	t.Helper()
	var we relay.WriteErrors
	if !errors.As(err, &we) {
		t.Fatalf("Write returned %T %v, want relay.WriteErrors", err, err)
	}
	if len(we) != n {
		t.Fatalf("WriteErrors has %d entries, want one per message (%d): %v", len(we), n, err)
	}
	return we
}

// event returns a Twilio-like event with JSON data naming the resource sid.
func event(id, sid string) *relay.Event {
	return &relay.Event{
		SpecVersion: "1.0",
		ID:          id,
		Source:      "/2010-04-01/Accounts/AC123/Messages/" + sid + ".json",
		Type:        "com.twilio.messaging.message.sent",
		Time:        "2025-01-02T03:04:05.000Z",
		DataSchema:  "https://events-schemas.twilio.com/Messaging.MessageStatus/5",
		Extensions:  map[string]string{"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
		Data:        fmt.Appendf(nil, `{"messageSid":%q,"status":"sent","id":%q}`, sid, id),
	}
}

func msg(topic, key string, e *relay.Event) relay.Message {
	m := relay.Message{Event: e, Topic: topic}
	if key != "" {
		m.Key = []byte(key)
	}
	return m
}

// readTopic returns every record in every partition of topic, in partition then offset order.
func readTopic(t testing.TB, addr, topic string) []kafka.Record {
	t.Helper()
	return kafkaserver.ReadTopic(t, addr, topic)
}

// record is an encoded message as a topic would give it back, to compare with what a topic holds.
func record(km kafkago.Message) kafka.Record {
	r := kafka.Record{Topic: km.Topic, Key: km.Key, Value: km.Value}
	for _, h := range km.Headers {
		r.Headers = append(r.Headers, kafka.Header{Key: h.Key, Value: h.Value})
	}
	return r
}

// headers returns a record's headers as a map, failing the test on a repeated header.
func headers(t testing.TB, m kafka.Record) map[string]string {
	t.Helper()
	h := make(map[string]string, len(m.Headers))
	for _, kv := range m.Headers {
		if _, dup := h[kv.Key]; dup {
			t.Errorf("record %s/%d@%d: header %q twice", m.Topic, m.Partition, m.Offset, kv.Key)
		}
		h[kv.Key] = string(kv.Value)
	}
	return h
}

// byID indexes binary-mode records by their ce_id header, failing on duplicates.
func byID(t testing.TB, ms []kafka.Record) map[string]kafka.Record {
	t.Helper()
	out := make(map[string]kafka.Record, len(ms))
	for _, m := range ms {
		id := headers(t, m)["ce_id"]
		if _, dup := out[id]; dup {
			t.Errorf("ce_id %q written twice", id)
		}
		out[id] = m
	}
	return out
}

// segmentBytes returns the size of the broker's log segments of topic (all partitions): the bytes
// as stored, so compressed batches are visibly smaller. The data dir sits next to the logs dir.
func segmentBytes(t testing.TB, srv *kafkaserver.Server, topic string) int64 {
	t.Helper()
	data := filepath.Join(filepath.Dir(filepath.Dir(srv.LogFile())), "data")
	files, err := filepath.Glob(filepath.Join(data, topic+"-*", "*.log"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no log segments of %s under %s: %v", topic, data, err)
	}
	var n int64
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		n += fi.Size()
	}
	return n
}

// murmur2 is Kafka's org.apache.kafka.common.utils.Utils.murmur2, written out here so that the
// partition check does not trust kafka-go's balancer to agree with Java clients.
func murmur2(data []byte) int32 {
	const (
		seed = uint32(0x9747b28c)
		m    = uint32(0x5bd1e995)
		r    = 24
	)
	n := len(data)
	h := seed ^ uint32(n)
	for i := 0; i+4 <= n; i += 4 {
		k := binary.LittleEndian.Uint32(data[i:])
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
	}
	tail := data[n&^3:]
	switch len(tail) {
	case 3:
		h ^= uint32(tail[2]) << 16
		fallthrough
	case 2:
		h ^= uint32(tail[1]) << 8
		fallthrough
	case 1:
		h ^= uint32(tail[0])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return int32(h)
}

// javaPartition is the partition Kafka's Java default partitioner picks for a keyed record.
func javaPartition(key []byte, partitions int) int {
	return int(murmur2(key)&0x7fffffff) % partitions
}

func TestMurmur2MatchesJava(t *testing.T) {
	// Vectors from Kafka's UtilsTest.testMurmur2.
	for in, want := range map[string]int32{
		"21":                         -973932308,
		"foobar":                     -790332482,
		"a-little-bit-long-string":   -985981536,
		"a-little-bit-longer-string": -1486304829,
		"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
		"abc": 479470107,
	} {
		if got := murmur2([]byte(in)); got != want {
			t.Errorf("murmur2(%q) = %d, want %d", in, got, want)
		}
	}
}
