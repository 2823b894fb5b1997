package twilio_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/relaykit/twilio-relay/relay"
	"github.com/relaykit/twilio-relay/relay/twilio"
)

var decodeAt = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

// ev returns a minimal valid CloudEvent with the given id plus extra members (raw JSON, comma-led).
func ev(id, extra string) string {
	return `{"specversion":"1.0","id":"` + id + `","source":"/v1/S","type":"com.twilio.t"` + extra + `}`
}

// event is what a test expects of a decoded event; zero fields are not checked unless noted.
type event struct {
	id, source, typ, subject, time, dataschema, datacontenttype string
	data                                                        string // compared exactly when checkData
	checkData, binary                                           bool
	ext                                                         map[string]string
}

func TestDecode(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		opts    twilio.DecodeOptions
		events  []event
		rejects []string // reasons, in order
		// rejectRaw, when set, is the expected Raw of each reject (in order).
		rejectRaw []string
		// rejectDetail, when set, are substrings expected in each reject's Detail.
		rejectDetail []string
	}{
		{
			name:   "array of three",
			body:   "[" + ev("EZ1", "") + "," + ev("EZ2", "") + "," + ev("EZ3", "") + "]",
			events: []event{{id: "EZ1"}, {id: "EZ2"}, {id: "EZ3"}},
		},
		{
			name:   "one bare object",
			body:   ev("EZ1", `,"subject":"SM1","time":"2026-11-23T10:00:00Z","dataschema":"https://events-schemas.twilio.com/M/5","datacontenttype":"application/json"`),
			events: []event{{id: "EZ1", source: "/v1/S", typ: "com.twilio.t", subject: "SM1", time: "2026-11-23T10:00:00Z", dataschema: "https://events-schemas.twilio.com/M/5", datacontenttype: "application/json"}},
		},
		{
			name: "empty array",
			body: "[]",
		},
		{
			name: "empty array with whitespace",
			body: " \n[ ]\t",
		},
		{
			name:   "whitespace around an array",
			body:   "\r\n\t [" + ev("EZ1", "") + "]  \n",
			events: []event{{id: "EZ1"}},
		},
		{
			name:   "whitespace around an object",
			body:   "\n  " + ev("EZ1", "") + "\n",
			events: []event{{id: "EZ1"}},
		},
		{
			name:   "whitespace inside an array",
			body:   "[\n  " + ev("EZ1", "") + " ,\n  " + ev("EZ2", "") + "\n]",
			events: []event{{id: "EZ1"}, {id: "EZ2"}},
		},
		{name: "empty body", body: "", rejects: []string{relay.ReasonMalformedBody}, rejectRaw: []string{""}},
		{name: "whitespace only", body: " \n ", rejects: []string{relay.ReasonMalformedBody}, rejectRaw: []string{" \n "}},
		{name: "not JSON", body: "hello", rejects: []string{relay.ReasonMalformedBody}, rejectRaw: []string{"hello"}, rejectDetail: []string{"neither"}},
		{name: "form body", body: "a=1&b=2", rejects: []string{relay.ReasonMalformedBody}, rejectRaw: []string{"a=1&b=2"}},
		{name: "JSON string", body: `"[{}]"`, rejects: []string{relay.ReasonMalformedBody}, rejectRaw: []string{`"[{}]"`}},
		{name: "JSON number", body: " 42 ", rejects: []string{relay.ReasonMalformedBody}, rejectRaw: []string{" 42 "}},
		{name: "JSON null", body: "null", rejects: []string{relay.ReasonMalformedBody}, rejectRaw: []string{"null"}},
		{name: "JSON true", body: "true", rejects: []string{relay.ReasonMalformedBody}, rejectRaw: []string{"true"}},
		{name: "truncated array", body: "[" + ev("EZ1", ""), rejects: []string{relay.ReasonMalformedBody}, rejectRaw: []string{"[" + ev("EZ1", "")}, rejectDetail: []string{"not a JSON array"}},
		{name: "truncated object", body: ev("EZ1", "")[:20], rejects: []string{relay.ReasonMalformedBody}, rejectRaw: []string{ev("EZ1", "")[:20]}, rejectDetail: []string{"not valid JSON"}},
		{name: "array then garbage", body: "[" + ev("EZ1", "") + "] x", rejects: []string{relay.ReasonMalformedBody}, rejectRaw: []string{"[" + ev("EZ1", "") + "] x"}},
		{name: "two objects", body: ev("EZ1", "") + ev("EZ2", ""), rejects: []string{relay.ReasonMalformedBody}, rejectRaw: []string{ev("EZ1", "") + ev("EZ2", "")}},
		{
			name:         "one bad element among good ones",
			body:         "[" + ev("EZ1", "") + `, {"specversion":"1.0","id":"EZ2","type":"t"} ,` + ev("EZ3", "") + "]",
			events:       []event{{id: "EZ1"}, {id: "EZ3"}},
			rejects:      []string{relay.ReasonInvalidEvent},
			rejectRaw:    []string{`{"specversion":"1.0","id":"EZ2","type":"t"}`},
			rejectDetail: []string{"event 1", "missing required attribute source"},
		},
		{
			name:         "elements that are not objects",
			body:         `[1, "x", null, [], ` + ev("EZ1", "") + `]`,
			events:       []event{{id: "EZ1"}},
			rejects:      []string{relay.ReasonInvalidEvent, relay.ReasonInvalidEvent, relay.ReasonInvalidEvent, relay.ReasonInvalidEvent},
			rejectRaw:    []string{"1", `"x"`, "null", "[]"},
			rejectDetail: []string{"event 0", "event 1", "event 2: missing required attribute specversion", "event 3"},
		},
		{name: "missing specversion", body: `{"id":"a","source":"s","type":"t"}`, rejects: []string{relay.ReasonInvalidEvent}, rejectDetail: []string{"missing required attribute specversion"}},
		{name: "missing id", body: `{"specversion":"1.0","source":"s","type":"t"}`, rejects: []string{relay.ReasonInvalidEvent}, rejectDetail: []string{"missing required attribute id"}},
		{name: "missing source", body: `{"specversion":"1.0","id":"a","type":"t"}`, rejects: []string{relay.ReasonInvalidEvent}, rejectDetail: []string{"missing required attribute source"}},
		{name: "missing type", body: `{"specversion":"1.0","id":"a","source":"s"}`, rejects: []string{relay.ReasonInvalidEvent}, rejectDetail: []string{"missing required attribute type"}},
		{name: "null id", body: `{"specversion":"1.0","id":null,"source":"s","type":"t"}`, rejects: []string{relay.ReasonInvalidEvent}, rejectDetail: []string{"missing required attribute id"}},
		{name: "empty id", body: ev("", ""), rejects: []string{relay.ReasonInvalidEvent}, rejectDetail: []string{"attribute id is empty"}},
		{name: "empty source", body: `{"specversion":"1.0","id":"a","source":"","type":"t"}`, rejects: []string{relay.ReasonInvalidEvent}, rejectDetail: []string{"attribute source is empty"}},
		{name: "non-string type", body: `{"specversion":"1.0","id":"a","source":"s","type":7}`, rejects: []string{relay.ReasonInvalidEvent}, rejectDetail: []string{"attribute type is not a string"}},
		{name: "non-string id", body: `{"specversion":"1.0","id":{"x":1},"source":"s","type":"t"}`, rejects: []string{relay.ReasonInvalidEvent}, rejectDetail: []string{"attribute id is not a string"}},
		{name: "non-string subject", body: ev("a", `,"subject":true`), rejects: []string{relay.ReasonInvalidEvent}, rejectDetail: []string{"attribute subject is not a string"}},
		{name: "non-string time", body: ev("a", `,"time":1700000000`), rejects: []string{relay.ReasonInvalidEvent}, rejectDetail: []string{"attribute time is not a string"}},
		{name: "specversion 0.3", body: `{"specversion":"0.3","id":"a","source":"s","type":"t"}`, rejects: []string{relay.ReasonInvalidEvent}, rejectDetail: []string{`specversion "0.3" is not 1.0`}},
		{name: "specversion as number", body: `{"specversion":1.0,"id":"a","source":"s","type":"t"}`, rejects: []string{relay.ReasonInvalidEvent}, rejectDetail: []string{"attribute specversion is not a string"}},
		// Issue #17: a repeated key made the record key follow the first data.messageSid and the id the last.
		{name: "repeated id", body: "[" + ev("EZa", `,"id":"EZb"`) + "," + ev("EZ2", "") + "]", events: []event{{id: "EZ2"}},
			rejects: []string{relay.ReasonDuplicateKey}, rejectDetail: []string{`event 0: duplicate key "id"`}},
		{name: "repeated key in data", body: ev("a", `,"data":{"messageSid":"SM1","x":{},"messageSid":"SM2"}`),
			rejects: []string{relay.ReasonDuplicateKey}, rejectDetail: []string{`duplicate key "messageSid"`}},
		{name: "repeated key written two ways", body: ev("a", `,"data":{"messageSid":"SM1","\u006dessageSid":"SM2"}`),
			rejects: []string{relay.ReasonDuplicateKey}},
		{name: "repeated key in a data string", body: ev("a", `,"data":"{\"messageSid\":\"SM1\",\"messageSid\":\"SM2\"}"`),
			rejects: []string{relay.ReasonDuplicateKey}},
		{name: "repeated key in a data string kept as a string", body: ev("a", `,"data":"{\"k\":1,\"k\":2}"`),
			opts: twilio.DecodeOptions{KeepDataString: true}, events: []event{{id: "a"}}},
		{name: "the same key in two objects", body: ev("a", `,"data":{"from":{"sid":"x"},"to":{"sid":"y"}}`), events: []event{{id: "a"}}},
		{name: "every problem listed", body: `{"specversion":"2.0","type":5}`, rejects: []string{relay.ReasonInvalidEvent}, rejectDetail: []string{"missing required attribute id; missing required attribute source; attribute type is not a string; specversion \"2.0\" is not 1.0"}},
		{
			name:   "data as object",
			body:   ev("a", `,"data": {"messageSid": "SM1", "n": [1, 2]}`),
			events: []event{{id: "a", checkData: true, data: `{"messageSid": "SM1", "n": [1, 2]}`}},
		},
		{
			name:   "data as JSON-encoded object string",
			body:   ev("a", `,"data":"{\"messageSid\":\"SM1\",\"messageStatus\":\"SENT\"}"`),
			events: []event{{id: "a", checkData: true, data: `{"messageSid":"SM1","messageStatus":"SENT"}`}},
		},
		{
			name:   "data as JSON-encoded object string with whitespace",
			body:   ev("a", `,"data":" \n{\"a\": 1} "`),
			events: []event{{id: "a", checkData: true, data: `{"a": 1}`}},
		},
		{
			name:   "data as JSON-encoded array string",
			body:   ev("a", `,"data":"[1,2]"`),
			events: []event{{id: "a", checkData: true, data: `[1,2]`}},
		},
		{
			name:   "data as JSON-encoded object string, KeepDataString",
			body:   ev("a", `,"data":"{\"messageSid\":\"SM1\"}"`),
			opts:   twilio.DecodeOptions{KeepDataString: true},
			events: []event{{id: "a", checkData: true, data: `"{\"messageSid\":\"SM1\"}"`}},
		},
		{
			name:   "data as object, KeepDataString changes nothing",
			body:   ev("a", `,"data":{"x":1}`),
			opts:   twilio.DecodeOptions{KeepDataString: true},
			events: []event{{id: "a", checkData: true, data: `{"x":1}`}},
		},
		{
			name:   "data as plain string",
			body:   ev("a", `,"data":"hello world"`),
			events: []event{{id: "a", checkData: true, data: `"hello world"`}},
		},
		{
			name:   "data as string holding invalid JSON object",
			body:   ev("a", `,"data":"{not json"`),
			events: []event{{id: "a", checkData: true, data: `"{not json"`}},
		},
		{
			name:   "data as string holding a JSON number",
			body:   ev("a", `,"data":"42"`),
			events: []event{{id: "a", checkData: true, data: `"42"`}},
		},
		{
			name:   "data as number",
			body:   ev("a", `,"data":42`),
			events: []event{{id: "a", checkData: true, data: `42`}},
		},
		{
			name:   "no data",
			body:   ev("a", ``),
			events: []event{{id: "a", checkData: true, data: ``}},
		},
		{
			name:   "data_base64",
			body:   ev("a", `,"data_base64":"AAEC/w=="`),
			events: []event{{id: "a", checkData: true, data: "\x00\x01\x02\xff", binary: true}},
		},
		{
			name:   "data_base64 empty",
			body:   ev("a", `,"data_base64":""`),
			events: []event{{id: "a", checkData: true, data: "", binary: true}},
		},
		{name: "data_base64 not base64", body: ev("a", `,"data_base64":"!!!"`), rejects: []string{relay.ReasonInvalidEvent}, rejectDetail: []string{"data_base64 is not base64"}},
		{name: "data_base64 URL alphabet", body: ev("a", `,"data_base64":"AAEC_w=="`), rejects: []string{relay.ReasonInvalidEvent}, rejectDetail: []string{"data_base64 is not base64"}},
		{name: "data_base64 not a string", body: ev("a", `,"data_base64":123`), rejects: []string{relay.ReasonInvalidEvent}, rejectDetail: []string{"data_base64 is not a string"}},
		{name: "data and data_base64", body: ev("a", `,"data":{},"data_base64":"AA=="`), rejects: []string{relay.ReasonInvalidEvent}, rejectDetail: []string{"both data and data_base64"}},
		{
			name:   "extensions",
			body:   ev("a", `,"traceparent":"00-abc-01","sequence":42,"ratio":1.5,"flag":true,"nested":{"k":"v"}`),
			events: []event{{id: "a", ext: map[string]string{"traceparent": "00-abc-01", "sequence": "42", "ratio": "1.5", "flag": "true", "nested": `{"k":"v"}`}}},
		},
		{
			name:   "one extension on a minimal event",
			body:   ev("a", `,"x":"y"`),
			events: []event{{id: "a", ext: map[string]string{"x": "y"}}},
		},
		{
			name:   "all known attributes are not extensions",
			body:   ev("a", `,"subject":"s","time":"t","dataschema":"d","datacontenttype":"c","data":{}`),
			events: []event{{id: "a", subject: "s", time: "t", dataschema: "d", datacontenttype: "c", ext: map[string]string{}}},
		},
		{
			name:   "Twilio test event keeps the account SID as id",
			body:   `[{"specversion":"1.0","type":"com.twilio.eventstreams.test-event","source":"Sink","id":"ACaaaa","data":{"test_id":"u1"}}]`,
			events: []event{{id: "ACaaaa", source: "Sink", typ: relay.TestEventType, checkData: true, data: `{"test_id":"u1"}`}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := twilio.Decode("events", []byte(tt.body), decodeAt, tt.opts)
			if b.Endpoint != "events" || !b.ReceivedAt.Equal(decodeAt) {
				t.Errorf("batch endpoint/time = %q/%v", b.Endpoint, b.ReceivedAt)
			}
			if len(b.Events) != len(tt.events) {
				t.Fatalf("got %d events (%v), want %d; rejects %+v", len(b.Events), ids(b.Events), len(tt.events), b.Rejects)
			}
			for i, want := range tt.events {
				checkEvent(t, b.Events[i], want)
			}
			if len(b.Rejects) != len(tt.rejects) {
				t.Fatalf("got %d rejects %+v, want %v", len(b.Rejects), b.Rejects, tt.rejects)
			}
			for i, r := range b.Rejects {
				if r.Reason != tt.rejects[i] {
					t.Errorf("reject %d reason = %q, want %q", i, r.Reason, tt.rejects[i])
				}
				if r.Reason == relay.ReasonInvalidEvent && len(tt.events)+len(tt.rejects) == 1 && tt.rejectRaw == nil {
					// A bare invalid object: Raw is the object itself.
					if want := strings.TrimSpace(tt.body); string(r.Raw) != want {
						t.Errorf("reject %d raw = %q, want %q", i, r.Raw, want)
					}
				}
				if tt.rejectRaw != nil && string(r.Raw) != tt.rejectRaw[i] {
					t.Errorf("reject %d raw = %q, want %q", i, r.Raw, tt.rejectRaw[i])
				}
				if tt.rejectDetail != nil && !strings.Contains(r.Detail, tt.rejectDetail[i]) {
					t.Errorf("reject %d detail = %q, want it to contain %q", i, r.Detail, tt.rejectDetail[i])
				}
				if r.Detail == "" {
					t.Errorf("reject %d has no detail", i)
				}
			}
		})
	}
}

