package relay

import (
	"strings"
	"testing"
)

func TestGlobMatch(t *testing.T) {
	tests := []struct {
		glob, s string
		want    bool
	}{
		{"*", "", true},
		{"*", "anything/at.all", true},
		{"com.twilio.messaging.message.*", "com.twilio.messaging.message.delivered", true},
		{"com.twilio.messaging.message.*", "com.twilio.messaging.inbound-message.received", false},
		{"com.twilio.*.delivered", "com.twilio.messaging.message.delivered", true},
		{"*/Messages/*", "/2010-04-01/Accounts/AC1/Messages/SM1.json", true},
		{"exact", "exact", true},
		{"exact", "exact2", false},
		{"a*b*c", "aXXbYYc", true},
		{"a*b*c", "aXXbYY", false},
		{"**", "x", true},
		{"", "", true},
		{"", "x", false},
	}
	for _, tt := range tests {
		if got := Glob(tt.glob).Match(tt.s); got != tt.want {
			t.Errorf("Glob(%q).Match(%q) = %v, want %v", tt.glob, tt.s, got, tt.want)
		}
	}
}

func TestTemplate(t *testing.T) {
	ev := sampleEvent()
	tests := []struct {
		tmpl, want, err string
	}{
		{"twilio.events", "twilio.events", ""},
		{"twilio.{type}", "twilio.com.twilio.messaging.message.delivered", ""},
		{"{endpoint}-{data.messageStatus}", "events-DELIVERED", ""},
		{"{data.nested.code}", "30008", ""},
		{"{resource_sid}", "SM1", ""},
		{"{schema_version}", "5", ""},
		{"{{literal}}", "{literal}", ""},
		{"x.{data.missing}", "", "field data.missing is absent"},
		{"{ type }", "com.twilio.messaging.message.delivered", ""},
	}
	for _, tt := range tests {
		tp, err := ParseTemplate(tt.tmpl)
		if err != nil {
			t.Fatalf("ParseTemplate(%q): %v", tt.tmpl, err)
		}
		got, err := tp.Render(ev)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("Render(%q) error = %v, want containing %q", tt.tmpl, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("Render(%q) = %q, %v; want %q", tt.tmpl, got, err, tt.want)
		}
	}
	for _, bad := range []string{"{unclosed", "a}b", "{}", "{bad name}", "{a/b}"} {
		if _, err := ParseTemplate(bad); err == nil {
			t.Errorf("ParseTemplate(%q) succeeded, want an error", bad)
		}
	}
}

func sampleEvent() *Event {
	return &Event{
		Endpoint: "events", SpecVersion: "1.0", ID: "EZ1", Type: "com.twilio.messaging.message.delivered",
		Source:     "/2010-04-01/Accounts/AC1/Messages/SM1.json",
		DataSchema: "https://events-schemas.twilio.com/Messaging.MessageStatus/5",
		Data:       []byte(`{"messageSid":"SM1","messageStatus":"DELIVERED","nested":{"code":30008},"flag":true,"big":12345678901234567890}`),
	}
}

func TestEventField(t *testing.T) {
	ev := sampleEvent()
	for name, want := range map[string]string{
		"data.flag": "true", "data.big": "12345678901234567890", "type": ev.Type, "endpoint": "events",
	} {
		if got, ok := ev.Field(name); !ok || got != want {
			t.Errorf("Field(%q) = %q, %v; want %q", name, got, ok, want)
		}
	}
	for _, name := range []string{"data.nested", "data.none", "data.messageSid.x", "subject", "nosuchext"} {
		if got, ok := ev.Field(name); ok {
			t.Errorf("Field(%q) = %q, want absent", name, got)
		}
	}
}

func TestResourceSID(t *testing.T) {
	tests := []struct {
		data, subject, want string
	}{
		{`{"messageSid":"SM1","callSid":"CA1"}`, "", "SM1"},
		{`{"callSid":"CA1"}`, "", "CA1"},
		{`{"task_sid":"WT1","account_sid":"AC1"}`, "", "WT1"},
		{`{"sid":"NO1","resource_sid":"SM9"}`, "", "SM9"},
		{`{"other":"x"}`, "subj", "subj"},
		{`[1,2]`, "", ""},
		{``, "", ""},
	}
	for _, tt := range tests {
		ev := &Event{Data: []byte(tt.data), Subject: tt.subject}
		if got := ev.ResourceSID(); got != tt.want {
			t.Errorf("ResourceSID(%s) = %q, want %q", tt.data, got, tt.want)
		}
	}
}

