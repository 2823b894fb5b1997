package twilio

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

// Test-event statuses: what became of a sink test event in the relay.
const (
	TestDelivered    = "delivered"     // acknowledged by every sink a route sent it to
	TestDeadLettered = "dead_lettered" // no route (no_route: dead_letter), or a sink refused it for good
	TestDropped      = "dropped"       // no route, and no_route is drop
	TestFailed       = "failed"        // a sink did not acknowledge in time; Twilio was answered 503
	TestUncertain    = "uncertain"     // it came in a body with other events, not all of which were delivered
)

// TestEvent is a sink test event the relay received (type com.twilio.eventstreams.test-event).
type TestEvent struct {
	TestID     string    `json:"test_id"`
	Endpoint   string    `json:"endpoint"`
	ReceivedAt time.Time `json:"received_at"`
	Status     string    `json:"status"`
	// Routes are the routes that match the event, with their targets ("route → sink:topic").
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
// relay received with what became of them, and per endpoint the last request refused and why. It is
// fed by the receiver and is safe for concurrent use.
type Monitor struct {
	router *relay.Router
	size   int

	mu         sync.Mutex
	tests      []TestEvent // ring of size entries; next is the oldest once full
	next       int
	rejections map[string]Rejection
}

// NewMonitor returns a Monitor that keeps the last size test events (64 when size < 1) and names the
// routes of router that match them.
func NewMonitor(router *relay.Router, size int) *Monitor {
	if size < 1 {
		size = 64
	}
	return &Monitor{router: router, size: size, rejections: map[string]Rejection{}}
}

// Rejected records a request the endpoint refused, with the URL its signature was checked against.
func (m *Monitor) Rejected(endpoint, reason, verifiedURL string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.rejections[endpoint]
	m.rejections[endpoint] = Rejection{Reason: reason, URL: verifiedURL, At: time.Now().UTC(), Count: r.Count + 1}
}

// Processed records the test events of a batch the pipeline has processed, with its outcome.
func (m *Monitor) Processed(b *relay.Batch, out relay.Outcome, err error) {
	for _, ev := range b.Events {
		if !ev.IsTest() {
			continue
		}
		te := TestEvent{TestID: testID(ev), Endpoint: b.Endpoint, ReceivedAt: b.ReceivedAt.UTC()}
		routes := m.routes(ev)
		te.Routes = routes
		var rerr *relay.Error
		switch {
		case errors.As(err, &rerr):
			te.Status, te.Detail = TestFailed, rerr.Reason+": "+rerr.Message
		case err != nil:
			te.Status, te.Detail = TestFailed, err.Error()
		case len(b.Events) > 1 && (out.DeadLettered > 0 || out.Dropped > 0):
			te.Status, te.Detail = TestUncertain, fmt.Sprintf("in a body of %d events: %+v", len(b.Events), out)
		case out.Dropped > 0:
			te.Status, te.Detail = TestDropped, "no route matches it and no_route is drop"
		case out.DeadLettered > 0 && len(routes) == 0:
			te.Status, te.Detail = TestDeadLettered, "no route matches it (no_route: dead_letter)"
		case out.DeadLettered > 0:
			te.Status, te.Detail = TestDeadLettered, "a sink refused it for good or a route template failed (see the dead-letter topic)"
		default:
			te.Status = TestDelivered
		}
		m.add(te)
	}
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

// routes names the routes that match ev, as "route → sink:topic". It works on a copy of the event so
// that the original, which a sink may still hold, is never written to.
func (m *Monitor) routes(ev *relay.Event) []string {
	if m.router == nil {
		return nil
	}
	cp := &relay.Event{Endpoint: ev.Endpoint, SpecVersion: ev.SpecVersion, ID: ev.ID, Source: ev.Source, Type: ev.Type,
		Subject: ev.Subject, Time: ev.Time, DataSchema: ev.DataSchema, DataContentType: ev.DataContentType,
		Extensions: ev.Extensions, Data: ev.Data, Binary: ev.Binary}
	ds, err := m.router.Route(cp)
	if err != nil {
		return []string{"error: " + err.Error()}
	}
	out := []string{}
	for _, d := range ds {
		out = append(out, fmt.Sprintf("%s → %s:%s", d.Route, d.Sink, d.Topic))
	}
	return out
}

// testID reads data.test_id without touching the event's lazily decoded fields.
func testID(ev *relay.Event) string {
	var d struct {
		TestID string `json:"test_id"`
	}
	if !ev.Binary {
		_ = json.Unmarshal(ev.Data, &d)
	}
	return d.TestID
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
