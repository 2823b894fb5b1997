package main

import (
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/relaykit/twilio-relay/relay/relaytest/eventsapi"
	"github.com/relaykit/twilio-relay/relay/twilioapi"
)

// TestInspectorSinkTest: with Twilio credentials in its environment, the page has a button per
// event-streams endpoint that runs Twilio's sink test from the relay itself (the fake Events API posts
// the signed test event back to it) and shows the report; without the form token the button does
// nothing.
func TestInspectorSinkTest(t *testing.T) {
	k := startKafka(t)
	t.Setenv("TOKEN", e2eToken)
	t.Setenv("BROKERS", k.Addr())
	toRelay := &twilioapi.RewriteTransport{Scheme: "http"} // its Host once the relay listens
	fake := eventsapi.Start(t, eventsapi.Options{
		Accounts: map[string]string{e2eAccount: e2eToken},
		Deliver:  &http.Client{Timeout: 5 * time.Second, Transport: toRelay},
	})
	for k, v := range map[string]string{"TWILIO_ACCOUNT_SID": e2eAccount, "TWILIO_AUTH_TOKEN": e2eToken, "TWILIO_API_KEY": "",
		"TWILIO_API_SECRET": "", "TWILIO_EDGE": "", "TWILIO_REGION": "", twilioapi.EnvBaseURL: fake.URL} {
		t.Setenv(k, v)
	}
	r, cfgPath := startRelayFile(t, twilioConfig)
	toRelay.Host = r.Addr
	if out, err := runCLI(t, "twilio", "apply", "-config", cfgPath); err != nil {
		t.Fatalf("apply: %v\n%s", err, out)
	}

	admin := "http://" + r.AdminAddr
	page := func() string {
		resp, err := http.Get(admin + "/")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	body := page()
	if !strings.Contains(body, "Run the sink test for events") || strings.Contains(body, "Run the sink test for callbacks") {
		t.Fatalf("the page has no sink test button for the event-streams endpoint alone:\n%s", body)
	}
	token := regexp.MustCompile(`name="csrf" value="([0-9a-f]{64})"`).FindStringSubmatch(body)
	post := func(form url.Values) int {
		resp, err := http.PostForm(admin+"/actions/sink-test", form)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post(url.Values{"endpoint": {"events"}}); code != http.StatusForbidden || len(fake.Deliveries()) != 0 {
		t.Fatalf("without the form token: %d, %d test events sent", code, len(fake.Deliveries()))
	}
	if code := post(url.Values{"endpoint": {"events"}, "csrf": {token[1]}}); code != http.StatusOK { // after the redirect to the page
		t.Fatalf("sink test: %d", code)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		body = page()
		if strings.Contains(body, "OK: Twilio → sink DG") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no report of the sink test on the page:\n%s", body)
		}
	}
	if ds := fake.Deliveries(); len(ds) != 1 || ds[0].Status != 200 || !strings.Contains(body, "test id "+ds[0].TestID) {
		t.Fatalf("deliveries %+v; the page:\n%s", ds, body)
	}
	// The test event's id is the account SID, which holds the test token's digits: not a secret.
	if shown := strings.ReplaceAll(body, e2eAccount, "AC…"); strings.Contains(shown, e2eToken) {
		i := strings.Index(shown, e2eToken)
		t.Fatalf("the page shows the account's auth token: …%s…", shown[max(0, i-300):min(len(shown), i+100)])
	}
}