func ids(evs []*relay.Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.ID
	}
	return out
}

func checkEvent(t *testing.T, got *relay.Event, want event) {
	t.Helper()
	if got.Endpoint != "events" {
		t.Errorf("event %s: Endpoint = %q, want events", got.ID, got.Endpoint)
	}
	if got.SpecVersion != "1.0" {
		t.Errorf("event %s: SpecVersion = %q", got.ID, got.SpecVersion)
	}
	def := func(s, d string) string {
		if s == "" {
			return d
		}
		return s
	}
	checks := []struct{ field, got, want string }{
		{"id", got.ID, want.id},
		{"source", got.Source, def(want.source, "/v1/S")},
		{"type", got.Type, def(want.typ, "com.twilio.t")},
		{"subject", got.Subject, want.subject},
		{"time", got.Time, want.time},
		{"dataschema", got.DataSchema, want.dataschema},
		{"datacontenttype", got.DataContentType, want.datacontenttype},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("event %s: %s = %q, want %q", got.ID, c.field, c.got, c.want)
		}
	}
	if want.checkData && string(got.Data) != want.data {
		t.Errorf("event %s: Data = %q, want %q", got.ID, got.Data, want.data)
	}
	if got.Binary != want.binary {
		t.Errorf("event %s: Binary = %v, want %v", got.ID, got.Binary, want.binary)
	}
	if want.ext != nil {
		if len(want.ext) == 0 && len(got.Extensions) != 0 || len(want.ext) > 0 && !maps.Equal(got.Extensions, want.ext) {
			t.Errorf("event %s: Extensions = %v, want %v", got.ID, got.Extensions, want.ext)
		}
	} else if len(got.Extensions) != 0 {
		t.Errorf("event %s: Extensions = %v, want none", got.ID, got.Extensions)
	}
	// Raw is the event's own JSON object, and it carries the same id.
	var m map[string]any
	if err := json.Unmarshal(got.Raw, &m); err != nil {
		t.Errorf("event %s: Raw %q is not a JSON object: %v", got.ID, got.Raw, err)
	} else if m["id"] != got.ID {
		t.Errorf("event %s: Raw has id %v", got.ID, m["id"])
	}
}

