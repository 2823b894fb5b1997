package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/relaykit/twilio-relay/relay"
	"github.com/relaykit/twilio-relay/relay/config"
	"github.com/relaykit/twilio-relay/relay/relaytest/eventsapi"
	"github.com/relaykit/twilio-relay/relay/relaytest/kafkaserver"
	"github.com/relaykit/twilio-relay/relay/twilio/twiliotest"
	"github.com/relaykit/twilio-relay/relay/twilioapi"
)

// The first run of issue 18, against a real broker with topic auto-creation off: the shipped
// config.yaml, no topics yet. `relay check -connect` names the topics to create and exits 1; serve is not
// ready, for the same reason, and answers events 503 at once; each topic created clears its line; with
// both, every check passes and serve becomes ready.
func TestPreflightFirstRun(t *testing.T) {
	t.Parallel()
	k := kafkaserver.Start(t, kafkaserver.LibsFromEnv(t))
	env := map[string]string{"KAFKA_BROKERS": k.Addr()}
	missingEvents := "✗ kafka: topic twilio.events (route all-events): does not exist"
	missingDL := "✗ kafka: topic twilio.deadletter (dead letter): does not exist"

	out, err := checkConnectShipped(t, env)
	if !errors.Is(err, errChecksFailed) {
		t.Fatalf("check -connect with no topics: %v, want it to fail", err)
	}
	wantLines(t, out, missingEvents, missingDL,
		"--create --topic twilio.events --partitions 3 --replication-factor 1",
		"--create --topic twilio.deadletter", "or set allow_auto_topic_creation: true",
		"✓ kafka: connect: connected to "+k.Addr()+" as User:ANONYMOUS (no SASL, no TLS)")

	r, sender := serveShipped(t, env)
	body := waitReadyz(t, r, func(code int, body string) bool {
		return code == http.StatusServiceUnavailable && strings.Contains(body, "twilio.deadletter")
	})
	wantLines(t, body, "topic twilio.events (route all-events): does not exist", "topic twilio.deadletter (dead letter): does not exist")
	begin := time.Now()
	resp, err := sender.Post(context.Background(), []json.RawMessage{event("EZfirst", "com.twilio.messaging.message.sent", "SM1")})
	if err != nil || resp.Status != http.StatusServiceUnavailable {
		t.Fatalf("post with the topic missing: %v %d %s, want 503", err, resp.Status, resp.Body)
	}
	t.Logf("answered 503 in %v (request_deadline 4s): the missing topic is not retried", time.Since(begin).Round(time.Millisecond))

	k.CreateTopic(t, "twilio.events", 3)
	out, err = checkConnectShipped(t, env)
	if !errors.Is(err, errChecksFailed) || strings.Contains(out, missingEvents) {
		t.Fatalf("check -connect with only the dead-letter topic missing: %v\n%s", err, out)
	}
	wantLines(t, out, missingDL, "✓ kafka: topic twilio.events (route all-events): exists, 3 partitions")
	body = waitReadyz(t, r, func(code int, body string) bool {
		return code == http.StatusServiceUnavailable && !strings.Contains(body, "twilio.events")
	})
	wantLines(t, body, "topic twilio.deadletter (dead letter): does not exist")

	k.CreateTopic(t, "twilio.deadletter", 1)
	out, err = checkConnectShipped(t, env)
	if err != nil {
		t.Fatalf("check -connect with both topics: %v\n%s", err, out)
	}
	wantLines(t, out, "✓ kafka: brokers: every broker answers",
		"✓ kafka: topic twilio.events (route all-events): exists, 3 partitions, replication factor 1",
		"✓ kafka: write twilio.events (route all-events): User:ANONYMOUS may write to it",
		"✓ kafka: topic twilio.deadletter (dead letter): exists, 1 partition,",
		"preflight: 6 ✓, 0 ✗, 0 ?")
	waitReadyz(t, r, func(code int, _ string) bool { return code == http.StatusOK })
	resp, err = sender.Post(context.Background(), []json.RawMessage{event("EZfirst", "com.twilio.messaging.message.sent", "SM1")})
	if err != nil || resp.Status != http.StatusOK {
		t.Fatalf("post once both topics exist: %v %d %s, want 200", err, resp.Status, resp.Body)
	}
}

