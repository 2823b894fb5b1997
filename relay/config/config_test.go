package config

import (
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/relaykit/twilio-relay/relay"
	"go.yaml.in/yaml/v3"
)

// shippedConfig is the configuration file at the root of the repository.
const shippedConfig = "../../config.yaml"

// shippedEnv are the variables config.yaml reads; tests that load it clear them all first so that the
// environment the tests run in cannot change the outcome.
var shippedEnv = []string{
	"RELAY_LISTEN", "RELAY_ADMIN_LISTEN", "RELAY_LOG_LEVEL", "RELAY_LOG_FORMAT", "RELAY_PUBLIC_URL", "RELAY_DEDUPE_SNAPSHOT",
	"TWILIO_AUTH_TOKENS", "KAFKA_BROKERS", "KAFKA_COMPRESSION", "KAFKA_AUTO_CREATE_TOPICS",
	"KAFKA_SASL_MECHANISM", "KAFKA_USERNAME", "KAFKA_PASSWORD", "KAFKA_TLS", "KAFKA_TOPIC",
	"KAFKA_DEAD_LETTER_TOPIC",
}

func clearShippedEnv(t *testing.T) {
	t.Helper()
	for _, k := range shippedEnv {
		t.Setenv(k, "") // restores the old value after the test
		os.Unsetenv(k)
	}
}

// envMap is an env function over a fixed map.
func envMap(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

func TestLoadShippedConfig(t *testing.T) {
	clearShippedEnv(t)
	t.Setenv("TWILIO_AUTH_TOKENS", "primary-token, secondary-token")
	c, err := Load(shippedConfig)
	if err != nil {
		t.Fatalf("Load(%s): %v", shippedConfig, err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"listen", c.Listen, ":8080"},
		{"admin.listen", c.Admin.Listen, ":9090"},
		{"admin.pprof", c.Admin.Pprof, false},
		{"log.level", c.Log.Level, "info"},
		{"log.format", c.Log.Format, "json"},
		{"limits.request_deadline", time.Duration(c.Limits.RequestDeadline), 4 * time.Second},
		{"limits.max_in_flight", c.Limits.MaxInFlight, 4096},
		{"limits.max_connections (default)", c.Limits.MaxConnections, 10_000},
		{"limits.shutdown_timeout", time.Duration(c.Limits.ShutdownTimeout), 20 * time.Second},
		{"limits.read_timeout (default)", time.Duration(c.Limits.ReadTimeout), 10 * time.Second},
		{"limits.idle_timeout (default)", time.Duration(c.Limits.IdleTimeout), 60 * time.Second},
		{"retry.initial (default)", time.Duration(c.Retry.Initial), relay.DefaultBackoff.Initial},
		{"retry.max (default)", time.Duration(c.Retry.Max), relay.DefaultBackoff.Max},
		{"retry.multiplier (default)", c.Retry.Multiplier, relay.DefaultBackoff.Multiplier},
		{"dedupe.window", time.Duration(c.Dedupe.Window), 4 * time.Hour},
		{"dedupe.max_ids", c.Dedupe.MaxIDs, int64(1_500_000)},
		{"preflight.interval (default)", time.Duration(c.Preflight.Interval), 30 * time.Second},
		{"preflight.timeout (default)", time.Duration(c.Preflight.Timeout), 10 * time.Second},
		{"endpoints", len(c.Endpoints), 1},
		{"endpoints[0].name", c.Endpoints[0].Name, "events"},
		{"endpoints[0].path", c.Endpoints[0].Path, "/twilio/events"},
		{"endpoints[0].public_url", c.Endpoints[0].PublicURL, "http://127.0.0.1:8080/twilio/events"},
		{"endpoints[0].auth_tokens", strings.Join(c.Endpoints[0].AuthTokens, "|"), "primary-token|secondary-token"},
		{"endpoints[0].max_body", c.Endpoints[0].MaxBody, relay.ByteSize(1 << 20)},
		{"endpoints[0].data (default)", c.Endpoints[0].Data, "normalize"},
		{"endpoints[0].reject_status (default)", c.Endpoints[0].RejectStatus, 503},
		{"sinks", len(c.Sinks), 1},
		{"sinks[0].name", c.Sinks[0].Name, "kafka"},
		{"kafka.brokers", strings.Join(c.Sinks[0].Kafka.Brokers, ","), "127.0.0.1:9092"},
		{"kafka.acks", c.Sinks[0].Kafka.Acks, "all"},
		{"kafka.mode", c.Sinks[0].Kafka.Mode, "binary"},
		{"kafka.compression", c.Sinks[0].Kafka.Compression, "none"},
		{"kafka.batch_timeout (default)", time.Duration(c.Sinks[0].Kafka.BatchTimeout), time.Duration(0)},
		{"kafka.client_id (default)", c.Sinks[0].Kafka.ClientID, "twilio-relay"},
		{"kafka.allow_auto_topic_creation", c.Sinks[0].Kafka.AllowAutoTopicCreation, false},
		{"kafka.sasl.mechanism", c.Sinks[0].Kafka.SASL.Mechanism, ""},
		{"kafka.tls.enabled", c.Sinks[0].Kafka.TLS.Enabled, false},
		{"no_route", c.NoRoute, "dead_letter"},
		{"no_route policy", c.NoRoutePolicy(), relay.NoRouteDeadLetter},
		{"dead_letter.sink", c.DeadLetter.Sink, "kafka"},
		{"dead_letter.topic", c.DeadLetter.Topic, "twilio.deadletter"},
		{"routes", len(c.Routes), 1},
		{"router routes", len(c.Router().Routes), 1},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %v (%T), want %v (%T)", ch.name, ch.got, ch.got, ch.want, ch.want)
		}
	}
	if got := c.Backoff(); got != relay.DefaultBackoff {
		t.Errorf("Backoff() = %+v, want %+v", got, relay.DefaultBackoff)
	}

	// The one shipped route sends every event to twilio.events, keyed by its resource SID.
	e := &relay.Event{Endpoint: "events", Type: "com.twilio.messaging.message.delivered", Source: "/s", ID: "EZ1",
		Data: []byte(`{"messageSid":"SM1"}`)}
	ds, err := c.Router().Route(e)
	if err != nil || len(ds) != 1 || ds[0].Sink != "kafka" || ds[0].Topic != "twilio.events" || string(ds[0].Key) != "SM1" || ds[0].Route != "all-events" {
		t.Errorf("Route = %+v, %v", ds, err)
	}
}