// TestDecodeRawIsElementBytes: each event's Raw (and each reject's) is exactly the element's text in the
// body, so a dead letter carries the bytes Twilio sent.
func TestDecodeRawIsElementBytes(t *testing.T) {
	e1 := `{ "specversion" : "1.0", "id":"EZ1", "source":"s", "type":"t", "data": {"a" : 1} }`
	bad := `{ "id" : "EZ2" }`
	e3 := ev("EZ3", "")
	body := "[" + e1 + " ,\n" + bad + ",\t" + e3 + "]"
	b := twilio.Decode("events", []byte(body), decodeAt, twilio.DecodeOptions{})
	if len(b.Events) != 2 || len(b.Rejects) != 1 {
		t.Fatalf("got %d events, %d rejects", len(b.Events), len(b.Rejects))
	}
	if string(b.Events[0].Raw) != e1 || string(b.Events[1].Raw) != e3 {
		t.Errorf("event Raw = %q, %q; want %q, %q", b.Events[0].Raw, b.Events[1].Raw, e1, e3)
	}
	if string(b.Rejects[0].Raw) != bad {
		t.Errorf("reject Raw = %q, want %q", b.Rejects[0].Raw, bad)
	}
	if got := string(b.Events[0].Data); got != `{"a" : 1}` {
		t.Errorf("Data = %q, want the object's bytes as sent", got)
	}
}

