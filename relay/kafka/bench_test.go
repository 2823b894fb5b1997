package kafka_test

import (
	"fmt"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/relaykit/twilio-relay/relay"
	"github.com/relaykit/twilio-relay/relay/kafka"
	"github.com/relaykit/twilio-relay/relay/relaytest/kafkaserver"
)

// BenchmarkSinkWrite is the sink alone against a real broker: 64 concurrent writers, each write one
// request's messages (1, or 50 as in a batched Event Streams body) to a 3-partition topic with acks=all.
// It reports messages/s, the process's CPU time per message (user + system, every goroutine: the
// sink's and kafka-go's work; the broker is another process) and messages per produce request.
//
//	RELAY_KAFKA_LIBS=$(scripts/kafka/fetch.sh) go test -run '^$' -bench SinkWrite -benchtime 2000x ./relay/kafka/
func BenchmarkSinkWrite(b *testing.B) {
	srv := kafkaserver.Start(b, kafkaserver.LibsFromEnv(b))
	for _, size := range []int{1, 50} {
		b.Run(fmt.Sprintf("messages=%d", size), func(b *testing.B) {
			topic := fmt.Sprintf("bench-%d-%d", size, b.N)
			srv.CreateTopic(b, topic, 3)
			s := newSink(b, srv.Addr(), kafka.Config{})
			var seq atomic.Int64
			body := func() []relay.Message {
				msgs := make([]relay.Message, size)
				for i := range msgs {
					n := seq.Add(1)
					sid := fmt.Sprintf("SM%032d", n%97)
					msgs[i] = msg(topic, sid, event(fmt.Sprintf("EZ%030d", n), sid))
				}
				return msgs
			}
			mustWrite(b, s, body()...) // metadata and connections
			var failed atomic.Int64
			stats := kafka.NewCollector(s)
			requests0, _ := produceRequests(b, stats)
			b.SetParallelism(32) // 64 writers on 2 cores
			b.ResetTimer()
			cpu0, start := cpuTime(), time.Now()
			b.RunParallel(func(pb *testing.PB) {
				msgs := body() // written again and again: the sink copies nothing it need not
				for pb.Next() {
					if err := write(b, s, 20*time.Second, msgs...); err != nil {
						failed.Add(1)
					}
				}
			})
			b.StopTimer()
			elapsed, cpu := time.Since(start), cpuTime()-cpu0
			requests, _ := produceRequests(b, stats)
			msgs := float64(b.N * size)
			b.ReportMetric(msgs/elapsed.Seconds(), "msgs/s")
			b.ReportMetric(float64(cpu.Microseconds())/msgs, "cpu-µs/msg")
			b.ReportMetric(msgs/(requests-requests0), "msgs/req")
			if failed.Load() > 0 {
				b.Errorf("%d of %d writes failed", failed.Load(), b.N)
			}
		})
	}
}

// cpuTime is the process's CPU time so far, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