func TestLoadShippedConfigEnvOverrides(t *testing.T) {
	clearShippedEnv(t)
	t.Setenv("TWILIO_AUTH_TOKENS", "tok")
	t.Setenv("RELAY_LISTEN", ":18080")
	t.Setenv("RELAY_PUBLIC_URL", "https://relay.example.com/twilio/events")
	t.Setenv("KAFKA_BROKERS", "k1:9092,k2:9092")
	t.Setenv("KAFKA_COMPRESSION", "zstd")
	t.Setenv("KAFKA_AUTO_CREATE_TOPICS", "true")
	t.Setenv("KAFKA_TLS", "true")
	t.Setenv("KAFKA_SASL_MECHANISM", "scram-sha-512")
	t.Setenv("KAFKA_USERNAME", "u")
	t.Setenv("KAFKA_TOPIC", "t.{type}")
	t.Setenv("RELAY_LOG_LEVEL", "") // empty: the default applies
	c, err := Load(shippedConfig)
	if err != nil {
		t.Fatal(err)
	}
	k := c.Sinks[0].Kafka
	if c.Listen != ":18080" || c.Endpoints[0].PublicURL != "https://relay.example.com/twilio/events" ||
		!slices.Equal(k.Brokers, relay.List{"k1:9092", "k2:9092"}) || k.Compression != "zstd" ||
		!k.AllowAutoTopicCreation || !k.TLS.Enabled || k.SASL.Mechanism != "scram-sha-512" || k.SASL.Username != "u" ||
		c.Routes[0].To[0].Topic != "t.{type}" || c.Log.Level != "info" {
		t.Errorf("overrides not applied: %+v %+v", c, *k)
	}
	e := &relay.Event{Type: "com.twilio.x", Source: "s", ID: "1"}
	if ds, err := c.Router().Route(e); err != nil || len(ds) != 1 || ds[0].Topic != "t.com.twilio.x" {
		t.Errorf("Route = %+v, %v", ds, err)
	}
}

