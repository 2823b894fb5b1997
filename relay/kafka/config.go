package kafka

import (
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/relaykit/twilio-relay/relay"
	"github.com/relaykit/twilio-relay/relay/tlsconfig"
	kafkago "github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/compress"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"
)

// Config configures a Kafka sink. The zero values of optional fields take the defaults in Defaults.
type Config struct {
	// Brokers are the bootstrap brokers, host:port. An entry may hold several, comma-separated, so that
	// one environment variable can carry the whole list.
	Brokers  relay.List `yaml:"brokers"`
	ClientID string     `yaml:"client_id"`
	// Acks is how many replicas must acknowledge a write: "all" (default), "one" or "none".
	Acks string `yaml:"acks"`
	// Mode is the CloudEvents Kafka binding mode: "binary" (default; attributes in ce_* headers, data as
	// the value) or "structured" (the whole event as application/cloudevents+json).
	Mode string `yaml:"mode"`
	// Compression is "none" (default), "gzip", "snappy", "lz4" or "zstd".
	Compression string `yaml:"compression"`
	// BatchTimeout is how long an idle partition waits for more messages before it sends (0, the
	// default: at once; messages that arrive while a request is in flight go in the next); see
	// docs/kafka.md.
	BatchTimeout relay.Duration `yaml:"batch_timeout"`
	// BatchSize is the most messages in one produce request.
	BatchSize int `yaml:"batch_size"`
	// MaxMessageBytes is the largest message the sink sends; a larger one is dead-lettered.
	MaxMessageBytes relay.ByteSize `yaml:"max_message_bytes"`
	WriteTimeout    relay.Duration `yaml:"write_timeout"`
	DialTimeout     relay.Duration `yaml:"dial_timeout"`
	// AllowAutoTopicCreation lets a write to a missing topic create it (the broker must allow it too).
	AllowAutoTopicCreation bool       `yaml:"allow_auto_topic_creation"`
	TLS                    TLSConfig  `yaml:"tls"`
	SASL                   SASLConfig `yaml:"sasl"`
}

// TLSConfig configures TLS to the brokers.
type TLSConfig struct {
	Enabled            bool   `yaml:"enabled"`
	CAFile             string `yaml:"ca_file"`
	CertFile           string `yaml:"cert_file"`
	KeyFile            string `yaml:"key_file"`
	ServerName         string `yaml:"server_name"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
}

// SASLConfig configures SASL authentication: Mechanism is "" (none), "plain", "scram-sha-256" or
// "scram-sha-512".
type SASLConfig struct {
	Mechanism string `yaml:"mechanism"`
	Username  string `yaml:"username"`
	Password  string `yaml:"password"`
}

// Defaults returns c with defaults filled in.
func (c Config) Defaults() Config {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&c.ClientID, "twilio-relay")
	def(&c.Acks, "all")
	def(&c.Mode, "binary")
	def(&c.Compression, "none")
	if c.BatchSize == 0 {
		c.BatchSize = 1000
	}
	if c.MaxMessageBytes == 0 {
		c.MaxMessageBytes = 1 << 20
	}
	if c.WriteTimeout == 0 {
		// The Java producer's request.timeout.ms. kafka-go asks the broker to wait half of it for the
		// replicas' acks; a shorter wait turns a leader that appended but lacks replicas for a moment
		// into a failure, whose retry is a duplicate (docs/kafka.md).
		c.WriteTimeout = relay.Duration(30 * time.Second)
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = relay.Duration(3 * time.Second)
	}
	return c
}

// Validate reports every problem with c (after Defaults), each naming its field. It touches no file
// and no network.
func (c Config) Validate() []error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if len(c.Brokers) == 0 {
		bad("brokers", "at least one broker is required")
	}
	for _, b := range c.Brokers {
		if i := strings.LastIndexByte(b, ':'); i <= 0 || i == len(b)-1 {
			bad("brokers", "%q is not host:port", b)
		}
	}
	if _, err := parseAcks(c.Acks); err != nil {
		bad("acks", "%v", err)
	}
	if c.Mode != "binary" && c.Mode != "structured" {
		bad("mode", "%q is not binary or structured", c.Mode)
	}
	if _, err := parseCompression(c.Compression); err != nil {
		bad("compression", "%v", err)
	}
	if c.BatchTimeout < 0 || time.Duration(c.BatchTimeout) > time.Second {
		bad("batch_timeout", "%s is outside 0..1s (a write to an idle partition waits up to this long)", time.Duration(c.BatchTimeout))
	}
	if c.BatchSize < 1 {
		bad("batch_size", "must be at least 1")
	}
	if c.MaxMessageBytes < 1024 {
		bad("max_message_bytes", "must be at least 1KiB")
	}
	switch c.SASL.Mechanism {
	case "":
	case "plain", "scram-sha-256", "scram-sha-512":
		if c.SASL.Username == "" {
			bad("sasl.username", "required with mechanism %s", c.SASL.Mechanism)
		}
	default:
		bad("sasl.mechanism", "%q is not plain, scram-sha-256 or scram-sha-512", c.SASL.Mechanism)
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		bad("tls", "cert_file and key_file go together")
	}
	return errs
}

func parseAcks(s string) (kafkago.RequiredAcks, error) {
	switch s {
	case "all", "-1":
		return kafkago.RequireAll, nil
	case "one", "1":
		return kafkago.RequireOne, nil
	case "none", "0":
		return kafkago.RequireNone, nil
	}
	return 0, fmt.Errorf("%q is not all, one or none", s)
}

func parseCompression(s string) (compress.Compression, error) {
	switch s {
	case "none", "":
		return 0, nil
	case "gzip":
		return kafkago.Gzip, nil
	case "snappy":
		return kafkago.Snappy, nil
	case "lz4":
		return kafkago.Lz4, nil
	case "zstd":
		return kafkago.Zstd, nil
	}
	return 0, fmt.Errorf("%q is not none, gzip, snappy, lz4 or zstd", s)
}

// tlsConfig reads the certificate files; nil when TLS is off.
func (c TLSConfig) tlsConfig() (*tls.Config, error) {
	if !c.Enabled {
		return nil, nil
	}
	return tlsconfig.Files{CAFile: c.CAFile, CertFile: c.CertFile, KeyFile: c.KeyFile, ServerName: c.ServerName,
		InsecureSkipVerify: c.InsecureSkipVerify}.Client()
}

func (c SASLConfig) mechanism() (sasl.Mechanism, error) {
	switch c.Mechanism {
	case "":
		return nil, nil
	case "plain":
		return plain.Mechanism{Username: c.Username, Password: c.Password}, nil
	case "scram-sha-256":
		return scram.Mechanism(scram.SHA256, c.Username, c.Password)
	case "scram-sha-512":
		return scram.Mechanism(scram.SHA512, c.Username, c.Password)
	}
	return nil, errors.New("sasl.mechanism: unknown")
}
