package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relaykit/twilio-relay/relay"
	"github.com/relaykit/twilio-relay/relay/config"
	"github.com/relaykit/twilio-relay/relay/kafka"
	"github.com/relaykit/twilio-relay/relay/relaytest/kafkaserver"
	"github.com/relaykit/twilio-relay/relay/twilio"
	"github.com/relaykit/twilio-relay/relay/twilio/twiliotest"
)

// The integration tests run the real program (config → Relay → Fiber → pipeline → kafka-go) against a
// real Apache Kafka broker, post signed requests the way Twilio does, and read the topics back.

const (
	token     = "test-auth-token-0123456789abcdef"
	publicURL = "https://relay.example.com/twilio/events" // signed URL ≠ the address posted to, as behind an ingress
)

const testConfig = `
listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:0 }
log: { level: warn }
limits: { request_deadline: "${DEADLINE:-1500ms}" }
endpoints:
  - name: events
    path: /twilio/events
    public_url: ` + publicURL + `
    auth_tokens: [ "old-token-that-no-longer-signs,${TOKEN}" ]
sinks:
  - name: kafka
    kafka: { brokers: [ "${BROKERS}" ], mode: "${MODE:-binary}" }
routes:
  - name: messaging
    match: { types: [ "com.twilio.messaging.*" ] }
    to: [ { sink: kafka, topic: twilio.messaging } ]
  - name: everything-else
    match: { types: [ "${OTHER_TYPES:-*}" ] }
    to: [ { sink: kafka, topic: twilio.other } ]
dead_letter: { sink: kafka, topic: twilio.deadletter }
spool:
  dir: "${SPOOL_DIR:-}"
  max_bytes: "${SPOOL_MAX:-1GiB}"
  sinks: [ "${SPOOL_SINKS:-}" ]
`

type harness struct {
	t      testing.TB
	kafka  *kafkaserver.Server
	relay  *Relay
	sender *twiliotest.Sender
	logs   *syncBuffer // what the relay logged (warn and up)
}

// startRelay runs the relay against k with testConfig and env overrides until the test ends.
func startRelay(t testing.TB, k *kafkaserver.Server, env map[string]string) *harness {
	t.Helper()
	return startRelayWith(t, k, testConfig, env)
}

// runRelay runs the program with cfg until the test ends; a failed shutdown is reported with onShutdown.
// The log goes to the test's log, and to tee when given.
func runRelay(t testing.TB, cfg *config.Config, onShutdown func(format string, args ...any), tee ...io.Writer) *Relay {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.MultiWriter(append([]io.Writer{testWriter{t}}, tee...)...), &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan *Relay, 1)
	done := make(chan error, 1)
	go func() { done <- serve(ctx, cfg, log, func(r *Relay) { started <- r }) }()
	var r *Relay
	select {
	case r = <-started:
	case err := <-done:
		t.Fatalf("relay did not start: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			onShutdown("relay shutdown: %v", err)
		}
	})
	return r
}

