package twilioapi

import (
	"slices"
	"strings"
	"testing"

	"github.com/relaykit/twilio-relay/relay"
)

func TestLifecycle(t *testing.T) {
	tests := []struct {
		status            string
		named, subscribed bool
		subscribe, keep   bool
		warn, skip, err   string // substrings; "" means none
	}{
		{status: "", subscribe: true},
		{status: StatusAvailable, subscribe: true},
		{status: StatusAvailable, named: true, subscribed: true, subscribe: true},
		{status: StatusDeprecated, skip: "matched only by a glob"},
		{status: StatusDeprecated, named: true, subscribe: true, warn: "is deprecated"},
		{status: StatusDeprecated, subscribed: true, subscribe: true, warn: "is deprecated"},
		{status: StatusRestricted, skip: "refuses it in new subscriptions"},
		{status: StatusRestricted, named: true, skip: "refuses it in new subscriptions", err: "is restricted"},
		{status: StatusRestricted, subscribed: true, subscribe: true, keep: true, warn: "still delivers it"},
		{status: StatusRestricted, named: true, subscribed: true, subscribe: true, keep: true, warn: "still delivers it"},
		{status: StatusDiscontinued, skip: "no longer sends it"},
		{status: StatusDiscontinued, subscribed: true, skip: "no longer sends it"},
		{status: StatusDiscontinued, named: true, subscribed: true, skip: "no longer sends it", err: "is discontinued"},
		{status: "sunset", skip: `status "sunset"`},
		{status: "sunset", subscribed: true, subscribe: true, keep: true, warn: "does not know"},
	}
	has := func(got, want string) bool { return (want == "") == (got == "") && strings.Contains(got, want) }
	for _, tt := range tests {
		typ := EventType{Type: "com.twilio.x", Status: tt.status, DocumentationURL: "https://docs.example/x"}
		v := lifecycle(typ, tt.named, tt.subscribed)
		if v.subscribe != tt.subscribe || v.keep != tt.keep || !has(v.warn, tt.warn) || !has(v.skip, tt.skip) || !has(v.err, tt.err) {
			t.Errorf("%q named=%v subscribed=%v: %+v", tt.status, tt.named, tt.subscribed, v)
		}
		for _, s := range []string{v.warn, v.skip, v.err} {
			if s != "" && tt.status != "" && tt.status != StatusAvailable && !strings.Contains(s, "https://docs.example/x") {
				t.Errorf("%q: %q does not cite the documentation", tt.status, s)
			}
		}
	}
}

// TestDesiredLifecycle: what lifecycle decides, seen through Desired: which routes name a type exactly,
// and which versions the subscription keeps.
func TestDesiredLifecycle(t *testing.T) {
	cat := []EventType{
		{Type: "a.available", LatestVersion: 3},
		{Type: "a.deprecated", Status: StatusDeprecated, LatestVersion: 2},
		{Type: "a.restricted", Status: StatusRestricted, LatestVersion: 2},
		{Type: "b.restricted", Status: StatusRestricted, LatestVersion: 4},
		{Type: "a.discontinued", Status: StatusDiscontinued, LatestVersion: 1},
	}
	st := &State{Subscriptions: []Subscription{{SID: "DF1", Description: "twilio-relay:events",
		Types: tv("a.available", 1, "b.restricted", 2, "a.discontinued", 1)}}}
	ep := Endpoint{Name: "events", Destination: "https://relay.example.com/e"}
	got, err := Desired([]Endpoint{ep}, &relay.Router{Routes: []relay.Route{route("all", []string{"*"}, nil),
		route("other-endpoint", []string{"a.restricted"}, []string{"other"})}}, cat, st, DesireOptions{})
	if err != nil {
		t.Fatal(err)
	}
	d := got[0]
	if want := tv("a.available", 1, "b.restricted", 2); !slices.Equal(d.Types, want) {
		t.Errorf("types %v, want %v (a.available stays at v1, b.restricted is kept)", d.Types, want)
	}
	if !d.Kept["b.restricted"] || len(d.Kept) != 1 {
		t.Errorf("kept %v", d.Kept)
	}
	var skipped []string
	for _, s := range d.Skipped {
		skipped = append(skipped, s.Type)
	}
	if want := []string{"a.deprecated", "a.restricted", "a.discontinued"}; !slices.Equal(skipped, want) {
		t.Errorf("skipped %v, want %v", skipped, want)
	}
	if !slices.ContainsFunc(d.Notes, func(n string) bool { return strings.Contains(n, "a.available v1 (latest v3)") }) {
		t.Errorf("notes %q", d.Notes)
	}
	// Named exactly by a route of the endpoint (or its twilio.types): an error for each, all reported.
	ep.Types = relay.Globs{"a.*", "a.discontinued"}
	_, err = Desired([]Endpoint{ep}, &relay.Router{Routes: []relay.Route{route("all", []string{"*"}, nil),
		route("r", []string{"a.restricted"}, []string{"events"})}}, cat, nil, DesireOptions{})
	if err == nil || !strings.Contains(err.Error(), "endpoint events: a.restricted is restricted") ||
		!strings.Contains(err.Error(), "endpoint events: a.discontinued is discontinued") {
		t.Errorf("named exactly: %v", err)
	}
}

func TestSinkMark(t *testing.T) {
	d := &SinkSpec{Endpoint: "events", Destination: "https://twilio:s3cret@relay.example.com/e", BatchEvents: true}
	desc := sinkDescription(d)
	m, ok := parseMark(desc)
	if !ok || m.endpoint != "events" || m.batch == nil || !*m.batch || len(m.credentials) != 12 {
		t.Fatalf("%q parsed as %+v", desc, m)
	}
	if strings.Contains(desc, "s3cret") || !strings.HasPrefix(desc, "twilio-relay:events batch_events=true credentials=") {
		t.Errorf("description %q", desc)
	}
	other := credentialTag("events", "https://twilio:s3cret2@relay.example.com/e")
	if other == m.credentials || credentialTag("other", d.Destination) == m.credentials || credentialTag("events", "https://relay.example.com/e") != "" {
		t.Error("the tag does not follow the password, the endpoint, or the presence of one")
	}
	for _, bare := range []string{"twilio-relay:events", "twilio-relay:events batch_events=maybe x=y"} {
		if m, ok := parseMark(bare); !ok || m.endpoint != "events" || m.batch != nil || m.credentials != "" {
			t.Errorf("%q: %+v", bare, m)
		}
	}
	for _, foreign := range []string{"", "twilio-relay:", "twilio-relay: events", "console sink", "twilio-relayevents"} {
		if _, ok := parseMark(foreign); ok {
			t.Errorf("%q read as the relay's", foreign)
		}
	}
}
