package inspector

import (
	"bytes"
	"encoding/json"
	"fmt"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/relaykit/twilio-relay/relay"
	"github.com/relaykit/twilio-relay/relay/twilio"
)

// The cost of the record on the request path, side by side with it off, and its memory at its default
// bounds (docs/benchmarks.md):
//
//	go test -run '^$' -bench . -benchmem ./relay/inspector/
//	go test -run '^$' -bench MemoryAtDefaults -benchtime 1x ./relay/inspector/

// sampleEvents decodes n distinct message-delivered events (the sample, with fresh ids), delivered to
// Kafka: what the pipeline hands the receiver's monitors. Sorted re-encodes the sample with its keys in
// alphabetical order: messageSid, which the record reads from data, is then the 9th of 15 fields instead
// of the first, as Twilio sends it.
func sampleEvents(b *testing.B, n int, sorted ...bool) []relay.EventOutcome {
	s, err := twilio.Samples()
	if err != nil {
		b.Fatal(err)
	}
	sample := s["message-delivered"]
	if len(sorted) > 0 && sorted[0] {
		var m map[string]any
		if err := json.Unmarshal(sample, &m); err != nil {
			b.Fatal(err)
		}
		sample, _ = json.Marshal(m) // encoding/json writes map keys sorted, nested ones too
	}
	var ev struct{ ID string }
	if err := json.Unmarshal(sample, &ev); err != nil {
		b.Fatal(err)
	}
	out := make([]relay.EventOutcome, n)
	for i := range out {
		// The sample as Twilio orders it (messageSid first in data), with its own id.
		raw := bytes.Replace(sample, []byte(`"`+ev.ID+`"`), fmt.Appendf(nil, `"EZ%032x"`, i), 1)
		bt := twilio.Decode("events", raw, time.Now(), twilio.DecodeOptions{})
		out[i] = relay.EventOutcome{Event: bt.Events[0], Fate: relay.Delivered, Sinks: []relay.SinkOutcome{{Route: "messaging",
			Sink: "kafka", Topic: "twilio.messaging", Attempts: 1, Took: 2 * time.Millisecond,
			Position: relay.Position{Set: true, Partition: int32(i % 6), Offset: int64(i)}}}}
	}
	return out
}

// monitor is what the receiver calls after each batch: nothing (the inspector off) or the record.
type monitor interface {
	Processed(*relay.Batch, relay.Outcome, error)
}

type off struct{}

func (off) Processed(*relay.Batch, relay.Outcome, error) {}

// BenchmarkProcessed is the time the receiver spends telling the record about one event, in bodies of 1
// and of 50 events (Twilio's batch_events), with the record off, on, and on with keep_data. The record
// is full first: what it costs after its first hour, every slot reused and the oldest evicted.
func BenchmarkProcessed(b *testing.B) {
	evs, sorted := sampleEvents(b, 4096), sampleEvents(b, 4096, true)
	for _, size := range []int{1, 50} {
		for _, mode := range []string{"off", "on", "on+keys-sorted", "on+keep_data"} {
			b.Run(fmt.Sprintf("%s/batch=%d", mode, size), func(b *testing.B) {
				var m monitor = off{}
				batch := &relay.Batch{Endpoint: "events", ReceivedAt: time.Now()}
				evs := evs
				if mode == "on+keys-sorted" {
					evs = sorted
				}
				if mode != "off" {
					r := New(Config{KeepData: mode == "on+keep_data"}.Defaults())
					fill(r, evs) // the steady state: a full ring, its memory allocated, the oldest evicted
					m = r
				}
				i := 0
				b.ReportAllocs()
				cpu := cpuTime()
				for b.Loop() {
					out := relay.Outcome{Events: evs[i : i+size]}
					m.Processed(batch, out, nil)
					if i += size; i+size > len(evs) {
						i = 0
					}
				}
				cpu = cpuTime() - cpu
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*size), "ns/event")
				// The process's CPU time (garbage collection included) is not stretched by waiting for a
				// core, which wall time is on a machine shared with other work.
				b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N*size), "cpu-ns/event")
			})
		}
	}
}

// fill records events until the ring is full, as an hour of traffic leaves it.
func fill(r *Record, evs []relay.EventOutcome) {
	batch := &relay.Batch{Endpoint: "events", ReceivedAt: time.Now()}
	for i := 0; i < r.cfg.MaxEvents; i += len(evs) {
		r.Processed(batch, relay.Outcome{Events: evs}, nil)
	}
}

// BenchmarkResourceSID is the largest part of the record's work, alone: the resource SID read from the
// sample's data. A yardstick: run beside BenchmarkProcessed, the ratio holds however loaded the machine.
func BenchmarkResourceSID(b *testing.B) {
	ev := sampleEvents(b, 1)[0].Event
	b.ReportAllocs()
	for b.Loop() {
		if ev.ResourceSID() == "" {
			b.Fatal("no SID")
		}
	}
}

// BenchmarkProcessedParallel is BenchmarkProcessed on with 1-event bodies from every core at once: the
// lock shared by the requests in flight.
func BenchmarkProcessedParallel(b *testing.B) {
	evs := sampleEvents(b, 4096)
	r := New(Config{}.Defaults())
	fill(r, evs)
	batch := &relay.Batch{Endpoint: "events", ReceivedAt: time.Now()}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			r.Processed(batch, relay.Outcome{Events: evs[i : i+1]}, nil)
			i = (i + 1) % len(evs)
		}
	})
}

// BenchmarkMemoryAtDefaults fills a record at its default bounds with an hour of 100 events/s (360 000
// sample events) and reports what it allocated (its slots and arena), the heap it holds after a
// collection, and both per event.
func BenchmarkMemoryAtDefaults(b *testing.B) {
	evs := sampleEvents(b, 4096)
	for b.Loop() {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		r := New(Config{}.Defaults())
		batch := &relay.Batch{Endpoint: "events", ReceivedAt: time.Now()}
		for i := range DefaultMaxEvents {
			ev := evs[i%len(evs)]
			e := *ev.Event
			e.ID = fmt.Sprintf("EZ%032x", i) // every event its own id, as Twilio's
			ev.Event = &e
			r.Processed(batch, relay.Outcome{Events: []relay.EventOutcome{ev}}, nil)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		if r.Len() != DefaultMaxEvents {
			b.Fatalf("holds %d events, want %d: the default byte bound is too small for them", r.Len(), DefaultMaxEvents)
		}
		held := float64(after.HeapAlloc) - float64(before.HeapAlloc)
		b.ReportMetric(float64(r.Memory())/(1<<20), "MiB-allocated")
		b.ReportMetric(held/(1<<20), "MiB-heap")
		b.ReportMetric(held/float64(r.Len()), "B/event")
		runtime.KeepAlive(r)
		b.StopTimer()
		b.ReportMetric(float64(searchTime(r).Microseconds())/1000, "ms-full-search")
		b.StartTimer()
	}
}

// cpuTime returns the CPU time the process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// searchTime is how long a search for an id the record does not hold takes: the whole ring scanned.
func searchTime(r *Record) time.Duration {
	start := time.Now()
	if len(r.Events(Query{ID: "EZnotthere"})) != 0 {
		panic("found")
	}
	return time.Since(start)
}
