package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relaykit/twilio-relay/relay/config"
	"github.com/relaykit/twilio-relay/relay/relaytest/eventsapi"
	"github.com/relaykit/twilio-relay/relay/twilio"
	"github.com/relaykit/twilio-relay/relay/twilioapi"
)

// Alphanumeric like Twilio's: twilio-go refuses anything else as Basic credentials.
const (
	e2eAccount = "AC0123456789abcdef0123456789abcdef"
	e2eToken   = "0123456789abcdef0123456789abcdef"
)

// twilioConfig has an Event Streams endpoint and a classic one, each with its public URL (not the
// address the relay listens on, as behind an ingress).
const twilioConfig = `
listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:0 }
log: { level: warn }
limits: { request_deadline: 1500ms }
endpoints:
  - name: events
    path: /twilio/events
    public_url: https://relay.example.com/twilio/events
    auth_tokens: [ "${TOKEN}" ]
  - name: callbacks
    kind: classic
    path: /twilio/classic
    public_url: https://relay.example.com/twilio/classic
    auth_tokens: [ "${TOKEN}" ]
sinks:
  - name: kafka
    kafka: { brokers: [ "${BROKERS}" ] }
routes:
  - name: messaging
    match: { types: [ "com.twilio.messaging.*" ] }
    to: [ { sink: kafka, topic: twilio.messaging } ]
  - name: classic
    match: { types: [ "com.twilio.classic.*" ] }
    to: [ { sink: kafka, topic: twilio.classic } ]
  - name: everything-else
    match: { types: [ "*" ] }
    to: [ { sink: kafka, topic: twilio.other } ]
dead_letter: { sink: kafka, topic: twilio.deadletter }
`

// startRelayFile runs the relay with a configuration file until the test ends and returns it with the
// file's path; ${TOKEN} and ${BROKERS} come from the environment, as the CLI reads them.
func startRelayFile(t *testing.T, text string) (*Relay, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	r := runRelay(t, cfg, t.Errorf)
	return r, path
}

func runCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(context.Background(), args, &out, &errOut)
	t.Logf("relay %s\n%s%s", strings.Join(args, " "), out.String(), errOut.String())
	return out.String(), err
}

