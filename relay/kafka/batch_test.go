package kafka_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	kafkago "github.com/segmentio/kafka-go"

	"github.com/relaykit/twilio-relay/relay"
	"github.com/relaykit/twilio-relay/relay/kafka"
	"github.com/relaykit/twilio-relay/relay/relaytest/kafkaserver"
)

// produceRequests returns how many produce requests a sink has sent, from its collector.
func produceRequests(t testing.TB, c *kafka.Collector) (requests, messages float64) {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		switch mf.GetName() {
		case "relay_kafka_writes_total":
			requests = mf.GetMetric()[0].GetCounter().GetValue()
		case "relay_kafka_messages_total":
			messages = mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return requests, messages
}

// TestSinkBatching checks how messages become produce requests: one per partition for the messages of
// one write, shared by writes that queue behind a request in flight or within batch_timeout, and the
// partition each key lands on.
func TestSinkBatching(t *testing.T) {
	t.Parallel()
	srv := kafkaserver.Start(t, kafkaserver.LibsFromEnv(t))

	t.Run("one produce request per partition for one write", func(t *testing.T) {
		t.Parallel()
		const topic = "per-partition"
		srv.CreateTopic(t, topic, 3)
		s := newSink(t, srv.Addr(), kafka.Config{})
		var msgs []relay.Message
		partitions := map[int]bool{}
		for i := range 50 { // like one Event Streams body of 50 events about 20 resources
			sid := fmt.Sprintf("SM%032d", i%20)
			msgs = append(msgs, msg(topic, sid, event(fmt.Sprintf("EZ%03d", i), sid)))
			partitions[javaPartition([]byte(sid), 3)] = true
		}
		mustWrite(t, s, msgs...)
		requests, messages := produceRequests(t, kafka.NewCollector(s))
		if requests != float64(len(partitions)) || messages != 50 {
			t.Errorf("%v produce requests carrying %v messages, want %d (one per partition) carrying 50", requests, messages, len(partitions))
		}
		got := byID(t, readTopic(t, srv.Addr(), topic))
		for _, m := range msgs {
			r, ok := got[m.Event.ID]
			if !ok || r.Partition != javaPartition(m.Key, 3) {
				t.Errorf("%s: in Kafka %v, partition %d, want partition %d", m.Event.ID, ok, r.Partition, javaPartition(m.Key, 3))
			}
			// Positions come from each request's base offset: every record's own, not its request's first.
			if at := (relay.Position{Set: true, Partition: int32(r.Partition), Offset: r.Offset}); m.Position != at {
				t.Errorf("%s: Write said it landed at %v, Kafka holds it at %v", m.Event.ID, m.Position, at)
			}
		}
	})

	t.Run("keys land where Kafka's Java partitioner puts them", func(t *testing.T) {
		t.Parallel()
		for _, n := range []int{1, 4, 7} {
			topic := fmt.Sprintf("partitioner-%d", n)
			srv.CreateTopic(t, topic, n)
			s := newSink(t, srv.Addr(), kafka.Config{})
			var msgs []relay.Message
			for i := range 300 { // resource SIDs as Twilio makes them, and odd lengths for murmur2's tail
				sid := fmt.Sprintf("SM%x", i*7919)
				msgs = append(msgs, msg(topic, sid, event(fmt.Sprintf("EZk%03d", i), sid)))
			}
			for i := range 100 {
				msgs = append(msgs, msg(topic, "", event(fmt.Sprintf("EZn%03d", i), "SMnokey")))
			}
			mustWrite(t, s, msgs...)
			got := byID(t, readTopic(t, srv.Addr(), topic))
			if len(got) != len(msgs) {
				t.Fatalf("%d partitions: %d records, want %d", n, len(got), len(msgs))
			}
			keyless := map[int]int{}
			for _, m := range msgs {
				r := got[m.Event.ID]
				if m.Key == nil {
					keyless[r.Partition]++
					continue
				}
				if want := javaPartition(m.Key, n); r.Partition != want {
					t.Errorf("%d partitions: key %s on partition %d, the Java partitioner picks %d", n, m.Key, r.Partition, want)
				}
			}
			// Keyless messages are spread at random (kafka-go's murmur2 balancer, as before): 100 of
			// them all on one of 7 partitions would be a broken balancer, not chance.
			if n == 7 && len(keyless) < 2 {
				t.Errorf("100 keyless messages on partitions %v: not spread", keyless)
			}
		}
	})

	t.Run("writes that queue behind a request share the next one", func(t *testing.T) {
		t.Parallel()
		const topic, writers = "shared", 16
		srv.CreateTopic(t, topic, 1)
		s := newSink(t, srv.Addr(), kafka.Config{})
		mustWrite(t, s, msg(topic, "SM1", event("EZwarm", "SM1"))) // metadata loaded, one request
		start := make(chan struct{})
		var wg sync.WaitGroup
		for g := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				if err := write(t, s, 20*time.Second, msg(topic, "SM1", event(fmt.Sprintf("EZs%02d", g), "SM1"))); err != nil {
					t.Errorf("writer %d: %v", g, err)
				}
			}()
		}
		close(start)
		wg.Wait()
		requests, messages := produceRequests(t, kafka.NewCollector(s))
		t.Logf("%d concurrent writes of one message: %v produce requests after the first", writers, requests-1)
		if messages != writers+1 || requests-1 >= writers {
			t.Errorf("%v requests carrying %v messages for %d concurrent writes: want fewer requests than writes", requests-1, messages-1, writers)
		}
		if got := byID(t, readTopic(t, srv.Addr(), topic)); len(got) != writers+1 {
			t.Errorf("%d records, want %d", len(got), writers+1)
		}
	})

	t.Run("batch_timeout gathers writes to an idle partition", func(t *testing.T) {
		t.Parallel()
		const topic = "linger"
		srv.CreateTopic(t, topic, 1)
		s := newSink(t, srv.Addr(), kafka.Config{BatchTimeout: relay.Duration(time.Second)})
		var wg sync.WaitGroup
		for i := range 4 { // one after the other, each well within the second the first waits
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := write(t, s, 20*time.Second, msg(topic, "SM1", event(fmt.Sprintf("EZl%d", i), "SM1"))); err != nil {
					t.Errorf("write %d: %v", i, err)
				}
			}()
			time.Sleep(20 * time.Millisecond)
		}
		wg.Wait()
		if requests, messages := produceRequests(t, kafka.NewCollector(s)); requests != 1 || messages != 4 {
			t.Errorf("%v produce requests carrying %v messages, want the 4 writes in 1", requests, messages)
		}
	})

	t.Run("a batch refused as too large is split down to the message", func(t *testing.T) {
		t.Parallel()
		const topic = "split"
		srv.CreateTopicWithConfig(t, topic, 1, map[string]string{"max.message.bytes": "4096"})
		s := newSink(t, srv.Addr(), kafka.Config{})
		big := event("EZbig", "SM1")
		big.Data = fmt.Appendf(nil, `{"body":%q}`, make([]byte, 5000))
		var msgs []relay.Message
		want := make([]string, 0, 8)
		for i := range 7 { // together over the topic's limit, each one well under it
			if i == 4 {
				msgs, want = append(msgs, msg(topic, "SM1", big)), append(want, permanent)
			}
			msgs, want = append(msgs, msg(topic, "SM1", event(fmt.Sprintf("EZp%d", i), "SM1"))), append(want, acked)
		}
		wantOutcomes(t, write(t, s, 20*time.Second, msgs...), want...)
		recs := readTopic(t, srv.Addr(), topic)
		var order []string
		for _, r := range recs {
			order = append(order, headers(t, r)["ce_id"])
		}
		if fmt.Sprint(order) != "[EZp0 EZp1 EZp2 EZp3 EZp4 EZp5 EZp6]" {
			t.Errorf("records %v, want the 7 small ones in order", order)
		}
		got := byID(t, recs) // the halves' base offsets give each record's position
		for _, m := range msgs {
			r, ok := got[m.Event.ID]
			if at := (relay.Position{Set: true, Partition: int32(r.Partition), Offset: r.Offset}); ok != m.Position.Set || (ok && m.Position != at) {
				t.Errorf("%s: Write said it landed at %+v; in Kafka: %v at %v", m.Event.ID, m.Position, ok, at)
			}
		}
	})
}

