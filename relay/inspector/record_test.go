package inspector

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/relaykit/twilio-relay/relay"
)

func event(id, sid string) *relay.Event {
	return &relay.Event{Endpoint: "events", SpecVersion: "1.0", ID: id, Type: "com.twilio.messaging.message.delivered",
		Source: "/2010-04-01/Accounts/AC1/Messages/" + sid + ".json", DataSchema: "https://events-schemas.twilio.com/Messaging.MessageStatus/5",
		Data: []byte(`{"messageSid":"` + sid + `","to":"+15550001111","from":"+15550002222","body":"hello","status":"delivered","n":[{"to":"x"}]}`)}
}

func batchOf(out ...relay.EventOutcome) (*relay.Batch, relay.Outcome) {
	b := &relay.Batch{Endpoint: "events", ReceivedAt: time.Now()}
	for _, o := range out {
		b.Events = append(b.Events, o.Event)
	}
	return b, relay.Outcome{Events: out}
}

func delivered(ev *relay.Event, offset int64) relay.EventOutcome {
	return relay.EventOutcome{Event: ev, Fate: relay.Delivered, Sinks: []relay.SinkOutcome{{Route: "messaging", Sink: "kafka",
		Topic: "twilio.messaging", Attempts: 1, Took: 3 * time.Millisecond, Position: relay.Position{Set: true, Partition: 2, Offset: offset}}}}
}

func process(r *Record, out ...relay.EventOutcome) {
	b, o := batchOf(out...)
	r.Processed(b, o, nil)
}

func newRecord(t *testing.T, cfg Config) *Record {
	t.Helper()
	cfg = cfg.Defaults()
	if errs := cfg.Validate(); len(errs) > 0 {
		t.Fatal(errs)
	}
	return New(cfg)
}

func TestSlotHoldsNoPointerAndIsSmall(t *testing.T) {
	if s := unsafe.Sizeof(slot{}); s != slotSize {
		t.Fatalf("slot is %d bytes, slotSize says %d", s, slotSize)
	}
}

func TestRecordAndSearch(t *testing.T) {
	r := newRecord(t, Config{})
	failed := relay.EventOutcome{Event: event("EZ3", "SM3"), Fate: relay.Failed, Err: errors.New("sink kafka: broker down"),
		Sinks: []relay.SinkOutcome{{Route: "messaging", Sink: "kafka", Topic: "twilio.messaging", Attempts: 4, Err: errors.New("broker down")}}}
	dead := relay.EventOutcome{Event: event("EZ4", "SM4"), Fate: relay.DeadLettered, Reason: relay.ReasonNoRoute,
		Detail: "no route matches the event", DeadLetterAt: relay.Position{Set: true, Partition: relay.NoPartition, Offset: 4096}}
	process(r, delivered(event("EZ1", "SM1"), 10), delivered(event("EZ2", "SM2"), 11), failed, dead)

	got := r.Events(Query{ID: "EZ1"})
	if len(got) != 1 {
		t.Fatalf("search by id: %d events", len(got))
	}
	e := got[0]
	if e.ID != "EZ1" || e.ResourceSID != "SM1" || e.Outcome != "delivered" || e.SchemaVersion != 5 || e.Endpoint != "events" ||
		e.Type != "com.twilio.messaging.message.delivered" || len(e.Sinks) != 1 {
		t.Fatalf("EZ1: %+v", e)
	}
	d := e.Sinks[0]
	if d.Route != "messaging" || d.Sink != "kafka" || d.Topic != "twilio.messaging" || d.At == nil || *d.At.Partition != 2 ||
		*d.At.Offset != 10 || d.At.Text != "partition 2 offset 10" || d.Attempts != 1 || d.LatencyMS != 3 {
		t.Fatalf("EZ1 delivery: %+v at %+v", d, d.At)
	}
	if got := r.Events(Query{SID: "SM3"}); len(got) != 1 || got[0].Outcome != "failed" || got[0].Detail != "sink kafka: broker down" ||
		got[0].Sinks[0].Error != "broker down" || got[0].Sinks[0].Attempts != 4 {
		t.Fatalf("search by SID: %+v", got)
	}
	if got := r.Events(Query{Outcome: "dead_lettered"}); len(got) != 1 || got[0].ID != "EZ4" || got[0].Reason != "no_route" ||
		got[0].DeadLetter == nil || got[0].DeadLetter.Text != "offset 4096" {
		t.Fatalf("dead-lettered: %+v", got)
	}
	all := r.Events(Query{})
	if ids := idsOf(all); ids != "EZ4 EZ3 EZ2 EZ1" {
		t.Fatalf("all, newest first: %s", ids)
	}
	if page := r.Events(Query{Limit: 2, Before: all[1].Seq}); idsOf(page) != "EZ2 EZ1" {
		t.Fatalf("page before %d: %s", all[1].Seq, idsOf(page))
	}
	if got := r.Events(Query{ID: "EZ1", Outcome: "failed"}); len(got) != 0 {
		t.Fatalf("every criterion must hold: %+v", got)
	}
	if hits := r.Routes(); fmt.Sprint(hits) != "[{messaging 3} {(no route) 1}]" {
		t.Fatalf("route hits %v", hits)
	}
	if eps := r.Endpoints(); len(eps) != 1 || eps[0].Verified != 1 || eps[0].Events != 4 {
		t.Fatalf("endpoints %+v", eps)
	}
}