// TestTwilioSideEndToEnd: `relay twilio apply`, `types` and `test` against the fake Events API, with the
// real relay and a real Kafka broker; the fake's sink test posts a signed test event to the relay like
// Twilio would. Then classic callbacks through the same dedupe, routes and Kafka.
func TestTwilioSideEndToEnd(t *testing.T) {
	k := startKafka(t)
	k.CreateTopic(t, "twilio.classic", 1)
	t.Setenv("TOKEN", e2eToken)
	t.Setenv("BROKERS", k.Addr())
	r, cfgPath := startRelayFile(t, twilioConfig)

	fake := eventsapi.Start(t, eventsapi.Options{
		Accounts: map[string]string{e2eAccount: e2eToken},
		// Twilio posts to the public URL; here that reaches the relay's listener.
		Deliver: &http.Client{Timeout: 5 * time.Second, Transport: &twilioapi.RewriteTransport{Scheme: "http", Host: r.Addr}},
	})
	for k, v := range map[string]string{"TWILIO_ACCOUNT_SID": e2eAccount, "TWILIO_AUTH_TOKEN": e2eToken, "TWILIO_API_KEY": "",
		"TWILIO_API_SECRET": "", "TWILIO_EDGE": "", "TWILIO_REGION": "", twilioapi.EnvBaseURL: fake.URL} {
		t.Setenv(k, v)
	}

	t.Run("apply: dry run, apply, idempotent", func(t *testing.T) {
		out, err := runCLI(t, "twilio", "apply", "-config", cfgPath, "-dry-run")
		if err != nil || !strings.Contains(out, `+ sink "twilio-relay:events" webhook POST https://relay.example.com/twilio/events batch_events=true`) ||
			!strings.Contains(out, "(dry run: nothing changed)") || len(fake.Snapshot(e2eAccount).Sinks) != 0 {
			t.Fatalf("dry run: %v\n%s", err, out)
		}
		if out, err := runCLI(t, "twilio", "apply", "-config", cfgPath); err != nil || !strings.Contains(out, "applied: ") {
			t.Fatalf("apply: %v\n%s", err, out)
		}
		snap := fake.Snapshot(e2eAccount)
		if len(snap.Sinks) != 1 || snap.Sinks[0].Destination != "https://relay.example.com/twilio/events" || len(snap.Subscriptions) != 1 ||
			len(snap.Subscriptions[0].Types) != len(availableTypes()) || snap.Subscriptions[0].Types["com.twilio.messaging.message.delivered"] != 7 {
			t.Fatalf("after apply: %+v", snap)
		}
		if out, err := runCLI(t, "twilio", "apply", "-config", cfgPath); err != nil || !strings.Contains(out, "nothing to change") {
			t.Fatalf("second apply: %v\n%s", err, out)
		}
		if _, err := runCLI(t, "twilio", "apply", "-config", cfgPath, "-endpoint", "callbacks"); err == nil {
			t.Fatal("apply accepted a classic endpoint")
		}
	})

	t.Run("types", func(t *testing.T) {
		out, err := runCLI(t, "twilio", "types", "-config", cfgPath)
		if err != nil || !strings.Contains(out, "events: messaging,everything-else") || !strings.Contains(out, "every subscribed type has a route") {
			t.Fatalf("types: %v\n%s", err, out)
		}
	})

	admin := "http://" + r.AdminAddr
	t.Run("test: the test event reaches Kafka", func(t *testing.T) {
		out, err := runCLI(t, "twilio", "test", "-config", cfgPath, "-admin", admin, "-wait", "20s")
		if err != nil || !strings.Contains(out, "OK: Twilio → sink DG") || !strings.Contains(out, "everything-else → kafka:twilio.other") {
			t.Fatalf("test: %v\n%s", err, out)
		}
		ds := fake.Deliveries()
		if len(ds) != 1 || ds[0].Status != 200 {
			t.Fatalf("deliveries %+v", ds)
		}
		found := false
		for _, m := range readTopic(t, k.Addr(), "twilio.other") {
			if header(m, "ce_type") == "com.twilio.eventstreams.test-event" && strings.Contains(string(m.Value), ds[0].TestID) {
				found = true
			}
		}
		if !found || !strings.Contains(out, "test id "+ds[0].TestID) {
			t.Fatalf("test event %s is not in twilio.other (or not reported)", ds[0].TestID)
		}
	})

	t.Run("test: a token the relay does not hold is reported with the URL it verified", func(t *testing.T) {
		fake.SetSigningToken(e2eAccount, "fedcba9876543210fedcba9876543210")
		defer fake.SetSigningToken(e2eAccount, "")
		out, err := runCLI(t, "twilio", "test", "-config", cfgPath, "-admin", admin, "-wait", "20s")
		if err == nil || !strings.Contains(out, "FAILED at verification: the relay refused Twilio's request on endpoint events: signature_mismatch; "+
			"it verified against https://relay.example.com/twilio/events?bodySHA256=") {
			t.Fatalf("test with a rotated token: %v\n%s", err, out)
		}
		if strings.Contains(out, e2eToken) || strings.Contains(out, "fedcba9876543210fedcba9876543210") {
			t.Fatal("the output shows a token")
		}
	})

	t.Run("classic callbacks: verified, mapped, deduplicated, routed to Kafka", func(t *testing.T) {
		out, err := runCLI(t, "send", "-classic", "-url", "http://"+r.Addr+"/twilio/classic", "-public-url", "https://relay.example.com/twilio/classic",
			"-token", e2eToken, "-sample", "all", "-duplicates", "1")
		if err != nil || !strings.Contains(out, "delivered 5,") || strings.Count(out, `"duplicates":1`) != 5 {
			t.Fatalf("send: %v\n%s", err, out)
		}
		samples, _ := twilio.ClassicSamples()
		want := map[string]string{} // ce_id → key
		for _, p := range samples {
			b := twilio.DecodeClassic("callbacks", nil, p, "", time.Now(), twilio.DecodeOptions{})
			want[b.Events[0].ID] = b.Events[0].Subject
		}
		got := map[string]int{}
		for _, m := range readTopic(t, k.Addr(), "twilio.classic") {
			id := header(m, "ce_id")
			got[id]++
			if string(m.Key) != want[id] || !strings.HasPrefix(header(m, "ce_type"), "com.twilio.classic.") {
				t.Errorf("record %s: key %q type %q", id, m.Key, header(m, "ce_type"))
			}
		}
		if len(got) != 5 {
			t.Fatalf("ids in twilio.classic: %v, want %v", got, want)
		}
		for id, n := range got {
			if n != 1 {
				t.Errorf("%s produced %d times, want once (the duplicate is deduplicated)", id, n)
			}
		}
		// Forged: a wrong token is refused with the default 503 (Twilio would retry), nothing produced.
		out, err = runCLI(t, "send", "-classic", "-url", "http://"+r.Addr+"/twilio/classic", "-public-url", "https://relay.example.com/twilio/classic",
			"-token", "wrong", "-sample", "message-delivered", "-unique", "-attempts", "1")
		if err == nil || !strings.Contains(out, "503") || !strings.Contains(out, "undelivered 1") {
			t.Fatalf("forged classic callback: %v\n%s", err, out)
		}
	})
}

