package kafka_test

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/relaykit/twilio-relay/relay"
	"github.com/relaykit/twilio-relay/relay/kafka"
)

func TestEncode(t *testing.T) {
	t.Parallel()
	full := event("EZ1", "SM1")
	full.Subject = "SM1"
	hdrs := func(kv ...string) map[string]string {
		m := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	base := []string{"ce_specversion", "1.0", "ce_id", "EZ1", "ce_source", full.Source, "ce_type", full.Type}
	for _, tc := range []struct {
		name string
		ev   *relay.Event
		want map[string]string
	}{
		{"every attribute", full, hdrs(append(base,
			"ce_time", full.Time, "ce_subject", "SM1", "ce_dataschema", full.DataSchema,
			"ce_traceparent", full.Extensions["traceparent"], "content-type", "application/json")...)},
		{"minimal JSON event", &relay.Event{SpecVersion: "1.0", ID: "EZ1", Source: full.Source, Type: full.Type, Data: []byte(`{}`)},
			hdrs(append(base, "content-type", "application/json")...)},
		{"datacontenttype wins", &relay.Event{SpecVersion: "1.0", ID: "EZ1", Source: full.Source, Type: full.Type, DataContentType: "text/plain", Data: []byte("hi")},
			hdrs(append(base, "content-type", "text/plain")...)},
		{"binary data without datacontenttype", &relay.Event{SpecVersion: "1.0", ID: "EZ1", Source: full.Source, Type: full.Type, Binary: true, Data: []byte{0, 1}},
			hdrs(base...)},
		{"no data", &relay.Event{SpecVersion: "1.0", ID: "EZ1", Source: full.Source, Type: full.Type},
			hdrs(base...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			km, err := kafka.Encode(relay.Message{Event: tc.ev, Topic: "t", Key: []byte("k")}, false)
			if err != nil {
				t.Fatal(err)
			}
			if km.Topic != "t" || string(km.Key) != "k" || string(km.Value) != string(tc.ev.Data) {
				t.Errorf("topic %q key %q value %q", km.Topic, km.Key, km.Value)
			}
			if got := headers(t, record(km)); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("headers\n got %v\nwant %v", got, tc.want)
			}
		})
	}

	t.Run("structured", func(t *testing.T) {
		bin := &relay.Event{SpecVersion: "1.0", ID: "EZ2", Source: "s", Type: "t", Binary: true, Data: []byte{0xff, 0}}
		for _, ev := range []*relay.Event{full, bin} {
			km, err := kafka.Encode(relay.Message{Event: ev, Topic: "t"}, true)
			if err != nil {
				t.Fatal(err)
			}
			if got := headers(t, record(km)); !reflect.DeepEqual(got, hdrs("content-type", "application/cloudevents+json")) {
				t.Errorf("headers %v", got)
			}
			if km.Key != nil {
				t.Errorf("key %q, want none", km.Key)
			}
			checkStructured(t, record(km), ev)
		}
	})
}

// checkStructured checks that a structured-mode record holds ev in the CloudEvents JSON format.
func checkStructured(t testing.TB, km kafka.Record, ev *relay.Event) {
	t.Helper()
	var got map[string]any
	if err := json.Unmarshal(km.Value, &got); err != nil {
		t.Fatalf("structured value is not JSON: %v\n%s", err, km.Value)
	}
	want := map[string]any{"specversion": ev.SpecVersion, "id": ev.ID, "source": ev.Source, "type": ev.Type}
	for k, v := range map[string]string{"time": ev.Time, "subject": ev.Subject, "dataschema": ev.DataSchema, "datacontenttype": ev.DataContentType} {
		if v != "" {
			want[k] = v
		}
	}
	for k, v := range ev.Extensions {
		want[k] = v
	}
	switch {
	case ev.Binary:
		b, _ := json.Marshal(ev.Data) // []byte marshals as standard base64
		want["data_base64"] = json.RawMessage(b)
	case len(ev.Data) > 0:
		want["data"] = json.RawMessage(ev.Data)
	}
	// Round-trip want through JSON so both sides have the same types.
	b, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	var wantAny map[string]any
	if err := json.Unmarshal(b, &wantAny); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, wantAny) {
		t.Errorf("structured event\n got %v\nwant %v", got, wantAny)
	}
}
