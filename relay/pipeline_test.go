package relay_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relaykit/twilio-relay/relay"
	"github.com/relaykit/twilio-relay/relay/relaytest"
)

type fixture struct {
	p      *relay.Pipeline
	main   *relaytest.Sink
	other  *relaytest.Sink
	dlq    *relaytest.Sink
	dedupe *relaytest.Deduper
}

// newFixture routes type "a.*" to sink main, "b.*" to sink other, and dead-letters to sink dlq.
func newFixture(t *testing.T, noRoute relay.NoRoutePolicy, extra ...relay.Route) *fixture {
	t.Helper()
	return newFixtureBackoff(t, noRoute, relay.Backoff{Initial: time.Millisecond, Max: 5 * time.Millisecond, Multiplier: 2}, extra...)
}

// oneAttempt is a backoff that leaves no time for a second attempt within any test's deadline: the
// delivery ends long before the deadline, whatever the machine's load.
var oneAttempt = relay.Backoff{Initial: time.Hour, Max: time.Hour, Multiplier: 1}

func newFixtureBackoff(t *testing.T, noRoute relay.NoRoutePolicy, backoff relay.Backoff, extra ...relay.Route) *fixture {
	t.Helper()
	f := &fixture{main: &relaytest.Sink{}, other: &relaytest.Sink{}, dlq: &relaytest.Sink{}, dedupe: &relaytest.Deduper{}}
	routes := append([]relay.Route{
		{Name: "a", Match: relay.Match{Types: []relay.Glob{"a.*"}}, Targets: []relay.Target{{Sink: "main", Topic: relay.MustParseTemplate("t.{type}")}}},
		{Name: "b", Match: relay.Match{Types: []relay.Glob{"b.*"}}, Targets: []relay.Target{{Sink: "other", Topic: relay.MustParseTemplate("other")}}},
		{Name: "test", Match: relay.Match{Types: []relay.Glob{relay.TestEventType}}, Targets: []relay.Target{{Sink: "main", Topic: relay.MustParseTemplate("tests")}}},
	}, extra...)
	p, err := relay.NewPipeline(relay.PipelineConfig{
		Router:     &relay.Router{Routes: routes},
		Sinks:      map[string]relay.Sink{"main": f.main, "other": f.other, "dlq": f.dlq},
		DeadLetter: relay.DeadLetterTarget{Sink: "dlq", Topic: "dead"},
		NoRoute:    noRoute,
		Dedupe:     f.dedupe,
		Backoff:    backoff,
	})
	if err != nil {
		t.Fatal(err)
	}
	f.p = p
	return f
}

// waitWrites waits for the writes of p that outlived their requests.
func waitWrites(t *testing.T, p *relay.Pipeline) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

func ev(id, typ string) *relay.Event {
	return &relay.Event{Endpoint: "ep", SpecVersion: "1.0", ID: id, Source: "/src", Type: typ,
		Data: []byte(`{"messageSid":"SM` + id + `"}`), Raw: []byte(`{"id":"` + id + `"}`)}
}

func batch(evs ...*relay.Event) *relay.Batch {
	return &relay.Batch{Endpoint: "ep", ReceivedAt: time.Now(), Events: evs}
}

func process(t *testing.T, f *fixture, b *relay.Batch, deadline time.Duration) (relay.Outcome, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	return f.p.Process(ctx, b)
}