func TestLoadShippedConfigWithoutTokens(t *testing.T) {
	clearShippedEnv(t)
	c, err := Load(shippedConfig)
	if c != nil || err == nil {
		t.Fatalf("Load without TWILIO_AUTH_TOKENS = %v, %v; want an error", c, err)
	}
	var es Errors
	if !errors.As(err, &es) || len(es) != 1 {
		t.Fatalf("error %v is not Errors with one entry", err)
	}
	msg := err.Error()
	for _, want := range []string{"endpoints[0].auth_tokens[0]", "TWILIO_AUTH_TOKENS is not set", "(line 41)"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not contain %q", msg, want)
		}
	}
	// The line number in the message is the line of the reference in the file.
	data, err := os.ReadFile(shippedConfig)
	if err != nil {
		t.Fatal(err)
	}
	if line := lineOf(string(data), "${TWILIO_AUTH_TOKENS}"); line != 41 {
		t.Errorf("config.yaml moved: ${TWILIO_AUTH_TOKENS} is on line %d; update this test", line)
	}

	// Set but empty: the variable is expanded, leaving no token, which validation reports.
	t.Setenv("TWILIO_AUTH_TOKENS", " , ")
	_, err = Load(shippedConfig)
	if err == nil || !strings.Contains(err.Error(), "endpoints[0].auth_tokens: at least one auth token is required") {
		t.Errorf("Load with blank TWILIO_AUTH_TOKENS = %v", err)
	}
}

func TestLoadMissingFile(t *testing.T) {
	c, err := Load("testdata/does-not-exist.yaml")
	if c != nil || err == nil || !strings.HasPrefix(err.Error(), "config: ") || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Load(missing) = %v, %v", c, err)
	}
}

// lineOf returns the 1-based line of the first occurrence of s in text, or 0.
func lineOf(text, s string) int {
	i := strings.Index(text, s)
	if i < 0 {
		return 0
	}
	return strings.Count(text[:i], "\n") + 1
}

// minimal is the smallest valid configuration; the tests change it with with().
const minimal = `endpoints:
  - name: events
    path: /twilio/events
    public_url: https://relay.example.com/twilio/events
    auth_tokens: [tok]
sinks:
  - name: kafka
    kafka:
      brokers: ["127.0.0.1:9092"]
routes:
  - name: all
    to:
      - sink: kafka
        topic: twilio.events
dead_letter:
  sink: kafka
  topic: twilio.deadletter
`

// with applies old/new replacements to minimal, failing the test when an old text is not there (so a
// case can never silently test the unchanged file).
func with(t testing.TB, pairs ...string) string {
	t.Helper()
	s := minimal
	for i := 0; i+1 < len(pairs); i += 2 {
		if !strings.Contains(s, pairs[i]) {
			t.Fatalf("with: %q is not in the minimal configuration", pairs[i])
		}
		s = strings.Replace(s, pairs[i], pairs[i+1], 1)
	}
	return s
}

