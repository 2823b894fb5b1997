package twilioapi_test

import (
	"bytes"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/relaykit/twilio-relay/relay"
	"github.com/relaykit/twilio-relay/relay/relaytest/eventsapi"
	"github.com/relaykit/twilio-relay/relay/twilioapi"
)

// plan reads the catalog and the state and plans, as `relay twilio apply` does.
func plan(t *testing.T, c *twilioapi.Client, eps []twilioapi.Endpoint, r *relay.Router, opts twilioapi.DesireOptions) (*twilioapi.Plan, error) {
	t.Helper()
	return planWith(t, c, eps, r, opts, twilioapi.PlanOptions{})
}

func ops(p *twilioapi.Plan) []string {
	var out []string
	for _, a := range p.Actions {
		out = append(out, twilioapi.Describe(a))
	}
	return out
}

// TestApplyConvergesAfterAFailureBetweenSinkAndSubscription: the sink is created, the subscription call
// fails; the rerun creates the subscription on that sink, never a second sink, whatever the GET of a sink
// leaves out (a masked Basic password, no batch_events), and a third run changes nothing.
func TestApplyConvergesAfterAFailureBetweenSinkAndSubscription(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts eventsapi.Options
	}{
		{"password masked", eventsapi.Options{}},
		{"password masked, batch_events left out", eventsapi.Options{OmitBatchEvents: true}},
		{"everything echoed", eventsapi.Options{EchoPassword: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake := startFake(t, tc.opts)
			c := newClient(t, fake, twilioapi.Credentials{AccountSID: acct, AuthToken: acctToken})
			eps := []twilioapi.Endpoint{{Name: "events", Destination: "https://twilio:s3cret@relay.example.com/twilio/events", BatchEvents: false}}
			r := router(route("all", "*"))

			fake.Fail(http.MethodPost, "/v1/Subscriptions", 500, 20500, 1, "Internal Server Error")
			p, err := plan(t, c, eps, r, twilioapi.DesireOptions{})
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			if err := c.Apply(p, &out); err == nil || !strings.Contains(err.Error(), "+ subscription") {
				t.Fatalf("first apply: %v\n%s", err, out.String())
			}
			if snap := fake.Snapshot(acct); len(snap.Sinks) != 1 || len(snap.Subscriptions) != 0 {
				t.Fatalf("after the failure: %+v", snap)
			}

			p, _ = sync(t, c, eps, r, twilioapi.PlanOptions{})
			if got := ops(p); len(got) != 1 || !strings.HasPrefix(got[0], `+ subscription "twilio-relay:events" on DG`) {
				t.Fatalf("rerun: %q, want only the subscription, on the sink made before", got)
			}
			snap := fake.Snapshot(acct)
			if len(snap.Sinks) != 1 || len(snap.Subscriptions) != 1 || snap.Subscriptions[0].SinkSID != snap.Sinks[0].SID ||
				len(snap.Subscriptions[0].Types) != len(eventsapi.Subscribable(eventsapi.DefaultTypes))-1 { // the deprecated one is globbed
				t.Fatalf("after the rerun: %+v", snap)
			}
			if p, _ := sync(t, c, eps, r, twilioapi.PlanOptions{}); !p.Empty() {
				t.Fatalf("third run: %q", ops(p))
			}
			// A new Basic password is a new sink (Twilio cannot change a sink's configuration): the
			// description's record tells it even when the GET masks the password.
			eps[0].Destination = "https://twilio:n3w@relay.example.com/twilio/events"
			p, _ = sync(t, c, eps, r, twilioapi.PlanOptions{})
			if got := strings.Join(ops(p), "\n"); !strings.Contains(got, "replaced: the Basic credentials in the destination changed") ||
				strings.Contains(got, "n3w") || strings.Contains(got, "s3cret") {
				t.Fatalf("password change: %s", got)
			}
			if snap := fake.Snapshot(acct); len(snap.Sinks) != 1 || !strings.Contains(snap.Sinks[0].Destination, ":n3w@") {
				t.Fatalf("after the password change: %+v", snap.Sinks)
			}
		})
	}
}

