package relay

import "testing"

// TestSchemaVersion: the version is the last path segment of dataschema, with or without the ".json"
// the sink test event's URL ends in (https://events-schemas.twilio.com/EventStreams.TestSink/1.json).
func TestSchemaVersion(t *testing.T) {
	tests := []struct {
		dataschema string
		want       int
		ok         bool
	}{
		{"https://events-schemas.twilio.com/Messaging.MessageStatus/7", 7, true},
		{"https://events-schemas.twilio.com/EventStreams.TestSink/1.json", 1, true},
		{"https://events-schemas.twilio.com/VoiceInsights.CallSummary/12.json", 12, true},
		{"https://events-schemas.twilio.com/Messaging.MessageStatus/", 0, false},
		{"https://events-schemas.twilio.com/Messaging.MessageStatus/.json", 0, false},
		{"https://events-schemas.twilio.com/Messaging.MessageStatus/v7", 0, false},
		{"https://events-schemas.twilio.com/Messaging.MessageStatus/7.json.json", 0, false},
		{"https://events-schemas.twilio.com/Messaging.MessageStatus/7.yaml", 0, false},
		{"7", 0, false},
		{"", 0, false},
	}
	for _, tt := range tests {
		e := &Event{DataSchema: tt.dataschema}
		got, ok := e.SchemaVersion()
		if got != tt.want || ok != tt.ok {
			t.Errorf("SchemaVersion(%q) = %d, %v; want %d, %v", tt.dataschema, got, ok, tt.want, tt.ok)
		}
		if f, fok := e.Field("schema_version"); fok != tt.ok || (tt.ok && f == "") {
			t.Errorf("Field(schema_version) of %q = %q, %v", tt.dataschema, f, fok)
		}
	}
}