func idsOf(evs []Event) string {
	var ids []string
	for _, e := range evs {
		ids = append(ids, e.ID)
	}
	return strings.Join(ids, " ")
}

// TestBounds fills the record past each bound: the oldest events go, the newest stay findable, and the
// memory never passes MaxBytes.
func TestBounds(t *testing.T) {
	t.Run("count", func(t *testing.T) {
		r := newRecord(t, Config{MaxEvents: 100})
		for i := range 250 {
			process(r, delivered(event(fmt.Sprint("EZ", i), "SM"), int64(i)))
		}
		if r.Len() != 100 {
			t.Fatalf("holds %d, want 100", r.Len())
		}
		if len(r.Events(Query{ID: "EZ149"})) != 0 || len(r.Events(Query{ID: "EZ150"})) != 1 || len(r.Events(Query{ID: "EZ249"})) != 1 {
			t.Fatal("not the newest 100")
		}
	})
	t.Run("bytes", func(t *testing.T) {
		const maxEvents = 50_000
		r := newRecord(t, Config{MaxEvents: maxEvents, MaxBytes: maxEvents*slotSize + 2*arenaChunk})
		big := strings.Repeat("x", 300)
		for i := range 30_000 {
			ev := event(fmt.Sprint("EZ", i), "SM"+big)
			process(r, delivered(ev, int64(i)))
		}
		if n := r.Len(); n >= 30_000 || n < 2*arenaChunk/1000 {
			t.Fatalf("holds %d events of ~700 B in 2 MiB", n)
		}
		if m := r.Memory(); m > r.cfg.MaxBytes {
			t.Fatalf("memory %d over MaxBytes %d", m, r.cfg.MaxBytes)
		}
		newest := r.Events(Query{ID: "EZ29999"})
		if len(newest) != 1 || newest[0].ResourceSID != "SM"+big || *newest[0].Sinks[0].At.Offset != 29999 {
			t.Fatalf("newest: %+v", newest)
		}
		all := r.Events(Query{Limit: 1000})
		for _, e := range all {
			if !strings.HasPrefix(e.ID, "EZ") || e.ResourceSID != "SM"+big {
				t.Fatalf("an event read back damaged: %+v", e)
			}
		}
	})
}

