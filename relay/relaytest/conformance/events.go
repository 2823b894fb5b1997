package conformance

import (
	"bytes"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/relaykit/twilio-relay/relay"
)

// dataKind is the kind of data an event of the suite carries.
type dataKind int

const (
	objectData dataKind = iota // a JSON object, as Twilio sends
	binaryData                 // every byte value, as data_base64 would carry
	bigData                    // 100 KiB of random bytes
	noData                     // no data at all
)

// topic returns a fresh topic name that every destination accepts (Kafka topic, NATS subject, Redis
// key, HTTP header).
func (s *suite) topic(name string) string {
	s.topics++
	return fmt.Sprintf("conformance.%s.%s.%d", s.run, name, s.topics)
}

// event returns a new event with a fresh id. Its attributes hold characters that bindings must escape
// (space, quote, percent, non-ASCII) so that the round trip proves they are carried intact.
func (s *suite) event(kind dataKind) *relay.Event {
	s.ids++
	id := fmt.Sprintf("EZconformance%s%06d", s.run, s.ids)
	e := &relay.Event{
		Endpoint:    "conformance",
		SpecVersion: "1.0",
		ID:          id,
		Source:      "/2010-04-01/Accounts/AC00000000000000000000000000000000/Messages/SM" + id,
		Type:        "com.twilio.messaging.message.sent",
		Subject:     `Ünïcödé subject with "quotes", 100% and spaces`,
		Time:        "2024-05-01T12:34:56.789Z",
		DataSchema:  "https://events-schemas.twilio.com/Messaging.MessageStatus/5",
		Extensions:  map[string]string{"relaytest": "extension value ✓", "seq": fmt.Sprint(s.ids)},
	}
	switch kind {
	case objectData:
		e.DataContentType = "application/json"
		e.Data = fmt.Appendf(nil, `{"messageSid":"SM%s","body":"h\u00e9llo \"world\"","n":12345678901234567890,"nested":{"a":[1,2,{"b":null}]}}`, id)
	case binaryData:
		e.DataContentType, e.Binary = "application/octet-stream", true
		for b := range 256 {
			e.Data = append(e.Data, byte(b))
		}
	case bigData:
		e.DataContentType, e.Binary = "application/octet-stream", true
		e.Data = make([]byte, 100<<10)
		r := rand.NewChaCha8([32]byte{byte(s.ids)})
		_, _ = r.Read(e.Data)
	case noData:
	}
	return e
}

// messages returns n messages to topic with object data, keyed by keyOf(i) (nil for no key).
func (s *suite) messages(topic string, n int, keyOf func(i int) []byte) []relay.Message {
	msgs := make([]relay.Message, n)
	for i := range msgs {
		msgs[i] = relay.Message{Event: s.event(objectData), Topic: topic, Key: keyOf(i)}
	}
	return msgs
}

// attributes returns what a Record must hold for e.
func attributes(e *relay.Event) map[string]string {
	m := map[string]string{}
	add := func(k, v string) {
		if v != "" {
			m[k] = v
		}
	}
	add("specversion", e.SpecVersion)
	add("id", e.ID)
	add("source", e.Source)
	add("type", e.Type)
	add("subject", e.Subject)
	add("time", e.Time)
	add("dataschema", e.DataSchema)
	add("datacontenttype", e.DataContentType)
	for k, v := range e.Extensions {
		add(k, v)
	}
	return m
}

// byID indexes records by their id attribute, failing on a record without one or a duplicate.
func byID(t *testing.T, recs []Record) map[string]Record {
	t.Helper()
	out := make(map[string]Record, len(recs))
	for i, r := range recs {
		id := r.Attributes["id"]
		if id == "" {
			t.Errorf("record %d has no id attribute: %v", i, r.Attributes)
			continue
		}
		if _, dup := out[id]; dup {
			t.Errorf("record %s is held twice", id)
		}
		out[id] = r
	}
	return out
}

// checkRecords checks that recs hold exactly msgs, each intact.
func checkRecords(t *testing.T, r Reader, msgs []relay.Message, recs []Record) {
	t.Helper()
	if len(recs) != len(msgs) {
		t.Errorf("destination holds %d records, want %d", len(recs), len(msgs))
	}
	got := byID(t, recs)
	for _, m := range msgs {
		rec, ok := got[m.Event.ID]
		if !ok {
			t.Errorf("message %s was acknowledged but is not readable", m.Event.ID)
			continue
		}
		checkRecord(t, r, m, rec)
	}
}

// checkRecord checks one record against the message it came from.
func checkRecord(t *testing.T, r Reader, m relay.Message, rec Record) {
	t.Helper()
	id := m.Event.ID
	want := attributes(m.Event)
	if !maps.Equal(rec.Attributes, want) {
		for _, k := range slices.Sorted(maps.Keys(want)) {
			if rec.Attributes[k] != want[k] {
				t.Errorf("%s: attribute %s = %q, want %q", id, k, rec.Attributes[k], want[k])
			}
		}
		for _, k := range slices.Sorted(maps.Keys(rec.Attributes)) {
			if _, ok := want[k]; !ok {
				t.Errorf("%s: unexpected attribute %s = %q", id, k, rec.Attributes[k])
			}
		}
	}
	if !bytes.Equal(rec.Data, m.Event.Data) {
		t.Errorf("%s: data differs: got %d bytes %.80q, want %d bytes %.80q", id, len(rec.Data), rec.Data, len(m.Event.Data), m.Event.Data)
	}
	if r.KeepsKeys() && !bytes.Equal(rec.Key, m.Key) {
		t.Errorf("%s: key %q, want %q", id, rec.Key, m.Key)
	}
	if rec.Position.Set && m.Position != rec.Position {
		t.Errorf("%s: the sink says it landed at %+v; the destination holds it at %+v", id, m.Position, rec.Position)
	}
}

// checkOrder checks that, for every key, the records of msgs appear in recs in the order of msgs.
func checkOrder(t *testing.T, msgs []relay.Message, recs []Record) {
	t.Helper()
	pos := make(map[string]int, len(recs))
	for i, r := range recs {
		pos[r.Attributes["id"]] = i
	}
	last := map[string]int{} // key -> position of its latest message so far
	lastID := map[string]string{}
	for _, m := range msgs {
		if len(m.Key) == 0 {
			continue
		}
		p, ok := pos[m.Event.ID]
		if !ok {
			continue // reported by checkRecords
		}
		k := string(m.Key)
		if prev, seen := last[k]; seen && p < prev {
			t.Errorf("key %s: %s is held before %s, which was written first", k, m.Event.ID, lastID[k])
		}
		last[k], lastID[k] = p, m.Event.ID
	}
}