// TestSinkAbandonedWrite: a write whose context ends while it waits behind a request in flight fails
// with its context's error, and its messages are not sent afterwards (no Kafka-level duplicate when
// Twilio re-sends the events).
func TestSinkAbandonedWrite(t *testing.T) {
	t.Parallel()
	srv := kafkaserver.Start(t, kafkaserver.LibsFromEnv(t))
	const topic = "abandoned"
	srv.CreateTopic(t, topic, 1)
	s := newSink(t, srv.Addr(), kafka.Config{WriteTimeout: relay.Duration(10 * time.Second)})
	mustWrite(t, s, msg(topic, "SM1", event("EZwarm", "SM1")))

	srv.Pause(t)
	first := make(chan error, 1)
	go func() { first <- write(t, s, 20*time.Second, msg(topic, "SM1", event("EZinflight", "SM1"))) }()
	time.Sleep(200 * time.Millisecond) // its produce request now waits on the paused broker
	wantOutcomes(t, write(t, s, 300*time.Millisecond, msg(topic, "SM1", event("EZgaveup", "SM1"))), transient)
	srv.Resume(t)
	if err := <-first; err != nil {
		t.Fatalf("the write in flight while the broker was paused: %v", err)
	}
	mustWrite(t, s, msg(topic, "SM1", event("EZafter", "SM1"))) // the lane has moved past the one that gave up
	got := byID(t, readTopic(t, srv.Addr(), topic))
	if _, sent := got["EZgaveup"]; sent || len(got) != 3 {
		t.Errorf("topic holds %v: want EZwarm, EZinflight and EZafter, and not the write that gave up", keys(got))
	}
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestSinkLeaderMoves: when a partition's leader moves, the sink's next write fails once on its cached
// layout (connection refused, then NOT_LEADER_OR_FOLLOWER), and the write after that finds the new leader
// at once instead of waiting for the periodic metadata refresh (up to 10 s).
func TestSinkLeaderMoves(t *testing.T) {
	t.Parallel()
	c := kafkaserver.StartCluster(t, kafkaserver.LibsFromEnv(t), 3)
	const topic = "moving"
	c.CreateTopicWithConfig(t, topic, 1, 3, nil)
	s := newSink(t, "", kafka.Config{Brokers: strings.Split(c.Bootstrap(), ",")})
	mustWrite(t, s, msg(topic, "SM1", event("EZwarm", "SM1")))
	leader := c.Nodes[leaderOf(t, c.Bootstrap(), topic)-1]

	// nextWrite is the sink's next write: it may fail once on the stale layout, and must succeed on the
	// attempt after, which the pipeline would make after its first backoff.
	nextWrite := func(step, id string) {
		t.Helper()
		err := write(t, s, 5*time.Second, msg(topic, "SM1", event(id+"-1", "SM1")))
		t.Logf("%s: first write: %v", step, err)
		if err == nil {
			t.Logf("%s: the periodic refresh came first; the retry is not needed", step)
			return
		}
		time.Sleep(600 * time.Millisecond) // the sink refreshes at most twice a second
		if err := write(t, s, 5*time.Second, msg(topic, "SM1", event(id+"-2", "SM1"))); err != nil {
			t.Errorf("%s: the write after a failure on the stale layout: %v", step, err)
		}
	}

	leader.Stop(t) // a controlled shutdown: leadership moves before the broker goes
	nextWrite("leader stopped", "EZstopped")

	leader.Restart(t)
	awaitInSync(t, c, topic, leader.NodeID())
	// The preferred replica is the first leader: elect it again (a just-restarted broker may refuse the
	// election for a moment).
	deadline := time.Now().Add(60 * time.Second)
	for leaderOf(t, c.Bootstrap(), topic) != leader.NodeID() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		res, err := kafkaClient(c.Bootstrap()).ElectLeaders(ctx, &kafkago.ElectLeadersRequest{Topic: topic, Partitions: []int{0}, Timeout: 10 * time.Second})
		cancel()
		if err == nil {
			err = res.Error
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %d did not become the leader again: %v", leader.NodeID(), err)
		}
		time.Sleep(500 * time.Millisecond)
	}
	nextWrite("leader moved back to a running broker", "EZmoved")
}