// startRelayWith is startRelay with another configuration text.
func startRelayWith(t testing.TB, k *kafkaserver.Server, yaml string, env map[string]string) *harness {
	t.Helper()
	vars := map[string]string{"TOKEN": token}
	if k != nil {
		vars["BROKERS"] = k.Addr()
	}
	for key, v := range env {
		vars[key] = v
	}
	cfg, err := config.Parse([]byte(yaml), func(k string) (string, bool) { v, ok := vars[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	r := runRelay(t, cfg, t.Errorf, logs)
	return &harness{t: t, kafka: k, relay: r, logs: logs, sender: &twiliotest.Sender{
		URL: "http://" + r.Addr + "/twilio/events", PublicURL: publicURL, Token: token,
		Client: &http.Client{Timeout: 10 * time.Second},
	}}
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func startKafka(t *testing.T) *kafkaserver.Server {
	k := kafkaserver.Start(t, kafkaserver.LibsFromEnv(t))
	k.CreateTopic(t, "twilio.messaging", 3)
	k.CreateTopic(t, "twilio.other", 3)
	k.CreateTopic(t, "twilio.deadletter", 1)
	return k
}

// event returns a realistic event with the given id and type, keyed by a message or call SID.
func event(id, typ, sid string) json.RawMessage {
	field := "messageSid"
	if strings.Contains(typ, "voice") {
		field = "callSid"
	}
	return json.RawMessage(fmt.Sprintf(`{"specversion":"1.0","type":%q,"source":"/2010-04-01/Accounts/AC1/Resources/%s","id":%q,`+
		`"dataschema":"https://events-schemas.twilio.com/X/1","datacontenttype":"application/json","time":"2026-11-23T10:00:00.000Z",`+
		`"data":{%q:%q,"n":%q}}`, typ, sid, id, field, sid, id))
}

func (h *harness) post(evs ...json.RawMessage) twiliotest.Response {
	h.t.Helper()
	resp, err := h.sender.Post(context.Background(), evs)
	if err != nil {
		h.t.Fatalf("post: %v", err)
	}
	return resp
}

// readTopic returns every record in every partition of topic.
func readTopic(t *testing.T, addr, topic string) []kafka.Record {
	t.Helper()
	return kafkaserver.ReadTopic(t, addr, topic)
}

func header(m kafka.Record, key string) string {
	for _, h := range m.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// countByID counts records per ce_id header (binary mode).
func countByID(ms []kafka.Record) map[string]int {
	n := map[string]int{}
	for _, m := range ms {
		n[header(m, "ce_id")]++
	}
	return n
}

func TestIntegration(t *testing.T) {
	k := startKafka(t)
	h := startRelay(t, k, nil)

	t.Run("delivers verified events with CloudEvents headers, keys and topics", func(t *testing.T) {
		var evs []json.RawMessage
		for i := range 12 {
			typ := "com.twilio.messaging.message.delivered"
			if i%3 == 0 {
				typ = "com.twilio.voice.insights.call-summary.complete"
			}
			evs = append(evs, event(fmt.Sprintf("EZdeliver%02d", i), typ, fmt.Sprintf("SID%d", i%4)))
		}
		for i := 0; i < len(evs); i += 4 { // bodies of 1 and 3 events
			for _, body := range [][]json.RawMessage{evs[i : i+1], evs[i+1 : i+4]} {
				if r := h.post(body...); r.Status != http.StatusOK {
					t.Fatalf("status %d %s, want 200", r.Status, r.Body)
				}
			}
		}
		msgs := readTopic(t, k.Addr(), "twilio.messaging")
		other := readTopic(t, k.Addr(), "twilio.other")
		got := countByID(append(msgs, other...))
		for i := range 12 {
			if n := got[fmt.Sprintf("EZdeliver%02d", i)]; n != 1 {
				t.Errorf("event EZdeliver%02d produced %d times, want 1", i, n)
			}
		}
		partitionOf := map[string]int{}
		for _, m := range append(msgs, other...) {
			var data map[string]string
			if err := json.Unmarshal(m.Value, &data); err != nil {
				t.Fatalf("value is not the data object: %s", m.Value)
			}
			if string(m.Key) != data["messageSid"]+data["callSid"] || len(m.Key) == 0 {
				t.Errorf("key %q, want the resource SID from data %v", m.Key, data)
			}
			if header(m, "ce_specversion") != "1.0" || header(m, "ce_type") == "" || header(m, "ce_source") == "" ||
				header(m, "content-type") != "application/json" || header(m, "ce_time") == "" || header(m, "ce_dataschema") == "" {
				t.Errorf("headers %v lack CloudEvents attributes", m.Headers)
			}
			isVoice := strings.Contains(header(m, "ce_type"), "voice")
			if (m.Topic == "twilio.other") != isVoice {
				t.Errorf("%s routed to %s", header(m, "ce_type"), m.Topic)
			}
			if p, ok := partitionOf[m.Topic+string(m.Key)]; ok && p != m.Partition {
				t.Errorf("key %s on partitions %d and %d: one resource must keep one partition", m.Key, p, m.Partition)
			}
			partitionOf[m.Topic+string(m.Key)] = m.Partition
		}
	})

	t.Run("duplicates re-sent later and concurrently are produced once", func(t *testing.T) {
		a := event("EZdupA", "com.twilio.messaging.message.sent", "SMdup")
		if r := h.post(a); r.Status != 200 {
			t.Fatalf("status %d", r.Status)
		}
		r := h.post(a, event("EZdupB", "com.twilio.messaging.message.sent", "SMdup"))
		if r.Status != 200 || !strings.Contains(string(r.Body), `"duplicates":1`) {
			t.Fatalf("re-sent: %d %s, want 200 with one duplicate", r.Status, r.Body)
		}
		c := event("EZdupC", "com.twilio.messaging.message.sent", "SMdup")
		var wg sync.WaitGroup
		statuses := make([]int, 8)
		for i := range statuses {
			wg.Add(1)
			go func() { defer wg.Done(); statuses[i] = h.post(c).Status }()
		}
		wg.Wait()
		for i, s := range statuses {
			if s != 200 {
				t.Errorf("concurrent copy %d answered %d", i, s)
			}
		}
		got := countByID(readTopic(t, k.Addr(), "twilio.messaging"))
		for _, id := range []string{"EZdupA", "EZdupB", "EZdupC"} {
			if got[id] != 1 {
				t.Errorf("%s produced %d times, want 1", id, got[id])
			}
		}
	})

	t.Run("forged and tampered requests produce nothing", func(t *testing.T) {
		body, _ := json.Marshal([]json.RawMessage{event("EZforged", "com.twilio.messaging.message.sent", "SMf")})
		send := func(name string, mutate func(req *http.Request)) {
			signedURL, sig := twilio.Sign(token, publicURL, body)
			q := signedURL[strings.IndexByte(signedURL, '?'):]
			req, _ := http.NewRequest(http.MethodPost, h.sender.URL+q, strings.NewReader(string(body)))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set(twilio.SignatureHeader, sig)
			mutate(req)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusServiceUnavailable {
				t.Errorf("%s: status %d %s, want 503 (the default reject status keeps the event alive at Twilio)", name, resp.StatusCode, b)
			}
		}
		send("no signature", func(r *http.Request) { r.Header.Del(twilio.SignatureHeader) })
		send("wrong token", func(r *http.Request) {
			_, sig := twilio.Sign("wrong-token", publicURL, body)
			r.Header.Set(twilio.SignatureHeader, sig)
		})
		send("tampered body", func(r *http.Request) {
			tampered := strings.Replace(string(body), "SMf", "SMx", 1)
			r.Body = io.NopCloser(strings.NewReader(tampered))
			r.ContentLength = int64(len(tampered))
		})
		send("tampered query", func(r *http.Request) { r.URL.RawQuery += "&extra=1" })
		send("no bodySHA256", func(r *http.Request) { r.URL.RawQuery = "" })
		send("signed for another URL", func(r *http.Request) {
			u, sig := twilio.Sign(token, "https://evil.example.com/twilio/events", body)
			r.URL.RawQuery = u[strings.IndexByte(u, '?')+1:]
			r.Header.Set(twilio.SignatureHeader, sig)
		})
		if n := countByID(readTopic(t, k.Addr(), "twilio.messaging"))["EZforged"]; n != 0 {
			t.Fatalf("a forged event was produced %d times", n)
		}
		if r := h.post(event("EZforged", "com.twilio.messaging.message.sent", "SMf")); r.Status != 200 {
			t.Fatalf("the genuine request after the forgeries: %d %s", r.Status, r.Body)
		}
	})

	t.Run("test events are never deduplicated", func(t *testing.T) {
		for i := range 3 {
			te := json.RawMessage(fmt.Sprintf(`{"specversion":"1.0","type":%q,"source":"Sink","id":"ACtestaccount",`+
				`"datacontenttype":"application/json","data":{"test_id":"t-%d"}}`, relay.TestEventType, i))
			if r := h.post(te); r.Status != 200 || !strings.Contains(string(r.Body), `"duplicates":0`) {
				t.Fatalf("test event %d: %d %s", i, r.Status, r.Body)
			}
		}
		if n := countByID(readTopic(t, k.Addr(), "twilio.other"))["ACtestaccount"]; n != 3 {
			t.Fatalf("test events produced %d times, want 3", n)
		}
	})

	t.Run("a bad event is dead-lettered and the rest of its batch goes on", func(t *testing.T) {
		bad := json.RawMessage(`{"specversion":"1.0","type":"com.twilio.messaging.message.sent","source":"/x","data":{}}`)
		r := h.post(event("EZgood", "com.twilio.messaging.message.sent", "SMg"), bad)
		if r.Status != 200 || !strings.Contains(string(r.Body), `"dead_lettered":1`) {
			t.Fatalf("%d %s, want 200 with one dead letter", r.Status, r.Body)
		}
		if n := countByID(readTopic(t, k.Addr(), "twilio.messaging"))["EZgood"]; n != 1 {
			t.Fatalf("good event produced %d times", n)
		}
		dl := readTopic(t, k.Addr(), "twilio.deadletter")
		if len(dl) != 1 || header(dl[0], "ce_deadletterreason") != relay.ReasonInvalidEvent ||
			header(dl[0], "ce_endpoint") != "events" || string(dl[0].Value) != string(bad) {
			t.Fatalf("dead letters %+v, want the original bytes with reason invalid_event", dl)
		}
	})

	t.Run("with Kafka stopped the relay answers 503 in time; nothing answered 200 is lost", func(t *testing.T) {
		k.Stop(t)
		var bodies [][]json.RawMessage
		for i := range 5 {
			bodies = append(bodies, []json.RawMessage{event(fmt.Sprintf("EZoutage%d", i), "com.twilio.messaging.message.failed", "SMo")})
		}
		accepted := map[string]bool{}
		for i, b := range bodies {
			start := time.Now()
			r := h.post(b...)
			took := time.Since(start)
			if r.Status == 200 {
				accepted[fmt.Sprintf("EZoutage%d", i)] = true
				continue
			}
			if r.Status != http.StatusServiceUnavailable || r.RetryAfter == "" {
				t.Errorf("outage: %d (Retry-After %q) %s, want 503 with Retry-After", r.Status, r.RetryAfter, r.Body)
			}
			if took > 4500*time.Millisecond { // Twilio hangs up at 5s; the deadline here is 1.5s
				t.Errorf("outage answer took %v: it must come before Twilio's 5s timeout", took)
			}
		}
		k.Restart(t)
		// Twilio retries what was not answered 200; so do we, until the relay takes it.
		for i, b := range bodies {
			id := fmt.Sprintf("EZoutage%d", i)
			for attempt := 0; !accepted[id] && attempt < 30; attempt++ {
				if r := h.post(b...); r.Status == 200 {
					accepted[id] = true
				} else {
					time.Sleep(500 * time.Millisecond)
				}
			}
			if !accepted[id] {
				t.Fatalf("%s never accepted after Kafka came back", id)
			}
		}
		got := countByID(readTopic(t, k.Addr(), "twilio.messaging"))
		for id := range accepted {
			if got[id] < 1 {
				t.Errorf("%s was answered 200 but is not in Kafka", id)
			}
		}
	})
}

func TestIntegrationStructuredMode(t *testing.T) {
	k := kafkaserver.Start(t, kafkaserver.LibsFromEnv(t))
	k.CreateTopic(t, "twilio.messaging", 1)
	k.CreateTopic(t, "twilio.deadletter", 1)
	h := startRelay(t, k, map[string]string{"MODE": "structured"})
	samples, err := twilio.Samples()
	if err != nil {
		t.Fatal(err)
	}
	if r := h.post(samples["message-sent-string-data"]); r.Status != 200 {
		t.Fatalf("%d %s", r.Status, r.Body)
	}
	ms := readTopic(t, k.Addr(), "twilio.messaging")
	if len(ms) != 1 || header(ms[0], "content-type") != "application/cloudevents+json" {
		t.Fatalf("records %+v, want one structured-mode record", ms)
	}
	var ce struct {
		ID   string         `json:"id"`
		Type string         `json:"type"`
		Data map[string]any `json:"data"`
	}
	if err := json.Unmarshal(ms[0].Value, &ce); err != nil {
		t.Fatalf("value is not a CloudEvent: %v: %s", err, ms[0].Value)
	}
	if ce.ID != "EZ22222222222222222222222222222222" || ce.Data["messageStatus"] != "SENT" {
		t.Fatalf("structured event %+v: want the id and data normalised from its JSON string", ce)
	}
}
