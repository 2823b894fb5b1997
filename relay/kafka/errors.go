package kafka

import (
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"

	"github.com/relaykit/twilio-relay/relay"
	kafkago "github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol"
)

// The sink's error classes, decided here only, from types and Kafka error codes (never from text).

// classify wraps err with the operation, by the Kafka error code it carries: permanent for what no
// retry can mend (the message is at fault: dead-lettered), misconfigured for a refusal that lasts until
// someone acts (no retry within the request, no dead letter: the request is answered 503 at once and
// Twilio keeps the event), else transient. A missing topic is a misconfiguration unless the sink may
// create topics: then the first writes see it missing until the broker has created it, and retry.
func (s *Sink) classify(topic string, err error) error {
	if err == nil {
		return nil
	}
	wrapped := fmt.Errorf("write %s: %w", topic, err) // the pipeline adds the sink's name
	var kerr kafkago.Error
	if errors.As(err, &kerr) {
		switch kerr {
		case kafkago.MessageSizeTooLarge, kafkago.InvalidTopic, kafkago.InvalidRecord:
			return relay.Permanent(wrapped)
		case kafkago.TopicAuthorizationFailed, kafkago.ClusterAuthorizationFailed,
			kafkago.SASLAuthenticationFailed, kafkago.UnsupportedSASLMechanism, kafkago.IllegalSASLState:
			return relay.Misconfigured(wrapped)
		case kafkago.UnknownTopicOrPartition:
			if !s.autoCreate {
				return relay.Misconfigured(wrapped)
			}
		}
	}
	if relay.IsPermanent(err) {
		return relay.Permanent(wrapped)
	}
	return wrapped
}

// recordLevel reports whether the broker refused a whole record batch for what one of its records is
// (too large, invalid): the batch is split to find which.
func recordLevel(err error) bool {
	var kerr kafkago.Error
	return errors.As(err, &kerr) && (kerr == kafkago.MessageSizeTooLarge || kerr == kafkago.InvalidRecord)
}

// staleLayout reports whether err suggests that the cached cluster layout (partition leaders, brokers,
// topics) is out of date: a leader moved or is being elected, a broker went away, a topic appeared or
// vanished. The next write should not wait for the periodic metadata refresh.
func staleLayout(err error) bool {
	var kerr kafkago.Error
	if errors.As(err, &kerr) {
		switch kerr {
		case kafkago.NotLeaderForPartition, kafkago.LeaderNotAvailable, kafkago.BrokerNotAvailable,
			kafkago.ReplicaNotAvailable, kafkago.KafkaStorageError, kafkago.FencedLeaderEpoch,
			kafkago.UnknownLeaderEpoch, kafkago.UnknownTopicOrPartition:
			return true
		}
		return false
	}
	var opErr *net.OpError
	return errors.Is(err, protocol.ErrNoLeader) || errors.Is(err, protocol.ErrNoPartition) ||
		errors.Is(err, protocol.ErrNoTopic) || errors.As(err, &opErr) || errors.Is(err, io.EOF) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}
