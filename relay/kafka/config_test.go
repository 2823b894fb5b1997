package kafka_test

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/relaykit/twilio-relay/relay"
	"github.com/relaykit/twilio-relay/relay/kafka"
	"go.yaml.in/yaml/v3"
)

func TestConfigDefaults(t *testing.T) {
	t.Parallel()
	got := kafka.Config{Brokers: []string{"k:9092"}}.Defaults()
	want := kafka.Config{
		Brokers:         []string{"k:9092"},
		ClientID:        "twilio-relay",
		Acks:            "all",
		Mode:            "binary",
		Compression:     "none",
		BatchSize:       1000, // BatchTimeout 0: an idle partition sends at once
		MaxMessageBytes: 1 << 20,
		WriteTimeout:    relay.Duration(30 * time.Second),
		DialTimeout:     relay.Duration(3 * time.Second),
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Defaults:\n got %+v\nwant %+v", got, want)
	}
	if errs := got.Validate(); len(errs) != 0 {
		t.Errorf("defaults do not validate: %v", errs)
	}

	// Set values are kept.
	set := kafka.Config{
		Brokers: []string{"k:9092"}, ClientID: "me", Acks: "one", Mode: "structured", Compression: "zstd",
		BatchTimeout: relay.Duration(time.Second), BatchSize: 7, MaxMessageBytes: 2048,
		WriteTimeout: relay.Duration(time.Second), DialTimeout: relay.Duration(time.Second),
	}
	if got := set.Defaults(); !reflect.DeepEqual(got, set) {
		t.Errorf("Defaults changed set values:\n got %+v\nwant %+v", got, set)
	}
}

// TestConfigBrokersDecoded: brokers arrive split as they are decoded, so that one environment variable
// can carry the list.
func TestConfigBrokersDecoded(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{`[]`, nil},
		{`["a:1"]`, []string{"a:1"}},
		{`["a:1, b:2"]`, []string{"a:1", "b:2"}},
		{`[" a:1 ,,b:2,", "", " ", "c:3"]`, []string{"a:1", "b:2", "c:3"}},
	} {
		var c kafka.Config
		if err := yaml.Unmarshal([]byte("brokers: "+tc.in), &c); err != nil {
			t.Fatalf("%s: %v", tc.in, err)
		}
		if got := []string(c.Brokers); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("brokers %s = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		change func(*kafka.Config)
		want   []string // error prefixes (field names), in order; nil: valid
	}{
		{"defaults", func(*kafka.Config) {}, nil},
		{"broker list in one entry", func(c *kafka.Config) { c.Brokers = []string{"a:1, b:2"} }, nil},
		{"ipv6 broker", func(c *kafka.Config) { c.Brokers = []string{"[::1]:9092"} }, nil},
		{"every accepted value", func(c *kafka.Config) {
			c.Acks, c.Mode, c.Compression = "-1", "structured", "lz4"
			c.BatchTimeout, c.BatchSize, c.MaxMessageBytes = relay.Duration(time.Second), 1, 1024
			c.SASL = kafka.SASLConfig{Mechanism: "scram-sha-512", Username: "u"}
			c.TLS = kafka.TLSConfig{Enabled: true, CertFile: "c.pem", KeyFile: "k.pem"}
		}, nil},
		{"no brokers", func(c *kafka.Config) { c.Brokers = nil }, []string{"brokers: at least one"}},
		{"only blanks", func(c *kafka.Config) { c.Brokers = relay.ParseList(" , ") }, []string{"brokers: at least one"}},
		{"no port", func(c *kafka.Config) { c.Brokers = []string{"kafka"} }, []string{`brokers: "kafka" is not host:port`}},
		{"no host", func(c *kafka.Config) { c.Brokers = []string{":9092"} }, []string{`brokers: ":9092" is not host:port`}},
		{"empty port", func(c *kafka.Config) { c.Brokers = relay.ParseList("a:1,kafka:") }, []string{`brokers: "kafka:" is not host:port`}},
		{"acks", func(c *kafka.Config) { c.Acks = "two" }, []string{"acks:"}},
		{"mode", func(c *kafka.Config) { c.Mode = "json" }, []string{"mode:"}},
		{"compression", func(c *kafka.Config) { c.Compression = "brotli" }, []string{"compression:"}},
		{"negative batch_timeout", func(c *kafka.Config) { c.BatchTimeout = relay.Duration(-time.Millisecond) }, []string{"batch_timeout:"}},
		{"batch_timeout over 1s", func(c *kafka.Config) { c.BatchTimeout = relay.Duration(time.Second + 1) }, []string{"batch_timeout:"}},
		{"batch_size", func(c *kafka.Config) { c.BatchSize = -1 }, []string{"batch_size:"}},
		{"max_message_bytes", func(c *kafka.Config) { c.MaxMessageBytes = 1023 }, []string{"max_message_bytes:"}},
		{"sasl mechanism", func(c *kafka.Config) { c.SASL.Mechanism = "gssapi" }, []string{"sasl.mechanism:"}},
		{"sasl mechanism case", func(c *kafka.Config) { c.SASL = kafka.SASLConfig{Mechanism: "PLAIN", Username: "u"} }, []string{"sasl.mechanism:"}},
		{"sasl username", func(c *kafka.Config) { c.SASL.Mechanism = "plain" }, []string{"sasl.username:"}},
		{"tls cert without key", func(c *kafka.Config) { c.TLS.CertFile = "c.pem" }, []string{"tls:"}},
		{"tls key without cert", func(c *kafka.Config) { c.TLS.KeyFile = "k.pem" }, []string{"tls:"}},
		{"every error at once", func(c *kafka.Config) {
			*c = kafka.Config{Brokers: []string{"x"}, Acks: "x", Mode: "x", Compression: "x",
				BatchTimeout: -1, BatchSize: -1, MaxMessageBytes: 1,
				SASL: kafka.SASLConfig{Mechanism: "x"}, TLS: kafka.TLSConfig{CertFile: "x"}}
		}, []string{"brokers:", "acks:", "mode:", "compression:", "batch_timeout:", "batch_size:", "max_message_bytes:", "sasl.mechanism:", "tls:"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := kafka.Config{Brokers: []string{"k:9092"}}.Defaults()
			tc.change(&c)
			errs := c.Validate()
			if len(errs) != len(tc.want) {
				t.Fatalf("Validate() = %v, want %d errors %q", errs, len(tc.want), tc.want)
			}
			for i, err := range errs {
				if !strings.HasPrefix(err.Error(), tc.want[i]) {
					t.Errorf("error %d = %q, want prefix %q", i, err, tc.want[i])
				}
			}
		})
	}
}

