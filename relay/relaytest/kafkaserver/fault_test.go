package kafkaserver_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	relaykafka "github.com/relaykit/twilio-relay/relay/kafka"
	"github.com/relaykit/twilio-relay/relay/relaytest/kafkaserver"
)

// TestPauseResume freezes a broker with Pause: a produce with acks=all and a 1s timeout fails;
// after Resume a produce succeeds again and every acknowledged record is readable. The broker is
// left paused at the end: the test's cleanup must still end its JVM.
func TestPauseResume(t *testing.T) {
	t.Parallel()
	libs := kafkaserver.LibsFromEnv(t)
	var addr string
	t.Cleanup(func() { // runs after the broker's cleanup (LIFO)
		// A paused JVM still accepts connections (the kernel does), so a refused one proves that
		// the paused process is gone.
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			t.Errorf("broker %s still accepts connections after the cleanup of a paused broker", addr)
		}
	})
	srv := kafkaserver.Start(t, libs)
	addr = srv.Addr()
	const topic = "paused"
	srv.CreateTopic(t, topic, 1)

	// One writer for both writes, so that the second finds the partition leader in its cached
	// metadata and its produce request, not a metadata request, meets the paused broker.
	w, closeW := newWriter(srv.Addr(), topic, time.Second)
	defer closeW()
	w.Transport.(*kafka.Transport).MetadataTTL = time.Minute
	if _, err := write(w, "before"); err != nil {
		t.Fatalf("produce before Pause: %v", err)
	}

	srv.Pause(t)
	begin := time.Now()
	_, err := write(w, "while-paused")
	elapsed := time.Since(begin)
	if err == nil {
		t.Fatal("produce with acks=all to a paused broker succeeded")
	}
	t.Logf("produce to the paused broker failed after %v: %v", elapsed.Round(time.Millisecond), err)
	if elapsed > 3*time.Second {
		t.Errorf("produce with a 1s timeout took %v to fail", elapsed)
	}

	srv.Resume(t)
	begin = time.Now()
	acked := eventually(t, "produce after Resume", 20, 30*time.Second, func(attempt int) ([]string, error) {
		return writeFresh(srv.Addr(), topic, 5*time.Second, fmt.Sprintf("after-resume-%d", attempt))
	})
	t.Logf("produce works %v after Resume", time.Since(begin).Round(time.Millisecond))
	wantAcked(t, kafkaserver.ReadTopic(t, srv.Addr(), topic), append([]string{"before"}, acked...))

	srv.Pause(t) // left paused for the cleanup
}

// TestCluster starts a 3-node cluster and a topic with 3 replicas and min.insync.replicas=2: a
// produce with acks=all survives the loss of one node (the leader of partition 0), fails once a
// second node is down, and works again after both restart, with every acknowledged record kept.
func TestCluster(t *testing.T) {
	t.Parallel()
	libs := kafkaserver.LibsFromEnv(t)
	begin := time.Now()
	c := kafkaserver.StartCluster(t, libs, 3)
	t.Logf("3-node cluster ready in %v", time.Since(begin).Round(time.Millisecond))
	if n := len(strings.Split(c.Bootstrap(), ",")); n != 3 || len(c.Nodes) != 3 {
		t.Fatalf("Bootstrap %q, %d nodes: want 3", c.Bootstrap(), len(c.Nodes))
	}
	const topic, partitions = "replicated", 3
	begin = time.Now()
	c.CreateTopicWithConfig(t, topic, partitions, 3, map[string]string{"min.insync.replicas": "2"})
	t.Logf("topic created in %v", time.Since(begin).Round(time.Millisecond))

	var acked []string
	// round writes one record per partition with acks=all through a fresh writer (fresh metadata).
	round := func(name string, timeout time.Duration) func(int) ([]string, error) {
		return func(attempt int) ([]string, error) {
			values := make([]string, partitions)
			for i := range values {
				values[i] = fmt.Sprintf("%s-%d-%d", name, attempt, i)
			}
			ok, err := writeFresh(c.Bootstrap(), topic, timeout, values...)
			acked = append(acked, ok...)
			return ok, err
		}
	}

	eventually(t, "produce to the healthy cluster", 10, 30*time.Second, round("healthy", 5*time.Second))

	first := c.Nodes[leaderOf(t, c.Bootstrap(), topic, 0)-1]
	begin = time.Now()
	first.Kill(t)
	t.Logf("killed node %d, the leader of partition 0", first.NodeID())
	eventually(t, "produce after killing one node", 40, 60*time.Second, round("one-down", 5*time.Second))
	newLeader := leaderOf(t, c.Bootstrap(), topic, 0)
	t.Logf("produce works again %v after the kill; node %d now leads partition 0", time.Since(begin).Round(time.Millisecond), newLeader)
	if newLeader == first.NodeID() {
		t.Fatalf("partition 0 is still led by the killed node %d", newLeader)
	}

	// Kill the other survivor, a follower of partition 0. The controller quorum (2 of 3) is gone
	// with it, so no ISR can shrink: the leader waits for the dead follower until the deadline.
	var second *kafkaserver.Server
	for _, s := range c.Nodes {
		if s != first && s.NodeID() != newLeader {
			second = s
		}
	}
	second.Kill(t)
	t.Logf("killed node %d", second.NodeID())
	for attempt := range 3 {
		begin := time.Now()
		ok, err := round("two-down", 2*time.Second)(attempt)
		if err == nil || len(ok) > 0 {
			t.Fatalf("produce with acks=all and min.insync.replicas=2 with 2 of 3 nodes down: acked %v, error %v", ok, err)
		}
		t.Logf("with two nodes down, produce failed after %v: %v", time.Since(begin).Round(time.Millisecond), err)
	}

	begin = time.Now()
	first.Restart(t)
	second.Restart(t)
	t.Logf("both nodes restarted in %v", time.Since(begin).Round(time.Millisecond))
	eventually(t, "produce after the restarts", 40, 60*time.Second, round("restarted", 5*time.Second))

	got := kafkaserver.ReadTopic(t, c.Bootstrap(), topic)
	wantAcked(t, got, acked)
	t.Logf("all %d acknowledged records read back (%d records in the topic)", len(acked), len(got))
}