// TestApplyLifecycle: against a catalog with a type in each lifecycle status, a wildcard route subscribes
// the available types only and lists the others with why; a route naming a deprecated type subscribes it
// with a warning; naming a restricted one is a configuration error; a subscribed type that becomes
// restricted stays, one that is discontinued goes, each with its line.
func TestApplyLifecycle(t *testing.T) {
	fake := startFake(t, eventsapi.Options{})
	c := newClient(t, fake, twilioapi.Credentials{AccountSID: acct, AuthToken: acctToken})
	eps := []twilioapi.Endpoint{{Name: "events", Destination: dest, BatchEvents: true}}
	const deprecated, restricted, discontinued = "com.twilio.voice.webhook.status-callback.call.completed",
		"com.twilio.voice.insights.call-summary.predicted-complete", "com.twilio.conversations.delivery.updated"

	p, out := sync(t, c, eps, router(route("all", "*")), twilioapi.PlanOptions{})
	var printed bytes.Buffer
	p.Print(&printed)
	for _, want := range []string{
		deprecated + "  endpoint events: deprecated, and matched only by a glob",
		restricted + "  endpoint events: restricted: Twilio refuses it in new subscriptions",
		discontinued + "  endpoint events: discontinued",
	} {
		if !strings.Contains(printed.String(), want) {
			t.Errorf("plan lacks %q:\n%s", want, printed.String())
		}
	}
	sub := fake.Snapshot(acct).Subscriptions[0]
	for _, ty := range []string{deprecated, restricted, discontinued} {
		if _, ok := sub.Types[ty]; ok {
			t.Errorf("%s subscribed by a glob: %s", ty, out)
		}
	}

	// Named exactly: the deprecated type is subscribed, with a warning citing its documentation.
	r := router(route("all", "*"), route("old", deprecated))
	p, _ = sync(t, c, eps, r, twilioapi.PlanOptions{})
	if got := ops(p); !slices.Equal(got, []string{"+ type " + deprecated + " v2 in subscription " + sub.SID}) ||
		!slices.ContainsFunc(p.Notes, func(n string) bool { return strings.Contains(n, "deprecated") && strings.Contains(n, "changelog") }) {
		t.Errorf("deprecated named exactly: %q, notes %q", got, p.Notes)
	}
	// Named exactly, a restricted type is a configuration error that says why.
	if _, err := plan(t, c, eps, router(route("all", "*"), route("new", restricted)), twilioapi.DesireOptions{}); err == nil ||
		!strings.Contains(err.Error(), restricted+" is restricted: Twilio refuses to add it to a subscription") {
		t.Errorf("restricted named exactly: %v", err)
	}

	// Later, the deprecated type becomes restricted and a subscribed one is discontinued.
	fake.SetType(eventsapi.Type{Type: deprecated, SchemaID: "Voice.WebhookEvent", Versions: 2, Status: "restricted"})
	fake.SetType(eventsapi.Type{Type: "com.twilio.error-logs.error.logged", SchemaID: "ErrorLogs.Error", Versions: 2, Status: "discontinued"})
	p, _ = sync(t, c, eps, router(route("all", "*")), twilioapi.PlanOptions{})
	if got := ops(p); !slices.Equal(got, []string{"- type com.twilio.error-logs.error.logged v2 from subscription " + sub.SID +
		": discontinued: Twilio no longer sends it and refuses it in subscriptions (see https://www.twilio.com/docs/events/event-types)"}) {
		t.Errorf("after the status changes: %q", got)
	}
	if !slices.ContainsFunc(p.Notes, func(n string) bool { return strings.Contains(n, deprecated+" is restricted: Twilio still delivers it") }) {
		t.Errorf("no note on the kept restricted type: %q", p.Notes)
	}
	if _, ok := fake.Snapshot(acct).Subscriptions[0].Types[deprecated]; !ok {
		t.Error("the type that became restricted was removed: its events would stop")
	}
	if p, _ := sync(t, c, eps, router(route("all", "*")), twilioapi.PlanOptions{}); !p.Empty() {
		t.Errorf("apply after the status changes is not idempotent: %q", ops(p))
	}

	// The public URL changes: the restricted type cannot move to the new subscription, and the plan says so.
	eps[0].Destination = "https://relay2.example.com/twilio/events"
	p, _ = sync(t, c, eps, router(route("all", "*")), twilioapi.PlanOptions{})
	if !slices.ContainsFunc(p.Notes, func(n string) bool {
		return strings.Contains(n, deprecated+" cannot move to the new sink's subscription")
	}) {
		t.Errorf("notes %q", p.Notes)
	}
	if p, _ := sync(t, c, eps, router(route("all", "*")), twilioapi.PlanOptions{}); !p.Empty() {
		t.Errorf("apply after the move is not idempotent: %q", ops(p))
	}
}

