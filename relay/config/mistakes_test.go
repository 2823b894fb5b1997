package config

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// wantProblem is one problem a file must report: its path, its line (the line of the first occurrence of
// at in the file) and a part of its message.
type wantProblem struct{ path, at, msg string }

// checkProblems parses src and checks that it reports exactly want, each with its path and line.
func checkProblems(t *testing.T, src string, want []wantProblem) {
	t.Helper()
	_, err := Parse([]byte(src), envMap(nil))
	var es Errors
	if !errors.As(err, &es) {
		t.Fatalf("Parse error %v is not an Errors", err)
	}
	for _, w := range want {
		line := lineOf(src, w.at)
		if line == 0 {
			t.Fatalf("%q is not in the file", w.at)
		}
		found := false
		for _, e := range es {
			m := e.Error()
			// Shape problems read "path (line N): message", rule problems "path: message (line N)".
			found = found || strings.Contains(m, w.msg) && (strings.HasPrefix(m, fmt.Sprintf("%s (line %d): ", w.path, line)) ||
				strings.HasPrefix(m, w.path+": ") && strings.HasSuffix(m, fmt.Sprintf(" (line %d)", line)))
		}
		if !found {
			t.Errorf("no problem at %s (line %d) saying %q in:\n%v", w.path, line, w.msg, err)
		}
	}
	if len(es) != len(want) {
		t.Errorf("%d problems reported, want %d:\n%v", len(es), len(want), err)
	}
}

// TestEveryKindOfShapeMistake: one file with every kind of mistake the shape pass finds reports each,
// with its path and line.
func TestEveryKindOfShapeMistake(t *testing.T) {
	const src = `listen: ${RELAY_LISTEN}
admin: 9090
tracing: true
log:
  level: "${LEVEL"
limits:
  request_deadline: 4x
  max_in_flight: lots
  max_connections: [8]
  max_events: 10
  max_events: 20
endpoints:
  - name: events
    path: /twilio/events
    public_url: https://relay.example.com/twilio/events
    auth_tokens: tok
    max_body: 1XB
    token: x
sinks:
  - name: kafka
    kafka:
      brokers: ["127.0.0.1:9092"]
      acks: [all]
      batch_size: 1.5
routes:
  - name: all
    to:
      - sink: kafka
        topic: twilio.events
        key: {data.accountSid}
        partition: 1
dead_letter:
  sink: kafka
  topic: twilio.deadletter
`
	checkProblems(t, src, []wantProblem{
		{"listen", "listen:", "environment variable RELAY_LISTEN is not set"},
		{"admin", "admin:", "cannot unmarshal !!int `9090` into config.Admin"},
		{"tracing", "tracing:", "unknown field; known fields here: admin,"},
		{"log.level", "level:", `unclosed ${ in "${LEVEL"`},
		{"limits.request_deadline", "request_deadline:", `"4x" is not a duration`},
		{"limits.max_in_flight", "max_in_flight:", "cannot unmarshal !!str `lots` into int"},
		{"limits.max_connections", "max_connections:", "cannot unmarshal !!seq into int"},
		{"limits.max_events", "max_events: 20", fmt.Sprintf(`mapping key "max_events" already defined at line %d`, lineOf(src, "max_events: 10"))},
		{"endpoints[0].auth_tokens", "auth_tokens:", "cannot unmarshal !!str `tok` into []string"},
		{"endpoints[0].max_body", "max_body:", `"1XB" is not a size`},
		{"endpoints[0].token", "token: x", "unknown field"},
		{"sinks[0].kafka.acks", "acks:", "cannot unmarshal !!seq into string"},
		{"sinks[0].kafka.batch_size", "batch_size:", "cannot unmarshal !!float `1.5` into int"}, // yaml alone would make it 1
		{"routes[0].to[0].key", "key:", "cannot unmarshal !!map into string"},
		{"routes[0].to[0].partition", "partition:", "unknown field; known fields here: key, sink, topic"},
	})
}