// TestDefaults: the minimal file gets every default (it sets none of these).
func TestDefaults(t *testing.T) {
	c, err := Parse([]byte(minimal), envMap(nil))
	if err != nil {
		t.Fatal(err)
	}
	k := c.Sinks[0].Kafka
	checks := []struct {
		name      string
		got, want any
	}{
		{"listen", c.Listen, ":8080"},
		{"admin.listen", c.Admin.Listen, ":9090"},
		{"log.level", c.Log.Level, "info"},
		{"log.format", c.Log.Format, "json"},
		{"request_deadline", time.Duration(c.Limits.RequestDeadline), 4 * time.Second},
		{"max_in_flight", c.Limits.MaxInFlight, 4096},
		{"max_connections", c.Limits.MaxConnections, 10_000},
		{"max_events", c.Limits.MaxEvents, 10_000},
		{"attempt_timeout", time.Duration(c.Limits.AttemptTimeout), 30 * time.Second},
		{"max_late_writes", c.Limits.MaxLateWrites, 1024},
		{"dedupe.snapshot", c.Dedupe.Snapshot, ""}, // no spool: none unless configured
		{"read_timeout", time.Duration(c.Limits.ReadTimeout), 10 * time.Second},
		{"idle_timeout", time.Duration(c.Limits.IdleTimeout), 60 * time.Second},
		{"shutdown_timeout", time.Duration(c.Limits.ShutdownTimeout), 20 * time.Second},
		{"dedupe.window", time.Duration(c.Dedupe.Window), 4 * time.Hour},
		{"dedupe.max_ids", c.Dedupe.MaxIDs, int64(1_500_000)},
		{"no_route", c.NoRoute, "dead_letter"},
		{"data", c.Endpoints[0].Data, "normalize"},
		{"max_body", c.Endpoints[0].MaxBody, relay.ByteSize(1 << 20)},
		{"reject_status", c.Endpoints[0].RejectStatus, 503},
		{"basic_auth", c.Endpoints[0].BasicAuth == nil, true},
		{"kafka.acks", k.Acks, "all"},
		{"kafka.mode", k.Mode, "binary"},
		{"kafka.compression", k.Compression, "none"},
		{"kafka.batch_timeout", time.Duration(k.BatchTimeout), time.Duration(0)},
		{"kafka.batch_size", k.BatchSize, 1000},
		{"kafka.max_message_bytes", k.MaxMessageBytes, relay.ByteSize(1 << 20)},
		{"kafka.write_timeout", time.Duration(k.WriteTimeout), 30 * time.Second},
		{"kafka.dial_timeout", time.Duration(k.DialTimeout), 3 * time.Second},
		{"kafka.client_id", k.ClientID, "twilio-relay"},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %v, want %v", ch.name, ch.got, ch.want)
		}
	}
	if c.Backoff() != relay.DefaultBackoff {
		t.Errorf("Backoff() = %+v, want %+v", c.Backoff(), relay.DefaultBackoff)
	}
}

