package kafkaserver_test

import (
	"context"
	"fmt"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/relaykit/twilio-relay/relay/relaytest/kafkaserver"
)

// TestBroker proves the broker works with kafka-go v0.4.51: produce with acks=all and the murmur2
// balancer, consume through a consumer group, then survive a graceful stop and restart with its
// messages and committed group offsets intact.
func TestBroker(t *testing.T) {
	t.Parallel()
	libs := kafkaserver.LibsFromEnv(t)

	start := time.Now()
	srv := kafkaserver.Start(t, libs)
	t.Logf("broker %s ready in %v", srv.Addr(), time.Since(start).Round(time.Millisecond))

	const topic, group = "relay-test", "relay-test-group"
	start = time.Now()
	srv.CreateTopic(t, topic, 3)
	t.Logf("topic created in %v", time.Since(start).Round(time.Millisecond))

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	first := []kafka.Message{
		{Key: []byte("k1"), Value: []byte("v1")},
		{Key: []byte("k2"), Value: []byte("v2")},
		{Key: []byte("k3"), Value: []byte("v3")},
	}
	start = time.Now()
	produce(ctx, t, srv.Addr(), topic, first...)
	t.Logf("produced 3 messages in %v", time.Since(start).Round(time.Millisecond))

	start = time.Now()
	got := consumeGroup(ctx, t, srv.Addr(), topic, group, 3)
	t.Logf("consumer group read 3 messages in %v", time.Since(start).Round(time.Millisecond))
	wantValues(t, got, "v1", "v2", "v3")

	start = time.Now()
	srv.Stop(t)
	srv.Restart(t)
	t.Logf("stop+restart took %v", time.Since(start).Round(time.Millisecond))

	// The data survived: a fresh group reads everything from the start.
	got = consumeGroup(ctx, t, srv.Addr(), topic, group+"-after-restart", 3)
	wantValues(t, got, "v1", "v2", "v3")

	// A new produce works once every partition has its leader again (a restarted broker reloads them
	// one by one: a produce at once met "topic partition has no leader" on a loaded machine; CreateTopic
	// of an existing topic only waits), and the first group's committed offsets survived too: it only
	// sees the new message.
	srv.CreateTopic(t, topic, 3)
	produce(ctx, t, srv.Addr(), topic, kafka.Message{Key: []byte("k4"), Value: []byte("v4")})
	got = consumeGroup(ctx, t, srv.Addr(), topic, group, 1)
	wantValues(t, got, "v4")
}

// TestKillRestart runs a second broker alongside TestBroker, kills it (SIGKILL, an unclean
// shutdown) and restarts it: acknowledged messages survive.
func TestKillRestart(t *testing.T) {
	t.Parallel()
	libs := kafkaserver.LibsFromEnv(t)
	srv := kafkaserver.Start(t, libs)
	srv.CreateTopic(t, "killed", 1)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	produce(ctx, t, srv.Addr(), "killed", kafka.Message{Value: []byte("a")}, kafka.Message{Value: []byte("b")})
	srv.Kill(t)
	srv.Restart(t)
	wantValues(t, consumeGroup(ctx, t, srv.Addr(), "killed", "g", 2), "a", "b")
}

// fatalTB records Fatalf and ends the goroutine, so a failing Start can be inspected.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// TestStartFailureShowsLog checks that a broker that cannot start fails the test with the tail
// of its log.
func TestStartFailureShowsLog(t *testing.T) {
	t.Parallel()
	libs := kafkaserver.LibsFromEnv(t)
	ft := &fatalTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		kafkaserver.Start(ft, libs, kafkaserver.WithProperty("authorizer.class.name", "com.example.NoSuchAuthorizer"))
	}()
	<-done
	if ft.msg == "" {
		t.Fatal("Start with a missing authorizer class succeeded")
	}
	if !strings.Contains(ft.msg, "server.log") || !strings.Contains(ft.msg, "NoSuchAuthorizer") {
		t.Fatalf("start failure message lacks the log tail:\n%s", ft.msg)
	}
	t.Logf("failure message:\n%s", ft.msg)
}

func produce(ctx context.Context, t *testing.T, addr, topic string, msgs ...kafka.Message) {
	t.Helper()
	w := &kafka.Writer{
		Addr:         kafka.TCP(addr),
		Topic:        topic,
		Balancer:     &kafka.Murmur2Balancer{},
		RequiredAcks: kafka.RequireAll,
		BatchTimeout: 10 * time.Millisecond,
	}
	defer w.Close()
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

// consumeGroup reads n messages as a member of group (committing them) and closes the reader.
func consumeGroup(ctx context.Context, t *testing.T, addr, topic, group string, n int) []kafka.Message {
	t.Helper()
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:     []string{addr},
		Topic:       topic,
		GroupID:     group,
		StartOffset: kafka.FirstOffset,
		MaxWait:     time.Second,
		ErrorLogger: kafka.LoggerFunc(func(f string, a ...any) { t.Logf("group %s: reader error: "+f, append([]any{group}, a...)...) }),
	})
	defer r.Close()
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	var msgs []kafka.Message
	for len(msgs) < n {
		m, err := r.ReadMessage(ctx) // commits synchronously (CommitInterval 0)
		if err != nil {
			t.Fatalf("group %s: read message %d of %d: %v", group, len(msgs)+1, n, err)
		}
		msgs = append(msgs, m)
	}
	// Nothing more should be waiting for this group.
	extra, cancelExtra := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancelExtra()
	if m, err := r.FetchMessage(extra); err == nil {
		t.Fatalf("group %s: unexpected extra message %s=%s (partition %d offset %d)",
			group, m.Key, m.Value, m.Partition, m.Offset)
	}
	return msgs
}

func wantValues(t *testing.T, msgs []kafka.Message, want ...string) {
	t.Helper()
	var got []string
	for _, m := range msgs {
		got = append(got, string(m.Value))
	}
	sort.Strings(got)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got values %v, want %v", got, want)
	}
}