// TestEveryKindOfRuleMistake: one file with a mistake against each kind of rule reports each, with its
// path and the line of the value or, when the file has no such value, of the nearest key it has.
func TestEveryKindOfRuleMistake(t *testing.T) {
	const src = `listen: "8080"
admin: { auth: { token: short, username: ops } }
log: { level: loud, format: xml }
limits:
  request_deadline: 5s
  max_in_flight: -1
  max_connections: -1
  max_events: -1
  read_timeout: -1s
retry: { initial: 2s, max: 1s, multiplier: 0.5 }
dedupe: { window: -1h, max_ids: -1 }
no_route: ignore
endpoints:
  - name: "my events"
    path: twilio/events
    public_url: https://relay.example.com/twilio/events?x=1
    auth_tokens: [" , "]
    allowed_cidrs: [35.90.102.128/33]
    client_ip_header: X-Forwarded-For
    max_body: 512
    data: raw
    kind: soap
    reject_status: 200
sinks:
  - name: kafka
    kafka: { brokers: ["kafka-1"], acks: most }
  - name: empty
routes:
  - name: all
    match: { when: [ { field: "data status", equals: a, glob: "b*" } ] }
    to:
      - sink: kafak
        topic: "twilio.{data.status"
dead_letter: { sink: dlq, topic: "dl.{type}" }
spool: { sinks: [nope] }
inspector: { max_events: 100000, max_bytes: 1MiB, max_refusals: -1, redact: [ "" ] }
`
	checkProblems(t, src, []wantProblem{
		{"listen", "listen:", `"8080" is not host:port`},
		{"admin.auth", "admin:", "set both username and password, or neither"},
		{"admin.auth.token", "admin:", "must be at least 16 characters"},
		{"inspector", "inspector:", "max_bytes: must hold max_events slots of 48 B"},
		{"inspector", "inspector:", "max_refusals: must be at least 1"},
		{"inspector", "inspector:", "redact: an empty path"},
		{"log.level", "log:", `"loud" is not one of`},
		{"log.format", "log:", `"xml" is not one of`},
		{"no_route", "no_route:", `"ignore" is not one of`},
		{"limits.request_deadline", "request_deadline:", "5s must be above 0 and below Twilio's 5s timeout"},
		{"limits.read_timeout", "read_timeout:", "must not be negative"},
		{"limits.max_in_flight", "max_in_flight:", "must be at least 1"},
		{"limits.max_connections", "max_connections:", "must be at least 1"},
		{"limits.max_events", "max_events:", "must be at least 1"},
		{"retry", "retry:", "initial must be above 0 and max at least initial"},
		{"retry.multiplier", "retry:", "must be at least 1"},
		{"dedupe.window", "dedupe:", "must be above 0"},
		{"dedupe.max_ids", "dedupe:", "must be at least 1"},
		{"endpoints[0].name", `name: "my events"`, "must be 1-63 letters"},
		{"endpoints[0].path", "path:", `"twilio/events" must start with /`},
		{"endpoints[0].public_url", "public_url:", "must have no query"},
		{"endpoints[0].auth_tokens", "auth_tokens:", "at least one auth token is required"},
		{"endpoints[0].allowed_cidrs", "allowed_cidrs:", `"35.90.102.128/33" is not a CIDR prefix`},
		{"endpoints[0].client_ip_header", "client_ip_header:", "is believed only from trusted_proxies"},
		{"endpoints[0].max_body", "max_body:", "512 is outside 1KiB..64MiB"},
		{"endpoints[0].data", "data: raw", `"raw" is not one of`},
		{"endpoints[0].kind", "kind:", `"soap" is not one of`},
		{"endpoints[0].reject_status", "reject_status:", "200 is not a 4xx or 5xx status"},
		{"sinks[0].kafka", "kafka: {", `brokers: "kafka-1" is not host:port`},
		{"sinks[0].kafka", "kafka: {", `acks: "most" is not all, one or none`},
		{"sinks[1]", "- name: empty", "set exactly one sink kind"},
		{"routes[0].match.when[0].field", "match:", `"data status" is not a field name`},
		{"routes[0].match.when[0]", "match:", "set exactly one of equals, in, glob, exists"},
		{"routes[0].to[0].sink", "sink: kafak", `"kafak" names no sink`},
		{"routes[0].to[0].topic", "topic:", "unclosed placeholder"},
		{"dead_letter.sink", "dead_letter:", `"dlq" names no sink`},
		{"dead_letter.topic", "dead_letter:", "a literal topic is required"},
		{"spool.sinks", "spool:", `"nope" names no sink`},
		{"spool.dir", "spool:", "required when spool.sinks is set"}, // not in the file: the line of spool
	})
	// The rules are checked only once the shape is right: one shape mistake hides them all.
	_, err := Parse([]byte(strings.Replace(src, "no_route: ignore", "no_route: ignore\nbogus: 1", 1)), envMap(nil))
	if es := (Errors)(nil); !errors.As(err, &es) || len(es) != 1 || !strings.Contains(es[0].Error(), "bogus (line 13): unknown field") {
		t.Errorf("with a shape mistake too: %v; want only that one", err)
	}
}
