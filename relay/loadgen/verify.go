package loadgen

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/relaykit/twilio-relay/relay"
	"github.com/relaykit/twilio-relay/relay/kafka"
)

// Verification is the check that every event answered 2xx reached Kafka, once. Events are counted by
// their dedupe key (source + id): two events that share an id but not a source are two events.
type Verification struct {
	Topic    string `json:"topic"`
	Records  int    `json:"records"`  // in the topic
	Accepted int    `json:"accepted"` // keys answered 2xx
	Missing  int    `json:"missing"`  // of those, not found in the topic
	Extra    int    `json:"extra"`    // records of accepted keys beyond the first (duplicates in Kafka)
	// DuplicateKeys is how many accepted keys have more than one record; ExampleDuplicate names one.
	DuplicateKeys    int    `json:"duplicate_keys"`
	OK               bool   `json:"ok"`
	Example          string `json:"example_missing,omitempty"`
	ExampleDuplicate string `json:"example_duplicate,omitempty"`
}

// VerifyKafka reads every partition of topic and checks that each key in accepted is there, counting the
// records beyond the first of each.
func VerifyKafka(ctx context.Context, broker, topic string, accepted []Key) (*Verification, error) {
	keys, records, err := ReadKeys(ctx, broker, topic)
	if err != nil {
		return nil, err
	}
	v := &Verification{Topic: topic, Records: records}
	seen := make(map[Key]bool, len(accepted))
	for _, k := range accepted {
		if seen[k] {
			continue
		}
		seen[k] = true
		switch n := keys[k]; {
		case n == 0:
			v.Missing++
			if v.Example == "" {
				v.Example = k.String()
			}
		case n > 1:
			v.Extra += n - 1
			if v.DuplicateKeys++; v.ExampleDuplicate == "" {
				v.ExampleDuplicate = fmt.Sprintf("%s: %d records", k, n)
			}
		}
	}
	v.Accepted = len(seen)
	v.OK = v.Missing == 0
	return v, nil
}

// ReadKeys counts records per event key in every partition of topic, read from broker (host:port; several
// may be given, comma-separated) with the relay's own topic reader. A record's key is its ce_source and
// ce_id headers (CloudEvents binary mode) or, failing that, those of the events in a value holding a JSON
// array of events or one event (a peer that forwards the body as it is).
func ReadKeys(ctx context.Context, broker, topic string) (map[Key]int, int, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	keys := map[Key]int{}
	records := 0
	err := kafka.ReadTopic(ctx, kafka.Config{Brokers: relay.ParseList(broker)}.Defaults(), topic, func(r kafka.Record) error {
		records++
		countKeys(keys, r)
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	return keys, records, nil
}

// ReadIDs counts records per event id, whatever the source, as ReadKeys reads them.
func ReadIDs(ctx context.Context, broker, topic string) (map[string]int, int, error) {
	keys, records, err := ReadKeys(ctx, broker, topic)
	if err != nil {
		return nil, 0, err
	}
	ids := make(map[string]int, len(keys))
	for k, n := range keys {
		ids[k.ID] += n
	}
	return ids, records, nil
}

func countKeys(keys map[Key]int, r kafka.Record) {
	if id := r.Header("ce_id"); id != "" {
		keys[Key{Source: r.Header("ce_source"), ID: id}]++
		return
	}
	var evs []Key
	if json.Unmarshal(r.Value, &evs) != nil {
		var one Key
		if json.Unmarshal(r.Value, &one) != nil {
			return
		}
		evs = append(evs, one)
	}
	for _, e := range evs {
		keys[e]++
	}
}