// TestExplicitValuesKept: values in the file win over defaults.
func TestExplicitValuesKept(t *testing.T) {
	src := with(t, "endpoints:", `listen: 127.0.0.1:18080
admin: {listen: "127.0.0.1:19090", pprof: true, allowed_hosts: ["relay-admin.ops.svc, relay-admin"]}
log: {level: debug, format: text}
limits: {request_deadline: 4999ms, max_in_flight: 7, max_connections: 8, max_events: 9, read_timeout: 1s, idle_timeout: 2s, shutdown_timeout: 3s, attempt_timeout: 6s, max_late_writes: 11}
retry: {initial: 10ms, max: 20ms, multiplier: 1.5}
dedupe: {window: 1h, max_ids: 10, snapshot: /var/lib/relay/ids}
no_route: drop
endpoints:`,
		"auth_tokens: [tok]", `auth_tokens: [tok]
    basic_auth: {username: u, password: p}
    allowed_cidrs: ["35.90.102.128/25"]
    client_ip_header: X-Forwarded-For
    trusted_proxies: ["10.0.0.0/8, 192.168.1.1"]
    max_body: 512KiB
    data: keep
    reject_status: 401`,
		`brokers: ["127.0.0.1:9092"]`, `brokers: ["127.0.0.1:9092"]
      acks: one
      mode: structured
      compression: gzip
      batch_timeout: 5ms
      batch_size: 5`)
	c, err := Parse([]byte(src), envMap(nil))
	if err != nil {
		t.Fatal(err)
	}
	ep, k := c.Endpoints[0], c.Sinks[0].Kafka
	checks := []struct {
		name      string
		got, want any
	}{
		{"listen", c.Listen, "127.0.0.1:18080"},
		{"admin.pprof", c.Admin.Pprof, true},
		{"admin.allowed_hosts", strings.Join(c.Admin.AllowedHosts, " "), "relay-admin.ops.svc relay-admin"},
		{"log.level", c.Log.Level, "debug"},
		{"request_deadline", time.Duration(c.Limits.RequestDeadline), 4999 * time.Millisecond},
		{"max_in_flight", c.Limits.MaxInFlight, 7},
		{"max_connections", c.Limits.MaxConnections, 8},
		{"max_events", c.Limits.MaxEvents, 9},
		{"attempt_timeout", time.Duration(c.Limits.AttemptTimeout), 6 * time.Second},
		{"max_late_writes", c.Limits.MaxLateWrites, 11},
		{"dedupe.snapshot", c.Dedupe.Snapshot, "/var/lib/relay/ids"},
		{"retry", c.Backoff(), relay.Backoff{Initial: 10 * time.Millisecond, Max: 20 * time.Millisecond, Multiplier: 1.5}},
		{"dedupe.window", time.Duration(c.Dedupe.Window), time.Hour},
		{"no_route policy", c.NoRoutePolicy(), relay.NoRouteDrop},
		{"basic_auth", *ep.BasicAuth, BasicAuth{Username: "u", Password: "p"}},
		{"max_body", ep.MaxBody, relay.ByteSize(512 << 10)},
		{"data", ep.Data, "keep"},
		{"reject_status", ep.RejectStatus, 401},
		{"trusted_proxies", prefixes(ep.TrustedProxies), "10.0.0.0/8|192.168.1.1/32"},
		{"kafka.acks", k.Acks, "one"},
		{"kafka.mode", k.Mode, "structured"},
		{"kafka.compression", k.Compression, "gzip"},
		{"kafka.batch_timeout", time.Duration(k.BatchTimeout), 5 * time.Millisecond},
		{"kafka.batch_size", k.BatchSize, 5},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %v, want %v", ch.name, ch.got, ch.want)
		}
	}
}

