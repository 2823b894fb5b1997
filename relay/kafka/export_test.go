package kafka

import (
	"context"

	"github.com/relaykit/twilio-relay/relay"
)

// CheckWriteByACLs is the ACL half of the write check, which a broker of today never needs (it returns
// the topic's authorized operations): the tests call it directly.
func (s *Sink) CheckWriteByACLs(ctx context.Context, topic string) relay.Check {
	return s.checkWriteByACLs(ctx, relay.Check{Name: "write " + topic, Topic: topic}, s.brokers[0])
}
