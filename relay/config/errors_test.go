package config

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// errorCase is one invalid configuration and what its error must say.
type errorCase struct {
	name string
	yaml string
	env  map[string]string
	// want are substrings of the error, each path-qualified where the code knows the path.
	want []string
	// n, when non-zero, is the exact number of problems reported.
	n int
}

// errorCases is shared by TestParseErrors and FuzzParse (as seeds).
func errorCases(t testing.TB) []errorCase {
	line := func(yaml, s string) string { return fmt.Sprintf("(line %d)", lineOf(yaml, s)) }

	unknownTop := with(t, "sinks:", "tracing: true\nsinks:")
	unknownEndpoint := with(t, "    auth_tokens: [tok]\n", "    auth_tokens: [tok]\n    token: x\n")
	unknownKafka := with(t, `      brokers: ["127.0.0.1:9092"]`, `      brokers: ["127.0.0.1:9092"]
      broker: x
      tls: {enable: true}`)
	unknownRoute := with(t, "    to:\n", "    match: {type: [x], when: [{field: x, equal: y}]}\n    to:\n",
		"        topic: twilio.events\n", "        topic: twilio.events\n        partition: 1\n")
	typeErr := with(t, "sinks:", "limits:\n  max_in_flight: abc\nretry:\n  multiplier: fast\nsinks:")

	return []errorCase{
		// Reading the file.
		{name: "empty file", yaml: "", want: []string{"the file is empty"}, n: 1},
		{name: "comments only", yaml: "# nothing here\n", want: []string{"the file is empty"}, n: 1},
		{name: "invalid YAML", yaml: "endpoints: [\n", want: []string{"not valid YAML"}, n: 1},
		{name: "tab indentation", yaml: "log:\n\tlevel: info\n", want: []string{"not valid YAML"}, n: 1},
		{name: "top-level sequence", yaml: "- a\n- b\n", want: []string{"cannot unmarshal", "line 1"}, n: 1},
		{name: "document with nothing set", yaml: "---\n", want: []string{
			"endpoints: at least one endpoint is required", "sinks: at least one sink is required",
			`dead_letter.sink: "" names no sink`, "dead_letter.topic: a literal topic is required"}, n: 4},

		// Unknown keys, with the path, the line and the fields that exist.
		{name: "unknown top-level key", yaml: unknownTop, want: []string{
			"tracing " + line(unknownTop, "tracing:") + ": unknown field; known fields here: admin, dead_letter, dedupe, endpoints, inspector, limits, listen, log, no_route, preflight, retry, routes, sinks"}, n: 1},
		{name: "unknown endpoint key", yaml: unknownEndpoint, want: []string{
			"endpoints[0].token " + line(unknownEndpoint, "token:") + ": unknown field; known fields here: allowed_cidrs, auth_tokens, basic_auth, client_ip_header, data, kind, max_body, name, path, public_url, reject_status, trusted_proxies, twilio"}, n: 1},
		{name: "unknown kafka keys", yaml: unknownKafka, want: []string{
			"sinks[0].kafka.broker " + line(unknownKafka, "broker:") + ": unknown field",
			"sinks[0].kafka.tls.enable " + line(unknownKafka, "enable:") + ": unknown field; known fields here: ca_file, cert_file, enabled, insecure_skip_verify, key_file, server_name"}, n: 2},
		{name: "unknown route keys", yaml: unknownRoute, want: []string{
			"routes[0].match.type " + line(unknownRoute, "type:") + ": unknown field",
			"routes[0].match.when[0].equal " + line(unknownRoute, "equal:") + ": unknown field; known fields here: equals, exists, field, glob, in",
			"routes[0].to[0].partition " + line(unknownRoute, "partition:") + ": unknown field; known fields here: key, sink, topic"}, n: 3},
		{name: "wrong types", yaml: typeErr, want: []string{
			fmt.Sprintf("limits.max_in_flight (line %d): cannot unmarshal !!str `abc` into int", lineOf(typeErr, "max_in_flight")),
			fmt.Sprintf("retry.multiplier (line %d): cannot unmarshal !!str `fast` into float64", lineOf(typeErr, "multiplier"))}, n: 2},

		// Several problems at once: every one is reported in the same error.
		{name: "several problems at once", yaml: with(t,
			"sinks:", "limits: {request_deadline: 6s}\nlog: {level: loud}\nsinks:",
			"public_url: https://relay.example.com/twilio/events", "public_url: /twilio/events",
			"      - sink: kafka", "      - sink: nope",
			"topic: twilio.deadletter", `topic: "dl.{type}"`),
			want: []string{"limits.request_deadline: 6s must be above 0 and below Twilio's 5s timeout",
				`log.level: "loud" is not one of`, "endpoints[0].public_url", `routes[0].to[0].sink: "nope" names no sink`,
				"dead_letter.topic: a literal topic is required"}, n: 5},

		// Durations and sizes.
		{name: "bad duration", yaml: with(t, "sinks:", "limits: {request_deadline: 4x}\nsinks:"), want: []string{`"4x" is not a duration such as 4s, 250ms or 4h`}},
		{name: "bad byte size", yaml: with(t, "auth_tokens: [tok]", "auth_tokens: [tok]\n    max_body: 1XB"), want: []string{`"1XB" is not a size such as 1048576, 512KiB or 1MiB`}},
		{name: "request_deadline 5s", yaml: with(t, "sinks:", "limits: {request_deadline: 5s}\nsinks:"), want: []string{"limits.request_deadline: 5s must be above 0 and below Twilio's 5s timeout"}, n: 1},
		{name: "request_deadline 1m", yaml: with(t, "sinks:", "limits: {request_deadline: 1m}\nsinks:"), want: []string{"limits.request_deadline: 1m0s"}, n: 1},
		{name: "request_deadline negative", yaml: with(t, "sinks:", "limits: {request_deadline: -1s}\nsinks:"), want: []string{"limits.request_deadline: -1s"}, n: 1},
		{name: "max_in_flight negative", yaml: with(t, "sinks:", "limits: {max_in_flight: -1}\nsinks:"), want: []string{"limits.max_in_flight: must be at least 1"}, n: 1},
		{name: "max_connections negative", yaml: with(t, "sinks:", "limits: {max_connections: -1}\nsinks:"), want: []string{"limits.max_connections: must be at least 1"}, n: 1},
		{name: "attempt_timeout below the deadline", yaml: with(t, "sinks:", "limits: {request_deadline: 3s, attempt_timeout: 2s}\nsinks:"), want: []string{"limits.attempt_timeout: 2s must be at least limits.request_deadline (3s)"}, n: 1},
		{name: "max_late_writes negative", yaml: with(t, "sinks:", "limits: {max_late_writes: -1}\nsinks:"), want: []string{"limits.max_late_writes: must be at least 1"}, n: 1},
		{name: "preflight too often", yaml: with(t, "sinks:", "preflight: {interval: 100ms, timeout: -1s}\nsinks:"),
			want: []string{"preflight.interval: must be at least 1s", "preflight.timeout: must be above 0"}, n: 2},
		{name: "max_events negative", yaml: with(t, "sinks:", "limits: {max_events: -5}\nsinks:"), want: []string{"limits.max_events: must be at least 1"}, n: 1},
		{name: "retry max below initial", yaml: with(t, "sinks:", "retry: {initial: 2s, max: 1s}\nsinks:"), want: []string{"retry: initial must be above 0 and max at least initial"}, n: 1},
		{name: "retry multiplier below 1", yaml: with(t, "sinks:", "retry: {multiplier: 0.5}\nsinks:"), want: []string{"retry.multiplier: must be at least 1"}, n: 1},
		{name: "dedupe window negative", yaml: with(t, "sinks:", "dedupe: {window: -4h, max_ids: -1}\nsinks:"), want: []string{"dedupe.window: must be above 0", "dedupe.max_ids: must be at least 1"}, n: 2},
		{name: "max_body too small", yaml: with(t, "auth_tokens: [tok]", "auth_tokens: [tok]\n    max_body: 512"), want: []string{"endpoints[0].max_body: 512 is outside 1KiB..64MiB"}, n: 1},
		{name: "max_body too large", yaml: with(t, "auth_tokens: [tok]", "auth_tokens: [tok]\n    max_body: 65MiB"), want: []string{"endpoints[0].max_body: 68157440 is outside 1KiB..64MiB"}, n: 1},

		// Listeners and log.
		{name: "listen not host:port", yaml: with(t, "sinks:", "listen: 8080\nsinks:"), want: []string{`listen: "8080" is not host:port`}, n: 1},
		{name: "a URL as an admin host", yaml: with(t, "sinks:", "admin: {allowed_hosts: [\"https://relay.example.com/\"]}\nsinks:"),
			want: []string{`admin.allowed_hosts[0]: "https://relay.example.com/" is not a host name`}, n: 1},
		{name: "admin on the webhook listener", yaml: with(t, "sinks:", "listen: :9000\nadmin: {listen: \":9000\"}\nsinks:"), want: []string{"admin.listen: must differ from listen"}, n: 1},
		{name: "log format", yaml: with(t, "sinks:", "log: {format: xml}\nsinks:"), want: []string{`log.format: "xml" is not one of [json text]`}, n: 1},

		// Endpoints.
		{name: "public_url with a query", yaml: with(t, "/twilio/events\n    auth", "/twilio/events?sink=1\n    auth"), want: []string{"endpoints[0].public_url: must have no query, fragment or user:pass@"}, n: 1},
		{name: "public_url with a fragment", yaml: with(t, "/twilio/events\n    auth", "/twilio/events#x\n    auth"), want: []string{"endpoints[0].public_url: must have no query"}, n: 1},
		{name: "public_url with user:pass", yaml: with(t, "https://relay.example.com", "https://u:p@relay.example.com"), want: []string{"endpoints[0].public_url: must have no query, fragment or user:pass@"}, n: 1},
		{name: "public_url relative", yaml: with(t, "public_url: https://relay.example.com/twilio/events", "public_url: /twilio/events"), want: []string{`endpoints[0].public_url: "/twilio/events" is not an absolute http(s) URL`}, n: 1},
		{name: "public_url without host", yaml: with(t, "public_url: https://relay.example.com/twilio/events", "public_url: https:///twilio/events"), want: []string{"endpoints[0].public_url"}, n: 1},
		{name: "public_url ftp", yaml: with(t, "public_url: https://", "public_url: ftp://"), want: []string{"endpoints[0].public_url"}, n: 1},
		{name: "public_url missing", yaml: with(t, "    public_url: https://relay.example.com/twilio/events\n", ""), want: []string{`endpoints[0].public_url: "" is not an absolute http(s) URL`}, n: 1},
		{name: "path without slash", yaml: with(t, "path: /twilio/events", "path: twilio/events"), want: []string{`endpoints[0].path: "twilio/events" must start with /`}, n: 1},
		{name: "endpoint name invalid", yaml: with(t, "name: events", "name: my events"), want: []string{`endpoints[0].name: "my events" must be 1-63 letters`}, n: 1},
		{name: "duplicate endpoint names and paths", yaml: with(t, "sinks:", `  - name: events
    path: /twilio/events
    public_url: https://relay.example.com/twilio/events
    auth_tokens: [tok]
sinks:`), want: []string{`endpoints[1].name: "events" is used twice`, `endpoints[1].path: "/twilio/events" is used by another endpoint`}, n: 2},
		{name: "missing auth_tokens", yaml: with(t, "    auth_tokens: [tok]\n", ""), want: []string{"endpoints[0].auth_tokens: at least one auth token is required"}, n: 1},
		{name: "blank auth_tokens", yaml: with(t, "auth_tokens: [tok]", `auth_tokens: ["", " , "]`), want: []string{"endpoints[0].auth_tokens: at least one auth token is required"}, n: 1},
		{name: "basic_auth without password", yaml: with(t, "auth_tokens: [tok]", "auth_tokens: [tok]\n    basic_auth: {username: u}"), want: []string{"endpoints[0].basic_auth: username and password are both required"}, n: 1},
		{name: "client_ip_header without trusted_proxies", yaml: with(t, "auth_tokens: [tok]", "auth_tokens: [tok]\n    client_ip_header: X-Forwarded-For"), want: []string{"endpoints[0].client_ip_header: is believed only from trusted_proxies"}, n: 1},
		{name: "bad CIDR", yaml: with(t, "auth_tokens: [tok]", "auth_tokens: [tok]\n    allowed_cidrs: [35.90.102.128/33]\n    trusted_proxies: [\"10.0.0.0/8, proxy\"]"), want: []string{
			`endpoints[0].allowed_cidrs: "35.90.102.128/33" is not a CIDR prefix or an address`,
			`endpoints[0].trusted_proxies: "proxy" is not a CIDR prefix or an address`}, n: 2},
		{name: "reject_status 200", yaml: with(t, "auth_tokens: [tok]", "auth_tokens: [tok]\n    reject_status: 200"), want: []string{"endpoints[0].reject_status: 200 is not a 4xx or 5xx status"}, n: 1},
		{name: "reject_status 600", yaml: with(t, "auth_tokens: [tok]", "auth_tokens: [tok]\n    reject_status: 600"), want: []string{"endpoints[0].reject_status: 600"}, n: 1},
		{name: "data mode", yaml: with(t, "auth_tokens: [tok]", "auth_tokens: [tok]\n    data: raw"), want: []string{`endpoints[0].data: "raw" is not one of [normalize keep]`}, n: 1},
		{name: "no endpoints", yaml: with(t, `  - name: events
    path: /twilio/events
    public_url: https://relay.example.com/twilio/events
    auth_tokens: [tok]
`, ""), want: []string{"endpoints: at least one endpoint is required"}, n: 1},

		// Sinks.
		{name: "sink with no kind", yaml: with(t, `    kafka:
      brokers: ["127.0.0.1:9092"]
`, ""), want: []string{"sinks[0]: set exactly one sink kind (kafka, file, http, nats, redis); 0 are set"}, n: 1},
		{name: "sink kind null", yaml: with(t, `    kafka:
      brokers: ["127.0.0.1:9092"]
`, "    kafka:\n"), want: []string{"sinks[0]: set exactly one sink kind"}, n: 1},
		{name: "sink name invalid", yaml: with(t, "- name: kafka", "- name: \"\"", "      - sink: kafka", "      - sink: \"\"", "  sink: kafka\n  topic: twilio.deadletter", "  sink: \"\"\n  topic: twilio.deadletter"), want: []string{`sinks[0].name: "" must be 1-63 letters`}, n: 1},
		{name: "duplicate sink names", yaml: with(t, "routes:", "  - name: kafka\n    kafka: {brokers: [\"h:1\"]}\nroutes:"), want: []string{`sinks[1].name: "kafka" is used twice`}, n: 1},
		{name: "no sinks", yaml: "endpoints:\n  - {name: e, path: /e, public_url: \"https://x/e\", auth_tokens: [t]}\n", want: []string{
			"sinks: at least one sink is required", `dead_letter.sink: "" names no sink`, "dead_letter.topic: a literal topic is required"}, n: 3},
		{name: "kafka with no brokers", yaml: with(t, `brokers: ["127.0.0.1:9092"]`, "brokers: []"), want: []string{"sinks[0].kafka: brokers: at least one broker is required"}, n: 1},
		{name: "kafka broker without port", yaml: with(t, `brokers: ["127.0.0.1:9092"]`, `brokers: ["kafka, k2:"]`), want: []string{`sinks[0].kafka: brokers: "kafka" is not host:port`, `sinks[0].kafka: brokers: "k2:" is not host:port`}, n: 2},
		{name: "kafka bad acks", yaml: with(t, `brokers: ["127.0.0.1:9092"]`, "brokers: [\"127.0.0.1:9092\"]\n      acks: most"), want: []string{`sinks[0].kafka: acks: "most" is not all, one or none`}, n: 1},
		{name: "kafka bad compression", yaml: with(t, `brokers: ["127.0.0.1:9092"]`, "brokers: [\"127.0.0.1:9092\"]\n      compression: brotli"), want: []string{`sinks[0].kafka: compression: "brotli" is not none, gzip, snappy, lz4 or zstd`}, n: 1},
		{name: "kafka bad mode", yaml: with(t, `brokers: ["127.0.0.1:9092"]`, "brokers: [\"127.0.0.1:9092\"]\n      mode: json"), want: []string{`sinks[0].kafka: mode: "json" is not binary or structured`}, n: 1},
		{name: "kafka sasl mechanism unknown", yaml: with(t, `brokers: ["127.0.0.1:9092"]`, "brokers: [\"127.0.0.1:9092\"]\n      sasl: {mechanism: gssapi}"), want: []string{`sinks[0].kafka: sasl.mechanism: "gssapi" is not plain, scram-sha-256 or scram-sha-512`}, n: 1},
		{name: "kafka sasl without username", yaml: with(t, `brokers: ["127.0.0.1:9092"]`, "brokers: [\"127.0.0.1:9092\"]\n      sasl: {mechanism: plain}"), want: []string{"sinks[0].kafka: sasl.username: required with mechanism plain"}, n: 1},
		{name: "kafka cert without key", yaml: with(t, `brokers: ["127.0.0.1:9092"]`, "brokers: [\"127.0.0.1:9092\"]\n      tls: {enabled: true, cert_file: /c.pem}"), want: []string{"sinks[0].kafka: tls: cert_file and key_file go together"}, n: 1},
		{name: "kafka batch_timeout too long", yaml: with(t, `brokers: ["127.0.0.1:9092"]`, "brokers: [\"127.0.0.1:9092\"]\n      batch_timeout: 2s"), want: []string{"sinks[0].kafka: batch_timeout: 2s is outside 0..1s"}, n: 1},

		// Routes.
		{name: "route to an unknown sink", yaml: with(t, "      - sink: kafka", "      - sink: nope"), want: []string{`routes[0].to[0].sink: "nope" names no sink`}, n: 1},
		{name: "route with bad topic template", yaml: with(t, "topic: twilio.events", `topic: "{unclosed"`), want: []string{"routes[0].to[0].topic: unclosed placeholder at offset 0"}, n: 1},
		{name: "route with unmatched brace", yaml: with(t, "topic: twilio.events", `topic: "a}b"`), want: []string{"routes[0].to[0].topic", "unmatched '}'"}, n: 1},
		{name: "route with empty topic", yaml: with(t, "\n        topic: twilio.events", ""), want: []string{"routes[0].to[0].topic: a topic template is required"}, n: 1},
		{name: "route with bad key template", yaml: with(t, "topic: twilio.events", "topic: twilio.events\n        key: \"{data.a b}\""), want: []string{"routes[0].to[0].key: placeholder {data.a b}"}, n: 1},
		{name: "route with no targets", yaml: with(t, "    to:\n      - sink: kafka\n        topic: twilio.events\n", "    to: []\n"), want: []string{"routes[0].to: at least one target is required"}, n: 1},
		{name: "duplicate route names", yaml: with(t, "dead_letter:", "  - name: all\n    to: [{sink: kafka, topic: x}]\ndead_letter:"), want: []string{`routes[1].name: "all" is used twice`}, n: 1},
		{name: "condition with two operators", yaml: with(t, "    to:", "    match: {when: [{field: data.status, equals: a, glob: \"b*\"}]}\n    to:"), want: []string{"routes[0].match.when[0]: set exactly one of equals, in, glob, exists"}, n: 1},
		{name: "condition with no operator", yaml: with(t, "    to:", "    match: {when: [{field: subject}, {field: type, in: [a]}, {field: x, exists: false, in: [a]}]}\n    to:"), want: []string{
			"routes[0].match.when[0]: set exactly one", "routes[0].match.when[2]: set exactly one"}, n: 2},
		{name: "condition with a bad field", yaml: with(t, "    to:", "    match: {when: [{field: \"data status\", equals: a}, {equals: b}]}\n    to:"), want: []string{
			`routes[0].match.when[0].field: "data status" is not a field name`, `routes[0].match.when[1].field: "" is not a field name`}, n: 2},

		// Dead letters and no_route.
		{name: "dead_letter topic with a placeholder", yaml: with(t, "topic: twilio.deadletter", `topic: "dl.{type}"`), want: []string{"dead_letter.topic: a literal topic is required"}, n: 1},
		{name: "dead_letter without topic", yaml: with(t, "  topic: twilio.deadletter\n", ""), want: []string{"dead_letter.topic: a literal topic is required"}, n: 1},
		{name: "dead_letter sink unknown", yaml: with(t, "dead_letter:\n  sink: kafka", "dead_letter:\n  sink: dlq"), want: []string{`dead_letter.sink: "dlq" names no sink`}, n: 1},
		{name: "no_route bad value", yaml: with(t, "dead_letter:", "no_route: ignore\ndead_letter:"), want: []string{`no_route: "ignore" is not one of [dead_letter drop]`}, n: 1},

		// Environment.
		{name: "env var unset without default", yaml: with(t, "auth_tokens: [tok]", `auth_tokens: ["${TWILIO_TOKEN}"]`), want: []string{
			"endpoints[0].auth_tokens[0] (line 5): environment variable TWILIO_TOKEN is not set (write ${TWILIO_TOKEN:-default} for a default)"}, n: 1},
		{name: "several env vars unset", yaml: with(t, "sinks:", "listen: ${L}\nlog: {level: \"${LEVEL}\"}\nsinks:", "topic: twilio.events", "topic: ${TOPIC}"), want: []string{
			"listen (line 6): environment variable L is not set", "log.level (line 7): environment variable LEVEL is not set",
			"routes[0].to[0].topic (line 16): environment variable TOPIC is not set"}, n: 3},
		{name: "env unclosed", yaml: with(t, "topic: twilio.events", `topic: "${TOPIC"`), want: []string{`routes[0].to[0].topic (line 14): unclosed ${ in "${TOPIC"`}, n: 1},
		{name: "env quoted into an int", yaml: with(t, "sinks:", "limits:\n  max_in_flight: \"${N}\"\nsinks:"), env: map[string]string{"N": "12"}, want: []string{"cannot unmarshal !!str `12` into int"}, n: 1},
		{name: "env not a number", yaml: with(t, "sinks:", "limits:\n  max_in_flight: ${N}\nsinks:"), env: map[string]string{"N": "many"}, want: []string{"cannot unmarshal !!str `many` into int"}, n: 1},
		{name: "env empty into a required field", yaml: with(t, "path: /twilio/events", "path: ${P:-}"), want: []string{`endpoints[0].path: "" must start with /`}, n: 1},
		{name: "unknown key and unset env both reported", yaml: with(t, "sinks:", "bogus: 1\nlisten: ${NOPE}\nsinks:"), want: []string{
			"bogus (line 6): unknown field", "listen (line 7): environment variable NOPE is not set"}, n: 2},
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range errorCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(tc.yaml), envMap(tc.env))
			if err == nil || c != nil {
				t.Fatalf("Parse succeeded (%v, %v); want an error containing %q\n%s", c, err, tc.want, tc.yaml)
			}
			var es Errors
			if !errors.As(err, &es) {
				t.Fatalf("error %T %v is not an Errors", err, err)
			}
			msg := err.Error()
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error does not contain %q:\n%s", w, msg)
				}
			}
			if tc.n != 0 && len(es) != tc.n {
				t.Errorf("%d problems reported, want %d:\n%s", len(es), tc.n, msg)
			}
			if !strings.HasPrefix(msg, fmt.Sprintf("%d problem(s) in the configuration:", len(es))) {
				t.Errorf("error does not start with the count: %q", msg)
			}
		})
	}
}

