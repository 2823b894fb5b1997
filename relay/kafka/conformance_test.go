package kafka_test

import (
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/relaykit/twilio-relay/relay"
	"github.com/relaykit/twilio-relay/relay/kafka"
	"github.com/relaykit/twilio-relay/relay/relaytest/conformance"
	"github.com/relaykit/twilio-relay/relay/relaytest/kafkaserver"
)

// TestConformance runs the sink conformance suite against a real broker, in both binding modes.
func TestConformance(t *testing.T) {
	t.Parallel()
	srv := kafkaserver.Start(t, kafkaserver.LibsFromEnv(t))
	r := &conformanceReader{srv: srv}
	for _, mode := range []string{"binary", "structured"} {
		t.Run(mode, func(t *testing.T) {
			conformance.Run(t, func(t *testing.T) (relay.Sink, conformance.Reader) {
				s, err := kafka.New("conformance", kafka.Config{Brokers: []string{srv.Addr()}, Mode: mode}.Defaults(),
					slog.New(slog.NewTextHandler(io.Discard, nil)))
				if err != nil {
					t.Fatal(err)
				}
				return s, r
			})
		})
	}
}

// conformanceReader reads a topic back partition by partition for the conformance suite.
type conformanceReader struct {
	srv *kafkaserver.Server
}

func (r *conformanceReader) Prepare(t *testing.T, topic string) { r.srv.CreateTopic(t, topic, 3) }

func (r *conformanceReader) Read(t *testing.T, topic string) []conformance.Record {
	t.Helper()
	var out []conformance.Record
	for _, m := range conformanceReadTopic(t, r.srv.Addr(), topic) {
		h := map[string]string{}
		for _, kv := range m.Headers {
			h[kv.Key] = string(kv.Value)
		}
		var rec conformance.Record
		if h["content-type"] == "application/cloudevents+json" {
			var err error
			if rec, err = conformance.ParseStructured(m.Value); err != nil {
				t.Errorf("%s/%d@%d: %v", topic, m.Partition, m.Offset, err)
			}
		} else {
			rec = conformance.Record{Attributes: map[string]string{}, Data: m.Value}
			for k, v := range h {
				if name, ok := strings.CutPrefix(k, "ce_"); ok {
					rec.Attributes[name] = v
				}
			}
			if ct, ok := h["content-type"]; ok {
				rec.Attributes["datacontenttype"] = ct
			}
		}
		rec.Key = m.Key
		rec.Position = relay.Position{Set: true, Partition: int32(m.Partition), Offset: m.Offset}
		out = append(out, rec)
	}
	return out
}

func (r *conformanceReader) KeepsKeys() bool { return true }

// Refused returns a message over max_message_bytes (1 MiB by default).
func (r *conformanceReader) Refused(topic string) (relay.Message, bool) {
	e := &relay.Event{SpecVersion: "1.0", ID: "EZtoolarge", Source: "/s", Type: "t",
		DataContentType: "application/octet-stream", Binary: true, Data: make([]byte, 2<<20)}
	return relay.Message{Event: e, Topic: topic}, true
}

// Stall: a Kafka broker cannot be made to hang on one topic.
func (r *conformanceReader) Stall(*testing.T, string) (func(), bool) { return nil, false }

// conformanceReadTopic returns every record of topic, partition by partition (so in order per key).
func conformanceReadTopic(t *testing.T, addr, topic string) []kafka.Record {
	t.Helper()
	return kafkaserver.ReadTopic(t, addr, topic)
}
