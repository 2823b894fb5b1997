package dedupe

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relaykit/twilio-relay/relay"
)

func TestRememberSeenExpire(t *testing.T) {
	c, err := New(Config{Window: 300 * time.Millisecond, MaxIDs: 1000}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	if c.Seen(relay.NewKey("a")) {
		t.Fatal("fresh cache has seen a")
	}
	if !c.Remember(relay.NewKey("a")) {
		t.Fatal("Remember refused on an empty cache")
	}
	c.Wait()
	if !c.Seen(relay.NewKey("a")) || c.Seen(relay.NewKey("b")) {
		t.Fatal("Seen wrong after Remember(a)")
	}
	// ristretto's TTL sweep runs on a ticker (1 s buckets), so allow it a few seconds.
	deadline := time.Now().Add(5 * time.Second)
	for c.Seen(relay.NewKey("a")) && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if c.Seen(relay.NewKey("a")) {
		t.Fatal("a is still remembered long after its window")
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	for _, cfg := range []Config{{}, {Window: time.Hour}, {MaxIDs: 10}} {
		if _, err := New(cfg, nil); err == nil {
			t.Errorf("New(%+v) succeeded", cfg)
		}
	}
}

// TestMissedUnderLoad measures what ristretto's lossy writes cost a deduper: many goroutines remember
// distinct ids as fast as they can; afterwards, every id should be seen. The test fails only if more than
// 1% is missed within capacity (far above what was measured: see docs/dedupe.md); it logs the figures.
func TestMissedUnderLoad(t *testing.T) {
	const workers, perWorker = 8, 50_000
	c, err := New(Config{Window: time.Hour, MaxIDs: workers * perWorker * 2}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	var refused atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWorker {
				if !c.Remember(relay.NewKey(fmt.Sprintf("ep\x00src\x00EZ%02d%08d", w, i))) {
					refused.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	took := time.Since(start)
	immediate := 0 // seen right away, before the write buffers drain
	for i := range perWorker {
		if !c.Seen(relay.NewKey(fmt.Sprintf("ep\x00src\x00EZ%02d%08d", 0, i))) {
			immediate++
		}
	}
	c.Wait()
	missed := 0
	for w := range workers {
		for i := range perWorker {
			if !c.Seen(relay.NewKey(fmt.Sprintf("ep\x00src\x00EZ%02d%08d", w, i))) {
				missed++
			}
		}
	}
	total := workers * perWorker
	t.Logf("%d ids in %v (%.0f/s) from %d goroutines: Set refused %d, missing after Wait %d (%.4f%%), "+
		"missing right after the burst (worker 0) %d of %d",
		total, took.Round(time.Millisecond), float64(total)/took.Seconds(), workers, refused.Load(), missed,
		100*float64(missed)/float64(total), immediate, perWorker)
	if missed > total/100 {
		t.Fatalf("%d of %d ids missed: ristretto lost far more than measured before", missed, total)
	}
}

// BenchmarkMemoryPerID reports the heap bytes each remembered id costs.
func BenchmarkMemoryPerID(b *testing.B) {
	const ids = 1_000_000
	for range b.N {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		c, err := New(Config{Window: time.Hour, MaxIDs: ids}, nil)
		if err != nil {
			b.Fatal(err)
		}
		for i := range ids {
			c.Remember(relay.NewKey(fmt.Sprintf("events\x00/2010-04-01/Accounts/AC1/Messages/SM%030d.json\x00EZ%032d", i, i)))
			if i%10000 == 0 {
				c.Wait() // keep the write buffer from dropping: measure storage, not drops
			}
		}
		c.Wait()
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/ids, "bytes/id")
		_ = c.Close(context.Background())
	}
}

func BenchmarkSeenRemember(b *testing.B) {
	c, _ := New(Config{Window: time.Hour, MaxIDs: 10_000_000}, nil)
	defer c.Close(context.Background())
	var n atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			k := fmt.Sprintf("events\x00/src\x00EZ%032d", n.Add(1))
			if !c.Seen(relay.NewKey(k)) {
				c.Remember(relay.NewKey(k))
			}
		}
	})
}

// TestSeenOnceRemembered: a key is seen as soon as Remember returns true, as relay.Deduper promises
// (ristretto applies its writes on a goroutine of its own, a little later).
func TestSeenOnceRemembered(t *testing.T) {
	c, err := New(Config{Window: time.Hour, MaxIDs: 100_000}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	var wg sync.WaitGroup
	var unseen atomic.Int64
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 5000 {
				key := fmt.Sprintf("w%d-%d", w, i)
				if c.Remember(relay.NewKey(key)) && !c.Seen(relay.NewKey(key)) {
					unseen.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if n := unseen.Load(); n > 0 {
		t.Errorf("%d of 20000 keys were not seen right after Remember returned true", n)
	}
}
