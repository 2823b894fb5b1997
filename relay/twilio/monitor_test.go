package twilio_test

import (
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/relaykit/twilio-relay/relay"
	"github.com/relaykit/twilio-relay/relay/twilio"
)

func testEvent(id string) *relay.Event {
	return &relay.Event{Endpoint: "events", SpecVersion: "1.0", ID: "AC1", Source: "Sink", Type: relay.TestEventType,
		Data: []byte(`{"test_id":"` + id + `"}`)}
}

func TestMonitor(t *testing.T) {
	topic, _ := relay.ParseTemplate("twilio.other")
	rt := &relay.Router{Routes: []relay.Route{{Name: "tests", Match: relay.Match{Types: []relay.Glob{"*.test-event"}},
		Targets: []relay.Target{{Sink: "kafka", Topic: topic}}}}}
	m := twilio.NewMonitor(rt, 3)
	at := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	batch := func(evs ...*relay.Event) *relay.Batch {
		return &relay.Batch{Endpoint: "events", ReceivedAt: at, Events: evs}
	}
	other := &relay.Event{Endpoint: "events", Type: "com.twilio.messaging.message.sent", ID: "EZ1", Source: "/x", Data: []byte(`{}`)}

	m.Processed(batch(other), relay.Outcome{Counts: relay.Counts{Delivered: 1}}, nil) // not a test event: not recorded
	m.Processed(batch(testEvent("t1")), relay.Outcome{Counts: relay.Counts{Delivered: 1}}, nil)
	m.Processed(batch(testEvent("t2")), relay.Outcome{}, &relay.Error{Code: relay.EUNAVAILABLE, Reason: "sink_unavailable", Message: "retry"})
	m.Processed(batch(testEvent("t3")), relay.Outcome{Counts: relay.Counts{DeadLettered: 1}}, nil)
	m.Processed(batch(testEvent("t4"), other), relay.Outcome{Counts: relay.Counts{Delivered: 1, Dropped: 1}}, nil)
	m.Rejected("events", "signature_mismatch", "https://relay.example.com/e?bodySHA256=ab")
	m.Rejected("events", "no_body_hash", "https://relay.example.com/e?")

	st := m.State()
	var got []string
	for _, te := range st.TestEvents {
		got = append(got, te.TestID+"="+te.Status)
	}
	// The ring keeps the last three, oldest first.
	if want := "t2=failed t3=dead_lettered t4=uncertain"; strings.Join(got, " ") != want {
		t.Fatalf("test events %q, want %q", got, want)
	}
	if te := st.TestEvents[0]; !strings.Contains(te.Detail, "sink_unavailable") || te.Routes[0] != "tests → kafka:twilio.other" || !te.ReceivedAt.Equal(at) {
		t.Errorf("t2: %+v", te)
	}
	r := st.Rejections["events"]
	if r.Count != 2 || r.Reason != "no_body_hash" || r.URL != "https://relay.example.com/e?" {
		t.Errorf("rejection %+v", r)
	}

	// No route: the detail says so.
	m2 := twilio.NewMonitor(&relay.Router{}, 0)
	m2.Processed(batch(testEvent("t5")), relay.Outcome{Counts: relay.Counts{DeadLettered: 1}}, nil)
	if te := m2.State().TestEvents[0]; te.Status != twilio.TestDeadLettered || !strings.Contains(te.Detail, "no route") || len(te.Routes) != 0 {
		t.Errorf("no route: %+v", te)
	}

	rec := httptest.NewRecorder()
	m.ServeHTTP(rec, httptest.NewRequest("GET", "/twilio/test-events", nil))
	var doc struct {
		TestEvents []map[string]any          `json:"test_events"`
		Rejections map[string]map[string]any `json:"rejections"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil || len(doc.TestEvents) != 3 || doc.TestEvents[0]["test_id"] != "t2" ||
		doc.Rejections["events"]["url"] == nil {
		t.Fatalf("JSON %s (%v)", rec.Body.String(), err)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("content type %q", ct)
	}
}

func TestMonitorConcurrent(t *testing.T) {
	m := twilio.NewMonitor(&relay.Router{}, 8)
	done := make(chan bool)
	for i := range 4 {
		go func() {
			for j := range 100 {
				m.Processed(&relay.Batch{Endpoint: "e", Events: []*relay.Event{testEvent(fmt.Sprint(i, j))}}, relay.Outcome{Counts: relay.Counts{Delivered: 1}}, nil)
				m.Rejected("e", "x", "u")
				_ = m.State()
			}
			done <- true
		}()
	}
	for range 4 {
		<-done
	}
	if st := m.State(); len(st.TestEvents) != 8 || st.Rejections["e"].Count != 400 {
		t.Fatalf("%d test events, %d rejections", len(st.TestEvents), st.Rejections["e"].Count)
	}
}
