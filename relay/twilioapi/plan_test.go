package twilioapi

import (
	"slices"
	"strings"
	"testing"

	"github.com/relaykit/twilio-relay/relay"
)

var catalog = []EventType{
	{Type: "com.twilio.messaging.message.delivered", SchemaID: "Messaging.MessageStatus", LatestVersion: 5},
	{Type: "com.twilio.messaging.message.failed", SchemaID: "Messaging.MessageStatus", LatestVersion: 5},
	{Type: "com.twilio.voice.insights.call-summary.complete", SchemaID: "Voice.Insights.CallSummary", LatestVersion: 2},
	{Type: "com.twilio.taskrouter.task.created", SchemaID: "TaskRouter.WDSEvent", LatestVersion: 1},
	{Type: relay.TestEventType, SchemaID: "EventStreams.TestSink", LatestVersion: 1},
}

func route(name string, types, endpoints []string, versions ...int) relay.Route {
	r := relay.Route{Name: name, Match: relay.Match{SchemaVersions: versions}}
	for _, t := range types {
		r.Match.Types = append(r.Match.Types, relay.Glob(t))
	}
	for _, e := range endpoints {
		r.Match.Endpoints = append(r.Match.Endpoints, relay.Glob(e))
	}
	return r
}

func tv(pairs ...any) []TypeVersion {
	var out []TypeVersion
	for i := 0; i < len(pairs); i += 2 {
		out = append(out, TypeVersion{pairs[i].(string), pairs[i+1].(int)})
	}
	return out
}

