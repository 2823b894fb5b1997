package loadgen

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	kafkago "github.com/segmentio/kafka-go"
)

// Verification is the check that every event answered 2xx reached Kafka.
type Verification struct {
	Topic    string `json:"topic"`
	Records  int    `json:"records"`  // in the topic
	Accepted int    `json:"accepted"` // unique ids answered 2xx
	Missing  int    `json:"missing"`  // of those, not found in the topic
	Extra    int    `json:"extra"`    // records of accepted ids beyond the first (duplicates in Kafka)
	OK       bool   `json:"ok"`
	Example  string `json:"example_missing,omitempty"`
}

// VerifyKafka reads every partition of topic and checks that each id in accepted is there. A record's id
// is its ce_id header (CloudEvents binary mode) or, failing that, the ids in a value holding a JSON
// array of events or one event (a peer that forwards the body as it is).
func VerifyKafka(ctx context.Context, broker, topic string, accepted []string) (*Verification, error) {
	ids, records, err := ReadIDs(ctx, broker, topic)
	if err != nil {
		return nil, err
	}
	v := &Verification{Topic: topic, Records: records, Accepted: len(accepted)}
	for _, id := range accepted {
		switch n := ids[id]; {
		case n == 0:
			v.Missing++
			if v.Example == "" {
				v.Example = id
			}
		case n > 1:
			v.Extra += n - 1
		}
	}
	v.OK = v.Missing == 0
	return v, nil
}

// ReadIDs counts records per event id in every partition of topic.
func ReadIDs(ctx context.Context, broker, topic string) (map[string]int, int, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	conn, err := kafkago.DialContext(ctx, "tcp", broker)
	if err != nil {
		return nil, 0, err
	}
	parts, err := conn.ReadPartitions(topic)
	conn.Close()
	if err != nil {
		return nil, 0, fmt.Errorf("partitions of %s: %w", topic, err)
	}
	ids := map[string]int{}
	records := 0
	for _, p := range parts {
		pc, err := kafkago.DialLeader(ctx, "tcp", broker, topic, p.ID)
		if err != nil {
			return nil, 0, err
		}
		first, last, err := pc.ReadOffsets()
		if err == nil {
			_, err = pc.Seek(first, kafkago.SeekAbsolute)
		}
		for off := first; err == nil && off < last; {
			_ = pc.SetReadDeadline(time.Now().Add(10 * time.Second))
			b := pc.ReadBatch(1, 10<<20)
			for {
				m, merr := b.ReadMessage()
				if merr != nil {
					break
				}
				records++
				countIDs(ids, m)
				off = m.Offset + 1
			}
			if cerr := b.Close(); cerr != nil && off < last {
				err = fmt.Errorf("read %s/%d at %d: %w", topic, p.ID, off, cerr)
			}
		}
		pc.Close()
		if err != nil {
			return nil, 0, err
		}
	}
	return ids, records, nil
}

func countIDs(ids map[string]int, m kafkago.Message) {
	for _, h := range m.Headers {
		if h.Key == "ce_id" {
			ids[string(h.Value)]++
			return
		}
	}
	var evs []struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(m.Value, &evs) != nil {
		var one struct {
			ID string `json:"id"`
		}
		if json.Unmarshal(m.Value, &one) != nil {
			return
		}
		evs = append(evs, one)
	}
	for _, e := range evs {
		ids[e.ID]++
	}
}
