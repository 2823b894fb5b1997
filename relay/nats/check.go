package nats

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/relaykit/twilio-relay/relay"

	natsgo "github.com/nats-io/nats.go"
)

var _ relay.Checker = (*Sink)(nil)

// Check waits, within the sink's timeout, for the connection (which New started), asks JetStream for
// the account's information, and for each subject the stream that stores it: without one, every
// publish fails. Whether the user may publish to a subject is not checked: NATS has no way to ask
// without publishing.
func (s *Sink) Check(ctx context.Context, subjects []string) []relay.Check {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if c, ok := s.waitConnected(ctx); !ok {
		return []relay.Check{c}
	}
	if _, err := s.js.AccountInfo(ctx); err != nil {
		c := relay.Check{Name: "connect", Status: relay.CheckDown, Detail: fmt.Sprintf("JetStream account info: %v", err)}
		if errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount) {
			c.Status, c.Fix = relay.CheckFailed, "enable JetStream on the server (-js) and for this account"
		}
		return []relay.Check{c}
	}
	checks := []relay.Check{{Name: "connect", Status: relay.CheckPassed,
		Detail: fmt.Sprintf("connected to %s, JetStream answers", s.nc.ConnectedUrlRedacted())}}
	for _, subj := range subjects {
		checks = append(checks, s.checkSubject(ctx, subj))
	}
	return checks
}

// waitConnected waits for the sink's connection to be up. When it is not, a new connection, made once,
// tells why: the sink's own keeps retrying in the background without saying.
func (s *Sink) waitConnected(ctx context.Context) (relay.Check, bool) {
	if s.nc.Status() == natsgo.CONNECTED {
		return relay.Check{}, true
	}
	if err := s.probe(); err != nil {
		c := relay.Check{Name: "connect", Status: relay.CheckDown, Detail: fmt.Sprintf("cannot connect: %v", err),
			Fix: "check urls and that a server is reachable from here"}
		if errors.Is(err, natsgo.ErrAuthorization) || errors.Is(err, natsgo.ErrAuthExpired) || errors.Is(err, natsgo.ErrAuthRevoked) {
			c.Status, c.Fix = relay.CheckFailed, "check username and password, token or creds_file against the server's users"
		}
		return c, false
	}
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for s.nc.Status() != natsgo.CONNECTED {
		select {
		case <-ctx.Done():
			return relay.Check{Name: "connect", Status: relay.CheckDown,
				Detail: fmt.Sprintf("a new connection succeeds, but the sink's is still %s", s.nc.Status())}, false
		case <-t.C:
		}
	}
	return relay.Check{}, true
}

func (s *Sink) checkSubject(ctx context.Context, subject string) relay.Check {
	c := relay.Check{Name: "subject " + subject, Topic: subject}
	stream, err := s.js.StreamNameBySubject(ctx, subject)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		c.Status, c.Detail = relay.CheckFailed, "no stream stores it: every publish fails (no responders)"
		c.Fix = fmt.Sprintf("create a stream whose subjects include it: nats stream add <name> --subjects '%s'", subject)
	case err != nil:
		c.Status, c.Detail = relay.CheckDown, fmt.Sprintf("stream lookup: %v", err)
	case s.stream != "" && stream != s.stream:
		c.Status, c.Detail = relay.CheckFailed, fmt.Sprintf("stored by stream %s, not by stream %s as configured", stream, s.stream)
		c.Fix = "fix the stream's subjects, or the sink's stream"
	default:
		c.Status, c.Detail = relay.CheckPassed, "stored by stream "+stream
	}
	return c
}

// probe returns a function that connects with the sink's servers and credentials, without retrying, and
// closes the connection again.
func probe(name string, cfg Config, auth []natsgo.Option) func() error {
	return func() error {
		opts := append([]natsgo.Option{natsgo.Name("twilio-relay/" + name + "/check"),
			natsgo.Timeout(time.Duration(cfg.ConnectTimeout)), natsgo.NoReconnect()}, auth...)
		nc, err := natsgo.Connect(strings.Join(cfg.URLs, ","), opts...)
		if err != nil {
			return err
		}
		nc.Close()
		return nil
	}
}
