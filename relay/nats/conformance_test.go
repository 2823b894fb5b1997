package nats_test

import (
	"log/slog"
	"testing"

	"github.com/relaykit/twilio-relay/relay"
	"github.com/relaykit/twilio-relay/relay/nats"
	"github.com/relaykit/twilio-relay/relay/relaytest/conformance"
	"github.com/relaykit/twilio-relay/relay/relaytest/servers"
)

func TestConformance(t *testing.T) {
	for _, mode := range []string{"binary", "structured"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			srv := servers.StartNATS(t)
			r := newReader(t, srv.URL())
			conformance.Run(t, func(t *testing.T) (relay.Sink, conformance.Reader) {
				s, err := nats.New("conformance", nats.Config{URLs: []string{srv.URL()}, Mode: mode}.Defaults(), slog.New(slog.DiscardHandler))
				if err != nil {
					t.Fatal(err)
				}
				return s, r
			})
		})
	}
}