func TestPipelineDeliversAndDedupes(t *testing.T) {
	f := newFixture(t, relay.NoRouteDeadLetter)
	out, err := process(t, f, batch(ev("1", "a.x"), ev("2", "b.y"), ev("3", "a.z")), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if out.Counts != (relay.Counts{Delivered: 3}) {
		t.Fatalf("outcome %+v, want 3 delivered", out)
	}
	acked := f.main.Acked()
	if len(acked) != 2 || acked[0].Topic != "t.a.x" || string(acked[0].Key) != "SM1" || len(f.other.Acked()) != 1 {
		t.Fatalf("main acked %+v, other %d", acked, len(f.other.Acked()))
	}
	// A retry of the same batch, and a batch repeating an id, produce nothing again.
	out, err = process(t, f, batch(ev("1", "a.x"), ev("2", "b.y"), ev("3", "a.z"), ev("4", "a.x"), ev("4", "a.x")), time.Second)
	if err != nil || out.Counts != (relay.Counts{Delivered: 1, Duplicates: 4}) {
		t.Fatalf("second pass: %+v, %v; want 1 delivered, 4 duplicates", out, err)
	}
	if len(f.main.Acked()) != 3 {
		t.Fatalf("main acked %d messages, want 3", len(f.main.Acked()))
	}
}

func TestPipelineRetriesTransientFailures(t *testing.T) {
	f := newFixture(t, relay.NoRouteDeadLetter)
	f.main.FailNext(3)
	out, err := process(t, f, batch(ev("1", "a.x")), time.Second)
	if err != nil || out.Delivered != 1 {
		t.Fatalf("%+v, %v; want delivered after retries", out, err)
	}
	if w := f.main.Writes(); w != 4 {
		t.Errorf("writes = %d, want 4 (3 failures, 1 success)", w)
	}
}

func TestPipelineSinkDownIsUnavailableAndNotRemembered(t *testing.T) {
	f := newFixture(t, relay.NoRouteDeadLetter)
	f.main.SetDown(true)
	_, err := process(t, f, batch(ev("1", "a.x"), ev("2", "b.y")), 100*time.Millisecond)
	var rerr *relay.Error
	if !errors.As(err, &rerr) || rerr.Code != relay.EUNAVAILABLE || rerr.RetryAfter <= 0 {
		t.Fatalf("err = %v, want EUNAVAILABLE with Retry-After", err)
	}
	// The delivery may still be in main's last attempt at the deadline: it remembers what landed when it
	// ends (the events stay claimed until then, so a retry waits for it). Close waits for it.
	waitWrites(t, f.p)
	if f.dedupe.Seen(ev("1", "a.x").Key()) {
		t.Fatal("an unacknowledged event was remembered: its retry would be dropped as a duplicate")
	}
	if !f.dedupe.Seen(ev("2", "b.y").Key()) {
		t.Fatal("the event its sink acknowledged was not remembered")
	}
	f.main.SetDown(false)
	out, err := process(t, f, batch(ev("1", "a.x"), ev("2", "b.y")), time.Second)
	if err != nil || out.Counts != (relay.Counts{Delivered: 1, Duplicates: 1}) {
		t.Fatalf("retry: %+v, %v; want 1 delivered, 1 duplicate", out, err)
	}
	if n := len(f.other.Acked()); n != 1 {
		t.Fatalf("other acked %d, want 1: the retry must not produce the acknowledged event again", n)
	}
}

func TestPipelineHonoursDeadline(t *testing.T) {
	f := newFixture(t, relay.NoRouteDeadLetter)
	f.main.SetBlock(true)
	start := time.Now()
	_, err := process(t, f, batch(ev("1", "a.x")), 200*time.Millisecond)
	if relay.ErrorCode(err) != relay.EUNAVAILABLE {
		t.Fatalf("err = %v, want EUNAVAILABLE", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("Process took %v past a 200ms deadline", took)
	}
}

func TestPipelineDeadLetters(t *testing.T) {
	f := newFixture(t, relay.NoRouteDeadLetter,
		relay.Route{Name: "bad-template", Match: relay.Match{Types: []relay.Glob{"c.*"}},
			Targets: []relay.Target{{Sink: "main", Topic: relay.MustParseTemplate("{data.absent}")}}})
	f.main.SetReject(func(m relay.Message) error {
		if m.Event.ID == "big" {
			return relay.Permanent(errors.New("too large"))
		}
		return nil
	})
	b := batch(ev("ok", "a.x"), ev("big", "a.x"), ev("unrouted", "z.z"), ev("tmpl", "c.c"))
	b.Rejects = []relay.Reject{{Raw: []byte(`{"id":1}`), Reason: relay.ReasonInvalidEvent, Detail: "event 4: id is not a string"}}
	out, err := process(t, f, b, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if out.Counts != (relay.Counts{Delivered: 1, DeadLettered: 4}) {
		t.Fatalf("outcome %+v, want 1 delivered, 4 dead-lettered", out)
	}
	reasons := map[string]string{}
	for _, m := range f.dlq.Acked() {
		if m.Topic != "dead" || m.Event.Type != relay.DeadLetterType {
			t.Errorf("dead letter to %s of type %s", m.Topic, m.Event.Type)
		}
		reasons[m.Event.Extensions["originalid"]] = m.Event.Extensions["deadletterreason"]
		if m.Event.Extensions["endpoint"] != "ep" || m.Event.Extensions["deadletterdetail"] == "" {
			t.Errorf("dead letter lacks endpoint or detail: %v", m.Event.Extensions)
		}
	}
	want := map[string]string{"big": relay.ReasonSinkRejected, "unrouted": relay.ReasonNoRoute,
		"tmpl": relay.ReasonRouteError, "": relay.ReasonInvalidEvent}
	if fmt.Sprint(reasons) != fmt.Sprint(want) {
		t.Fatalf("dead-letter reasons %v, want %v", reasons, want)
	}
	for _, m := range f.dlq.Acked() {
		if m.Event.Extensions["originalid"] == "big" && string(m.Event.Data) != `{"id":"big"}` {
			t.Errorf("dead letter data = %s, want the original event bytes", m.Event.Data)
		}
	}
	// Dead-lettered events are safe: a retry is a duplicate.
	out, _ = process(t, f, batch(ev("big", "a.x")), time.Second)
	if out.Duplicates != 1 {
		t.Errorf("retry of a dead-lettered event: %+v, want a duplicate", out)
	}
}

// TestPipelineRejectLettersCapped: a body's rejects make at most MaxRejectLetters dead letters, the last
// holding the rest as one JSON array in order; the 200's count still counts every reject.
func TestPipelineRejectLettersCapped(t *testing.T) {
	for _, n := range []int{relay.MaxRejectLetters, relay.MaxRejectLetters + 1, 10_000} {
		f := newFixture(t, relay.NoRouteDeadLetter)
		b := batch(ev("ok", "a.x"))
		var all []string
		for i := range n {
			raw := fmt.Sprintf(`{"n":%d}`, i)
			all = append(all, raw)
			b.Rejects = append(b.Rejects, relay.Reject{Raw: []byte(raw), Reason: relay.ReasonInvalidEvent, Detail: fmt.Sprintf("event %d: bad", i+1)})
		}
		out, err := process(t, f, b, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		dls := f.dlq.Acked()
		if out.DeadLettered != n || len(dls) != min(n, relay.MaxRejectLetters) {
			t.Fatalf("%d rejects: %d counted, %d dead letters; want %d and %d", n, out.DeadLettered, len(dls), n, min(n, relay.MaxRejectLetters))
		}
		var got []string
		for _, m := range dls {
			if strings.HasPrefix(string(m.Event.Data), "[") {
				rest := strings.Split(strings.Trim(string(m.Event.Data), "[]"), "},")
				for i := range rest[:len(rest)-1] {
					rest[i] += "}"
				}
				got = append(got, rest...)
				if d := m.Event.Extensions["deadletterdetail"]; !strings.Contains(d, fmt.Sprintf("%d more rejects", n-relay.MaxRejectLetters+1)) ||
					m.Event.Extensions["deadletterreason"] != relay.ReasonInvalidEvent {
					t.Errorf("summary dead letter %v", m.Event.Extensions)
				}
				continue
			}
			got = append(got, string(m.Event.Data))
		}
		if strings.Join(got, " ") != strings.Join(all, " ") {
			t.Errorf("%d rejects: the dead letters do not hold every reject's bytes once, in order", n)
		}
	}
}

func TestPipelineDeadLetterDownFailsTheRequest(t *testing.T) {
	f := newFixture(t, relay.NoRouteDeadLetter)
	f.dlq.SetDown(true)
	b := batch(ev("ok", "a.x"))
	b.Rejects = []relay.Reject{{Raw: []byte(`not json`), Reason: relay.ReasonMalformedBody}}
	if _, err := process(t, f, b, 100*time.Millisecond); relay.ErrorCode(err) != relay.EUNAVAILABLE {
		t.Fatalf("err = %v, want EUNAVAILABLE when a dead letter cannot be written", err)
	}
	f2 := newFixture(t, relay.NoRouteDeadLetter)
	f2.dlq.SetDown(true)
	if _, err := process(t, f2, batch(ev("x", "unrouted")), 100*time.Millisecond); relay.ErrorCode(err) != relay.EUNAVAILABLE {
		t.Fatalf("err = %v, want EUNAVAILABLE", err)
	}
	if f2.dedupe.Seen(ev("x", "unrouted").Key()) {
		t.Fatal("an event whose dead letter failed was remembered")
	}
}

func TestPipelineNoRouteDrop(t *testing.T) {
	f := newFixture(t, relay.NoRouteDrop)
	out, err := process(t, f, batch(ev("x", "unrouted")), time.Second)
	if err != nil || out.Counts != (relay.Counts{Dropped: 1}) || len(f.dlq.Acked()) != 0 {
		t.Fatalf("%+v, %v, dlq %d; want dropped without a dead letter", out, err, len(f.dlq.Acked()))
	}
}

func TestPipelineNeverDedupesTestEvents(t *testing.T) {
	f := newFixture(t, relay.NoRouteDeadLetter)
	test := func(testID string) *relay.Event {
		e := ev("ACaccount", relay.TestEventType)
		e.Source = "Sink"
		e.Data = []byte(`{"test_id":"` + testID + `"}`)
		return e
	}
	for i := range 3 {
		out, err := process(t, f, batch(test(fmt.Sprint(i)), test(fmt.Sprint(i, "b"))), time.Second)
		if err != nil || out.Duplicates != 0 {
			t.Fatalf("pass %d: %+v, %v; test events must never be duplicates", i, out, err)
		}
	}
	if n := len(f.main.Acked()); n != 6 {
		t.Fatalf("acked %d test events, want 6", n)
	}
}

// gate is a sink whose writes wait until released, to hold an event in flight.
type gate struct {
	relaytest.Sink
	entered chan struct{}
	release chan struct{}
}

func (g *gate) Write(ctx context.Context, msgs []relay.Message) error {
	select {
	case g.entered <- struct{}{}:
	default: // a retry: nobody is waiting for it
	}
	select {
	case <-g.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	return g.Sink.Write(ctx, msgs)
}

func TestPipelineConcurrentDuplicates(t *testing.T) {
	for _, ownerFails := range []bool{false, true} {
		t.Run(fmt.Sprint("owner fails=", ownerFails), func(t *testing.T) {
			g := &gate{entered: make(chan struct{}, 1), release: make(chan struct{})}
			if ownerFails {
				g.SetDown(true)
			}
			p, err := relay.NewPipeline(relay.PipelineConfig{
				Router:     &relay.Router{Routes: []relay.Route{{Name: "all", Targets: []relay.Target{{Sink: "g", Topic: relay.MustParseTemplate("t")}}}}},
				Sinks:      map[string]relay.Sink{"g": g},
				DeadLetter: relay.DeadLetterTarget{Sink: "g", Topic: "dead"},
				Dedupe:     &relaytest.Deduper{},
				Backoff:    relay.Backoff{Initial: time.Second, Max: time.Second, Multiplier: 1},
			})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
			defer cancel()
			var wg sync.WaitGroup
			var first relay.Outcome
			var firstErr error
			wg.Add(1)
			go func() { defer wg.Done(); first, firstErr = p.Process(ctx, batch(ev("1", "a"))) }()
			<-g.entered // the first request holds event 1 in flight
			var second relay.Outcome
			var secondErr error
			wg.Add(1)
			go func() { defer wg.Done(); second, secondErr = p.Process(ctx, batch(ev("1", "a"))) }()
			time.Sleep(50 * time.Millisecond) // let the second request reach its wait
			close(g.release)
			wg.Wait()
			if ownerFails {
				if firstErr == nil || secondErr == nil {
					t.Fatalf("owner failed: errors %v / %v; both requests must fail so Twilio retries", firstErr, secondErr)
				}
				return
			}
			if firstErr != nil || secondErr != nil {
				t.Fatal(firstErr, secondErr)
			}
			if first.Delivered != 1 || second.Duplicates != 1 {
				t.Fatalf("first %+v second %+v; want one delivery and one duplicate", first, second)
			}
			if n := len(g.Acked()); n != 1 {
				t.Fatalf("sink acked %d copies, want 1", n)
			}
		})
	}
}

func TestNewPipelineChecksSinkNames(t *testing.T) {
	_, err := relay.NewPipeline(relay.PipelineConfig{
		Router:     &relay.Router{Routes: []relay.Route{{Name: "r", Targets: []relay.Target{{Sink: "nope"}}}}},
		Sinks:      map[string]relay.Sink{},
		DeadLetter: relay.DeadLetterTarget{Sink: "gone"},
		Dedupe:     &relaytest.Deduper{},
	})
	if err == nil {
		t.Fatal("NewPipeline accepted unknown sinks")
	}
	for _, want := range []string{`route r: no sink named "nope"`, `dead letter: no sink named "gone"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

// TestPipelineDuplicateArrivingAsTheOwnerLands: a request checks the dedupe memory, finds nothing, and
// before it claims the event, another request delivers it, remembers it and lands its flight. The first
// request must still find it a duplicate (it checks again once it owns the claim), not produce it twice.
func TestPipelineDuplicateArrivingAsTheOwnerLands(t *testing.T) {
	f := newFixture(t, relay.NoRouteDeadLetter)
	e := ev("E1", "a.x")
	var first atomic.Bool
	f.dedupe.AfterSeen = func(string) {
		if first.CompareAndSwap(false, true) { // the other request, delivered between this Seen and the claim
			if out, err := process(t, f, batch(e), time.Second); err != nil || out.Delivered != 1 {
				t.Errorf("the other request: %+v %v", out, err)
			}
		}
	}
	out, err := process(t, f, batch(e), time.Second)
	if err != nil || out.Duplicates != 1 || out.Delivered != 0 {
		t.Errorf("the first request: %+v %v, want one duplicate", out, err)
	}
	if n := len(f.main.Acked()); n != 1 {
		t.Errorf("the event was written %d times, want once", n)
	}
}

// fates returns "id=fate" for each event outcome, with the reason of a dead letter or a drop, and checks
// that the outcomes follow the batch's order.
func fates(t *testing.T, b *relay.Batch, out relay.Outcome) string {
	t.Helper()
	if len(out.Events) != len(b.Events) {
		t.Fatalf("%d event outcomes for %d events", len(out.Events), len(b.Events))
	}
	var s []string
	for i, o := range out.Events {
		if o.Event != b.Events[i] {
			t.Fatalf("outcome %d is of event %s, not %s", i, o.Event.ID, b.Events[i].ID)
		}
		f := o.Event.ID + "=" + o.Fate.String()
		if o.Reason != "" {
			f += "(" + o.Reason + ")"
		}
		s = append(s, f)
	}
	return strings.Join(s, " ")
}

// TestPipelineOutcomePerEvent checks that the Outcome says, event by event, what became of it and of each
// of its deliveries, and that the counts agree with it.
func TestPipelineOutcomePerEvent(t *testing.T) {
	both := relay.Route{Name: "both", Match: relay.Match{Types: []relay.Glob{"d.*"}},
		Targets: []relay.Target{{Sink: "main", Topic: relay.MustParseTemplate("m")}, {Sink: "other", Topic: relay.MustParseTemplate("o")}}}
	// One attempt: the transient refusal of "slow" must not keep main writing up to the deadline, where
	// the delivery could still be finishing its dead letters (their events then read still being written).
	f := newFixtureBackoff(t, relay.NoRouteDeadLetter, oneAttempt, both)
	f.main.SetReject(func(m relay.Message) error {
		switch m.Event.ID {
		case "big":
			return relay.Permanent(errors.New("too large"))
		case "slow":
			return relaytest.ErrDown
		}
		return nil
	})
	if _, err := process(t, f, batch(ev("seen", "a.x")), time.Second); err != nil {
		t.Fatal(err)
	}
	b := batch(ev("ok", "a.x"), ev("seen", "a.x"), ev("big", "d.x"), ev("none", "z.z"), ev("slow", "d.y"), ev("ok", "a.x"))
	out, err := process(t, f, b, 100*time.Millisecond)
	if relay.ErrorCode(err) != relay.EUNAVAILABLE {
		t.Fatalf("err = %v, want EUNAVAILABLE for the event main keeps refusing", err)
	}
	want := "ok=delivered seen=duplicate big=dead_lettered(sink_rejected) none=dead_lettered(no_route) slow=failed ok=duplicate"
	if got := fates(t, b, out); got != want {
		t.Fatalf("fates\n%s\nwant\n%s", got, want)
	}
	if out.Counts != (relay.Counts{Delivered: 1, Duplicates: 2, DeadLettered: 2}) {
		t.Errorf("counts %+v", out.Counts)
	}
	big, slow := out.Events[2], out.Events[4]
	if len(big.Sinks) != 2 || big.Sinks[0].Route != "both" || big.Sinks[0].Sink != "main" || big.Sinks[0].Topic != "m" ||
		!relay.IsPermanent(big.Sinks[0].Err) || big.Sinks[1].Sink != "other" || big.Sinks[1].Err != nil ||
		!strings.Contains(big.Detail, "sink main: too large") {
		t.Errorf("big: %+v", big)
	}
	if !errors.Is(slow.Err, relaytest.ErrDown) || !strings.Contains(slow.Err.Error(), "sink main") ||
		!errors.Is(slow.Sinks[0].Err, relaytest.ErrDown) || slow.Sinks[1].Err != nil {
		t.Errorf("slow: %+v", slow)
	}
	okAt := relay.Position{Set: true, Partition: relay.NoPartition, Offset: int64(len(f.main.Acked()) - 1)}
	if s := out.Events[0].Sinks; len(s) != 1 || s[0].Route != "a" || s[0].Sink != "main" || s[0].Topic != "t.a.x" ||
		s[0].Err != nil || s[0].Position != okAt || s[0].Attempts != 1 || s[0].Took <= 0 {
		t.Errorf("ok: deliveries %+v, want at %+v after one attempt", s, okAt)
	}
	if s := slow.Sinks[0]; s.Attempts != 1 || s.Position.Set { // oneAttempt: no time for a second
		t.Errorf("slow: %d attempts at %v, want one and no position", s.Attempts, s.Position)
	}
	dls := f.dlq.Acked()
	for _, o := range []relay.EventOutcome{big, out.Events[3]} { // where each dead letter landed
		if p := o.DeadLetterAt; !p.Set || p.Offset >= int64(len(dls)) || dls[p.Offset].Event.Extensions["originalid"] != o.Event.ID {
			t.Errorf("%s: dead letter at %+v, not where the dead-letter sink holds it", o.Event.ID, p)
		}
	}

	drop := newFixture(t, relay.NoRouteDrop)
	b = batch(ev("x", "z.z"), ev("t", relay.TestEventType))
	out, err = process(t, drop, b, time.Second)
	if got := fates(t, b, out); err != nil || got != "x=dropped(no_route) t=delivered" {
		t.Fatalf("drop: %s (%v)", got, err)
	}
}

// memSpool is a relay.Spool in memory.
type memSpool struct {
	mu   sync.Mutex
	msgs map[string][]relay.Message
}

func (s *memSpool) Has(sink string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.msgs[sink]) > 0
}

func (s *memSpool) Append(sink string, msgs []relay.Message) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.msgs == nil {
		s.msgs = map[string][]relay.Message{}
	}
	s.msgs[sink] = append(s.msgs[sink], msgs...)
	return nil
}

// TestPipelineOutcomeSpooled checks that an event the spool holds for one sink is spooled, safe and
// counted as delivered, and that Redeliver empties it into the sink once it is back.
func TestPipelineOutcomeSpooled(t *testing.T) {
	main, other, dlq := &relaytest.Sink{}, &relaytest.Sink{}, &relaytest.Sink{}
	sp := &memSpool{}
	p, err := relay.NewPipeline(relay.PipelineConfig{
		Router: &relay.Router{Routes: []relay.Route{{Name: "both", Targets: []relay.Target{
			{Sink: "main", Topic: relay.MustParseTemplate("m")}, {Sink: "other", Topic: relay.MustParseTemplate("o")}}}}},
		Sinks:      map[string]relay.Sink{"main": main, "other": other, "dlq": dlq},
		DeadLetter: relay.DeadLetterTarget{Sink: "dlq", Topic: "dead"},
		Dedupe:     &relaytest.Deduper{},
		Backoff:    relay.Backoff{Initial: time.Millisecond, Max: 5 * time.Millisecond, Multiplier: 2},
		Spool:      sp, SpoolSinks: map[string]bool{"main": true}, SpoolReserve: 50 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	main.SetDown(true)
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	b := batch(ev("1", "a.x"))
	out, err := p.Process(ctx, b)
	if got := fates(t, b, out); err != nil || got != "1=spooled" || out.Delivered != 1 {
		t.Fatalf("%s %+v (%v), want spooled and counted delivered", got, out.Counts, err)
	}
	if s := out.Events[0].Sinks; !s[0].Spooled || s[0].Err != nil || s[1].Spooled || len(other.Acked()) != 1 {
		t.Fatalf("deliveries %+v", s)
	}
	main.SetDown(false)
	if errs := p.Redeliver(context.Background(), "main", sp.msgs["main"]); errs[0] != nil || len(main.Acked()) != 1 {
		t.Fatalf("redeliver: %v, main holds %d", errs, len(main.Acked()))
	}
}

// TestPipelineOutcomeAttempts: a delivery's Attempts counts the writes it took, retries included, and its
// Position is the one the sink gave the write that took it.
func TestPipelineOutcomeAttempts(t *testing.T) {
	f := newFixture(t, relay.NoRouteDeadLetter)
	f.main.FailNext(2)
	out, err := process(t, f, batch(ev("retried", "a.x")), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	at := relay.Position{Set: true, Partition: relay.NoPartition, Offset: int64(len(f.main.Acked()) - 1)}
	if s := out.Events[0].Sinks[0]; s.Attempts != 3 || s.Position != at || s.Err != nil {
		t.Fatalf("delivery %+v, want 3 attempts, at %v", s, at)
	}
}
