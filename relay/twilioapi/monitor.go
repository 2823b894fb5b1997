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

// Rejection is the last request an endpoint refused before decoding, and how many it has refused.
type Rejection struct {
	Reason string `json:"reason"`
	// URL is the URL the signature was checked against: the endpoint's public URL and the query as
	// received. Never the token or the signature.
	URL   string    `json:"url"`
	At    time.Time `json:"at"`
	Count int64     `json:"count"`
}

// MonitorState is what the admin listener serves on GET /twilio/test-events.
type MonitorState struct {
	// TestEvents are the most recent test events, oldest first.
	TestEvents []TestEvent `json:"test_events"`
	// Rejections are, per endpoint, the last refused request.
	Rejections map[string]Rejection `json:"rejections"`
}

// Monitor remembers what `relay twilio test` needs to say which hop failed: the last test events the
// relay received with what became of them, and per endpoint the last request refused and why. The
// receiver feeds it (it is a receiver.Monitor); it is safe for concurrent use.
type Monitor struct {
	size int

	mu         sync.Mutex
	tests      []TestEvent // ring of size entries; next is the oldest once full
	next       int
	rejections map[string]Rejection
}

// NewMonitor returns a Monitor that keeps the last size test events (64 when size < 1).
func NewMonitor(size int) *Monitor {
	if size < 1 {
		size = 64
	}
	return &Monitor{size: size, rejections: map[string]Rejection{}}
}

// Rejected records a request the endpoint refused, with the URL its signature was checked against.
func (m *Monitor) Rejected(endpoint, reason, verifiedURL string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.rejections[endpoint]
	m.rejections[endpoint] = Rejection{Reason: reason, URL: verifiedURL, At: time.Now().UTC(), Count: r.Count + 1}
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
	st := MonitorState{TestEvents: make([]TestEvent, 0, len(m.tests)), Rejections: make(map[string]Rejection, len(m.rejections))}
	st.TestEvents = append(st.TestEvents, m.tests[m.next:]...)
	st.TestEvents = append(st.TestEvents, m.tests[:m.next]...)
	for k, v := range m.rejections {
		st.Rejections[k] = v
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
