package twilioapi_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/relaykit/twilio-relay/relay"
	"github.com/relaykit/twilio-relay/relay/twilioapi"
)

func testEvent(id string) *relay.Event {
	return &relay.Event{Endpoint: "events", SpecVersion: "1.0", ID: "AC1", Source: "Sink", Type: relay.TestEventType,
		Data: []byte(`{"test_id":"` + id + `"}`)}
}

var delivery = relay.SinkOutcome{Route: "tests", Sink: "kafka", Topic: "twilio.other"}

// processed is an Outcome of one event per (event, outcome) pair, as the pipeline returns it.
func processed(m *twilioapi.Monitor, at time.Time, outcomes ...relay.EventOutcome) {
	b := &relay.Batch{Endpoint: "events", ReceivedAt: at}
	for _, o := range outcomes {
		b.Events = append(b.Events, o.Event)
	}
	var err error
	for _, o := range outcomes {
		if o.Fate == relay.Failed {
			err = &relay.Error{Code: relay.EUNAVAILABLE, Reason: "sink_unavailable", Message: "retry"}
		}
	}
	m.Processed(b, relay.Outcome{Events: outcomes}, err)
}

func TestMonitor(t *testing.T) {
	m := twilioapi.NewMonitor(4)
	at := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	other := &relay.Event{Endpoint: "events", Type: "com.twilio.messaging.message.sent", ID: "EZ1", Source: "/x", Data: []byte(`{}`)}
	sinkDown := errors.New("sink kafka: write twilio.other: broker down")

	processed(m, at, relay.EventOutcome{Event: other, Fate: relay.Delivered}) // not a test event: not recorded
	processed(m, at, relay.EventOutcome{Event: testEvent("t1"), Fate: relay.Delivered, Sinks: []relay.SinkOutcome{delivery}})
	processed(m, at, relay.EventOutcome{Event: testEvent("t2"), Fate: relay.Failed, Err: sinkDown, Sinks: []relay.SinkOutcome{delivery}})
	processed(m, at, relay.EventOutcome{Event: testEvent("t3"), Fate: relay.DeadLettered, Reason: relay.ReasonSinkRejected,
		Detail: "sink kafka: too large", Sinks: []relay.SinkOutcome{delivery}})
	// In a body with events that were not all delivered, the test event's own outcome counts.
	processed(m, at, relay.EventOutcome{Event: testEvent("t4"), Fate: relay.Spooled, Sinks: []relay.SinkOutcome{delivery}},
		relay.EventOutcome{Event: other, Fate: relay.Dropped, Reason: relay.ReasonNoRoute})
	processed(m, at, relay.EventOutcome{Event: testEvent("t5"), Fate: relay.DeadLettered, Reason: relay.ReasonRouteError,
		Detail: "route tests: topic: data.x is absent"})
	m.Rejected(relay.Refusal{Endpoint: "events", Reason: "signature_mismatch", URL: "https://relay.example.com/e?bodySHA256=…", BodySHA256: true})
	for range twilioapi.RefusalsKept + 3 { // noise of another reason does not push it out
		m.Rejected(relay.Refusal{Endpoint: "events", Reason: "no_body_hash", URL: "https://relay.example.com/e"})
	}

	st := m.State()
	var got []string
	for _, te := range st.TestEvents {
		got = append(got, te.TestID+"="+te.Status)
	}
	// The ring keeps the last four, oldest first.
	if want := "t2=failed t3=dead_lettered t4=spooled t5=dead_lettered"; strings.Join(got, " ") != want {
		t.Fatalf("test events %q, want %q", got, want)
	}
	if te := st.TestEvents[0]; te.Detail != "sink_unavailable: "+sinkDown.Error() || te.Routes[0] != "tests → kafka:twilio.other" || !te.ReceivedAt.Equal(at) {
		t.Errorf("t2: %+v", te)
	}
	if te := st.TestEvents[1]; !strings.Contains(te.Detail, "sink_rejected: sink kafka: too large") || len(te.Routes) != 1 {
		t.Errorf("t3: %+v", te)
	}
	if te := st.TestEvents[3]; len(te.Routes) != 1 || te.Routes[0] != "error: route tests: topic: data.x is absent" {
		t.Errorf("t5: %+v", te)
	}
	sig, noHash := st.Refused["events"]["signature_mismatch"], st.Refused["events"]["no_body_hash"]
	if sig.Count != 1 || len(sig.Last) != 1 || !sig.Last[0].BodySHA256 || sig.Last[0].URL != "https://relay.example.com/e?bodySHA256=…" ||
		noHash.Count != twilioapi.RefusalsKept+3 || len(noHash.Last) != twilioapi.RefusalsKept || noHash.Last[0].BodySHA256 {
		t.Errorf("refusals %+v", st.Refused)
	}
	before := twilioapi.MonitorState{Refused: map[string]map[string]twilioapi.Refusals{"events": {"no_body_hash": {Count: 9}}}}
	if news := st.NewRefusals(&before, "events"); len(news) != 3 { // 1 signature_mismatch, 2 more no_body_hash
		t.Errorf("new refusals %+v, want 3", news)
	}

	// No route: the detail says so, and there are no routes.
	m2 := twilioapi.NewMonitor(0)
	processed(m2, at, relay.EventOutcome{Event: testEvent("t6"), Fate: relay.DeadLettered, Reason: relay.ReasonNoRoute})
	processed(m2, at, relay.EventOutcome{Event: testEvent("t7"), Fate: relay.Dropped, Reason: relay.ReasonNoRoute})
	st2 := m2.State()
	if te := st2.TestEvents[0]; te.Status != "dead_lettered" || !strings.Contains(te.Detail, "no route") || len(te.Routes) != 0 {
		t.Errorf("no route: %+v", te)
	}
	if te := st2.TestEvents[1]; te.Status != "dropped" || !strings.Contains(te.Detail, "no_route is drop") {
		t.Errorf("dropped: %+v", te)
	}

	rec := httptest.NewRecorder()
	m.ServeHTTP(rec, httptest.NewRequest("GET", "/twilio/test-events", nil))
	var doc struct {
		TestEvents []map[string]any                         `json:"test_events"`
		Refused    map[string]map[string]twilioapi.Refusals `json:"refused"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil || len(doc.TestEvents) != 4 || doc.TestEvents[0]["test_id"] != "t2" ||
		doc.Refused["events"]["signature_mismatch"].Last[0].URL == "" {
		t.Fatalf("JSON %s (%v)", rec.Body.String(), err)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("content type %q", ct)
	}
}

func TestMonitorConcurrent(t *testing.T) {
	m := twilioapi.NewMonitor(8)
	done := make(chan bool)
	for i := range 4 {
		go func() {
			for j := range 100 {
				processed(m, time.Now(), relay.EventOutcome{Event: testEvent(fmt.Sprint(i, j)), Fate: relay.Delivered})
				m.Rejected(relay.Refusal{Endpoint: "e", Reason: "x", URL: "u"})
				_ = m.State()
			}
			done <- true
		}()
	}
	for range 4 {
		<-done
	}
	if st := m.State(); len(st.TestEvents) != 8 || st.Refused["e"]["x"].Count != 400 || len(st.Refused["e"]["x"].Last) != twilioapi.RefusalsKept {
		t.Fatalf("%d test events, refusals %+v", len(st.TestEvents), st.Refused["e"]["x"])
	}
}