// TestDecodeSamples runs the built-in samples through Decode, one at a time and all in one array.
func TestDecodeSamples(t *testing.T) {
	samples, err := twilio.Samples()
	if err != nil {
		t.Fatal(err)
	}
	wantNames := []string{"call-summary-complete", "error-logged", "message-delivered", "message-sent-string-data", "task-created", "test-event"}
	if got := slices.Sorted(maps.Keys(samples)); !slices.Equal(got, wantNames) {
		t.Fatalf("Samples() names = %v, want %v", got, wantNames)
	}
	if got := twilio.SampleNames(); !slices.Equal(got, wantNames) {
		t.Fatalf("SampleNames() = %v, want %v", got, wantNames)
	}
	for _, name := range wantNames {
		raw := samples[name]
		t.Run(name, func(t *testing.T) {
			// What the sample says, decoded independently.
			var want struct {
				ID, Source, Type, Time, DataSchema, DataContentType string
				Data                                                json.RawMessage
			}
			if err := json.Unmarshal(raw, &want); err != nil {
				t.Fatalf("sample is not JSON: %v", err)
			}
			for _, opts := range []twilio.DecodeOptions{{}, {KeepDataString: true}} {
				b := twilio.Decode("events", raw, decodeAt, opts)
				if len(b.Rejects) != 0 || len(b.Events) != 1 {
					t.Fatalf("opts %+v: %d events, rejects %+v", opts, len(b.Events), b.Rejects)
				}
				e := b.Events[0]
				if e.ID != want.ID || e.Source != want.Source || e.Type != want.Type || e.Time != want.Time ||
					e.DataSchema != want.DataSchema || e.DataContentType != want.DataContentType || e.Endpoint != "events" {
					t.Errorf("opts %+v: decoded %+v, want %+v", opts, e, want)
				}
				if len(e.Extensions) != 0 || e.Binary {
					t.Errorf("opts %+v: Extensions %v, Binary %v", opts, e.Extensions, e.Binary)
				}
				if !json.Valid(e.Data) {
					t.Errorf("opts %+v: Data %q is not JSON", opts, e.Data)
				}
				stringData := want.Data[0] == '"'
				switch {
				case stringData && opts.KeepDataString:
					if !bytes.Equal(e.Data, want.Data) {
						t.Errorf("KeepDataString: Data = %s, want the string as sent", e.Data)
					}
				case stringData:
					var inner string
					_ = json.Unmarshal(want.Data, &inner)
					if string(e.Data) != inner {
						t.Errorf("Data = %s, want the object the string holds: %s", e.Data, inner)
					}
				default:
					if !bytes.Equal(e.Data, want.Data) {
						t.Errorf("Data = %s, want %s", e.Data, want.Data)
					}
				}
				if e.ResourceSID() == "" && e.Type != relay.TestEventType && !(stringData && opts.KeepDataString) {
					t.Errorf("no resource SID found in %s", e.Data)
				}
				// Every sample names its schema version, the test event's URL ending in ".json" included.
				if v, ok := e.SchemaVersion(); !ok || v < 1 {
					t.Errorf("dataschema %q: schema version %d, %v", e.DataSchema, v, ok)
				}
			}
		})
	}
	// At least one sample exercises the older string form of data.
	if !bytes.Contains(samples["message-sent-string-data"], []byte(`"data": "{`)) {
		t.Error("message-sent-string-data no longer carries data as a string")
	}

	// All samples in one array, as a batching sink sends them.
	var all []json.RawMessage
	for _, name := range wantNames {
		all = append(all, samples[name])
	}
	body, err := json.Marshal(all)
	if err != nil {
		t.Fatal(err)
	}
	b := twilio.Decode("events", body, decodeAt, twilio.DecodeOptions{})
	if len(b.Rejects) != 0 || len(b.Events) != len(wantNames) {
		t.Fatalf("all samples: %d events, rejects %+v", len(b.Events), b.Rejects)
	}
	for i, e := range b.Events {
		var want struct{ ID string }
		_ = json.Unmarshal(all[i], &want)
		if e.ID != want.ID {
			t.Errorf("event %d: id %q, want %q (order kept)", i, e.ID, want.ID)
		}
		if e.Endpoint != "events" {
			t.Errorf("event %d: Endpoint %q", i, e.Endpoint)
		}
	}
}