// TestMinimalIsValid guards the base every error case changes.
func TestMinimalIsValid(t *testing.T) {
	if _, err := Parse([]byte(minimal), envMap(nil)); err != nil {
		t.Fatalf("the minimal configuration is invalid: %v", err)
	}
}

func TestEnvExpansion(t *testing.T) {
	tests := []struct {
		name  string
		yaml  string
		env   map[string]string
		check func(t *testing.T, c *Config)
	}{
		{
			name: "default used when unset",
			yaml: with(t, "topic: twilio.events", "topic: ${KAFKA_TOPIC:-twilio.fallback}"),
			check: func(t *testing.T, c *Config) {
				if got := c.Routes[0].To[0].Topic; got != "twilio.fallback" {
					t.Errorf("topic = %q", got)
				}
				if got := c.Router().Routes[0].Targets[0].Topic.String(); got != "twilio.fallback" {
					t.Errorf("compiled topic = %q", got)
				}
			},
		},
		{
			name: "default used when empty",
			yaml: with(t, "topic: twilio.events", "topic: ${KAFKA_TOPIC:-twilio.fallback}"),
			env:  map[string]string{"KAFKA_TOPIC": ""},
			check: func(t *testing.T, c *Config) {
				if got := c.Routes[0].To[0].Topic; got != "twilio.fallback" {
					t.Errorf("topic = %q", got)
				}
			},
		},
		{
			name: "value wins over default",
			yaml: with(t, "topic: twilio.events", "topic: ${KAFKA_TOPIC:-twilio.fallback}"),
			env:  map[string]string{"KAFKA_TOPIC": "prod.events"},
			check: func(t *testing.T, c *Config) {
				if got := c.Routes[0].To[0].Topic; got != "prod.events" {
					t.Errorf("topic = %q", got)
				}
			},
		},
		{
			name: "$$ is a literal dollar",
			yaml: with(t, "auth_tokens: [tok]", "auth_tokens: [\"to$$k\"]\n    basic_auth: {username: u, password: p$$ss$$}"),
			check: func(t *testing.T, c *Config) {
				if got := c.Endpoints[0].AuthTokens; len(got) != 1 || got[0] != "to$k" {
					t.Errorf("auth_tokens = %q", got)
				}
				if got := c.Endpoints[0].BasicAuth.Password; got != "p$ss$" {
					t.Errorf("password = %q", got)
				}
			},
		},
		{
			name: "a lone $ is kept",
			yaml: with(t, "auth_tokens: [tok]", "auth_tokens: [\"$tok$\"]"),
			check: func(t *testing.T, c *Config) {
				if got := c.Endpoints[0].AuthTokens; len(got) != 1 || got[0] != "$tok$" {
					t.Errorf("auth_tokens = %q", got)
				}
			},
		},
		{
			name: "int and bool fields",
			yaml: with(t, "sinks:", "limits:\n  max_in_flight: ${N}\n  request_deadline: ${D}\nadmin:\n  pprof: ${P}\nsinks:",
				`brokers: ["127.0.0.1:9092"]`, "brokers: [\"127.0.0.1:9092\"]\n      allow_auto_topic_creation: ${AUTO:-true}\n      tls:\n        enabled: ${TLS:-false}"),
			env: map[string]string{"N": "12", "P": "true", "D": "250ms"},
			check: func(t *testing.T, c *Config) {
				k := c.Sinks[0].Kafka
				if c.Limits.MaxInFlight != 12 || !c.Admin.Pprof || time.Duration(c.Limits.RequestDeadline) != 250*time.Millisecond || !k.AllowAutoTopicCreation || k.TLS.Enabled {
					t.Errorf("max_in_flight %d, pprof %v, request_deadline %v, auto %v, tls %v", c.Limits.MaxInFlight, c.Admin.Pprof, c.Limits.RequestDeadline, k.AllowAutoTopicCreation, k.TLS.Enabled)
				}
			},
		},
		{
			name: "numeric token stays a string",
			yaml: with(t, "auth_tokens: [tok]", "auth_tokens:\n      - ${T}"),
			env:  map[string]string{"T": "0012345"},
			check: func(t *testing.T, c *Config) {
				if got := c.Endpoints[0].AuthTokens; len(got) != 1 || got[0] != "0012345" {
					t.Errorf("auth_tokens = %q", got)
				}
			},
		},
		{
			name: "comma-separated tokens split as they are decoded",
			yaml: with(t, "auth_tokens: [tok]", `auth_tokens: ["${TWILIO_AUTH_TOKENS}", "sub-account-token"]`),
			env:  map[string]string{"TWILIO_AUTH_TOKENS": "primary, secondary,,"},
			check: func(t *testing.T, c *Config) {
				if got := strings.Join(c.Endpoints[0].AuthTokens, "|"); got != "primary|secondary|sub-account-token" {
					t.Errorf("auth_tokens = %q", got)
				}
			},
		},
		{
			name: "YAML special characters in a value are not re-parsed",
			yaml: with(t, "auth_tokens: [tok]", "auth_tokens:\n      - ${T}"),
			env:  map[string]string{"T": "a: b # c, [d]"},
			check: func(t *testing.T, c *Config) {
				// Not re-parsed as YAML (a mapping, a comment, a sequence); split at the comma, as any list is.
				if got := c.Endpoints[0].AuthTokens; len(got) != 2 || got[0] != "a: b # c" || got[1] != "[d]" {
					t.Errorf("auth_tokens = %q", got)
				}
			},
		},
		{
			name: "references in comments are ignored",
			yaml: with(t, "sinks:", "# ${NOT_SET} in a comment\nsinks:"),
			check: func(t *testing.T, c *Config) {
				if len(c.Sinks) != 1 {
					t.Errorf("sinks = %+v", c.Sinks)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.yaml), envMap(tt.env))
			if err != nil {
				t.Fatalf("Parse: %v\n%s", err, tt.yaml)
			}
			tt.check(t, c)
		})
	}
}

