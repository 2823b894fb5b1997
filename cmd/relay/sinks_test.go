package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	goredis "github.com/redis/go-redis/v9"

	"github.com/relaykit/twilio-relay/relay/config"
	"github.com/relaykit/twilio-relay/relay/relaytest/servers"
	"github.com/relaykit/twilio-relay/relay/twilio/twiliotest"
)

// sinksConfig routes messaging events to JetStream and to a Redis stream, voice events to an HTTP
// endpoint, and dead letters to Redis: the three sinks of issue 3, wired by the real program.
const sinksConfig = `
listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:0 }
log: { level: warn }
limits: { request_deadline: 2s }
endpoints:
  - name: events
    path: /twilio/events
    public_url: ` + publicURL + `
    auth_tokens: [ "${TOKEN}" ]
sinks:
  - name: hook
    http:
      url: "${HOOK_URL}/events"
      health_url: "${HOOK_URL}/health"
      secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
  - name: js
    nats: { urls: [ "${NATS_URL}" ], stream: TWILIO }
  - name: streams
    redis: { addr: "${REDIS_ADDR}", max_len: 1000 }
routes:
  - name: messaging
    match: { types: [ "com.twilio.messaging.*" ] }
    to:
      - { sink: js, topic: twilio.messaging }
      - { sink: streams, topic: "twilio:messaging" }
  - name: voice
    match: { types: [ "com.twilio.voice.*" ] }
    to: [ { sink: hook, topic: voice } ]
dead_letter: { sink: streams, topic: "twilio:deadletter" }
`

// TestIntegrationHTTPNATSRedis runs the program with the HTTP, NATS and Redis sinks against real
// servers, posts signed requests and reads every destination back.
func TestIntegrationHTTPNATSRedis(t *testing.T) {
	ns := servers.StartNATS(t)
	rd := servers.StartRedis(t)

	var mu sync.Mutex
	var hooked []http.Header
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/events" {
			_, _ = io.Copy(io.Discard, r.Body)
			mu.Lock()
			hooked = append(hooked, r.Header.Clone())
			mu.Unlock()
		}
	}))
	defer hook.Close()

	nc, err := natsgo.Connect(ns.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	stream, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "TWILIO", Subjects: []string{"twilio.>"}})
	if err != nil {
		t.Fatal(err)
	}

	r, sender := startSinksRelay(t, map[string]string{"HOOK_URL": hook.URL, "NATS_URL": ns.URL(), "REDIS_ADDR": rd.Addr()})
	if code := getStatus(t, "http://"+r.AdminAddr+"/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz answered %d with every destination up", code)
	}

	var evs []json.RawMessage
	for i := range 3 {
		evs = append(evs, event(fmt.Sprintf("EZsinks-m%d", i), "com.twilio.messaging.message.sent", "SMsinks"))
	}
	for i := range 2 {
		evs = append(evs, event(fmt.Sprintf("EZsinks-v%d", i), "com.twilio.voice.call.completed", "CAsinks"))
	}
	evs = append(evs, json.RawMessage(`{"specversion":"1.0","type":"com.twilio.messaging.message.sent"}`)) // no id: dead letter
	resp, err := sender.Post(ctx, evs)
	if err != nil || resp.Status != http.StatusOK {
		t.Fatalf("post: %v %d %s", err, resp.Status, resp.Body)
	}
	if !strings.Contains(string(resp.Body), `"delivered":5`) {
		t.Errorf("outcome %s, want 5 delivered", resp.Body)
	}

	info, err := stream.Info(ctx)
	if err != nil || info.State.Msgs != 3 {
		t.Errorf("JetStream stream TWILIO holds %v messages (%v), want 3", info.State.Msgs, err)
	}
	for seq := uint64(1); seq <= 3; seq++ {
		m, err := stream.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		if m.Subject != "twilio.messaging" || !strings.HasPrefix(m.Header.Get("ce-id"), "EZsinks-m") ||
			m.Header.Get("Nats-Msg-Id") != m.Header.Get("ce-id")+"@twilio.messaging" {
			t.Errorf("JetStream message %d: %s %v", seq, m.Subject, m.Header)
		}
	}

	rdb := goredis.NewClient(&goredis.Options{Addr: rd.Addr()})
	defer rdb.Close()
	xs, err := rdb.XRange(ctx, "twilio:messaging", "-", "+").Result()
	if err != nil || len(xs) != 3 {
		t.Errorf("Redis stream twilio:messaging holds %d entries (%v), want 3", len(xs), err)
	}
	for _, x := range xs {
		if !strings.HasPrefix(fmt.Sprint(x.Values["ce_id"]), "EZsinks-m") || x.Values["key"] != "SMsinks" {
			t.Errorf("Redis entry %v", x.Values)
		}
	}
	dls, err := rdb.XRange(ctx, "twilio:deadletter", "-", "+").Result()
	if err != nil || len(dls) != 1 || dls[0].Values["ce_deadletterreason"] != "invalid_event" {
		t.Errorf("dead letters %v (%v), want one invalid_event", dls, err)
	}

	mu.Lock()
	if len(hooked) != 2 {
		t.Errorf("the HTTP endpoint received %d requests, want 2", len(hooked))
	}
	for _, h := range hooked {
		if h.Get("X-Relay-Topic") != "voice" || !strings.HasPrefix(h.Get("ce-id"), "EZsinks-v") ||
			!strings.HasPrefix(h.Get("webhook-signature"), "v1,") || h.Get("webhook-id") != h.Get("ce-id") {
			t.Errorf("HTTP request headers %v", h)
		}
	}
	mu.Unlock()

	// A destination down: readiness says so, and its events are not acknowledged to Twilio.
	ns.Kill()
	deadline := time.Now().Add(5 * time.Second)
	for getStatus(t, "http://"+r.AdminAddr+"/readyz") == http.StatusOK && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if code := getStatus(t, "http://"+r.AdminAddr+"/readyz"); code == http.StatusOK {
		t.Error("/readyz answered 200 with NATS down")
	}
	resp, err = sender.Post(ctx, []json.RawMessage{event("EZsinks-down", "com.twilio.messaging.message.sent", "SMsinks")})
	if err != nil || resp.Status == http.StatusOK {
		t.Errorf("post with NATS down: %v %d %s, want a retryable status", err, resp.Status, resp.Body)
	}
}

// startSinksRelay runs the program with sinksConfig until the test ends.
func startSinksRelay(t *testing.T, env map[string]string) (*Relay, *twiliotest.Sender) {
	t.Helper()
	vars := map[string]string{"TOKEN": token}
	for k, v := range env {
		vars[k] = v
	}
	cfg, err := config.Parse([]byte(sinksConfig), func(k string) (string, bool) { v, ok := vars[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	r := runRelay(t, cfg, t.Logf) // NATS may be down by then: its flush fails
	return r, &twiliotest.Sender{URL: "http://" + r.Addr + "/twilio/events", PublicURL: publicURL, Token: token,
		Client: &http.Client{Timeout: 10 * time.Second}}
}

func getStatus(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestEverySinkKindHasAConstructor: a kind added to package config without its line in sinkKinds fails
// here, not when someone first configures it.
func TestEverySinkKindHasAConstructor(t *testing.T) {
	kinds, built := config.SinkKinds(), sinkKinds(nil)
	for _, k := range kinds {
		if built[k] == nil {
			t.Errorf("config has sink kind %q, cmd/relay has no constructor for it", k)
		}
	}
	if len(built) != len(kinds) {
		t.Errorf("%d constructors for %d kinds %v", len(built), len(kinds), kinds)
	}
}
