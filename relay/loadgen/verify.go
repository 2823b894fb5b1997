package loadgen

import (
	"context"
	"encoding/json"
	"time"

	"github.com/relaykit/twilio-relay/relay"
	"github.com/relaykit/twilio-relay/relay/kafka"
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

// ReadIDs counts records per event id in every partition of topic, read from broker (host:port; several
// may be given, comma-separated) with the relay's own topic reader.
func ReadIDs(ctx context.Context, broker, topic string) (map[string]int, int, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	ids := map[string]int{}
	records := 0
	err := kafka.ReadTopic(ctx, kafka.Config{Brokers: relay.ParseList(broker)}.Defaults(), topic, func(r kafka.Record) error {
		records++
		countIDs(ids, r)
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	return ids, records, nil
}

func countIDs(ids map[string]int, r kafka.Record) {
	if id := r.Header("ce_id"); id != "" {
		ids[id]++
		return
	}
	var evs []struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(r.Value, &evs) != nil {
		var one struct {
			ID string `json:"id"`
		}
		if json.Unmarshal(r.Value, &one) != nil {
			return
		}
		evs = append(evs, one)
	}
	for _, e := range evs {
		ids[e.ID]++
	}
}
