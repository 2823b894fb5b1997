package kafka_test

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/relaykit/twilio-relay/relay/devkafka"
	"github.com/relaykit/twilio-relay/relay/kafka"
)

// kafkaGoGoroutines counts the goroutines running kafka-go code.
func kafkaGoGoroutines() (int, string) {
	buf := make([]byte, 4<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n, first := 0, ""
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "github.com/segmentio/kafka-go.") {
			if n++; first == "" {
				first = g
			}
		}
	}
	return n, first
}

// TestCloseReleasesConnections checks that Close leaves no kafka-go goroutine (connection pool,
// metadata refresh, connections) behind. It is not parallel, so that no other test's sink runs
// meanwhile, and uses the in-process devkafka broker, so it needs no jars.
func TestCloseReleasesConnections(t *testing.T) {
	before, _ := kafkaGoGoroutines()
	b, err := devkafka.Start(0)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close(context.Background())
	s, err := kafka.New("leak", kafka.Config{Brokers: []string{b.Addr()}, AllowAutoTopicCreation: true}.Defaults(), discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, s, msg("leak", "SM1", event("EZ1", "SM1")))
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	deadline := time.Now().Add(1500 * time.Millisecond)
	for {
		n, stack := kafkaGoGoroutines()
		if n <= before {
			return
		}
		if time.Now().After(deadline) {
			t.Logf("%d kafka-go goroutines left after Close, e.g.:\n%s", n-before, stack)
			t.Fatalf("%d kafka-go goroutines left after Close", n-before)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