// TestSchemaVersionsArePinned: the first apply subscribes the latest version and the subscription keeps
// it; a newer schema version changes nothing until -upgrade-schemas (or a route's schema_versions), and
// the plan says what is behind.
func TestSchemaVersionsArePinned(t *testing.T) {
	const typ = "com.twilio.messaging.message.delivered"
	fake := startFake(t, eventsapi.Options{Types: []eventsapi.Type{{Type: typ, SchemaID: "Messaging.MessageStatus", Versions: 5}}})
	c := newClient(t, fake, twilioapi.Credentials{AccountSID: acct, AuthToken: acctToken})
	eps := []twilioapi.Endpoint{{Name: "events", Destination: dest, BatchEvents: true}}
	r := router(route("all", "*"))
	sync(t, c, eps, r, twilioapi.PlanOptions{})
	sub := fake.Snapshot(acct).Subscriptions[0]
	if sub.Types[typ] != 5 {
		t.Fatalf("first apply: %v", sub.Types)
	}

	fake.SetType(eventsapi.Type{Type: typ, SchemaID: "Messaging.MessageStatus", Versions: 7})
	p, err := plan(t, c, eps, r, twilioapi.DesireOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !p.Empty() || !slices.ContainsFunc(p.Notes, func(n string) bool { return strings.Contains(n, typ+" v5 (latest v7)") }) {
		t.Fatalf("a newer schema version moved the subscription: %q, notes %q", ops(p), p.Notes)
	}
	p, err = plan(t, c, eps, r, twilioapi.DesireOptions{UpgradeSchemas: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := ops(p); !slices.Equal(got, []string{"~ type " + typ + " v5 → v7 in subscription " + sub.SID}) {
		t.Fatalf("-upgrade-schemas: %q", got)
	}
	// A route's schema_versions moves it too, both ways.
	pinned := route("v6", typ)
	pinned.Match.SchemaVersions = []int{6}
	p, _ = plan(t, c, eps, router(pinned), twilioapi.DesireOptions{})
	if got := ops(p); !slices.Equal(got, []string{"~ type " + typ + " v5 → v6 in subscription " + sub.SID}) {
		t.Fatalf("schema_versions [6]: %q", got)
	}
}

// TestApplySaysWhenASinkIsNotActive: a sink Twilio creates in another status than active is read back,
// named, and apply does not report success, on this run or the next, until the sink is validated.
func TestApplySaysWhenASinkIsNotActive(t *testing.T) {
	fake := startFake(t, eventsapi.Options{NewSinkStatus: "initialized"})
	c := newClient(t, fake, twilioapi.Credentials{AccountSID: acct, AuthToken: acctToken})
	eps := []twilioapi.Endpoint{{Name: "events", Destination: dest, BatchEvents: true}}
	r := router(route("all", "*"))
	for run := range 2 {
		p, err := plan(t, c, eps, r, twilioapi.DesireOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		err = c.Apply(p, &out)
		if !errors.Is(err, twilioapi.ErrSinkNotActive) || !strings.Contains(err.Error(), `is "initialized"`) ||
			!strings.Contains(err.Error(), "relay twilio test") {
			t.Fatalf("run %d: %v", run, err)
		}
	}
	if n := len(fake.Snapshot(acct).Sinks); n != 1 {
		t.Fatalf("%d sinks after two runs", n)
	}
}