// TestRouterCompiled: routes with conditions compile into a relay.Router that routes events as written.
func TestRouterCompiled(t *testing.T) {
	src := with(t, `routes:
  - name: all
    to:
      - sink: kafka
        topic: twilio.events
`, `routes:
  - name: messaging-final
    match:
      types: ["com.twilio.messaging.message.*"]
      endpoints: [events]
      when:
        - {field: data.messageStatus, in: [DELIVERED, UNDELIVERED, FAILED]}
        - {field: data.messagingServiceSid, exists: true}
    to:
      - {sink: kafka, topic: "twilio.{type}"}
      - {sink: audit, topic: audit, key: "{data.accountSid}"}
    continue: true
  - name: errors
    match:
      sources: ["/v1/Accounts/*/ErrorLogs"]
      schema_versions: [1]
      when:
        - {field: data.level, equals: ERROR}
        - {field: data.product, glob: "Mess*"}
    to: [{sink: kafka, topic: twilio.errors, key: "{data.error_code}"}]
`, "sinks:\n", `sinks:
  - name: audit
    kafka: {brokers: ["127.0.0.1:9093"]}
`)
	c, err := Parse([]byte(src), envMap(nil))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Router().Routes) != 2 || c.Router().Routes[0].Name != "messaging-final" || !c.Router().Routes[0].Continue || c.Router().Routes[1].Continue {
		t.Fatalf("Router = %+v", c.Router())
	}
	msg := func(status string) *relay.Event {
		return &relay.Event{Endpoint: "events", Type: "com.twilio.messaging.message.delivered", Source: "/2010-04-01/Accounts/AC1/Messages/SM1.json", ID: "EZ1",
			DataSchema: "https://events-schemas.twilio.com/Messaging.MessageStatus/5",
			Data:       []byte(`{"accountSid":"AC1","messageSid":"SM1","messagingServiceSid":"MG1","messageStatus":"` + status + `"}`)}
	}
	errEv := func(level, product string) *relay.Event {
		return &relay.Event{Endpoint: "events", Type: "com.twilio.error-logs.error.logged", Source: "/v1/Accounts/AC1/ErrorLogs", ID: "NO1",
			DataSchema: "https://events-schemas.twilio.com/ErrorLogs.Error/1",
			Data:       []byte(`{"sid":"NO1","error_code":30008,"level":"` + level + `","product":"` + product + `"}`)}
	}
	type d struct{ route, sink, topic, key string }
	tests := []struct {
		name string
		ev   *relay.Event
		want []d
	}{
		{"delivered message goes to both targets", msg("DELIVERED"), []d{
			{"messaging-final", "kafka", "twilio.com.twilio.messaging.message.delivered", "SM1"},
			{"messaging-final", "audit", "audit", "AC1"},
		}},
		{"sent message matches no condition", msg("SENT"), nil},
		{"message from another endpoint", func() *relay.Event { e := msg("FAILED"); e.Endpoint = "other"; return e }(), nil},
		{"message without a messaging service", func() *relay.Event {
			e := msg("FAILED")
			e.Data = []byte(`{"accountSid":"AC1","messageSid":"SM1","messageStatus":"FAILED"}`)
			return e
		}(), nil},
		{"messaging error", errEv("ERROR", "Messaging"), []d{{"errors", "kafka", "twilio.errors", "30008"}}},
		{"warning", errEv("WARNING", "Messaging"), nil},
		{"voice error", errEv("ERROR", "Voice"), nil},
		{"error with another schema version", func() *relay.Event {
			e := errEv("ERROR", "Messaging")
			e.DataSchema = "https://events-schemas.twilio.com/ErrorLogs.Error/2"
			return e
		}(), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ds, err := c.Router().Route(tt.ev)
			if err != nil {
				t.Fatal(err)
			}
			var got []d
			for _, x := range ds {
				got = append(got, d{x.Route, x.Sink, x.Topic, string(x.Key)})
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("deliveries = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// prefixes writes a decoded list of prefixes as "a|b".
func prefixes(ps Prefixes) string {
	var s []string
	for _, p := range ps.List() {
		s = append(s, p.String())
	}
	return strings.Join(s, "|")
}

// TestPrefixes decodes allowed_cidrs the way Parse does: entries split, each parsed once; an entry that is
// not a prefix is kept for validation, which names the first.
func TestPrefixes(t *testing.T) {
	tests := []struct {
		in      string
		want    string
		invalid string
	}{
		{`[]`, "", ""},
		{`["35.90.102.128/25"]`, "35.90.102.128/25", ""},
		{`["35.90.102.200/25"]`, "35.90.102.128/25", ""}, // masked
		{`["10.0.0.1"]`, "10.0.0.1/32", ""},
		{`["::ffff:10.0.0.1"]`, "10.0.0.1/32", ""}, // unmapped
		{`["2001:db8::1"]`, "2001:db8::1/128", ""},
		{`["10.0.0.0/8, 192.168.0.0/16", "fd00::/8"]`, "10.0.0.0/8|192.168.0.0/16|fd00::/8", ""},
		{`["10.0.0.0/33"]`, "", "10.0.0.0/33"},
		{`["ok.example.com"]`, "", "ok.example.com"},
		{`["10.0.0.0/8,nope", "x"]`, "10.0.0.0/8", "nope"},
	}
	for _, tt := range tests {
		var got struct {
			P Prefixes `yaml:"p"`
		}
		if err := yaml.Unmarshal([]byte("p: "+tt.in), &got); err != nil {
			t.Fatalf("%s: %v", tt.in, err)
		}
		invalid, _ := got.P.invalid()
		if prefixes(got.P) != tt.want || invalid != tt.invalid {
			t.Errorf("%s: prefixes %q, invalid %q; want %q, %q", tt.in, prefixes(got.P), invalid, tt.want, tt.invalid)
		}
	}
}

func TestExpand(t *testing.T) {
	env := envMap(map[string]string{"A": "a", "EMPTY": "", "DOLLAR": "$x"})
	tests := []struct {
		in, want, err string
	}{
		{"plain", "plain", ""},
		{"${A}", "a", ""},
		{"x${A}y${A}z", "xayaz", ""},
		{"${A:-d}", "a", ""},
		{"${UNSET:-d}", "d", ""},
		{"${EMPTY:-d}", "d", ""}, // set but empty: the default
		{"${EMPTY}", "", ""},     // set but empty, no default: empty
		{"${UNSET:-}", "", ""},   // empty default
		{"${UNSET:-a:-b}", "a:-b", ""},
		{"$$", "$", ""},
		{"pa$$word", "pa$word", ""},
		{"$${A}", "${A}", ""}, // escaped: not expanded
		{"$A", "$A", ""},      // only ${} expands
		{"cost: 5$", "cost: 5$", ""},
		{"${DOLLAR}", "$x", ""}, // values are not expanded again
		{"${UNSET}", "", "environment variable UNSET is not set"},
		{"${A", "", "unclosed ${"},
		{"${}", "", "environment variable  is not set"},
	}
	for _, tt := range tests {
		got, err := expand(tt.in, env)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("expand(%q) = %q, %v; want error %q", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("expand(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestErrorsFormat(t *testing.T) {
	es := Errors{errors.New("a: one"), errors.New("b: two")}
	want := "2 problem(s) in the configuration:\n  - a: one\n  - b: two"
	if es.Error() != want {
		t.Errorf("Errors.Error() = %q, want %q", es.Error(), want)
	}
}

// TestEnvSecretsStayVerbatim: an expanded value that YAML would read as null, a number or a boolean
// reaches a string field exactly as the environment holds it.
func TestEnvSecretsStayVerbatim(t *testing.T) {
	for _, pw := range []string{"null", "~", "NULL", "true", "123", "0x1F", "1e3", "yes", "a: b", "#x"} {
		env := func(k string) (string, bool) {
			if k == "P" {
				return pw, true
			}
			return "", false
		}
		y := "endpoints:\n  - name: e\n    path: /e\n    public_url: https://x/e\n    auth_tokens: [t]\n" +
			"    basic_auth:\n      username: u\n      password: ${P}\n" +
			"sinks:\n  - name: k\n    kafka: { brokers: [ 'a:1' ] }\ndead_letter: { sink: k, topic: d }\n"
		c, err := Parse([]byte(y), env)
		if err != nil {
			t.Errorf("password %q: %v", pw, err)
			continue
		}
		if got := c.Endpoints[0].BasicAuth.Password; got != pw {
			t.Errorf("password %q became %q", pw, got)
		}
	}
}

// TestDedupeSnapshotDefault: with the spool on, the dedupe snapshot goes in its directory unless set.
func TestDedupeSnapshotDefault(t *testing.T) {
	spooled := with(t, "dead_letter:", "spool: {dir: /var/spool/relay, sinks: [kafka]}\ndead_letter:")
	for _, tc := range []struct{ name, src, want string }{
		{"spool", spooled, "/var/spool/relay/dedupe.snapshot"},
		{"spool and a path", strings.Replace(spooled, "spool:", "dedupe: {snapshot: /data/ids}\nspool:", 1), "/data/ids"},
		{"no spool", minimal, ""},
	} {
		c, err := Parse([]byte(tc.src), envMap(nil))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if c.Dedupe.Snapshot != tc.want {
			t.Errorf("%s: dedupe.snapshot = %q, want %q", tc.name, c.Dedupe.Snapshot, tc.want)
		}
	}
}
