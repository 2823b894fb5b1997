package twilioapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/relaykit/twilio-relay/relay"
)

// This file is the relay's side of the self-test: the Monitor records, in the running relay, what SelfTest
// then reads from its admin listener (GET /twilio/test-events).

// TestEvent is a sink test event the relay received (type com.twilio.eventstreams.test-event).
type TestEvent struct {
	TestID     string    `json:"test_id"`
	Endpoint   string    `json:"endpoint"`
	ReceivedAt time.Time `json:"received_at"`
	// Status is what became of it: the pipeline's fate ("delivered", "spooled", "dead_lettered",
	// "dropped", "failed"; see relay.Fate).
	Status string `json:"status"`
	// Routes are its deliveries ("route → sink:topic"), or the error of the route that could not render
	// its topic or key ("error: …").
	Routes []string `json:"routes"`
	Detail string   `json:"detail,omitempty"`
}

// Rejection is a request an endpoint refused before decoding.
type Rejection struct {
	Reason string `json:"reason"`
	// URL is the endpoint's public URL, the one its signatures are checked against, with
	// "?bodySHA256=…" when the request's query had that parameter. The rest of the query is whoever
	// was refused's to choose, and is not kept; never the token or the signature either.
	URL string `json:"url"`
	// BodySHA256 tells whether the query had the bodySHA256 parameter, as every request of Twilio's
	// Event Streams does.
	BodySHA256 bool      `json:"body_sha256"`
	At         time.Time `json:"at"`
}

// Refusals is an endpoint's record of one reason: how many requests it refused for it, and the last
// few, newest first.
type Refusals struct {
	Count int64       `json:"count"`
	Last  []Rejection `json:"last"`
}

// RefusalsKept is how many refusals of each reason the Monitor keeps per endpoint: requests anyone can
// send (a forged signature) cannot push Twilio's own refusal of another reason out, and need several
// to push one of the same reason out.
const RefusalsKept = 8

// MonitorState is what the admin listener serves on GET /twilio/test-events.
type MonitorState struct {
	// TestEvents are the most recent test events, oldest first.
	TestEvents []TestEvent `json:"test_events"`
	// Refused are, per endpoint and reason, the requests it refused.
	Refused map[string]map[string]Refusals `json:"refused"`
}

// NewRefusals returns the refusals of an endpoint in cur that are not in before (the same state read
// earlier), newest first.
func (cur *MonitorState) NewRefusals(before *MonitorState, endpoint string) []Rejection {
	var out []Rejection
	for reason, r := range cur.Refused[endpoint] {
		n := r.Count - before.Refused[endpoint][reason].Count
		out = append(out, r.Last[:min(int64(len(r.Last)), max(n, 0))]...)
	}
	slices.SortFunc(out, func(a, b Rejection) int { return b.At.Compare(a.At) })
	return out
}

// Merge adds another replica's state to cur: its test events, and its refusals (counts added, the last
// ones of both kept, newest first).
func (cur *MonitorState) Merge(other *MonitorState) {
	cur.TestEvents = append(cur.TestEvents, other.TestEvents...)
	if cur.Refused == nil {
		cur.Refused = map[string]map[string]Refusals{}
	}
	for ep, byReason := range other.Refused {
		if cur.Refused[ep] == nil {
			cur.Refused[ep] = map[string]Refusals{}
		}
		for reason, r := range byReason {
			m := cur.Refused[ep][reason]
			m.Count += r.Count
			m.Last = append(m.Last, r.Last...)
			slices.SortFunc(m.Last, func(a, b Rejection) int { return b.At.Compare(a.At) })
			m.Last = m.Last[:min(len(m.Last), RefusalsKept)]
			cur.Refused[ep][reason] = m
		}
	}
}

// Monitor remembers what `relay twilio test` needs to say which hop failed: the last test events the
// relay received with what became of them, and per endpoint and reason the requests refused. The
// receiver feeds it (it is a receiver.Monitor); it is safe for concurrent use.
type Monitor struct {
	size int

	mu      sync.Mutex
	tests   []TestEvent // ring of size entries; next is the oldest once full
	next    int
	refused map[string]map[string]Refusals
}

