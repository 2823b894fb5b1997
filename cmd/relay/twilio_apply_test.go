package main

import (
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/relaykit/twilio-relay/relay/relaytest/eventsapi"
	"github.com/relaykit/twilio-relay/relay/twilioapi"
)

// availableTypes are the types of the fake's default catalog that a wildcard route subscribes: the
// available ones (a deprecated type needs to be named, restricted and discontinued ones are refused).
func availableTypes() []string {
	var out []string
	for _, t := range eventsapi.DefaultTypes {
		if t.Status == "" || t.Status == twilioapi.StatusAvailable {
			out = append(out, t.Type)
		}
	}
	slices.Sort(out)
	return out
}

// twilioEnv points the twilio commands at the fake with the account's credentials, and gives the
// shipped config.yaml what it requires.
func twilioEnv(t *testing.T, fake *eventsapi.Server) {
	for k, v := range map[string]string{"TWILIO_ACCOUNT_SID": e2eAccount, "TWILIO_AUTH_TOKEN": e2eToken, "TWILIO_API_KEY": "",
		"TWILIO_API_SECRET": "", "TWILIO_EDGE": "", "TWILIO_REGION": "", twilioapi.EnvBaseURL: fake.URL,
		"TWILIO_AUTH_TOKENS": e2eToken, "RELAY_PUBLIC_URL": "https://relay.example.com/twilio/events"} {
		t.Setenv(k, v)
	}
}

// TestTwilioApplyShippedConfig: the first command a new user runs after `relay serve`. With the shipped
// config.yaml (one route, types ["*"]) against a catalog holding types in every lifecycle status, `relay
// twilio apply` exits 0, subscribes only the types Twilio takes, says what it skipped and why, and a
// second run changes nothing; after a failure between sink and subscription, the rerun finishes with one
// sink.
func TestTwilioApplyShippedConfig(t *testing.T) {
	const shipped = "../../config.yaml"
	skippedLines := []string{
		"com.twilio.voice.webhook.status-callback.call.completed  endpoint events: deprecated, and matched only by a glob",
		"com.twilio.voice.insights.call-summary.predicted-complete  endpoint events: restricted: Twilio refuses it in new subscriptions",
		"com.twilio.conversations.delivery.updated  endpoint events: discontinued",
	}
	check := func(t *testing.T, fake *eventsapi.Server) {
		t.Helper()
		snap := fake.Snapshot(e2eAccount)
		if len(snap.Sinks) != 1 || len(snap.Subscriptions) != 1 || snap.Subscriptions[0].SinkSID != snap.Sinks[0].SID {
			t.Fatalf("want one sink with one subscription: %+v", snap)
		}
		if got, want := slices.Sorted(maps.Keys(snap.Subscriptions[0].Types)), availableTypes(); !slices.Equal(got, want) {
			t.Fatalf("subscribed %v\nwant the available types %v", got, want)
		}
	}

	t.Run("apply twice", func(t *testing.T) {
		fake := eventsapi.Start(t, eventsapi.Options{Accounts: map[string]string{e2eAccount: e2eToken}})
		twilioEnv(t, fake)
		out, err := runCLI(t, "twilio", "apply", "-config", shipped)
		if err != nil || !strings.Contains(out, "applied: 2 to create") {
			t.Fatalf("apply: %v\n%s", err, out)
		}
		for _, want := range append(skippedLines, "not subscribed (routed, but Twilio's lifecycle status of the type says no):") {
			if !strings.Contains(out, want) {
				t.Errorf("apply does not say %q", want)
			}
		}
		check(t, fake)
		out, err = runCLI(t, "twilio", "apply", "-config", shipped)
		if err != nil || !strings.Contains(out, "nothing to change") || !strings.Contains(out, "plan: 0 to create, 0 to change, 0 to delete") {
			t.Fatalf("second apply: %v\n%s", err, out)
		}
		check(t, fake)
		out, err = runCLI(t, "twilio", "types", "-config", shipped)
		if err != nil || !strings.Contains(out, "NOTE") || !strings.Contains(out, "not subscribed: discontinued") {
			t.Fatalf("types: %v\n%s", err, out)
		}
	})

	t.Run("a failure between sink and subscription, then a rerun", func(t *testing.T) {
		fake := eventsapi.Start(t, eventsapi.Options{Accounts: map[string]string{e2eAccount: e2eToken}})
		twilioEnv(t, fake)
		fake.Fail(http.MethodPost, "/v1/Subscriptions", 503, 20503, 1, "Service Unavailable")
		out, err := runCLI(t, "twilio", "apply", "-config", shipped)
		if err == nil || !strings.Contains(err.Error(), "run it again") || len(fake.Snapshot(e2eAccount).Sinks) != 1 {
			t.Fatalf("apply with a failing subscription call: %v\n%s", err, out)
		}
		out, err = runCLI(t, "twilio", "apply", "-config", shipped)
		if err != nil || !strings.Contains(out, "applied: 1 to create") || strings.Contains(out, "+ sink") {
			t.Fatalf("rerun: %v\n%s", err, out)
		}
		check(t, fake)
	})

	t.Run("a route naming a restricted type is a configuration error", func(t *testing.T) {
		fake := eventsapi.Start(t, eventsapi.Options{Accounts: map[string]string{e2eAccount: e2eToken}})
		twilioEnv(t, fake)
		text, err := os.ReadFile(shipped)
		if err != nil {
			t.Fatal(err)
		}
		named := strings.Replace(string(text), `match: { types: [ "*" ] }`,
			`match: { types: [ "*", "com.twilio.voice.insights.call-summary.predicted-complete" ] }`, 1)
		path := filepath.Join(t.TempDir(), "config.yaml")
		if named == string(text) || os.WriteFile(path, []byte(named), 0o600) != nil {
			t.Fatal("could not name the type in the shipped route")
		}
		out, err := runCLI(t, "twilio", "apply", "-config", path)
		if err == nil || !strings.Contains(err.Error(), "predicted-complete is restricted: Twilio refuses to add it to a subscription") ||
			len(fake.Snapshot(e2eAccount).Sinks) != 0 {
			t.Fatalf("apply: %v\n%s", err, out)
		}
	})
}
