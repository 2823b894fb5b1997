package main

import (
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/relaykit/twilio-relay/relay/relaytest/ledger"
)

// EnvSoak runs TestSoak for the given duration (scripts/reliability.sh soak 30m); it is skipped otherwise.
const EnvSoak = "RELAY_SOAK"

// TestSoak runs the relay binary under steady signed traffic with duplicates for $RELAY_SOAK, restarting
// the broker every five minutes (a graceful stop and a SIGKILL in turn), and samples the relay's memory
// and goroutines from its /metrics every 30 s. It passes when nothing answered 200 is missing and the
// relay's resident memory and goroutines in the last quarter are no higher than in the second by more
// than a margin. The dedupe window is 2 minutes (sized as in production: max_ids above rate × window),
// so that its memory reaches its steady state, ids expiring as fast as they come, within the first
// quarter. A 30-minute run with a 4-hour window and a 50,000-id cap grew the heap by ~8 MiB, which fits
// ristretto's expiry buckets (ttl.go: one Go map per 5 s, and Go maps never shrink) staying allocated for
// evicted ids until their 4 hours are up.
func TestSoak(t *testing.T) {
	d, err := time.ParseDuration(os.Getenv(EnvSoak))
	if err != nil || d <= 0 {
		t.Skipf("set %s to a duration to soak (scripts/reliability.sh soak 30m)", EnvSoak)
	}
	k := startKafka(t)
	p := newRelayProcess(t, testConfig+"dedupe: { window: 2m, max_ids: 100000 }\n", map[string]string{"BROKERS": k.Addr(), "DEADLINE": "1500ms"})
	p.Start()
	s := newScenario(t, fmt.Sprintf("soak: %s at 200 events/s, 1 in 5 bodies with a duplicate, broker restarted every 5 min", d), p.Sender())
	s.load = load{rate: 200, batch: 1, dur: d}
	s.driver.Rate, s.driver.DupEvery = 200, 5
	s.run()

	type sample struct {
		at         time.Duration
		rss, heap  float64
		goroutines float64
	}
	var samples []sample
	restarts := 0
	tick := time.NewTicker(30 * time.Second)
	defer tick.Stop()
	for running := true; running; {
		select {
		case <-s.done:
			running = false
		case <-tick.C:
			el := time.Since(s.start)
			smp := sample{at: el, rss: metric(t, p.Admin(), "process_resident_memory_bytes"),
				heap: metric(t, p.Admin(), "go_memstats_heap_inuse_bytes"), goroutines: metric(t, p.Admin(), "go_goroutines")}
			samples = append(samples, smp)
			t.Logf("%6s rss %.1f MiB, heap in use %.1f MiB, %v goroutines, %d events answered 200",
				el.Round(time.Second), smp.rss/(1<<20), smp.heap/(1<<20), smp.goroutines, s.ledger.Acknowledged())
			if el > time.Duration(restarts+1)*5*time.Minute && el < d-time.Minute {
				restarts++
				if restarts%2 == 1 {
					t.Logf("%6s broker stopped and restarted", el.Round(time.Second))
					k.Stop(t)
				} else {
					t.Logf("%6s broker SIGKILLed and restarted", el.Round(time.Second))
					k.Kill(t)
				}
				k.Restart(t)
			}
		}
	}
	s.wait()
	s.redeliver()
	if len(samples) < 8 {
		t.Fatalf("only %d samples: soak for at least 4 minutes", len(samples))
	}
	q := len(samples) / 4
	med := func(part []sample, f func(sample) float64) float64 {
		v := make([]float64, len(part))
		for i, x := range part {
			v[i] = f(x)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	rss := func(x sample) float64 { return x.rss }
	gor := func(x sample) float64 { return x.goroutines }
	early, late := samples[q:2*q], samples[len(samples)-q:]
	rssEarly, rssLate := med(early, rss), med(late, rss)
	gEarly, gLate := med(early, gor), med(late, gor)
	note := fmt.Sprintf("median RSS %.0f → %.0f MiB and goroutines %.0f → %.0f (second quarter → last quarter); %d broker restarts",
		rssEarly/(1<<20), rssLate/(1<<20), gEarly, gLate, restarts)
	if rssLate > rssEarly*1.25+16<<20 {
		t.Errorf("resident memory grew: %s", note)
	}
	if gLate > gEarly+50 {
		t.Errorf("goroutines grew: %s", note)
	}
	s.check(kafkaIDs(t, k.Addr()), ledger.DupsReported, note)
}