func kafkaClient(bootstrap string) *kafkago.Client {
	return &kafkago.Client{Addr: kafkago.TCP(strings.Split(bootstrap, ",")...), Timeout: 10 * time.Second,
		Transport: &kafkago.Transport{DialTimeout: time.Second, MetadataTTL: 100 * time.Millisecond}}
}

// partition0 returns the metadata of a topic's partition 0 as the cluster has it now.
func partition0(t testing.TB, bootstrap, topic string) kafkago.Partition {
	t.Helper()
	client := kafkaClient(bootstrap)
	defer client.Transport.(*kafkago.Transport).CloseIdleConnections()
	// Asked again when a broker does not answer in time: one may be the broker just stopped or restarted,
	// and a loaded machine slows the others (seen under -race at a load average of 10).
	deadline := time.Now().Add(45 * time.Second)
	md, err := client.Metadata(context.Background(), &kafkago.MetadataRequest{Topics: []string{topic}})
	for err != nil && time.Now().Before(deadline) {
		time.Sleep(500 * time.Millisecond)
		md, err = client.Metadata(context.Background(), &kafkago.MetadataRequest{Topics: []string{topic}})
	}
	if err != nil {
		t.Fatalf("metadata of %s: %v", topic, err)
	}
	for _, tm := range md.Topics {
		for _, p := range tm.Partitions {
			if p.ID == 0 {
				return p
			}
		}
	}
	t.Fatalf("no partition 0 of %s in %+v", topic, md.Topics)
	return kafkago.Partition{}
}

// leaderOf returns the node id leading partition 0 of topic.
func leaderOf(t testing.TB, bootstrap, topic string) int {
	return partition0(t, bootstrap, topic).Leader.ID
}

// awaitInSync waits until node is in the in-sync replicas of partition 0 of topic.
func awaitInSync(t testing.TB, c *kafkaserver.Cluster, topic string, node int) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		for _, b := range partition0(t, c.Bootstrap(), topic).Isr {
			if b.ID == node {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %d not back in sync for %s", node, topic)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