func TestDesired(t *testing.T) {
	ep := Endpoint{Name: "events", Destination: "https://relay.example.com/twilio/events", BatchEvents: true}
	tests := []struct {
		name    string
		ep      Endpoint
		routes  []relay.Route
		want    []TypeVersion
		skipped string
	}{
		{name: "a wildcard route subscribes every type but the test event, at the latest version",
			ep: ep, routes: []relay.Route{route("all", []string{"*"}, nil)},
			want: tv("com.twilio.messaging.message.delivered", 5, "com.twilio.messaging.message.failed", 5,
				"com.twilio.taskrouter.task.created", 1, "com.twilio.voice.insights.call-summary.complete", 2)},
		{name: "globs select types",
			ep: ep, routes: []relay.Route{route("msg", []string{"com.twilio.messaging.*"}, nil)},
			want: tv("com.twilio.messaging.message.delivered", 5, "com.twilio.messaging.message.failed", 5)},
		{name: "a route for another endpoint does not count",
			ep: ep, routes: []relay.Route{route("msg", []string{"com.twilio.messaging.*"}, []string{"other"}),
				route("voice", []string{"com.twilio.voice.*"}, []string{"ev*"})},
			want: tv("com.twilio.voice.insights.call-summary.complete", 2)},
		{name: "the first route listing schema_versions picks the highest listed that exists",
			ep: ep, routes: []relay.Route{route("v3", []string{"com.twilio.messaging.message.delivered"}, nil, 3, 4, 9),
				route("all", []string{"com.twilio.messaging.*"}, nil)},
			want: tv("com.twilio.messaging.message.delivered", 4, "com.twilio.messaging.message.failed", 5)},
		{name: "a version that does not exist falls through to the next route, with a note",
			ep: ep, routes: []relay.Route{route("v9", []string{"com.twilio.taskrouter.*"}, nil, 9)},
			want: nil, skipped: "route v9: com.twilio.taskrouter.task.created has no schema version in [9] (latest 1)"},
		{name: "endpoint types narrow what the routes match",
			ep: Endpoint{Name: "events", Types: []relay.Glob{"*.failed", "*.task.*"}}, routes: []relay.Route{route("all", []string{"*"}, nil)},
			want: tv("com.twilio.messaging.message.failed", 5, "com.twilio.taskrouter.task.created", 1)},
		{name: "no routes, no types", ep: ep, routes: nil, want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Desired([]Endpoint{tt.ep}, &relay.Router{Routes: tt.routes}, catalog, nil, DesireOptions{})
			if err != nil || len(got) != 1 {
				t.Fatalf("%d specs", len(got))
			}
			if !slices.Equal(got[0].Types, tt.want) {
				t.Errorf("types %v, want %v", got[0].Types, tt.want)
			}
			if got[0].Description != "twilio-relay:events" {
				t.Errorf("description %q", got[0].Description)
			}
			if tt.skipped != "" && !slices.Contains(got[0].Notes, tt.skipped) {
				t.Errorf("notes %q, want %q", got[0].Notes, tt.skipped)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestMakePlan(t *testing.T) {
	const dest = "https://relay.example.com/twilio/events"
	spec := SinkSpec{Endpoint: "events", Description: "twilio-relay:events", Destination: dest, BatchEvents: true,
		Types: tv("a.one", 1, "a.two", 2)}
	ownSink := Sink{SID: "DG1", Description: "twilio-relay:events", SinkType: "webhook", Destination: dest, Method: "POST", BatchEvents: ptr(true)}
	ownSub := Subscription{SID: "DF1", Description: "twilio-relay:events", SinkSID: "DG1", Types: tv("a.one", 1, "a.two", 2)}

	tests := []struct {
		name    string
		state   State
		opts    PlanOptions
		want    []string // Describe of each action, in order
		notes   []string // substrings, one per expected note
		desired []SinkSpec
	}{
		{name: "nothing at Twilio: create the sink, then the subscription on it",
			want: []string{
				`+ sink "twilio-relay:events" webhook POST ` + dest + ` batch_events=true: no sink of the relay has this configuration`,
				`+ subscription "twilio-relay:events" on the new sink with 2 types`}},
		{name: "in sync: nothing", state: State{Sinks: []Sink{ownSink}, Subscriptions: []Subscription{ownSub}}},
		{name: "sink without subscription",
			state: State{Sinks: []Sink{ownSink}},
			want:  []string{`+ subscription "twilio-relay:events" on DG1 with 2 types`}},
		{name: "types missing, extra and at another version",
			state: State{Sinks: []Sink{ownSink}, Subscriptions: []Subscription{{SID: "DF1", Description: "twilio-relay:events", SinkSID: "DG1",
				Types: tv("a.two", 1, "a.zzz", 3)}}},
			want: []string{"+ type a.one v1 in subscription DF1", "~ type a.two v1 → v2 in subscription DF1",
				"- type a.zzz v3 from subscription DF1: no route matches it"}},
		{name: "destination changed: a new sink and subscription first, then the old ones go",
			state: State{Sinks: []Sink{{SID: "DG1", Description: "twilio-relay:events", SinkType: "webhook", Destination: "https://old.example.com/e",
				Method: "POST", BatchEvents: ptr(true)}}, Subscriptions: []Subscription{ownSub}},
			want: []string{
				`+ sink "twilio-relay:events" webhook POST ` + dest + ` batch_events=true: no sink of the relay has this configuration`,
				`+ subscription "twilio-relay:events" on the new sink with 2 types`,
				`- subscription DF1 on sink DG1: its sink is deleted`,
				`- sink DG1: replaced: destination https://old.example.com/e → ` + dest}},
		{name: "batch_events neither echoed nor recorded: the sink is kept (the echo says less, not something else)",
			state: State{Sinks: []Sink{{SID: "DG1", Description: "twilio-relay:events", SinkType: "webhook", Destination: dest, Method: "POST"}}},
			want:  []string{`+ subscription "twilio-relay:events" on DG1 with 2 types`}},
		{name: "batch_events not echoed: the description's record decides",
			state: State{Sinks: []Sink{{SID: "DG1", Description: "twilio-relay:events batch_events=false", SinkType: "webhook", Destination: dest}}},
			want: []string{
				`+ sink "twilio-relay:events" webhook POST ` + dest + ` batch_events=true: no sink of the relay has this configuration`,
				`+ subscription "twilio-relay:events" on the new sink with 2 types`,
				`- sink DG1: replaced: batch_events false → true`}},
		{name: "batch_events echoed wins over the record",
			state: State{Sinks: []Sink{{SID: "DG1", Description: "twilio-relay:events batch_events=false", SinkType: "webhook", Destination: dest, BatchEvents: ptr(true)}},
				Subscriptions: []Subscription{ownSub}}},
		{name: "foreign sink to the same URL and foreign subscription on ours: left alone, noted",
			state: State{Sinks: []Sink{ownSink, {SID: "DG9", Description: "console sink", SinkType: "webhook", Destination: dest, Method: "POST"}},
				Subscriptions: []Subscription{ownSub, {SID: "DF9", Description: "by hand", SinkSID: "DG1"}}},
			notes: []string{"sink DG9 (\"console sink\") was not created by the relay", "subscription DF9 (\"by hand\") on the relay's sink DG1"}},
		{name: "foreign resources with prune: deleted, subscriptions first",
			opts: PlanOptions{Prune: true},
			state: State{Sinks: []Sink{ownSink, {SID: "DG9", Description: "console sink", SinkType: "webhook", Destination: "https://u:p@relay.example.com/twilio/events"}},
				Subscriptions: []Subscription{ownSub, {SID: "DF9", Description: "by hand", SinkSID: "DG1"}, {SID: "DF8", Description: "x", SinkSID: "DG9"}}},
			want: []string{
				`- subscription DF8 on sink DG9 (not created by the relay; --prune): its sink is deleted`,
				`- subscription DF9 on sink DG1 (not created by the relay; --prune): not created by the relay ("by hand")`,
				`- sink DG9 (not created by the relay; --prune): a sink the relay did not create delivers to endpoint events`}},
		{name: "foreign sinks elsewhere are none of our business, even with prune",
			opts:  PlanOptions{Prune: true},
			state: State{Sinks: []Sink{ownSink, {SID: "DG9", Description: "segment", SinkType: "segment"}}, Subscriptions: []Subscription{ownSub}}},
		{name: "a sink of an endpoint no longer configured is deleted; one of a known endpoint is not",
			opts: PlanOptions{Known: []string{"other"}},
			state: State{Sinks: []Sink{ownSink, {SID: "DG2", Description: "twilio-relay:gone"}, {SID: "DG3", Description: "twilio-relay:other"}},
				Subscriptions: []Subscription{ownSub, {SID: "DF2", Description: "twilio-relay:gone", SinkSID: "DG2"}}},
			want: []string{`- subscription DF2 on sink DG2: its sink is deleted`, `- sink DG2: endpoint "gone" is not in the configuration`}},
		{name: "an old sink kept by a foreign subscription is not deleted without prune",
			state:   State{Sinks: []Sink{{SID: "DG2", Description: "twilio-relay:gone"}}, Subscriptions: []Subscription{{SID: "DF7", Description: "mine", SinkSID: "DG2"}}},
			desired: []SinkSpec{},
			notes:   []string{"subscription DF7 (\"mine\") on sink DG2", "sink DG2 is kept"}},
		{name: "no types wanted any more: the subscription goes, the sink stays",
			desired: []SinkSpec{{Endpoint: "events", Description: "twilio-relay:events", Destination: dest, BatchEvents: true}},
			state:   State{Sinks: []Sink{ownSink}, Subscriptions: []Subscription{ownSub}},
			want:    []string{`- subscription DF1 on sink DG1: no route matches any event type`}},
		{name: "two matching sinks: the one with the relay's subscription stays, whatever the order",
			state: State{Sinks: []Sink{{SID: "DG0", Description: "twilio-relay:events", SinkType: "webhook", Destination: dest}, ownSink},
				Subscriptions: []Subscription{ownSub}},
			want: []string{`- sink DG0: a second sink of the relay for this endpoint`}},
		{name: "two sinks of the relay for one endpoint: the matching one stays",
			state: State{Sinks: []Sink{{SID: "DG0", Description: "twilio-relay:events", Destination: "https://x/"}, ownSink}, Subscriptions: []Subscription{ownSub}},
			want:  []string{`- sink DG0: a second sink of the relay for this endpoint`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			desired := tt.desired
			if desired == nil {
				desired = []SinkSpec{spec}
			}
			p := MakePlan(desired, &tt.state, tt.opts)
			var got []string
			for _, a := range p.Actions {
				got = append(got, Describe(a))
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("actions:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(tt.want, "\n  "))
			}
			if len(p.Notes) != len(tt.notes) {
				t.Errorf("notes %q, want %d", p.Notes, len(tt.notes))
			}
			for _, n := range tt.notes {
				if !slices.ContainsFunc(p.Notes, func(s string) bool { return strings.Contains(s, n) }) {
					t.Errorf("no note contains %q: %q", n, p.Notes)
				}
			}
		})
	}
}

func TestRedact(t *testing.T) {
	if got := redact("https://user:secret@relay.example.com/x"); strings.Contains(got, "secret") {
		t.Fatalf("redact kept the password: %s", got)
	}
	if got := redact("https://relay.example.com/x?y=1"); got != "https://relay.example.com/x?y=1" {
		t.Fatalf("redact changed a URL without credentials: %s", got)
	}
}
