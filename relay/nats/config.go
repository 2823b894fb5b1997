package nats

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/relaykit/twilio-relay/relay"
)

// Config configures a NATS JetStream sink. The zero values of optional fields take the defaults in
// Defaults.
type Config struct {
	// URLs are the servers (nats://, tls://, ws:// or wss://). An entry may hold several,
	// comma-separated, so that one environment variable can carry the whole list.
	URLs relay.List `yaml:"urls"`
	// Credentials: at most one of username/password, token and creds_file (a JWT + NKey seed file).
	Username  string `yaml:"username"`
	Password  string `yaml:"password"`
	Token     string `yaml:"token"`
	CredsFile string `yaml:"creds_file"`
	// Stream, when set, is the stream the subjects are expected to land in: Ping checks that it exists.
	Stream string `yaml:"stream"`
	// Mode is the CloudEvents NATS binding mode: "binary" (default; attributes in ce-* headers, data
	// as the payload) or "structured" (the whole event as application/cloudevents+json).
	Mode string `yaml:"mode"`
	// Timeout bounds the wait for JetStream's acknowledgement of a publish, and Ping.
	Timeout relay.Duration `yaml:"timeout"`
	// ConnectTimeout bounds one attempt to connect to a server.
	ConnectTimeout relay.Duration `yaml:"connect_timeout"`
	// MaxPending bounds the publishes awaiting an acknowledgement, across all writes; a publish over it
	// waits up to 200ms for room, then fails (transient).
	MaxPending int `yaml:"max_pending"`
}

// Defaults returns c with defaults filled in.
func (c Config) Defaults() Config {
	if c.Mode == "" {
		c.Mode = "binary"
	}
	if c.Timeout == 0 {
		c.Timeout = relay.Duration(5 * time.Second)
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = relay.Duration(2 * time.Second)
	}
	if c.MaxPending == 0 {
		c.MaxPending = 4096
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
	if len(c.URLs) == 0 {
		bad("urls", "at least one server URL is required")
	}
	for _, s := range c.URLs {
		u, err := url.Parse(s)
		if err != nil || u.Host == "" {
			bad("urls", "%q is not a URL such as nats://host:4222", s)
			continue
		}
		switch u.Scheme {
		case "nats", "tls", "ws", "wss":
		default:
			bad("urls", "%q: scheme %q is not nats, tls, ws or wss", s, u.Scheme)
		}
	}
	creds := 0
	for _, set := range []bool{c.Username != "" || c.Password != "", c.Token != "", c.CredsFile != ""} {
		if set {
			creds++
		}
	}
	if creds > 1 {
		bad("username", "set at most one of username/password, token and creds_file")
	}
	if (c.Username == "") != (c.Password == "") {
		bad("username", "username and password go together")
	}
	if c.Stream != "" && strings.ContainsAny(c.Stream, ".*> \t\r\n/\\") {
		bad("stream", "%q is not a stream name (no '.', '*', '>', '/', '\\' or white space)", c.Stream)
	}
	if c.Mode != "binary" && c.Mode != "structured" {
		bad("mode", "%q is not binary or structured", c.Mode)
	}
	if c.Timeout <= 0 {
		bad("timeout", "must be above 0")
	}
	if c.ConnectTimeout <= 0 {
		bad("connect_timeout", "must be above 0")
	}
	if c.MaxPending < 1 {
		bad("max_pending", "must be at least 1")
	}
	return errs
}

// auth returns the connection options of the configured credentials.
func (c Config) auth() []natsgo.Option {
	switch {
	case c.Username != "":
		return []natsgo.Option{natsgo.UserInfo(c.Username, c.Password)}
	case c.Token != "":
		return []natsgo.Option{natsgo.Token(c.Token)}
	case c.CredsFile != "":
		return []natsgo.Option{natsgo.UserCredentials(c.CredsFile)}
	}
	return nil
}
