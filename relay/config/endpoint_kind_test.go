package config

import (
	"strings"
	"testing"
)

// The endpoint kinds (event-streams, classic) and the twilio section `relay twilio apply` reads.
func TestEndpointKindAndTwilio(t *testing.T) {
	const base = `
endpoints:
  - name: events
    path: /e
    public_url: https://relay.example.com/e
    auth_tokens: [ t ]
%s
sinks: [ { name: k, kafka: { brokers: [ "127.0.0.1:9092" ] } } ]
routes: [ { name: all, match: { types: [ "*" ] }, to: [ { sink: k, topic: t } ] } ]
dead_letter: { sink: k, topic: dl }
`
	parse := func(extra string) (*Config, error) {
		return Parse([]byte(strings.Replace(base, "%s", extra, 1)), envMap(nil))
	}

	c, err := parse("")
	if err != nil {
		t.Fatal(err)
	}
	if ep := c.Endpoints[0]; ep.Kind != KindEventStreams || ep.Twilio.BatchEvents == nil || !*ep.Twilio.BatchEvents {
		t.Fatalf("defaults: kind %q, batch_events %v; want event-streams and true", ep.Kind, ep.Twilio.BatchEvents)
	}

	c, err = parse("    twilio: { batch_events: false, types: [ \"com.twilio.messaging.*\" ] }")
	if err != nil {
		t.Fatal(err)
	}
	if ep := c.Endpoints[0]; *ep.Twilio.BatchEvents || ep.Twilio.Types[0] != "com.twilio.messaging.*" {
		t.Fatalf("twilio section: %+v", ep.Twilio)
	}

	c, err = parse("    kind: classic")
	if err != nil {
		t.Fatal(err)
	}
	if ep := c.Endpoints[0]; ep.Kind != KindClassic || ep.Twilio.BatchEvents != nil {
		t.Fatalf("classic: %+v", ep)
	}

	for extra, want := range map[string]string{
		"    kind: webhook": `endpoints[0].kind: "webhook" is not one of [event-streams classic]`,
		"    kind: classic\n    twilio: { batch_events: true }": "endpoints[0].twilio: a classic endpoint has no Event Streams sink",
		"    twilio: { batchevents: true }":                     "endpoints[0].twilio.batchevents (line 7): unknown field; known fields here: batch_events, types",
	} {
		if _, err := parse(extra); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", extra, err, want)
		}
	}
}
