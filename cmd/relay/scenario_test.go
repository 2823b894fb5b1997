package main

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/relaykit/twilio-relay/relay/relaytest/ledger"
	"github.com/relaykit/twilio-relay/relay/twilio/twiliotest"
)

// The fault scenarios share one shape: signed traffic with known ids at a steady rate, a fault injected
// on a timeline while it flows, Twilio's retries of whatever was not answered 200, and a ledger check of
// the topics. RELAY_FAULTS=long runs each for longer at a higher rate; the short form runs in CI.

// EnvFaults selects the scenarios' form: "long", or the short form otherwise.
const EnvFaults = "RELAY_FAULTS"

// load is a scenario's traffic: events per second, bodies of batch events, for dur.
type load struct {
	rate  float64
	batch int
	dur   time.Duration
}

// faultLoad returns the traffic of the short or the long form; the timeline of a scenario is given in
// fractions of dur so that both forms inject the same faults.
func faultLoad() load {
	if os.Getenv(EnvFaults) == "long" {
		return load{rate: 600, batch: 2, dur: 60 * time.Second}
	}
	return load{rate: 150, batch: 1, dur: 8 * time.Second}
}

// scenario drives one fault scenario.
type scenario struct {
	t      *testing.T
	name   string
	load   load
	ledger *ledger.Ledger
	driver *ledger.Driver
	start  time.Time
	done   chan struct{}
}

// newScenario prepares traffic to sender with ids unique to the scenario.
func newScenario(t *testing.T, name string, sender *twiliotest.Sender) *scenario {
	l := faultLoad()
	led := ledger.New()
	prefix := "EZ" + strings.NewReplacer("Test", "", "/", "-").Replace(t.Name()) + "-"
	return &scenario{t: t, name: name, load: l, ledger: led, driver: &ledger.Driver{
		Sender: sender, Ledger: led, Prefix: prefix, Rate: l.rate, Batch: l.batch, DupEvery: 10, Concurrency: 256,
	}}
}

// run starts the traffic in the background.
func (s *scenario) run() {
	s.start = time.Now()
	s.done = make(chan struct{})
	go func() {
		defer close(s.done)
		s.driver.Run(context.Background(), s.load.dur)
	}()
}

// at waits until the given fraction of the traffic's duration has passed, then logs what happens now.
func (s *scenario) at(fraction float64, what string) {
	s.t.Helper()
	if d := time.Until(s.start.Add(time.Duration(fraction * float64(s.load.dur)))); d > 0 {
		time.Sleep(d)
	}
	s.t.Logf("%5.1fs %s", time.Since(s.start).Seconds(), what)
}

// wait waits for the traffic to end.
func (s *scenario) wait() {
	select {
	case <-s.done:
	case <-time.After(s.load.dur + time.Minute):
		s.t.Fatal("the traffic did not end within a minute of its duration")
	}
	s.t.Logf("%5.1fs traffic ended; longest answer %s; %d bodies waited for a request slot",
		time.Since(s.start).Seconds(), s.driver.MaxLatency().Round(time.Millisecond), s.driver.Late())
}

// redeliver plays Twilio's retries of every event not yet answered 200, for 90 s at most, or longer
// for a larger backlog.
func (s *scenario) redeliver() {
	s.t.Helper()
	within := max(90*time.Second, time.Duration(len(s.ledger.Unacknowledged()))*20*time.Millisecond)
	if err := s.driver.Redeliver(context.Background(), within); err != nil {
		s.t.Fatalf("Twilio's retries: %v", err)
	}
}

// check compares found (records per id in the sink) with the ledger, saves the report, and fails the
// test on a lost, unexpected or forged record, or on more duplicates than dups, the scenario's target
// (ledger.DupsAtMost, or ledger.DupsReported).
func (s *scenario) check(found map[string]int, dups *float64, note string, quarantined ...string) ledger.Report {
	s.t.Helper()
	r := s.ledger.Check(s.name, found, quarantined...)
	r.Note, r.DupTarget = note, dups
	s.t.Log(r)
	for _, p := range r.Problems() {
		s.t.Error(p)
	}
	if r.Sent == 0 || r.Answered == 0 {
		s.t.Errorf("the scenario sent %d events and %d were answered 200: it proves nothing", r.Sent, r.Answered)
	}
	if err := r.Save(); err != nil {
		s.t.Errorf("save the report: %v", err)
	}
	return r
}

// kafkaIDs counts records per event id in the topics of testConfig's routes, and fails the test if
// any genuine event was dead-lettered (nothing in these scenarios is malformed).
func kafkaIDs(t *testing.T, broker string) map[string]int {
	t.Helper()
	found, err := ledger.KafkaIDs(context.Background(), broker, "twilio.messaging", "twilio.other")
	if err != nil {
		t.Fatal(err)
	}
	dead, err := ledger.KafkaIDs(context.Background(), broker, "twilio.deadletter")
	if err != nil {
		t.Fatal(err)
	}
	if len(dead) > 0 {
		t.Errorf("%d events were dead-lettered: %v", len(dead), dead)
	}
	return found
}
