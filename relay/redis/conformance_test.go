package redis_test

import (
	"testing"

	"github.com/relaykit/twilio-relay/relay"
	"github.com/relaykit/twilio-relay/relay/redis"
	"github.com/relaykit/twilio-relay/relay/relaytest/conformance"
	"github.com/relaykit/twilio-relay/relay/relaytest/servers"
)

func TestConformance(t *testing.T) {
	t.Parallel()
	srv := servers.StartRedis(t)
	r := newReader(t, srv.Addr())
	conformance.Run(t, func(t *testing.T) (relay.Sink, conformance.Reader) {
		s, err := redis.New("conformance", redis.Config{Addr: srv.Addr()}.Defaults())
		if err != nil {
			t.Fatal(err)
		}
		return s, r
	})
}
