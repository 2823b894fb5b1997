package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relaykit/twilio-relay/relay"
	"github.com/relaykit/twilio-relay/relay/config"
	"github.com/relaykit/twilio-relay/relay/filesink"
)

// TestDLQReplay: events no route matched are dead-lettered to Kafka; after the routes are fixed,
// `relay dlq replay` sends them through the routes again and they land in their topic.
func TestDLQReplay(t *testing.T) {
	k := startKafka(t)
	h := startRelay(t, k, map[string]string{"OTHER_TYPES": "com.twilio.nothing"}) // voice events: no route
	for i := range 3 {
		r := h.post(event(fmt.Sprintf("VWdlq%d", i), "com.twilio.voice.insights.call-summary.complete", "CAdlq"))
		if r.Status != 200 || !strings.Contains(string(r.Body), `"dead_lettered":1`) {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
	}
	if r := h.post(event("EZdlqok", "com.twilio.messaging.message.sent", "SMdlq")); r.Status != 200 {
		t.Fatalf("%d", r.Status)
	}
	// The fixed configuration: the shipped test config, everything-else matching again.
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(testConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TOKEN", token)
	t.Setenv("BROKERS", k.Addr())
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"dlq", "replay", "-config", path, "-dry-run"}, &out, &errOut); err != nil {
		t.Fatalf("dry run: %v %s", err, errOut.String())
	}
	if !strings.Contains(out.String(), "3 dead letters would be replayed") || !strings.Contains(out.String(), "events\tno_route\tVWdlq0") {
		t.Fatalf("dry run said:\n%s", out.String())
	}
	if n := countByID(readTopic(t, k.Addr(), "twilio.other"))["VWdlq0"]; n != 0 {
		t.Fatalf("a dry run produced %d records", n)
	}
	out.Reset()
	if err := run(context.Background(), []string{"dlq", "replay", "-config", path, "-reason", "invalid_event"}, &out, &errOut); err != nil ||
		!strings.Contains(out.String(), "replayed 0 dead letters") {
		t.Fatalf("reason filter: %v %s", err, out.String())
	}
	out.Reset()
	if err := run(context.Background(), []string{"dlq", "replay", "-config", path}, &out, &errOut); err != nil {
		t.Fatalf("replay: %v\n%s", err, errOut.String())
	}
	if !strings.Contains(out.String(), "replayed 3 dead letters: 3 events delivered, 0 dead-lettered again") {
		t.Fatalf("replay said: %s", out.String())
	}
	got := countByID(readTopic(t, k.Addr(), "twilio.other"))
	for i := range 3 {
		if got[fmt.Sprintf("VWdlq%d", i)] != 1 {
			t.Errorf("VWdlq%d in twilio.other %d times after replay, want 1", i, got[fmt.Sprintf("VWdlq%d", i)])
		}
	}
}

// TestDeadLettersFromFile: a dead letter written by a file sink reads back with its endpoint, reason and
// original bytes, JSON or not.
func TestDeadLettersFromFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dead.jsonl")
	s, err := filesink.New("dlq", filesink.Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	orig := &relay.Event{ID: "EZ9", Type: "t", Source: "/s"}
	dls := []*relay.Event{
		relay.NewDeadLetter("events", []byte(`{"id":"EZ9"}`), relay.ReasonNoRoute, "no route", orig, time.Now()),
		relay.NewDeadLetter("events", []byte("{not json\x00"), relay.ReasonMalformedBody, "bad", nil, time.Now()),
	}
	for _, dl := range dls {
		if err := s.Write(context.Background(), []relay.Message{{Event: dl, Topic: "dead"}}); err != nil {
			t.Fatal(err)
		}
	}
	s.Close(context.Background())
	var got []deadLetter
	if err := readDeadLetters(context.Background(), &config.Config{}, path, func(d deadLetter, ok bool) {
		if ok {
			got = append(got, d)
		}
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Reason != relay.ReasonNoRoute || got[0].OriginalID != "EZ9" || string(got[0].Raw) != `{"id":"EZ9"}` ||
		got[1].Endpoint != "events" || string(got[1].Raw) != "{not json\x00" {
		t.Fatalf("read back %+v", got)
	}
}
