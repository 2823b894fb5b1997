package httpsink_test

import (
	"testing"

	"github.com/relaykit/twilio-relay/relay"
	"github.com/relaykit/twilio-relay/relay/httpsink"
	"github.com/relaykit/twilio-relay/relay/relaytest/conformance"
)

// testSecret is a Standard Webhooks secret (a 24-byte key).
const testSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

func TestConformance(t *testing.T) {
	for _, mode := range []string{"binary", "structured"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			conformance.Run(t, func(t *testing.T) (relay.Sink, conformance.Reader) {
				rc := newReceiver(t, testSecret)
				s, err := httpsink.New("conformance", httpsink.Config{URL: rc.srv.URL + "/events", Mode: mode, Secret: testSecret}.Defaults())
				if err != nil {
					t.Fatal(err)
				}
				return s, rc
			})
		})
	}
}
