// Package relay holds the domain of the Twilio Event Streams relay: the events it receives, the sinks it
// delivers them to, the routing rules between the two, the retry policy and the errors the HTTP edge maps
// to status codes. It imports only the standard library; every outside dependency lives in a sub-package.
package relay

import (
	"bytes"
	"strconv"
	"strings"

	"github.com/relaykit/twilio-relay/relay/internal/jsonscan"
)

// TestEventType is the type of the event Twilio sends when a sink is tested. Every test event carries the
// account SID as its id, so test events are never deduplicated by id.
const TestEventType = "com.twilio.eventstreams.test-event"

// DeadLetterType is the CloudEvents type of the records the relay writes to its dead-letter destination.
const DeadLetterType = "io.relaykit.relay.deadletter"

// Event is one CloudEvent received from Twilio. The attribute fields hold the values as received; Data
// holds the event payload (normalised to a JSON object when it arrived as a JSON-encoded string, unless the
// endpoint keeps it as received). Raw holds the event's own bytes as they arrived.
//
// An Event is owned by one request; nothing mutates it after decoding, so sinks may read it concurrently.
type Event struct {
	Endpoint string // name of the endpoint the event arrived on

	SpecVersion     string
	ID              string
	Source          string
	Type            string
	Subject         string
	Time            string
	DataSchema      string
	DataContentType string
	// Extensions are the CloudEvents extension attributes, as strings.
	Extensions map[string]string

	// Data is the payload: JSON text unless Binary is set, in which case it is the decoded data_base64.
	Data   []byte
	Binary bool

	Raw []byte
}

// IsTest reports whether e is a Twilio sink test event.
func (e *Event) IsTest() bool { return e.Type == TestEventType }

// DedupeKey is the key under which the relay remembers e: the endpoint, the source and the id, which
// together identify one event (CloudEvents: source + id is unique; endpoints are kept apart).
func (e *Event) DedupeKey() string {
	return e.Endpoint + "\x00" + e.Source + "\x00" + e.ID
}

// Key returns the event's dedupe key: DedupeKey and its hash.
func (e *Event) Key() Key { return NewKey(e.DedupeKey()) }

// SchemaVersion returns the version number at the end of the dataschema URL Twilio sets: both
// https://events-schemas.twilio.com/Messaging.MessageStatus/7 and, as the sink test event has it,
// https://events-schemas.twilio.com/EventStreams.TestSink/1.json name a version (7, 1).
func (e *Event) SchemaVersion() (int, bool) {
	s := strings.TrimSuffix(e.DataSchema, ".json")
	i := strings.LastIndexByte(s, '/')
	if i < 0 || i == len(s)-1 {
		return 0, false
	}
	n, err := strconv.Atoi(s[i+1:])
	if err != nil {
		return 0, false
	}
	return n, true
}

// resourceSIDFields are the data fields, in order of preference, that name the Twilio resource an event is
// about. Keying by it keeps one resource's events in one partition, in order.
var resourceSIDFields = [...]string{
	"messageSid", "callSid", "conversationSid", "taskSid", "reservationSid", "workerSid",
	"participantSid", "recordingSid", "transcriptionSid", "conferenceSid", "verificationSid",
	"message_sid", "call_sid", "conversation_sid", "task_sid", "resourceSid", "resource_sid", "sid",
}

// resourceSIDRank maps each of resourceSIDFields to its preference.
var resourceSIDRank = func() map[string]int {
	m := make(map[string]int, len(resourceSIDFields))
	for i, f := range resourceSIDFields {
		m[f] = i
	}
	return m
}()

// ResourceSID returns the SID of the resource the event is about, looked up in data under the usual
// field names (messageSid, callSid, conversationSid, taskSid …), or the subject attribute when data has
// none. It returns "" when neither exists.
func (e *Event) ResourceSID() string {
	if raw := e.dataResourceSID(); raw != nil {
		s, _ := jsonscan.String(raw)
		return s
	}
	return e.Subject
}

// resourceKey returns ResourceSID as a new byte slice, nil when it is "": a message key, copied once.
func (e *Event) resourceKey() []byte {
	raw := e.dataResourceSID()
	if raw == nil {
		if e.Subject == "" {
			return nil
		}
		return []byte(e.Subject)
	}
	text, _ := jsonscan.Text(raw)
	return bytes.Clone(text)
}

// dataResourceSID returns the raw JSON string of the most preferred non-empty resource SID field in data,
// or nil. Keys are compared in place.
func (e *Event) dataResourceSID() []byte {
	if e.Binary {
		return nil
	}
	best := len(resourceSIDFields)
	var sid []byte
	jsonscan.Members(e.Data, func(k, v []byte) bool {
		name, ok := jsonscan.Text(k)
		if !ok {
			return true
		}
		if rank, ok := resourceSIDRank[string(name)]; ok && rank < best && nonEmptyString(v) {
			best, sid = rank, v
		}
		return best > 0
	})
	return sid
}

// nonEmptyString reports whether raw is a JSON string whose value is not "".
func nonEmptyString(raw []byte) bool {
	text, ok := jsonscan.Text(raw)
	return ok && len(text) > 0
}

// Field returns an attribute or a data field by name, as a string: "type", "source", "id", "subject",
// "time", "dataschema", "specversion", "datacontenttype", "endpoint", "schema_version", "resource_sid",
// an extension attribute by its name, or "data.<path>" with dot-separated object keys. The boolean is
// false when the field is absent; numbers and booleans are formatted as JSON, objects and arrays as absent.
func (e *Event) Field(name string) (string, bool) {
	switch name {
	case "type":
		return e.Type, true
	case "source":
		return e.Source, true
	case "id":
		return e.ID, true
	case "subject":
		return e.Subject, e.Subject != ""
	case "time":
		return e.Time, e.Time != ""
	case "dataschema":
		return e.DataSchema, e.DataSchema != ""
	case "specversion":
		return e.SpecVersion, true
	case "datacontenttype":
		return e.DataContentType, e.DataContentType != ""
	case "endpoint":
		return e.Endpoint, true
	case "schema_version":
		if v, ok := e.SchemaVersion(); ok {
			return strconv.Itoa(v), true
		}
		return "", false
	case "resource_sid":
		v := e.ResourceSID()
		return v, v != ""
	}
	if path, ok := strings.CutPrefix(name, "data."); ok {
		return e.dataField(path)
	}
	v, ok := e.Extensions[name]
	return v, ok
}

// dataField looks up a dot-separated path in the data object, reading the JSON in place.
func (e *Event) dataField(path string) (string, bool) {
	if e.Binary {
		return "", false
	}
	v, ok := jsonscan.Lookup(e.Data, strings.Split(path, ".")...)
	if !ok || len(v) == 0 {
		return "", false
	}
	switch v[0] {
	case '"':
		return jsonscan.String(v)
	case '{', '[', 'n': // objects, arrays and null are not field values
		return "", false
	}
	return string(v), true // numbers as their exact JSON text; true, false
}
