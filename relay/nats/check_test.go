package nats_test

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/relaykit/twilio-relay/relay"
	"github.com/relaykit/twilio-relay/relay/nats"
	"github.com/relaykit/twilio-relay/relay/relaytest/checktest"
	"github.com/relaykit/twilio-relay/relay/relaytest/servers"
)

// TestCheck runs the preflight checks against a real server: a subject a stream stores passes, one no
// stream stores fails, as does one stored by another stream than the configured one.
func TestCheck(t *testing.T) {
	t.Parallel()
	srv := servers.StartNATS(t)
	newReader(t, srv.URL()).createStream(t, "EVENTS", jetstream.StreamConfig{Subjects: []string{"events.>"}})

	checks := checktest.Run(t, newSink(t, nats.Config{URLs: []string{srv.URL()}}), "events.all", "orphan")
	checktest.Want(t, checks, map[string]relay.CheckStatus{
		"connect": relay.CheckPassed, "subject events.all": relay.CheckPassed, "subject orphan": relay.CheckFailed,
	})
	checktest.WantIn(t, checks, "subject events.all", "stored by stream EVENTS")
	checktest.WantIn(t, checks, "subject orphan", "no stream stores it", "--subjects 'orphan'")

	checks = checktest.Run(t, newSink(t, nats.Config{URLs: []string{srv.URL()}, Stream: "OTHER"}), "events.all")
	checktest.Want(t, checks, map[string]relay.CheckStatus{"subject events.all": relay.CheckFailed})

	secured := servers.StartNATS(t, "--user", "relay", "--pass", "relay-secret")
	checks = checktest.Run(t, newSink(t, nats.Config{URLs: []string{secured.URL()}, Username: "relay", Password: "wrong",
		Timeout: relay.Duration(2 * time.Second)}), "events.all")
	checktest.Want(t, checks, map[string]relay.CheckStatus{"connect": relay.CheckFailed})
	checktest.WantIn(t, checks, "connect", "uthorization")
}
