package ledger

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/relaykit/twilio-relay/relay/loadgen"
	"github.com/relaykit/twilio-relay/relay/twilio/twiliotest"
)

// Driver sends genuine, signed events with known ids at a steady rate, the way Twilio's webhook sink
// does, and records every answer in its Ledger. Redeliver then plays Twilio's retries.
type Driver struct {
	Sender *twiliotest.Sender
	Ledger *Ledger
	Prefix string  // event ids are Prefix followed by a sequence number
	Rate   float64 // events per second
	Batch  int     // events per body; 1 when zero
	// DupEvery makes every DupEvery-th body carry again an event sent before, as Twilio's at-least-once
	// delivery does; 0: never.
	DupEvery    int
	Concurrency int // requests in flight at most; 64 when zero
	// Event builds the event for an id; Event (this package's) when nil.
	Event func(id string) json.RawMessage

	mu         sync.Mutex
	seq        int
	late       int
	maxLatency time.Duration
}

// Run sends for duration (or until ctx ends) and returns once every request has its answer. The arrival
// schedule is fixed; a body whose turn comes while Concurrency requests are in flight waits, and is
// counted by Late.
func (d *Driver) Run(ctx context.Context, duration time.Duration) {
	batch := max(d.Batch, 1)
	every := time.Duration(float64(time.Second) * float64(batch) / d.Rate)
	sem := make(chan struct{}, orDefault(d.Concurrency, 64))
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; ; i++ {
		at := start.Add(time.Duration(i) * every)
		if at.Sub(start) >= duration || ctx.Err() != nil {
			break
		}
		if wait := time.Until(at); wait > 0 {
			select {
			case <-time.After(wait):
			case <-ctx.Done():
			}
		}
		select {
		case sem <- struct{}{}:
		default:
			d.mu.Lock()
			d.late++
			d.mu.Unlock()
			sem <- struct{}{}
		}
		ids := d.nextIDs(batch, i)
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			d.post(ctx, ids)
		}()
	}
	wg.Wait()
}

func orDefault(v, def int) int {
	if v > 0 {
		return v
	}
	return def
}

// nextIDs returns the ids of body i: fresh ones, and an earlier one every DupEvery bodies.
func (d *Driver) nextIDs(n, i int) []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	ids := make([]string, 0, n+1)
	for range n {
		ids = append(ids, fmt.Sprintf("%s%06d", d.Prefix, d.seq))
		d.seq++
	}
	if d.DupEvery > 0 && i%d.DupEvery == d.DupEvery-1 && d.seq > n {
		// One of the last 2,000 events: Twilio's duplicates come within its retry schedule, not from
		// the distant past.
		back := 1 + (i*7919)%min(d.seq-n, 2000)
		ids = append(ids, fmt.Sprintf("%s%06d", d.Prefix, d.seq-n-back))
	}
	return ids
}

// Late returns how many bodies waited for a free request slot.
func (d *Driver) Late() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.late
}

func (d *Driver) post(ctx context.Context, ids []string) {
	evs := make([]json.RawMessage, len(ids))
	for i, id := range ids {
		if d.Event != nil {
			evs[i] = d.Event(id)
		} else {
			evs[i] = Event(id)
		}
	}
	start := time.Now()
	r, err := d.Sender.Post(ctx, evs)
	took := time.Since(start)
	d.Ledger.Record(ids, r.Status, err)
	d.mu.Lock()
	d.maxLatency = max(d.maxLatency, took)
	d.mu.Unlock()
}

// MaxLatency returns the longest a request waited for its answer (or its transport error).
func (d *Driver) MaxLatency() time.Duration {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.maxLatency
}

// redeliverConcurrency bounds the retries in flight: Twilio spreads its retries out rather than sending
// a backlog at once.
const redeliverConcurrency = 32

// Redeliver plays Twilio's retries: it re-posts, in bodies of Batch, every event not yet answered 200,
// until none is left or within has passed, and returns an error naming what is left.
func (d *Driver) Redeliver(ctx context.Context, within time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	for round := 0; ; round++ {
		left := d.Ledger.Unacknowledged()
		if len(left) == 0 {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("after %d rounds within %s, %d events are still not answered 200 (e.g. %s)",
				round, within, len(left), left[0])
		}
		d.Resend(ctx, left)
		if len(d.Ledger.Unacknowledged()) > 0 {
			select { // Twilio backs off between retries
			case <-time.After(500 * time.Millisecond):
			case <-ctx.Done():
			}
		}
	}
}

// Resend posts every event of ids again, in bodies of Batch, as Twilio does with events whose answer it
// never saw, and records the answers.
func (d *Driver) Resend(ctx context.Context, ids []string) {
	batch := max(d.Batch, 1)
	sem := make(chan struct{}, min(orDefault(d.Concurrency, 64), redeliverConcurrency))
	var wg sync.WaitGroup
	for i := 0; i < len(ids) && ctx.Err() == nil; i += batch {
		body := ids[i:min(i+batch, len(ids))]
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			d.post(ctx, body)
		}()
	}
	wg.Wait()
}

// Event returns a realistic event for id: a message status or a call summary (one in four), keyed by
// one of a few resource SIDs, so that both default topics and several partitions see traffic.
func Event(id string) json.RawMessage {
	typ, field, sid := "com.twilio.messaging.message.delivered", "messageSid", "SM"
	h := 0
	for _, c := range id {
		h = h*31 + int(c)
	}
	if h&3 == 0 {
		typ, field, sid = "com.twilio.voice.insights.call-summary.complete", "callSid", "CA"
	}
	sid = fmt.Sprintf("%s%032x", sid, h&0xff)
	return json.RawMessage(fmt.Sprintf(`{"specversion":"1.0","type":%q,"source":"/2010-04-01/Accounts/AC00000000000000000000000000000000/Resources/%s",`+
		`"id":%q,"dataschema":"https://events-schemas.twilio.com/Messaging.MessageStatus/2","datacontenttype":"application/json",`+
		`"time":"2026-11-23T10:00:00.000Z","data":{%q:%q,"accountSid":"AC00000000000000000000000000000000","status":"delivered","body":%q}}`,
		typ, sid, id, field, sid, strings.Repeat("hello ", 20)))
}

// KafkaIDs counts records per event id in every partition of the topics, read through broker.
func KafkaIDs(ctx context.Context, broker string, topics ...string) (map[string]int, error) {
	all := map[string]int{}
	for _, topic := range topics {
		ids, _, err := loadgen.ReadIDs(ctx, broker, topic)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", topic, err)
		}
		for id, n := range ids {
			all[id] += n
		}
	}
	return all, nil
}
