package main

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/relaykit/twilio-relay/relay/inspector"
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

// TestInspectorLateOutcome: an event answered 200 while Kafka was down sits in the spool, and the record
// says so; once Kafka is back and the spool's drainer has delivered it, the same query says delivered,
// late, at the partition and offset Kafka holds it at, with its time of arrival kept.
func TestInspectorLateOutcome(t *testing.T) {
	k := startKafka(t)
	h := startRelay(t, k, map[string]string{"SPOOL_DIR": t.TempDir(), "SPOOL_SINKS": "kafka", "DEADLINE": "1500ms"})
	admin := "http://" + h.relay.AdminAddr
	const id = "EZlate00000000000000000000000001"
	query := func() inspector.Event {
		t.Helper()
		var body struct{ Events []inspector.Event }
		if err := adminGet(t.Context(), http.DefaultClient, admin, "/api/events?id="+id, &body); err != nil {
			t.Fatal(err)
		}
		if len(body.Events) != 1 {
			t.Fatalf("/api/events?id=%s: %d events, want 1 (the latest word on it)", id, len(body.Events))
		}
		return body.Events[0]
	}
	k.Stop(t)
	if r := h.post(event(id, "com.twilio.messaging.message.sent", "SMlate")); r.Status != http.StatusOK {
		t.Fatalf("post during the outage: %d %s, want 200 (spooled)", r.Status, r.Body)
	}
	before := query()
	if before.Outcome != "spooled" || before.Late || len(before.Sinks) != 1 || !before.Sinks[0].Spooled {
		t.Fatalf("during the outage: %+v, want spooled", before)
	}
	k.Restart(t)
	var after inspector.Event
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if after = query(); after.Late || time.Now().After(deadline) {
			break
		}
	}
	rec := recordOf(t, readTopic(t, k.Addr(), "twilio.messaging"), id)
	where := fmt.Sprintf("partition %d offset %d", rec.Partition, rec.Offset)
	if after.Outcome != "delivered" || !after.Late || len(after.Sinks) != 1 || after.Sinks[0].Spooled ||
		after.Sinks[0].At == nil || after.Sinks[0].At.Text != where || !after.ReceivedAt.Equal(before.ReceivedAt) {
		t.Fatalf("after the spool drained: %+v (at %+v), want delivered late at %s, received at %v", after, after.Sinks, where, before.ReceivedAt)
	}
	resp, err := http.Get(admin + "/?q=" + id)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if row := string(page); !strings.Contains(row, `data-id="`+id+`"`) || !strings.Contains(row, `class="late"`) || !strings.Contains(row, where) {
		t.Errorf("the page's search for %s does not show it late at %s:\n%s", id, where, row)
	}
}