// NewMonitor returns a Monitor that keeps the last size test events (64 when size < 1).
func NewMonitor(size int) *Monitor {
	if size < 1 {
		size = 64
	}
	return &Monitor{size: size, refused: map[string]map[string]Refusals{}}
}

// Rejected records a request the endpoint refused: the reason, its URL without the query (see
// Rejection.URL) and whether the query had bodySHA256.
func (m *Monitor) Rejected(f relay.Refusal) {
	endpoint, reason := f.Endpoint, f.Reason
	rej := Rejection{Reason: reason, URL: f.URL, BodySHA256: f.BodySHA256, At: f.At}
	if rej.At.IsZero() {
		rej.At = time.Now().UTC()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	byReason := m.refused[endpoint]
	if byReason == nil {
		byReason = map[string]Refusals{}
		m.refused[endpoint] = byReason
	}
	r := byReason[reason]
	r.Count++
	if len(r.Last) < RefusalsKept {
		r.Last = append(r.Last, Rejection{})
	}
	copy(r.Last[1:], r.Last)
	r.Last[0] = rej
	byReason[reason] = r
}

// Processed records the test events of a batch the pipeline has processed, each with its own outcome; err
// is the pipeline's answer to the whole request, whose reason prefixes a failed event's detail.
func (m *Monitor) Processed(b *relay.Batch, out relay.Outcome, err error) {
	for i := range out.Events {
		if o := &out.Events[i]; o.Event.IsTest() {
			m.add(testEvent(b, o, err))
		}
	}
}

// testEvent describes what became of a test event.
func testEvent(b *relay.Batch, o *relay.EventOutcome, err error) TestEvent {
	id, _ := o.Event.Field("data.test_id")
	te := TestEvent{TestID: id, Endpoint: b.Endpoint, ReceivedAt: b.ReceivedAt.UTC(), Status: o.Fate.String(), Routes: []string{}}
	for _, d := range o.Sinks {
		te.Routes = append(te.Routes, fmt.Sprintf("%s → %s:%s", d.Route, d.Sink, d.Topic))
	}
	switch {
	case o.Fate == relay.Dropped:
		te.Detail = "no route matches it and no_route is drop"
	case o.Fate == relay.DeadLettered && o.Reason == relay.ReasonNoRoute:
		te.Detail = "no route matches it (no_route: dead_letter)"
	case o.Fate == relay.DeadLettered && o.Reason == relay.ReasonRouteError:
		te.Routes = []string{"error: " + o.Detail}
		te.Detail = o.Reason + ": " + o.Detail + " (see the dead-letter topic)"
	case o.Fate == relay.DeadLettered:
		te.Detail = o.Reason + ": " + o.Detail + " (see the dead-letter topic)"
	case o.Fate == relay.Failed:
		te.Detail = o.Err.Error()
		if rerr := (*relay.Error)(nil); errors.As(err, &rerr) {
			te.Detail = rerr.Reason + ": " + te.Detail
		}
	}
	return te
}

func (m *Monitor) add(te TestEvent) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.tests) < m.size {
		m.tests = append(m.tests, te)
		return
	}
	m.tests[m.next] = te
	m.next = (m.next + 1) % m.size
}

// State returns a copy of what the Monitor holds.
func (m *Monitor) State() MonitorState {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := MonitorState{TestEvents: make([]TestEvent, 0, len(m.tests)), Refused: make(map[string]map[string]Refusals, len(m.refused))}
	st.TestEvents = append(st.TestEvents, m.tests[m.next:]...)
	st.TestEvents = append(st.TestEvents, m.tests[:m.next]...)
	for ep, byReason := range m.refused {
		st.Refused[ep] = make(map[string]Refusals, len(byReason))
		for reason, r := range byReason {
			st.Refused[ep][reason] = Refusals{Count: r.Count, Last: slices.Clone(r.Last)}
		}
	}
	for i := range st.TestEvents {
		st.TestEvents[i].Routes = slices.Clone(st.TestEvents[i].Routes)
	}
	return st
}

// ServeHTTP serves State as JSON (GET /twilio/test-events on the admin listener).
func (m *Monitor) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(m.State())
}
