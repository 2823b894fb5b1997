package redis

import (
	"crypto/tls"
	"fmt"
	"net"
	"time"

	"github.com/relaykit/twilio-relay/relay"
	"github.com/relaykit/twilio-relay/relay/tlsconfig"
)

// Config configures a Redis Streams sink. The zero values of optional fields take the defaults in
// Defaults.
type Config struct {
	// Addr is the server, host:port.
	Addr string `yaml:"addr"`
	// Username and Password authenticate (AUTH; Username only with Redis 6 ACLs).
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// DB is the database number (SELECT).
	DB  int       `yaml:"db"`
	TLS TLSConfig `yaml:"tls"`
	// MaxLen caps each stream near this many entries: XADD … MAXLEN ~ max_len trims whole macro
	// nodes, so a stream may hold somewhat more.
	MaxLen int64 `yaml:"max_len"`
	// Timeout bounds one write's round trip, the dial and Ping.
	Timeout relay.Duration `yaml:"timeout"`
}

// TLSConfig configures TLS to the server.
type TLSConfig struct {
	Enabled    bool   `yaml:"enabled"`
	CAFile     string `yaml:"ca_file"`
	ServerName string `yaml:"server_name"`
	// InsecureSkipVerify turns certificate verification off: opt-in, for tests only.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

// Defaults returns c with defaults filled in.
func (c Config) Defaults() Config {
	if c.MaxLen == 0 {
		c.MaxLen = 1_000_000
	}
	if c.Timeout == 0 {
		c.Timeout = relay.Duration(5 * time.Second)
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
	if host, port, err := net.SplitHostPort(c.Addr); err != nil || host == "" || port == "" {
		bad("addr", "%q is not host:port", c.Addr)
	}
	if c.Username != "" && c.Password == "" {
		bad("password", "required with username")
	}
	if c.DB < 0 {
		bad("db", "must be 0 or more")
	}
	if c.MaxLen < 1 {
		bad("max_len", "must be at least 1")
	}
	if c.Timeout <= 0 {
		bad("timeout", "must be above 0")
	}
	if !c.TLS.Enabled && (c.TLS.CAFile != "" || c.TLS.ServerName != "" || c.TLS.InsecureSkipVerify) {
		bad("tls", "settings without enabled: true")
	}
	return errs
}

// tlsConfig reads the CA file; nil when TLS is off.
func (c TLSConfig) tlsConfig() (*tls.Config, error) {
	if !c.Enabled {
		return nil, nil
	}
	return tlsconfig.Files{CAFile: c.CAFile, ServerName: c.ServerName, InsecureSkipVerify: c.InsecureSkipVerify}.Client()
}
