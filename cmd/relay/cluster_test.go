package main

import (
	"testing"

	"github.com/relaykit/twilio-relay/relay/relaytest/kafkaserver"
	"github.com/relaykit/twilio-relay/relay/relaytest/ledger"
)

// TestFaultClusterLosesBrokers runs the relay against a three-broker cluster (topics with replication
// factor 3 and min.insync.replicas=2) and kills one broker during load, then a second: with one gone,
// acks=all writes go on once the controller has fenced it; with two gone, the controller quorum is lost
// too, no ISR can shrink, the leaders wait for followers that never answer and the relay answers 503 at
// its deadline. After both come back, Twilio's retries deliver the rest and nothing answered 200 is
// missing. The records a leader appended but could not replicate in time become visible when the
// followers return: those are the duplicates (kafka-go has no idempotent producer; consumers dedupe by
// ce_id).
func TestFaultClusterLosesBrokers(t *testing.T) {
	c := kafkaserver.StartCluster(t, kafkaserver.LibsFromEnv(t), 3)
	minISR := map[string]string{"min.insync.replicas": "2"}
	c.CreateTopicWithConfig(t, "twilio.messaging", 3, 3, minISR)
	c.CreateTopicWithConfig(t, "twilio.other", 3, 3, minISR)
	c.CreateTopicWithConfig(t, "twilio.deadletter", 1, 3, minISR)
	h := startRelayWith(t, nil, testConfig, map[string]string{"BROKERS": c.Bootstrap(), "DEADLINE": "1500ms"})
	s := newScenario(t, "3-broker cluster (RF 3, min ISR 2) loses one broker, then a second, both restarted", h.sender)
	s.run()
	s.at(0.2, "SIGKILL broker 1 of 3: two replicas left, writes go on")
	c.Nodes[0].Kill(t)
	s.at(0.45, "SIGKILL broker 2 of 3: below min.insync.replicas")
	c.Nodes[1].Kill(t)
	s.at(0.7, "restart both")
	c.Nodes[0].Restart(t)
	c.Nodes[1].Restart(t)
	s.wait()
	s.redeliver()
	r := s.check(kafkaIDs(t, c.Nodes[2].Addr()), ledger.DupsReported, "503 at the deadline while two brokers (and the controller quorum) are down; "+
		"duplicates: each attempt the leader appended, then failed for want of replicas (kafka-go has no idempotent producer), becomes visible when they return")
	if r.Statuses["503"] == 0 {
		t.Errorf("no request was answered 503 with two of three brokers down: %v", r.Statuses)
	}
}