// TestSendPlaysTwilio runs `relay send` against a scripted receiver: Twilio's retries on 503/429,
// a 4xx reported as lost, batches, out-of-order delivery, overlaps and the test event.
func TestSendPlaysTwilio(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]int{} // body → attempts
	var bodies [][]string    // ids per request, in order
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var evs []struct {
			ID, Type string
		}
		_ = json.Unmarshal(b, &evs)
		mu.Lock()
		defer mu.Unlock()
		seen[string(b)]++
		var ids []string
		task := false
		for _, e := range evs {
			ids = append(ids, e.ID)
			task = task || e.Type == "com.twilio.taskrouter.task.created"
		}
		bodies = append(bodies, ids)
		switch {
		case task:
			w.WriteHeader(http.StatusBadRequest) // Twilio drops these events for good
		case seen[string(b)] == 1:
			w.WriteHeader(http.StatusServiceUnavailable)
		default:
			_, _ = io.WriteString(w, `{"delivered":1}`)
		}
	}))
	defer srv.Close()

	out, err := runCLI(t, "send", "-url", srv.URL, "-token", "t", "-sample", "all", "-batch", "2", "-backoff", "1ms")
	if err == nil || !strings.Contains(err.Error(), "2 of 6 events not delivered") {
		t.Fatalf("err %v", err)
	}
	for _, want := range []string{"503  (attempt 1/4; retrying in", "sent 6 events in 3 requests, 5 attempts",
		"delivered 4, retried 2 requests (2 retries), lost 2", "undelivered 0"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	mu.Lock()
	bodies = nil
	mu.Unlock()
	out, err = runCLI(t, "send", "-url", srv.URL, "-token", "t", "-sample", "message-delivered,message-sent-string-data,error-logged",
		"-unique", "-test-event", "-shuffle", "-seed", "7", "-batch", "2", "-overlap", "1", "-backoff", "1ms")
	if err != nil || !strings.Contains(out, "delivered 4,") {
		t.Fatalf("%v\n%s", err, out)
	}
	mu.Lock()
	defer mu.Unlock()
	// Two requests of 2 then 3 events (the last of the first repeated), each sent twice (503, then 200).
	if len(bodies) != 4 || len(bodies[0]) != 2 || len(bodies[2]) != 3 || bodies[2][0] != bodies[0][1] {
		t.Fatalf("bodies %v", bodies)
	}
	if !slices.Contains(append(bodies[0], bodies[2]...), e2eLikeAccount) {
		t.Errorf("no test event (id = the account SID) in %v", bodies)
	}
}

const e2eLikeAccount = "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" // the default -account
