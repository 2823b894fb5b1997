package inspector

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/relaykit/twilio-relay/relay"
)

// Event is what the record says of one event: the API's and the page's view.
type Event struct {
	// Seq numbers the record's entries in order; a later entry for the same event supersedes an earlier.
	Seq           uint64    `json:"seq"`
	ReceivedAt    time.Time `json:"received_at"`
	Endpoint      string    `json:"endpoint"`
	Type          string    `json:"type"`
	ID            string    `json:"id"`
	Source        string    `json:"source"`
	ResourceSID   string    `json:"resource_sid,omitempty"`
	SchemaVersion int       `json:"schema_version,omitempty"`
	// Outcome is the relay.Fate's name: delivered, spooled, duplicate, dead_lettered, dropped, failed.
	Outcome string `json:"outcome"`
	Reason  string `json:"reason,omitempty"`
	// Detail says why, for a dead-lettered event (the dead letter's detail) or a failed one (its error).
	Detail     string     `json:"detail,omitempty"`
	Sinks      []Delivery `json:"sinks"`
	DeadLetter *Where     `json:"dead_letter,omitempty"`
	// Late is set when the outcome was settled after the request was answered (the spool delivered it,
	// or a write was acknowledged late).
	Late bool `json:"late,omitempty"`
	// Data is the event's data, redacted; only with inspector.keep_data.
	Data json.RawMessage `json:"data,omitempty"`
	// Relay is the admin address that answered, filled in by `relay trace`.
	Relay string `json:"relay,omitempty"`
}

// Delivery is one of an event's deliveries.
type Delivery struct {
	Route   string `json:"route"`
	Sink    string `json:"sink"`
	Topic   string `json:"topic"`
	Spooled bool   `json:"spooled,omitempty"`
	// At is where the sink stored it, when the sink says.
	At        *Where  `json:"at,omitempty"`
	Attempts  int     `json:"attempts"`
	LatencyMS float64 `json:"latency_ms"`
	Error     string  `json:"error,omitempty"`
}

// Where is a relay.Position for people and programs.
type Where struct {
	Partition *int32 `json:"partition,omitempty"`
	Offset    *int64 `json:"offset,omitempty"`
	Stream    string `json:"stream,omitempty"`
	ID        string `json:"id,omitempty"`
	// Text is the whole of it in words: "partition 3 offset 1207".
	Text string `json:"text"`
}

func where(p relay.Position) *Where {
	if !p.Set {
		return nil
	}
	w := &Where{Stream: p.Stream, ID: p.ID, Text: p.String()}
	if p.Partition != relay.NoPartition {
		w.Partition = &p.Partition
	}
	if p.ID == "" {
		w.Offset = &p.Offset
	}
	return w
}

// Query selects events: every non-empty field must match. Limit bounds the answer (default 50, at most
// 1000); Before, when set, starts below that Seq (the next page).
type Query struct {
	ID, SID, Type, Outcome, Endpoint string
	Limit                            int
	Before                           uint64
}

// scanStep is how many slots a query reads per hold of the lock, so that a full scan never holds up the
// request path for long.
const scanStep = 4096

// Events returns the events q selects, newest first. Superseded entries are left out: each event
// appears with what the record last learned of it.
func (r *Record) Events(q Query) []Event {
	if q.Limit <= 0 {
		q.Limit = 50
	}
	q.Limit = min(q.Limit, 1000)
	out := []Event{}
	next := q.Before
	for len(out) < q.Limit {
		var done bool
		out, next, done = r.scan(q, next, out)
		if done {
			break
		}
	}
	return out
}

// scan reads up to scanStep slots below seq (from the newest when 0) under the lock, and appends what
// matches; it returns where to go on, and whether the ring is exhausted.
func (r *Record) scan(q Query, below uint64, out []Event) ([]Event, uint64, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	oldest := r.seq - uint64(r.n) + 1
	seq := r.seq
	if below != 0 && below <= seq+1 {
		seq = below - 1
	}
	for steps := 0; seq >= oldest && seq > 0; seq-- {
		if len(out) == q.Limit {
			return out, 0, true
		}
		if steps++; steps > scanStep {
			return out, seq + 1, false
		}
		s := r.slotAt(seq)
		if s.flags&superseded != 0 || !r.matches(q, s) {
			continue
		}
		out = append(out, r.view(s))
	}
	return out, 0, true
}

func (r *Record) matches(q Query, s *slot) bool {
	switch {
	case q.Outcome != "" && s.fate.String() != q.Outcome,
		q.Type != "" && r.names.name(s.typ) != q.Type,
		q.Endpoint != "" && r.names.name(s.endpoint) != q.Endpoint:
		return false
	case q.ID == "" && q.SID == "":
		return true
	}
	id, sid := idAndSID(r.payload(s))
	return (q.ID == "" || string(id) == q.ID) && (q.SID == "" || string(sid) == q.SID)
}

// view decodes a slot into an Event.
func (r *Record) view(s *slot) Event {
	e := r.names.decode(r.payload(s))
	ev := Event{Seq: s.seq, ReceivedAt: time.Unix(0, s.at).UTC(), Endpoint: r.names.name(s.endpoint), Type: r.names.name(s.typ),
		ID: e.id, Source: e.source, ResourceSID: e.sid, SchemaVersion: e.schema, Outcome: s.fate.String(),
		Reason: e.reason, Detail: e.detail, Sinks: make([]Delivery, 0, len(e.sinks)), DeadLetter: where(e.deadLetter),
		Late: s.flags&late != 0, Data: e.data}
	if ev.DeadLetter != nil && r.cfg.DeadLetterSink != "" {
		ev.DeadLetter.Text = r.cfg.DeadLetterSink + ": " + ev.DeadLetter.Text
	}
	for _, d := range e.sinks {
		ev.Sinks = append(ev.Sinks, Delivery{Route: d.route, Sink: d.sink, Topic: d.topic, Spooled: d.spooled, At: where(d.pos),
			Attempts: d.attempts, LatencyMS: float64(d.took.Microseconds()) / 1000, Error: d.err})
	}
	return ev
}

// Len returns how many events the record holds, superseded entries included.
func (r *Record) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n
}

// formatBytes writes n bytes for people: "1 MiB", "512 KiB", "100 B".
func formatBytes(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return strconv.FormatInt(n>>20, 10) + " MiB"
	case n >= 1<<10:
		return strconv.FormatInt(n>>10, 10) + " KiB"
	}
	return strconv.FormatInt(n, 10) + " B"
}