// TestNew checks that New builds a sink from a configuration with its defaults (as package config passes
// it), reads the TLS files, and refuses what it cannot build, without a broker.
func TestNew(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	def := func(c kafka.Config) kafka.Config { return c.Defaults() }
	for _, tc := range []struct {
		name string
		cfg  kafka.Config
		want string // substring of the error; "" for success
	}{
		{"defaults", def(kafka.Config{Brokers: []string{"127.0.0.1:1"}}), ""},
		{"every sasl mechanism", def(kafka.Config{Brokers: []string{"127.0.0.1:1"}, SASL: kafka.SASLConfig{Mechanism: "scram-sha-256", Username: "u", Password: "p"}}), ""},
		{"acks it cannot set", def(kafka.Config{Brokers: []string{"127.0.0.1:1"}, Acks: "x"}), "kafka sink s: acks:"},
		{"without defaults", kafka.Config{Brokers: []string{"127.0.0.1:1"}}, "kafka sink s: acks:"},
		{"missing ca file", def(kafka.Config{Brokers: []string{"k:1"}, TLS: kafka.TLSConfig{Enabled: true, CAFile: filepath.Join(dir, "missing.pem")}}), "tls.ca_file"},
		{"ca file without pem", def(kafka.Config{Brokers: []string{"k:1"}, TLS: kafka.TLSConfig{Enabled: true, CAFile: notPEM}}), "holds no PEM certificate"},
		{"bad client certificate", def(kafka.Config{Brokers: []string{"k:1"}, TLS: kafka.TLSConfig{Enabled: true, CertFile: notPEM, KeyFile: notPEM}}), "client certificate"},
		{"tls files ignored when tls is off", def(kafka.Config{Brokers: []string{"k:1"}, TLS: kafka.TLSConfig{CAFile: filepath.Join(dir, "missing.pem")}}), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := kafka.New("s", tc.cfg, log)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("New: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("New: error %v, want one containing %q", err, tc.want)
			}
			if s != nil {
				if err := s.Close(t.Context()); err != nil {
					t.Errorf("Close of an unused sink: %v", err)
				}
			}
		})
	}
}