// A broker with SASL and the StandardAuthorizer: a wrong password, and a principal without a WRITE ACL,
// each fail check -connect with their line and keep serve unready with the same reason.
func TestPreflightRefused(t *testing.T) {
	t.Parallel()
	alice := kafkaserver.User{Name: "alice", Password: "alice-secret"}
	bob := kafkaserver.User{Name: "bob", Password: "bob-secret"}
	k := kafkaserver.Start(t, kafkaserver.LibsFromEnv(t), kafkaserver.WithSASL(alice, bob), kafkaserver.WithAuthorizer())
	k.CreateTopic(t, "twilio.events", 3)
	k.CreateTopic(t, "twilio.deadletter", 1)
	k.Grant(t,
		kafkaserver.ACL{Principal: "User:alice", Operation: "Write", Topic: "twilio.events"},
		kafkaserver.ACL{Principal: "User:alice", Operation: "Write", Topic: "twilio.deadletter"},
		kafkaserver.ACL{Principal: "User:bob", Operation: "Describe", Topic: "twilio.events"},
		kafkaserver.ACL{Principal: "User:bob", Operation: "Write", Topic: "twilio.deadletter"},
	)
	for _, tc := range []struct {
		name       string
		user       kafkaserver.User
		line, lead string // the ✗ line, and what /readyz says
	}{
		{"wrong password", kafkaserver.User{Name: "alice", Password: "wrong"},
			"✗ kafka: connect: authentication as alice (SASL scram-sha-512) refused", "connect: authentication as alice (SASL scram-sha-512) refused"},
		{"no write ACL", bob,
			"✗ kafka: write twilio.events (route all-events): User:bob may not write to it", "write twilio.events (route all-events): User:bob may not write to it"},
		{"allowed", alice, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := map[string]string{"KAFKA_BROKERS": k.SASLAddr(), "KAFKA_SASL_MECHANISM": "scram-sha-512",
				"KAFKA_USERNAME": tc.user.Name, "KAFKA_PASSWORD": tc.user.Password}
			out, err := checkConnectShipped(t, env)
			r, _ := serveShipped(t, env)
			if tc.line == "" {
				if err != nil {
					t.Fatalf("check -connect as alice: %v\n%s", err, out)
				}
				waitReadyz(t, r, func(code int, _ string) bool { return code == http.StatusOK })
				return
			}
			if !errors.Is(err, errChecksFailed) {
				t.Fatalf("check -connect: %v, want it to fail", err)
			}
			wantLines(t, out, tc.line)
			waitReadyz(t, r, func(code int, body string) bool {
				return code == http.StatusServiceUnavailable && strings.Contains(body, tc.lead)
			})
		})
	}
}

// No broker listens: check -connect fails, unless told to leave unreachable destinations to readiness;
// serve is not ready and says no broker answered.
func TestPreflightUnreachable(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"KAFKA_BROKERS": ln.Addr().String()}
	ln.Close()
	out, err := checkConnectShipped(t, env)
	if !errors.Is(err, errChecksFailed) {
		t.Fatalf("check -connect with no broker: %v, want it to fail", err)
	}
	wantLines(t, out, "✗ kafka: connect: no broker answered", "connection refused")

	path := writeShipped(t, env)
	var stdout bytes.Buffer
	if err := run(context.Background(), []string{"check", "-config", path, "-connect", "-allow-unreachable"}, &stdout, io.Discard); err != nil {
		t.Errorf("check -connect -allow-unreachable: %v\n%s", err, stdout.String())
	}
	wantLines(t, stdout.String(), "✗ kafka: connect: no broker answered")

	r, _ := serveShipped(t, env)
	body := waitReadyz(t, r, func(code int, _ string) bool { return code == http.StatusServiceUnavailable })
	wantLines(t, body, "no broker answered")
}

// shippedEnv is the environment of the shipped config.yaml in these tests, with env over it.
func shippedEnv(env map[string]string) map[string]string {
	vars := map[string]string{"RELAY_LISTEN": "127.0.0.1:0", "RELAY_ADMIN_LISTEN": "127.0.0.1:0",
		"RELAY_PUBLIC_URL": publicURL, "TWILIO_AUTH_TOKENS": token, "RELAY_LOG_LEVEL": "warn"}
	for k, v := range env {
		vars[k] = v
	}
	return vars
}

