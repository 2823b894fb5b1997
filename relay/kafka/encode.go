package kafka

import (
	"github.com/relaykit/twilio-relay/relay"
	kafkago "github.com/segmentio/kafka-go"
)

// Encode turns a relay message into a Kafka message under the CloudEvents Kafka protocol binding.
// Binary mode: every attribute as a ce_<name> header, datacontenttype as content-type, data as the value.
// Structured mode: the event in the CloudEvents JSON format as the value, content-type
// application/cloudevents+json.
func Encode(m relay.Message, structured bool) (kafkago.Message, error) {
	e := m.Event
	km := kafkago.Message{Topic: m.Topic, Key: m.Key}
	if structured {
		v, err := e.MarshalJSON()
		if err != nil {
			return km, err
		}
		km.Value = v
		km.Headers = []kafkago.Header{{Key: "content-type", Value: []byte("application/cloudevents+json")}}
		return km, nil
	}
	ct := e.DataContentType
	if ct == "" && !e.Binary && len(e.Data) > 0 {
		ct = "application/json" // Twilio sends JSON data; say so, so consumers need not guess
	}
	// The header values are copied side by side into one buffer, each capped so that appending to one
	// cannot overwrite the next: two allocations per message instead of one per header.
	n := len(e.SpecVersion) + len(e.ID) + len(e.Source) + len(e.Type) + len(e.Time) + len(e.Subject) + len(e.DataSchema) + len(ct)
	for _, v := range e.Extensions {
		n += len(v)
	}
	h := make([]kafkago.Header, 0, 8+len(e.Extensions))
	buf := make([]byte, 0, n)
	add := func(k, v string) {
		if v != "" {
			start := len(buf)
			buf = append(buf, v...)
			h = append(h, kafkago.Header{Key: k, Value: buf[start:len(buf):len(buf)]})
		}
	}
	add("ce_specversion", e.SpecVersion)
	add("ce_id", e.ID)
	add("ce_source", e.Source)
	add("ce_type", e.Type)
	add("ce_time", e.Time)
	add("ce_subject", e.Subject)
	add("ce_dataschema", e.DataSchema)
	for k, v := range e.Extensions {
		add("ce_"+k, v)
	}
	add("content-type", ct)
	km.Headers = h
	km.Value = e.Data
	return km, nil
}

// size estimates the bytes a message takes in a record batch, as kafka-go counts them for BatchBytes.
func size(m *kafkago.Message) int64 {
	n := int64(len(m.Key) + len(m.Value) + 32)
	for _, h := range m.Headers {
		n += int64(len(h.Key) + len(h.Value) + 8)
	}
	return n
}
