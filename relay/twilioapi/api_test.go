package twilioapi_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/relaykit/twilio-relay/relay"
	"github.com/relaykit/twilio-relay/relay/relaytest/eventsapi"
	"github.com/relaykit/twilio-relay/relay/twilioapi"
)

// Credentials are alphanumeric like Twilio's (twilio-go refuses anything else as Basic credentials).
const (
	acct      = "AC0123456789abcdef0123456789abcdef"
	acctToken = "0123456789abcdef0123456789abcdef"
	sub       = "ACfedcba9876543210fedcba9876543210"
	subToken  = "fedcba9876543210fedcba9876543210"
	apiKey    = "SK00000000000000000000000000000001"
	apiSecret = "keysecretkeysecretkeysecret12345"
	dest      = "https://relay.example.com/twilio/events"
)

func startFake(t *testing.T, opts eventsapi.Options) *eventsapi.Server {
	t.Helper()
	if opts.Accounts == nil {
		opts.Accounts = map[string]string{acct: acctToken, sub: subToken}
	}
	if opts.APIKeys == nil {
		opts.APIKeys = map[string]eventsapi.APIKey{apiKey: {Secret: apiSecret, Account: sub}}
	}
	return eventsapi.Start(t, opts)
}

func newClient(t *testing.T, fake *eventsapi.Server, creds twilioapi.Credentials) *twilioapi.Client {
	t.Helper()
	c, err := twilioapi.New(twilioapi.Config{Credentials: creds, BaseURL: fake.URL, PageSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func router(routes ...relay.Route) *relay.Router { return &relay.Router{Routes: routes} }

// route matches types and sends them to the sink "mem", topic "events".
func route(name string, types ...string) relay.Route {
	topic, err := relay.ParseTemplate("events")
	if err != nil {
		panic(err)
	}
	r := relay.Route{Name: name, Targets: []relay.Target{{Sink: "mem", Topic: topic}}}
	for _, t := range types {
		r.Match.Types = append(r.Match.Types, relay.Glob(t))
	}
	return r
}

// planWith reads the catalog and the state and plans, as `relay twilio apply` does.
func planWith(t *testing.T, c *twilioapi.Client, eps []twilioapi.Endpoint, r *relay.Router, desire twilioapi.DesireOptions,
	opts twilioapi.PlanOptions) (*twilioapi.Plan, error) {
	t.Helper()
	catalog, err := c.Catalog()
	if err != nil {
		t.Fatal(err)
	}
	st, err := c.State(nil)
	if err != nil {
		t.Fatal(err)
	}
	desired, err := twilioapi.Desired(eps, r, catalog, st, desire)
	if err != nil {
		return nil, err
	}
	return twilioapi.MakePlan(desired, st, opts), nil
}

// sync plans against the account's state, applies, and returns the plan and what Apply printed.
func sync(t *testing.T, c *twilioapi.Client, eps []twilioapi.Endpoint, r *relay.Router, opts twilioapi.PlanOptions) (*twilioapi.Plan, string) {
	t.Helper()
	p, err := planWith(t, c, eps, r, twilioapi.DesireOptions{}, opts)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := c.Apply(p, &out); errors.Is(err, twilioapi.ErrSinkNotActive) {
		t.Logf("apply: %v", err) // done, but the sink awaits its test
	} else if err != nil {
		t.Fatalf("apply: %v\n%s", err, out.String())
	}
	return p, out.String()
}

func TestApplyIsIdempotentAndConverges(t *testing.T) {
	fake := startFake(t, eventsapi.Options{})
	c := newClient(t, fake, twilioapi.Credentials{AccountSID: acct, AuthToken: acctToken})
	// Resources made by others: five sinks elsewhere (more than two pages of two), and a console sink that
	// delivers to our endpoint with a subscription of its own.
	for range 5 {
		fake.AddSink(acct, "segment export", "https://elsewhere.example.com/hook", true)
	}
	console := fake.AddSink(acct, "made in the console", dest, false)
	fake.AddSubscription(acct, "console subscription", console, map[string]int{"com.twilio.messaging.message.sent": 5})

	eps := []twilioapi.Endpoint{{Name: "events", Destination: dest, BatchEvents: true}}
	r := router(route("messaging", "com.twilio.messaging.message.*"))

	p, out := sync(t, c, eps, r, twilioapi.PlanOptions{})
	if len(p.Actions) != 2 || !strings.Contains(out, "created sink DG") || !strings.Contains(out, "with 6 types") {
		t.Fatalf("first apply: %+v\n%s", p.Actions, out)
	}
	if len(p.Notes) != 1 || !strings.Contains(p.Notes[0], console) {
		t.Errorf("notes %q: want one about the console sink", p.Notes)
	}
	snap := fake.Snapshot(acct)
	var ours eventsapi.SinkView
	for _, s := range snap.Sinks {
		if strings.HasPrefix(s.Description, "twilio-relay:events ") {
			ours = s
		}
	}
	if ours.Destination != dest || ours.BatchEvents != true {
		t.Fatalf("our sink %+v: want destination %s and batch_events true (a JSON boolean, encoded once)", ours, dest)
	}
	// The requests had Twilio's shapes: SinkConfiguration one JSON string field, Types repeated fields.
	for _, req := range fake.Requests() {
		switch {
		case req.Method == http.MethodPost && req.Path == "/v1/Sinks":
			var conf map[string]any
			if err := json.Unmarshal([]byte(req.Form.Get("SinkConfiguration")), &conf); err != nil || conf["method"] != "POST" {
				t.Errorf("SinkConfiguration %q", req.Form.Get("SinkConfiguration"))
			}
		case req.Method == http.MethodPost && req.Path == "/v1/Subscriptions":
			if len(req.Form["Types"]) != 6 || !strings.HasPrefix(req.Form["Types"][0], `{"schema_version":7,"type":"com.twilio.messaging.message.`) {
				t.Errorf("Types %q: want six repeated JSON fields", req.Form["Types"])
			}
		}
		if req.User != acct {
			t.Errorf("%s %s authenticated as %q", req.Method, req.Path, req.User)
		}
	}

	if p, _ := sync(t, c, eps, r, twilioapi.PlanOptions{}); !p.Empty() {
		t.Fatalf("second apply is not a no-op: %+v", p.Actions)
	}

	// Routes change: voice is added, messaging pinned to v3 and narrowed.
	r = router(relay.Route{Name: "m3", Match: relay.Match{Types: []relay.Glob{"*.message.delivered", "*.message.failed"}, SchemaVersions: []int{3}}},
		route("voice", "com.twilio.voice.*"))
	p, out = sync(t, c, eps, r, twilioapi.PlanOptions{})
	var ops []string
	for _, a := range p.Actions {
		ops = append(ops, string(a.Op))
	}
	if got := strings.Join(ops, ","); got != "update type,update type,add type,add type,add type,remove type,remove type,remove type,remove type" {
		t.Errorf("ops %s\n%s", got, out)
	}
	snap = fake.Snapshot(acct)
	for _, s := range snap.Subscriptions {
		if s.Description != "twilio-relay:events" {
			continue
		}
		want := map[string]int{"com.twilio.messaging.message.delivered": 3, "com.twilio.messaging.message.failed": 3,
			"com.twilio.voice.insights.call-summary.complete": 2, "com.twilio.voice.insights.call-summary.partial": 2,
			"com.twilio.voice.status-callback.call.completed": 1}
		if len(s.Types) != len(want) {
			t.Errorf("types %v, want %v", s.Types, want)
		}
		for k, v := range want {
			if s.Types[k] != v {
				t.Errorf("type %s at v%d, want v%d", k, s.Types[k], v)
			}
		}
	}
	if p, _ := sync(t, c, eps, r, twilioapi.PlanOptions{}); !p.Empty() {
		t.Fatalf("apply after the change is not a no-op: %+v", p.Actions)
	}

	// The public URL changes: Twilio cannot update a sink's configuration, so the sink is replaced.
	eps[0].Destination = "https://relay2.example.com/twilio/events"
	p, out = sync(t, c, eps, r, twilioapi.PlanOptions{})
	if len(p.Actions) != 4 || !strings.Contains(out, "deleted sink "+ours.SID) {
		t.Fatalf("replace: %+v\n%s", p.Actions, out)
	}
	if p, _ := sync(t, c, eps, r, twilioapi.PlanOptions{}); !p.Empty() {
		t.Fatalf("apply after the replacement is not a no-op: %+v", p.Actions)
	}

	// The console sink never pointed at the new URL: prune leaves it. Back to the old URL, prune removes it.
	eps[0].Destination = dest
	p, _ = sync(t, c, eps, r, twilioapi.PlanOptions{Prune: true})
	foreign := 0
	for _, a := range p.Actions {
		if a.Foreign {
			foreign++
		}
	}
	if foreign != 2 {
		t.Errorf("prune deleted %d foreign resources, want the console sink and its subscription: %+v", foreign, p.Actions)
	}
	snap = fake.Snapshot(acct)
	if len(snap.Sinks) != 6 || len(snap.Subscriptions) != 1 {
		t.Errorf("after prune: %d sinks, %d subscriptions; want the 5 others + ours, and ours", len(snap.Sinks), len(snap.Subscriptions))
	}
}

func TestSubaccountWithAPIKey(t *testing.T) {
	fake := startFake(t, eventsapi.Options{})
	creds, err := twilioapi.CredentialsFromEnv(func(k string) string {
		return map[string]string{"TWILIO_API_KEY": apiKey, "TWILIO_API_SECRET": apiSecret, "TWILIO_ACCOUNT_SID": sub}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(t, fake, creds)
	sync(t, c, []twilioapi.Endpoint{{Name: "events", Destination: dest, BatchEvents: false}}, router(route("all", "*")), twilioapi.PlanOptions{})
	if n := len(fake.Snapshot(sub).Sinks); n != 1 {
		t.Fatalf("the subaccount has %d sinks, want 1", n)
	}
	if n := len(fake.Snapshot(acct).Sinks); n != 0 {
		t.Fatalf("the parent account has %d sinks, want none", n)
	}
	if fake.Snapshot(sub).Sinks[0].BatchEvents != false {
		t.Fatal("batch_events false was not set explicitly")
	}
	if _, err := twilioapi.CredentialsFromEnv(func(string) string { return "" }); err == nil {
		t.Fatal("no credentials accepted")
	}
}

func TestAPIErrors(t *testing.T) {
	fake := startFake(t, eventsapi.Options{})
	bad := newClient(t, fake, twilioapi.Credentials{AccountSID: acct, AuthToken: "wrongtoken"})
	_, err := bad.State(nil)
	if te, ok := twilioapi.APIError(err); !ok || te.Status != 401 || te.Code != 20003 {
		t.Fatalf("wrong token: %v, want Twilio error 20003 with status 401", err)
	}

	c := newClient(t, fake, twilioapi.Credentials{AccountSID: acct, AuthToken: acctToken})
	eps := []twilioapi.Endpoint{{Name: "events", Destination: dest, BatchEvents: true}}
	r := router(route("all", "*"))
	catalog, err := c.Catalog()
	if err != nil {
		t.Fatal(err)
	}
	st, err := c.State(nil)
	if err != nil {
		t.Fatal(err)
	}
	fake.Fail(http.MethodPost, "/v1/Subscriptions", 500, 20500, 1, "Internal Server Error")
	var out bytes.Buffer
	desired, err := twilioapi.Desired(eps, r, catalog, st, twilioapi.DesireOptions{})
	if err != nil {
		t.Fatal(err)
	}
	err = c.Apply(twilioapi.MakePlan(desired, st, twilioapi.PlanOptions{}), &out)
	if te, ok := twilioapi.APIError(err); !ok || te.Status != 500 || !strings.Contains(err.Error(), "+ subscription") {
		t.Fatalf("a 500 on create subscription: %v", err)
	}
	// A fresh plan finishes the work: the sink exists, only the subscription is missing.
	p, _ := sync(t, c, eps, r, twilioapi.PlanOptions{})
	if len(p.Actions) != 1 || p.Actions[0].Op != twilioapi.CreateSubscription {
		t.Fatalf("after the failure: %+v", p.Actions)
	}

	fake.Fail(http.MethodGet, "/v1/Types", 429, 20429, 1, "Too Many Requests")
	if _, err := c.Catalog(); err == nil || !strings.Contains(err.Error(), "list event types") {
		t.Fatalf("a 429 listing types: %v", err)
	}
	fake.Fail(http.MethodGet, "/v1/Sinks", 400, 20001, 1, "Invalid PageSize")
	if _, err := c.State(nil); err == nil {
		t.Fatal("a 400 listing sinks went unnoticed")
	}
}

func TestCatalogAndTypesReport(t *testing.T) {
	fake := startFake(t, eventsapi.Options{})
	c := newClient(t, fake, twilioapi.Credentials{AccountSID: acct, AuthToken: acctToken})
	catalog, err := c.Catalog()
	if err != nil {
		t.Fatal(err)
	}
	if len(catalog) != len(eventsapi.DefaultTypes) {
		t.Fatalf("%d types over pages of 2, want %d", len(catalog), len(eventsapi.DefaultTypes))
	}
	for _, et := range catalog {
		if et.Type == "com.twilio.messaging.message.delivered" && (et.LatestVersion != 7 || et.SchemaID != "Messaging.MessageStatus" || et.Status != "available") {
			t.Errorf("%+v: want schema Messaging.MessageStatus at v7, available", et)
		}
	}
	eps := []twilioapi.Endpoint{{Name: "events", Destination: dest, BatchEvents: true}}
	sync(t, c, eps, router(route("all", "*")), twilioapi.PlanOptions{})
	st, err := c.State(nil)
	if err != nil {
		t.Fatal(err)
	}
	// The routes narrow after the subscription was made: taskrouter is subscribed but routed nowhere.
	rep := twilioapi.Types(catalog, eps, router(route("msg", "com.twilio.messaging.*"), route("voice", "com.twilio.voice.*"),
		route("rest", "com.twilio.conversations.*", "com.twilio.error-logs.*")), st)
	if len(rep.Unrouted) != 1 || rep.Unrouted[0].Type.Type != "com.twilio.taskrouter.task.created" {
		t.Fatalf("unrouted %+v", rep.Unrouted)
	}
	var out bytes.Buffer
	rep.Print(&out)
	for _, want := range []string{"com.twilio.messaging.message.delivered", "events: msg", "@v7", "subscribed types no route matches",
		"com.twilio.taskrouter.task.created v4  subscription DF", "discontinued  events: rest",
		"not subscribed: restricted: Twilio refuses it in new subscriptions"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}