func shippedConfig(t *testing.T, env map[string]string) *config.Config {
	t.Helper()
	data, err := os.ReadFile("../../config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	vars := shippedEnv(env)
	cfg, err := config.Parse(data, func(k string) (string, bool) { v, ok := vars[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// writeShipped writes the shipped config.yaml with env's values in place of its ${VAR}s, for run.
func writeShipped(t *testing.T, env map[string]string) string {
	t.Helper()
	data, err := os.ReadFile("../../config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	vars := shippedEnv(env)
	text := os.Expand(string(data), func(k string) string {
		name, def, _ := strings.Cut(k, ":-")
		if v, ok := vars[name]; ok {
			return v
		}
		return def
	})
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// checkConnectShipped runs the checks of `relay check -connect` on the shipped configuration.
func checkConnectShipped(t *testing.T, env map[string]string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := checkConnect(context.Background(), shippedConfig(t, env), slog.New(slog.DiscardHandler), &out, false)
	t.Logf("relay check -connect:\n%s", out.String())
	return out.String(), err
}

func serveShipped(t *testing.T, env map[string]string) (*Relay, *twiliotest.Sender) {
	t.Helper()
	r := runRelay(t, shippedConfig(t, env), t.Errorf)
	return r, &twiliotest.Sender{URL: "http://" + r.Addr + "/twilio/events", PublicURL: publicURL, Token: token,
		Client: &http.Client{Timeout: 10 * time.Second}}
}

// waitReadyz polls /readyz until ok accepts its answer (within 30 s: a failing check is re-run every
// 5 s) and returns the body.
func waitReadyz(t *testing.T, r *Relay, ok func(code int, body string) bool) string {
	t.Helper()
	var code int
	var body []byte
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		resp, err := http.Get("http://" + r.AdminAddr + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		body, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		if code = resp.StatusCode; ok(code, string(body)) {
			t.Logf("/readyz: %d %s", code, body)
			return string(body)
		}
	}
	t.Fatalf("/readyz still answers %d %s", code, body)
	return ""
}

// wantLines fails the test unless out holds every part.
func wantLines(t *testing.T, out string, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if !strings.Contains(out, p) {
			t.Errorf("missing %q in\n%s", p, out)
		}
	}
}

// Templated topics: without Twilio credentials they are unchecked; with them, the topics the catalog's
// types produce are named (a template of other fields than type and endpoint stays unchecked).
func TestPreflightTemplatedTopics(t *testing.T) {
	cfg, err := config.Parse([]byte(`
endpoints:
  - { name: events, path: /e, public_url: "https://relay.example.com/e", auth_tokens: [ tok ] }
sinks:
  - { name: kafka, kafka: { brokers: [ "127.0.0.1:9" ] } }
routes:
  - { name: messages, match: { types: [ "com.twilio.messaging.message.*" ] }, to: [ { sink: kafka, topic: "twilio.{type}" } ] }
  - { name: by-account, match: { types: [ "*" ] }, to: [ { sink: kafka, topic: "acct.{data.accountSid}" } ] }
dead_letter: { sink: kafka, topic: twilio.deadletter }
`), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	_, templated := relay.StaticTopics(cfg.Router(), deadLetterTarget(cfg))
	for _, k := range []string{"TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_API_KEY", "TWILIO_API_SECRET", "TWILIO_EDGE", "TWILIO_REGION"} {
		t.Setenv(k, "")
	}
	uses, notes := typeTopics(cfg, templated)
	if len(uses) != 0 || len(notes) != 2 || !strings.Contains(notes[0].String(), "? kafka: topics of route messages (twilio.{type}): unchecked") ||
		!strings.Contains(notes[0].String(), "TWILIO_API_KEY") {
		t.Fatalf("without credentials: %v %v, want both templates unchecked", uses, notes)
	}

	fake := eventsapi.Start(t, eventsapi.Options{Accounts: map[string]string{e2eAccount: e2eToken}})
	t.Setenv("TWILIO_ACCOUNT_SID", e2eAccount)
	t.Setenv("TWILIO_AUTH_TOKEN", e2eToken)
	t.Setenv(twilioapi.EnvBaseURL, fake.URL)
	uses, notes = typeTopics(cfg, templated)
	var topics []string
	for _, u := range uses {
		topics = append(topics, u.Topic)
	}
	want := []string{"twilio.com.twilio.messaging.message.delivered", "twilio.com.twilio.messaging.message.failed",
		"twilio.com.twilio.messaging.message.queued", "twilio.com.twilio.messaging.message.read",
		"twilio.com.twilio.messaging.message.sent", "twilio.com.twilio.messaging.message.undelivered"}
	if !slices.Equal(topics, want) {
		t.Errorf("topics from the catalog:\n%v\nwant\n%v", topics, want)
	}
	if len(notes) != 1 || !strings.Contains(notes[0].String(), "route by-account (acct.{data.accountSid}): unchecked: the template names a field only events carry") {
		t.Errorf("notes %v, want by-account unchecked", notes)
	}
}
