package prometheus_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/relaykit/twilio-relay/relay"
	"github.com/relaykit/twilio-relay/relay/prometheus"
)

func TestTypeLabels(t *testing.T) {
	exact, patterns := prometheus.RouteTypes([]relay.Route{
		{Match: relay.Match{Types: relay.Globs{"com.twilio.messaging.*", "com.example.custom"}}},
		{Match: relay.Match{}},
		{Match: relay.Match{Types: relay.Globs{"*", "**"}}}, // every type: names none
	})
	l := prometheus.NewTypeLabels(append([]string{"com.twilio.voice.insights.call-summary.complete"}, exact...), patterns)
	for _, tc := range []struct{ typ, want string }{
		{"com.twilio.voice.insights.call-summary.complete", "com.twilio.voice.insights.call-summary.complete"}, // catalog
		{"com.example.custom", "com.example.custom"},                                                           // named by a route
		{"com.twilio.messaging.message.new-status", "com.twilio.messaging.message.new-status"},                 // a route pattern
		{"com.twilio.voice.unknown", prometheus.OtherType},                                                     // only "*" matches it
		{"com.twilio.messaging." + strings.Repeat("x", prometheus.MaxTypeLength), prometheus.OtherType},
		{"", ""},
	} {
		if got := l.Label(tc.typ); got != tc.want {
			t.Errorf("Label(%.40q) = %q, want %q", tc.typ, got, tc.want)
		}
	}
	// Types a pattern matches are kept up to MaxRoutedTypes; then other.
	kept := 1 // new-status above
	for i := range 2 * prometheus.MaxRoutedTypes {
		if l.Label(fmt.Sprintf("com.twilio.messaging.flood%d", i)) != prometheus.OtherType {
			kept++
		}
	}
	if kept != prometheus.MaxRoutedTypes || l.Label("com.twilio.messaging.message.new-status") == prometheus.OtherType {
		t.Errorf("%d types kept through the pattern, want %d, the first still kept", kept, prometheus.MaxRoutedTypes)
	}
}

// TestTypeLabelFlood: 3,000 types in events received make at most the catalog's series, plus other.
func TestTypeLabelFlood(t *testing.T) {
	m := prometheus.New(prometheus.NewTypeLabels([]string{"com.twilio.messaging.message.sent"}, nil))
	m.EventReceived("events", "com.twilio.messaging.message.sent")
	for i := range 3000 {
		m.EventReceived("events", fmt.Sprintf("com.attacker.type%d", i))
	}
	families, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range families {
		if f.GetName() == "relay_events_received_total" {
			n = len(f.GetMetric())
		}
	}
	if n != 2 {
		t.Fatalf("%d series of relay_events_received_total, want 2 (the known type and other)", n)
	}
}