// TestNoDataUnlessKept: without keep_data nothing of data but the resource SID is kept; with it, the
// redacted paths are replaced wherever they are.
func TestNoDataUnlessKept(t *testing.T) {
	r := newRecord(t, Config{})
	process(r, delivered(event("EZ1", "SM1"), 1))
	if e := r.Events(Query{})[0]; e.Data != nil {
		t.Fatalf("data kept without keep_data: %s", e.Data)
	}
	r = newRecord(t, Config{KeepData: true, Redact: []string{"to", "from", "body", "n.to"}})
	process(r, delivered(event("EZ1", "SM1"), 1))
	got := string(r.Events(Query{})[0].Data)
	want := `{"body":"[redacted]","from":"[redacted]","messageSid":"SM1","n":[{"to":"[redacted]"}],"status":"delivered","to":"[redacted]"}`
	if got != want {
		t.Fatalf("data\n got %s\nwant %s", got, want)
	}
}

// TestLateOutcomes: a spooled event that the drainer delivers later, and a failed one settled late,
// are shown with their final outcome, once, with their time of arrival.
func TestLateOutcomes(t *testing.T) {
	r := newRecord(t, Config{})
	ev := event("EZ1", "SM1")
	spooled := relay.EventOutcome{Event: ev, Fate: relay.Spooled, Sinks: []relay.SinkOutcome{
		{Route: "all", Sink: "kafka", Topic: "t", Spooled: true}, {Route: "all", Sink: "file", Topic: "t", Position: relay.Position{Set: true, Offset: 7, Partition: relay.NoPartition}}}}
	b, out := batchOf(spooled)
	b.ReceivedAt = time.Now().Add(-time.Minute)
	r.Processed(b, out, nil)
	r.Redelivered("kafka", []relay.Message{{Event: ev, Topic: "t", Position: relay.Position{Set: true, Partition: 0, Offset: 99}}}, []error{nil})
	got := r.Events(Query{ID: "EZ1"})
	if len(got) != 1 || got[0].Outcome != "delivered" || !got[0].Late || got[0].Sinks[0].Spooled || got[0].Sinks[0].At.Text != "partition 0 offset 99" ||
		got[0].Sinks[1].At.Text != "offset 7" || !got[0].ReceivedAt.Equal(b.ReceivedAt.UTC().Truncate(0)) {
		t.Fatalf("after the spool delivered it: %+v", got)
	}

	ev2 := event("EZ2", "SM2")
	process(r, relay.EventOutcome{Event: ev2, Fate: relay.Failed, Err: errors.New("timeout")})
	r.Settle(delivered(ev2, 5))
	if got := r.Events(Query{ID: "EZ2"}); len(got) != 1 || got[0].Outcome != "delivered" || !got[0].Late {
		t.Fatalf("settled late: %+v", got)
	}

	// The write lands before the receiver tells the record about the request that answered 503.
	ev3 := event("EZ3", "SM3")
	r.Settle(delivered(ev3, 6))
	process(r, relay.EventOutcome{Event: ev3, Fate: relay.Failed, Err: errors.New("still being written")})
	if got := r.Events(Query{ID: "EZ3"}); len(got) != 1 || got[0].Outcome != "delivered" || !got[0].Late {
		t.Fatalf("settled before its request was recorded: %+v", got)
	}
}

func TestRefusals(t *testing.T) {
	r := newRecord(t, Config{MaxRefusals: 3})
	for i := range 5 {
		r.Rejected(relay.Refusal{Endpoint: "events", Reason: fmt.Sprint("r", i), Remote: "127.0.0.1", BodyBytes: i, URL: "https://x/?bodySHA256=ab"})
	}
	got := r.Refusals("", 10)
	if len(got) != 3 || got[0].Reason != "r4" || got[2].Reason != "r2" || got[0].Remote != "127.0.0.1" || got[0].BodyBytes != 4 {
		t.Fatalf("refusals %+v", got)
	}
	if eps := r.Endpoints(); eps[0].Refused != 5 || eps[0].LastRefusal.Reason != "r4" {
		t.Fatalf("endpoints %+v", eps)
	}
}