func TestRouter(t *testing.T) {
	yes, no := true, false
	msg := sampleEvent()
	call := &Event{Endpoint: "voice", ID: "VW1", Type: "com.twilio.voice.insights.call-summary.complete",
		Source: "/v1/Voice/CA1/Summary", Data: []byte(`{"callSid":"CA1"}`)}
	errEv := &Event{Endpoint: "events", ID: "NO1", Type: "com.twilio.error-logs.error.logged", Source: "/x",
		Data: []byte(`{"error_code":30008}`)}
	r := Router{Routes: []Route{
		{Name: "delivered", Match: Match{Types: []Glob{"com.twilio.messaging.message.*"},
			Conditions: []Condition{{Field: "data.messageStatus", In: []string{"DELIVERED", "READ"}}}},
			Targets: []Target{{Sink: "k", Topic: MustParseTemplate("msg.{data.messageStatus}")},
				{Sink: "audit", Topic: MustParseTemplate("audit"), Key: MustParseTemplate("{id}")}}},
		{Name: "voice-v2", Match: Match{Endpoints: []Glob{"voice"}, SchemaVersions: []int{2}},
			Targets: []Target{{Sink: "k", Topic: MustParseTemplate("voice")}}},
		{Name: "errors-with-code", Continue: true, Match: Match{Conditions: []Condition{{Field: "data.error_code", Exists: &yes}}},
			Targets: []Target{{Sink: "k", Topic: MustParseTemplate("errors")}}},
		{Name: "no-subject", Match: Match{Conditions: []Condition{{Field: "subject", Exists: &no}}},
			Targets: []Target{{Sink: "k", Topic: MustParseTemplate("catch-all.{type}")}}},
	}}
	type want struct{ route, sink, topic, key string }
	tests := []struct {
		name string
		ev   *Event
		want []want
	}{
		{"first match wins, two targets", msg, []want{{"delivered", "k", "msg.DELIVERED", "SM1"}, {"delivered", "audit", "audit", "EZ1"}}},
		{"schema version absent: falls through", call, []want{{"no-subject", "k", "catch-all." + call.Type, "CA1"}}},
		{"continue adds the next match", errEv, []want{{"errors-with-code", "k", "errors", ""}, {"no-subject", "k", "catch-all." + errEv.Type, ""}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ds, err := r.Route(tt.ev)
			if err != nil {
				t.Fatal(err)
			}
			if len(ds) != len(tt.want) {
				t.Fatalf("got %d deliveries %+v, want %d", len(ds), ds, len(tt.want))
			}
			for i, w := range tt.want {
				d := ds[i]
				if d.Route != w.route || d.Sink != w.sink || d.Topic != w.topic || string(d.Key) != w.key {
					t.Errorf("delivery %d = {%s %s %s %q}, want %+v", i, d.Route, d.Sink, d.Topic, d.Key, w)
				}
			}
		})
	}

	call2 := *call
	call2.DataSchema = "https://events-schemas.twilio.com/VoiceInsights.CallSummary/2"
	if ds, _ := r.Route(&call2); len(ds) != 1 || ds[0].Route != "voice-v2" {
		t.Errorf("schema version 2 on endpoint voice: got %+v, want route voice-v2", ds)
	}
	bad := Router{Routes: []Route{{Name: "r", Targets: []Target{{Sink: "k", Topic: MustParseTemplate("{data.nope}")}}}}}
	if _, err := bad.Route(msg); err == nil || !strings.Contains(err.Error(), "route r: topic") {
		t.Errorf("template error = %v, want one naming the route", err)
	}
	if ds, err := (&Router{}).Route(msg); err != nil || len(ds) != 0 {
		t.Errorf("no routes: %v, %v; want none", ds, err)
	}
}

// FuzzTemplate: parsing never panics, and a parsed template renders without panicking; a template
// without placeholders renders to its own text with '{{' and '}}' unescaped.
func FuzzTemplate(f *testing.F) {
	for _, s := range []string{"twilio.{type}", "{data.a.b}", "{{x}}", "{", "}", "{}", "a{b}c{d}", "{resource_sid}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tp, err := ParseTemplate(s)
		if err != nil {
			return
		}
		out, err := tp.Render(sampleEvent())
		if !strings.ContainsAny(strings.ReplaceAll(strings.ReplaceAll(s, "{{", ""), "}}", ""), "{}") {
			want := strings.ReplaceAll(strings.ReplaceAll(s, "{{", "{"), "}}", "}")
			if err != nil || out != want {
				t.Fatalf("literal %q rendered %q, %v; want %q", s, out, err, want)
			}
		}
	})
}
