package kafka_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/relaykit/twilio-relay/relay"
	"github.com/relaykit/twilio-relay/relay/kafka"
	"github.com/relaykit/twilio-relay/relay/relaytest/checktest"
	"github.com/relaykit/twilio-relay/relay/relaytest/kafkaserver"
	kafkago "github.com/segmentio/kafka-go"
)

// TestCheck runs the preflight checks against a real broker with SASL and the StandardAuthorizer: alice
// may write to both topics, bob may only describe one, carol may read the ACLs.
func TestCheck(t *testing.T) {
	t.Parallel()
	alice := kafkaserver.User{Name: "alice", Password: "alice-secret"}
	bob := kafkaserver.User{Name: "bob", Password: "bob-secret"}
	carol := kafkaserver.User{Name: "carol", Password: "carol-secret"}
	srv := kafkaserver.Start(t, kafkaserver.LibsFromEnv(t), kafkaserver.WithSASL(alice, bob, carol), kafkaserver.WithAuthorizer())
	srv.CreateTopic(t, "events", 3)
	srv.CreateTopic(t, "deadletter", 1)
	srv.Grant(t,
		kafkaserver.ACL{Principal: "User:alice", Operation: "Write", Topic: "events"},
		kafkaserver.ACL{Principal: "User:alice", Operation: "Write", Topic: "deadletter"},
		kafkaserver.ACL{Principal: "User:alice", Operation: "Describe", Topic: "*"}, // sees missing topics as missing
		kafkaserver.ACL{Principal: "User:bob", Operation: "Describe", Topic: "events"},
		kafkaserver.ACL{Principal: "User:carol", Operation: "Describe"}, // the cluster: DescribeAcls
		kafkaserver.ACL{Principal: "User:carol", Operation: "Write", Topic: "events"},
		kafkaserver.ACL{Principal: "User:carol", Operation: "Write", Topic: "deadletter", Deny: true},
	)
	sasl := func(u kafkaserver.User, password string) kafka.Config {
		return kafka.Config{SASL: kafka.SASLConfig{Mechanism: "scram-sha-512", Username: u.Name, Password: password}}
	}
	topics := []string{"events", "deadletter", "missing"}

	t.Run("alice", func(t *testing.T) {
		s := newSink(t, srv.SASLAddr(), sasl(alice, alice.Password))
		checks := checktest.Run(t, s, topics...)
		checktest.Want(t, checks, map[string]relay.CheckStatus{
			"connect": relay.CheckPassed, "brokers": relay.CheckPassed,
			"topic events": relay.CheckPassed, "write events": relay.CheckPassed,
			"topic deadletter": relay.CheckPassed, "write deadletter": relay.CheckPassed,
			"topic missing": relay.CheckFailed,
		})
		checktest.WantIn(t, checks, "connect", "as User:alice (SASL scram-sha-512, no TLS)")
		checktest.WantIn(t, checks, "topic events", "3 partitions")
		checktest.WantIn(t, checks, "topic deadletter", "1 partition,")
		checktest.WantIn(t, checks, "topic missing", "does not exist", "--create --topic missing", "allow_auto_topic_creation")

		// The same mistakes fail writes at once, marked as misconfigured: no retry, no dead letter.
		err := write(t, s, 10*time.Second, msg("missing", "SM1", event("EZ1", "SM1")))
		if we := writeErrors(t, err, 1); !relay.IsMisconfigured(we[0]) || !errors.Is(we[0], kafkago.UnknownTopicOrPartition) {
			t.Errorf("write to a missing topic: %v, want misconfigured UnknownTopicOrPartition", we[0])
		}
	})

	t.Run("auto-created topics", func(t *testing.T) {
		cfg := sasl(alice, alice.Password)
		cfg.AllowAutoTopicCreation = true
		checks := checktest.Run(t, newSink(t, srv.SASLAddr(), cfg), "missing")
		checktest.Want(t, checks, map[string]relay.CheckStatus{"topic missing": relay.CheckUnknown})
		checktest.WantIn(t, checks, "topic missing", "the first write creates it")
	})

	t.Run("wrong password", func(t *testing.T) {
		checks := checktest.Run(t, newSink(t, srv.SASLAddr(), sasl(alice, "wrong")), topics...)
		if len(checks) != 1 {
			t.Errorf("%d checks, want only connect: %v", len(checks), checks)
		}
		checktest.Want(t, checks, map[string]relay.CheckStatus{"connect": relay.CheckFailed})
		checktest.WantIn(t, checks, "connect", "authentication as alice (SASL scram-sha-512) refused", "sasl.password")
	})

	t.Run("no write ACL", func(t *testing.T) {
		s := newSink(t, srv.SASLAddr(), sasl(bob, bob.Password))
		checks := checktest.Run(t, s, "events", "deadletter")
		checktest.Want(t, checks, map[string]relay.CheckStatus{
			"connect": relay.CheckPassed, "topic events": relay.CheckPassed, "write events": relay.CheckFailed,
			"topic deadletter": relay.CheckFailed,
		})
		checktest.WantIn(t, checks, "write events", "User:bob may not write to it", "--allow-principal User:bob --operation Write --topic events")
		checktest.WantIn(t, checks, "topic deadletter", "User:bob may not describe it")

		err := write(t, s, 10*time.Second, msg("events", "SM1", event("EZ2", "SM1")))
		if we := writeErrors(t, err, 1); !relay.IsMisconfigured(we[0]) || !errors.Is(we[0], kafkago.TopicAuthorizationFailed) {
			t.Errorf("write without a WRITE ACL: %v, want misconfigured TopicAuthorizationFailed", we[0])
		}
	})

	t.Run("ACLs when the broker does not say", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s := newSink(t, srv.SASLAddr(), sasl(carol, carol.Password))
		for topic, want := range map[string]relay.CheckStatus{"events": relay.CheckPassed, "deadletter": relay.CheckFailed} {
			if c := s.CheckWriteByACLs(ctx, topic); c.Status != want {
				t.Errorf("carol, %s: %v, want %v", topic, c, want)
			}
		}
		c := newSink(t, srv.SASLAddr(), sasl(bob, bob.Password)).CheckWriteByACLs(ctx, "events")
		if c.Status != relay.CheckUnknown || !strings.Contains(c.Detail, "cannot tell") {
			t.Errorf("bob, who may not read the ACLs: %v, want cannot tell", c)
		}
	})

	t.Run("unreachable", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		checks := checktest.Run(t, newSink(t, addr, kafka.Config{}), topics...)
		checktest.Want(t, checks, map[string]relay.CheckStatus{"connect": relay.CheckDown})
		checktest.WantIn(t, checks, "connect", "no broker answered", "connection refused")
	})
}