// newWriter returns an acks=all writer to the comma-separated brokers, with one attempt per write
// and timeout for each request, on its own transport; the func closes both.
func newWriter(bootstrap, topic string, timeout time.Duration) (*kafka.Writer, func()) {
	tr := &kafka.Transport{DialTimeout: time.Second, MetadataTTL: 100 * time.Millisecond}
	w := &kafka.Writer{
		Addr:         kafka.TCP(strings.Split(bootstrap, ",")...),
		Topic:        topic,
		Transport:    tr,
		RequiredAcks: kafka.RequireAll,
		BatchTimeout: time.Millisecond,
		ReadTimeout:  timeout,
		WriteTimeout: timeout,
		MaxAttempts:  1,
	}
	return w, func() {
		w.Close()
		tr.CloseIdleConnections()
	}
}

// write writes one record per value, within the writer's timeout plus a margin, and returns the
// values whose records were acknowledged (all, some, or none).
func write(w *kafka.Writer, values ...string) ([]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), w.WriteTimeout+5*time.Second)
	defer cancel()
	msgs := make([]kafka.Message, len(values))
	for i, v := range values {
		msgs[i] = kafka.Message{Value: []byte(v)}
	}
	err := w.WriteMessages(ctx, msgs...)
	if err == nil {
		return values, nil
	}
	var acked []string
	var we kafka.WriteErrors
	if errors.As(err, &we) {
		for i, e := range we {
			if e == nil {
				acked = append(acked, values[i])
			}
		}
	}
	return acked, err
}

// writeFresh is write through a new writer.
func writeFresh(bootstrap, topic string, timeout time.Duration, values ...string) ([]string, error) {
	w, done := newWriter(bootstrap, topic, timeout)
	defer done()
	return write(w, values...)
}

// eventually calls try until it succeeds, at most attempts times and for at most limit (plus the
// last try), half a second apart, and returns what the successful try acknowledged.
func eventually(t *testing.T, what string, attempts int, limit time.Duration, try func(attempt int) ([]string, error)) []string {
	t.Helper()
	deadline := time.Now().Add(limit)
	for attempt := 1; ; attempt++ {
		acked, err := try(attempt)
		if err == nil {
			if attempt > 1 {
				t.Logf("%s: succeeded at attempt %d", what, attempt)
			}
			return acked
		}
		t.Logf("%s: attempt %d: %v", what, attempt, err)
		if attempt >= attempts || time.Now().After(deadline) {
			t.Fatalf("%s: still failing after %d attempts: %v", what, attempt, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// leaderOf returns the node id of the leader of a partition, as the cluster's metadata has it.
func leaderOf(t *testing.T, bootstrap, topic string, partition int) int {
	t.Helper()
	tr := &kafka.Transport{DialTimeout: time.Second}
	defer tr.CloseIdleConnections()
	client := &kafka.Client{Addr: kafka.TCP(strings.Split(bootstrap, ",")...), Transport: tr, Timeout: 10 * time.Second}
	md, err := client.Metadata(context.Background(), &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		t.Fatalf("metadata of %s: %v", topic, err)
	}
	for _, tm := range md.Topics {
		for _, p := range tm.Partitions {
			if p.ID == partition && p.Leader.Host != "" {
				return p.Leader.ID
			}
		}
	}
	t.Fatalf("no leader for %s/%d in %+v", topic, partition, md.Topics)
	return 0
}

// wantAcked fails the test unless every acknowledged value is among the records read.
func wantAcked(t *testing.T, got []relaykafka.Record, acked []string) {
	t.Helper()
	read := map[string]bool{}
	for _, m := range got {
		read[string(m.Value)] = true
	}
	for _, v := range acked {
		if !read[v] {
			t.Errorf("acknowledged record %q is missing (read %d records)", v, len(got))
		}
	}
}
