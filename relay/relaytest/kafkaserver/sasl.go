package kafkaserver

import (
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
)

// SASL mechanisms enabled on the SASL_PLAINTEXT listener by WithSASL.
const (
	MechanismPlain       = "PLAIN"
	MechanismScramSHA256 = "SCRAM-SHA-256"
	MechanismScramSHA512 = "SCRAM-SHA-512"
)

// User is a SASL user of a broker started WithSASL.
type User struct {
	Name     string
	Password string
}

type saslConfig struct {
	users []User
}

// WithSASL adds a second listener, SASL_PLAINTEXT on another free 127.0.0.1 port (see
// Server.SASLAddr), with the PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512 mechanisms enabled and every
// user known to all three (the SCRAM credentials are written into the storage at format time).
// The PLAINTEXT listener (Server.Addr) stays, unauthenticated, for inter-broker traffic,
// CreateTopic and reading records back.
//
// Names and passwords are limited to [A-Za-z0-9._-] so that they need no quoting in
// server.properties, the JAAS configuration or StorageTool's --add-scram syntax.
func WithSASL(users ...User) Option {
	return func(c *config) {
		if c.sasl == nil {
			c.sasl = &saslConfig{}
		}
		c.sasl.users = append(c.sasl.users, users...)
	}
}

// SASLAddr returns the "127.0.0.1:port" of the SASL_PLAINTEXT listener, or "" if the broker was
// started without WithSASL.
func (s *Server) SASLAddr() string {
	if s.sasl == nil {
		return ""
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.saslPort))
}

var saslToken = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)

func (c *saslConfig) validate() error {
	if c == nil {
		return nil
	}
	seen := map[string]bool{}
	for _, u := range c.users {
		if !saslToken.MatchString(u.Name) || !saslToken.MatchString(u.Password) {
			return fmt.Errorf("WithSASL: user %q: name and password must match %s", u.Name, saslToken)
		}
		if seen[u.Name] {
			return fmt.Errorf("WithSASL: user %q given twice", u.Name)
		}
		seen[u.Name] = true
	}
	return nil
}

// addProps adds the SASL listener and its mechanisms to the managed server properties.
func (c *saslConfig) addProps(props map[string]string, addr string) {
	if c == nil {
		return
	}
	const name = "SASL_PLAINTEXT"
	props["listeners"] += "," + name + "://" + addr
	props["advertised.listeners"] += "," + name + "://" + addr
	props["listener.security.protocol.map"] += "," + name + ":" + name
	props["sasl.enabled.mechanisms"] = strings.Join([]string{MechanismPlain, MechanismScramSHA256, MechanismScramSHA512}, ",")

	prefix := "listener.name." + strings.ToLower(name) + "."
	plain := "org.apache.kafka.common.security.plain.PlainLoginModule required"
	for _, u := range c.users {
		plain += fmt.Sprintf(" user_%s=%q", u.Name, u.Password)
	}
	props[prefix+"plain.sasl.jaas.config"] = plain + ";"
	for _, m := range []string{MechanismScramSHA256, MechanismScramSHA512} {
		props[prefix+strings.ToLower(m)+".sasl.jaas.config"] = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
	}
}

// formatArgs returns the StorageTool format arguments that create the users' SCRAM credentials.
func (c *saslConfig) formatArgs() []string {
	if c == nil {
		return nil
	}
	var args []string
	for _, u := range c.users {
		for _, m := range []string{MechanismScramSHA256, MechanismScramSHA512} {
			args = append(args, "--add-scram", fmt.Sprintf("%s=[name=%s,password=%s]", m, u.Name, u.Password))
		}
	}
	return args
}