// TestDecodeDataFieldsReachable: after Decode, data fields of a string-encoded payload are reachable by
// the router (the reason for normalising), and not when the string is kept.
func TestDecodeDataFieldsReachable(t *testing.T) {
	samples, err := twilio.Samples()
	if err != nil {
		t.Fatal(err)
	}
	raw := samples["message-sent-string-data"]
	for _, tc := range []struct {
		opts      twilio.DecodeOptions
		wantFound bool
	}{{twilio.DecodeOptions{}, true}, {twilio.DecodeOptions{KeepDataString: true}, false}} {
		e := twilio.Decode("events", raw, decodeAt, tc.opts).Events[0]
		v, ok := e.Field("data.messageStatus")
		if ok != tc.wantFound || (ok && v != "SENT") {
			t.Errorf("opts %+v: Field(data.messageStatus) = %q, %v", tc.opts, v, ok)
		}
	}
}

func TestDecodeLargeBatch(t *testing.T) {
	var parts []string
	for i := range 500 {
		parts = append(parts, ev(fmt.Sprintf("EZ%d", i), `,"data":{"i":`+fmt.Sprint(i)+`}`))
	}
	b := twilio.Decode("events", []byte("["+strings.Join(parts, ",")+"]"), decodeAt, twilio.DecodeOptions{})
	if len(b.Events) != 500 || len(b.Rejects) != 0 {
		t.Fatalf("%d events, %d rejects", len(b.Events), len(b.Rejects))
	}
	for i, e := range b.Events {
		if e.ID != fmt.Sprintf("EZ%d", i) {
			t.Fatalf("event %d has id %s", i, e.ID)
		}
	}
}