// TestDecodeErrorsArePathQualified: the package promises every problem at once, each with its path.
func TestDecodeErrorsArePathQualified(t *testing.T) {
	src := with(t, "sinks:", "limits:\n  request_deadline: 4x\n  shutdown_timeout: 9y\nsinks:",
		"auth_tokens: [tok]", "auth_tokens: [tok]\n    max_body: 1XB")
	_, err := Parse([]byte(src), envMap(nil))
	if err == nil {
		t.Fatal("Parse succeeded")
	}
	for _, want := range []string{
		"limits.request_deadline " + fmt.Sprintf("(line %d)", lineOf(src, "request_deadline")), `"4x"`,
		"limits.shutdown_timeout " + fmt.Sprintf("(line %d)", lineOf(src, "shutdown_timeout")), `"9y"`,
		"endpoints[0].max_body " + fmt.Sprintf("(line %d)", lineOf(src, "max_body")), `"1XB"`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not contain %q:\n%v", want, err)
		}
	}
}

// TestPublicURLTrailingQueryOrFragment: the relay verifies public_url + "?" + the received query, so a
// public_url ending in '?' or '#' can never verify a real Twilio request (and hides bodySHA256 from
// twilio-go, which then falls back to form validation: see relay/twilio TestVerifyNeverFallsBackToFormValidation).
func TestPublicURLTrailingQueryOrFragment(t *testing.T) {
	for _, pub := range []string{"https://relay.example.com/twilio/events?", "'https://relay.example.com/twilio/events#'"} {
		src := with(t, "public_url: https://relay.example.com/twilio/events", "public_url: "+pub)
		if c, err := Parse([]byte(src), envMap(nil)); err == nil {
			t.Errorf("public_url %s accepted (%q)", pub, c.Endpoints[0].PublicURL)
		} else if !strings.Contains(err.Error(), "endpoints[0].public_url") {
			t.Errorf("public_url %s: %v", pub, err)
		}
	}
}

// TestConditionFieldIsOneName: a condition's field must be one field name; it is checked by parsing
// "{"+field+"}" as a template, which accepts text that is not one name.
func TestConditionFieldIsOneName(t *testing.T) {
	for _, field := range []string{"a}{b", "a}}", " type "} {
		src := with(t, "    to:", fmt.Sprintf("    match: {when: [{field: %q, exists: true}]}\n    to:", field))
		if _, err := Parse([]byte(src), envMap(nil)); err == nil || !strings.Contains(err.Error(), "routes[0].match.when[0].field") {
			t.Errorf("field %q: Parse error = %v, want routes[0].match.when[0].field", field, err)
		}
	}
}
