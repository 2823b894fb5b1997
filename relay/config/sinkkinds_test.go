package config

import (
	"strings"
	"testing"
	"time"
)

// sinkKindsConfig is minimal with the kafka sink replaced by the given sink body (indented under
// "  - name: out").
func sinkKindsConfig(t *testing.T, body string) string {
	t.Helper()
	return with(t,
		"  - name: kafka\n    kafka:\n      brokers: [\"127.0.0.1:9092\"]\n", "  - name: out\n"+body,
		"      - sink: kafka\n", "      - sink: out\n",
		"  sink: kafka\n", "  sink: out\n")
}

// TestHTTPNATSRedisSinks: each new kind parses with every key, strictly, and keeps its values.
func TestHTTPNATSRedisSinks(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		check      func(t *testing.T, s Sink)
	}{
		{"http", `    http:
      url: https://hooks.example.com/twilio
      mode: structured
      secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
      timeout: 2s
      headers: { Authorization: "Bearer ${TOKEN}" }
      max_concurrency: 4
      health_url: https://hooks.example.com/health
      tls: { ca_file: /etc/ca.pem, insecure_skip_verify: false }
`, func(t *testing.T, s Sink) {
			h := s.HTTP
			if h == nil || h.URL != "https://hooks.example.com/twilio" || h.Mode != "structured" || h.MaxConcurrency != 4 ||
				time.Duration(h.Timeout) != 2*time.Second || h.Headers["Authorization"] != "Bearer t0k" || h.TLS.CAFile != "/etc/ca.pem" {
				t.Errorf("http: %+v", h)
			}
		}},
		{"nats", `    nats:
      urls: ["nats://a:4222,nats://b:4222"]
      username: relay
      password: p
      stream: TWILIO
      mode: binary
      timeout: 3s
      connect_timeout: 1s
      max_pending: 100
`, func(t *testing.T, s Sink) {
			n := s.NATS
			if n == nil || len(n.URLs) != 2 || n.Stream != "TWILIO" || n.MaxPending != 100 || time.Duration(n.Timeout) != 3*time.Second {
				t.Errorf("nats: %+v", n)
			}
		}},
		{"redis", `    redis:
      addr: redis:6379
      username: relay
      password: p
      db: 2
      tls: { enabled: true, server_name: redis }
      max_len: 5000
      timeout: 1s
`, func(t *testing.T, s Sink) {
			r := s.Redis
			if r == nil || r.Addr != "redis:6379" || r.DB != 2 || r.MaxLen != 5000 || !r.TLS.Enabled || time.Duration(r.Timeout) != time.Second {
				t.Errorf("redis: %+v", r)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(sinkKindsConfig(t, tc.body)), envMap(map[string]string{"TOKEN": "t0k"}))
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, c.Sinks[0])
		})
	}
}

// TestHTTPNATSRedisSinkErrors: problems are reported with their paths, all at once.
func TestHTTPNATSRedisSinkErrors(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		want       []string
	}{
		{"http unknown key", "    http:\n      url: https://h/x\n      retries: 3\n", []string{"sinks[0].http.retries (line"}},
		{"http bad values", "    http:\n      url: /relative\n      mode: batch\n      secret: nope\n",
			[]string{"sinks[0].http: url:", "sinks[0].http: mode:", "sinks[0].http: secret:"}},
		{"http defaults make the minimum valid", "    http:\n      url: https://h/x\n      max_concurrency: -1\n", []string{"sinks[0].http: max_concurrency"}},
		{"nats no urls", "    nats:\n      stream: TWILIO\n", []string{"sinks[0].nats: urls:"}},
		{"nats two credentials", "    nats:\n      urls: [nats://a:4222]\n      token: t\n      creds_file: /x\n", []string{"sinks[0].nats: username: set at most one"}},
		{"redis bad addr", "    redis:\n      addr: redis\n      max_len: -1\n", []string{"sinks[0].redis: addr:", "sinks[0].redis: max_len:"}},
		{"two kinds", "    http:\n      url: https://h/x\n    redis:\n      addr: r:6379\n", []string{"sinks[0]: set exactly one sink kind (kafka, file, http, nats, redis); 2 are set"}},
		{"no kind", "", []string{"sinks[0]: set exactly one sink kind (kafka, file, http, nats, redis); 0 are set"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(sinkKindsConfig(t, tc.body)), envMap(nil))
			if err == nil {
				t.Fatal("Parse succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not contain %q:\n%v", w, err)
				}
			}
		})
	}
}

// TestHTTPNATSRedisDefaultsValid: a sink with only its required keys is valid (the defaults fill the
// rest before validation).
func TestHTTPNATSRedisDefaultsValid(t *testing.T) {
	for _, body := range []string{
		"    http:\n      url: https://h/x\n",
		"    nats:\n      urls: [nats://n:4222]\n",
		"    redis:\n      addr: r:6379\n",
	} {
		if _, err := Parse([]byte(sinkKindsConfig(t, body)), envMap(nil)); err != nil {
			t.Errorf("%s: %v", body, err)
		}
	}
}
