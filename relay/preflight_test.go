package relay

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// A failed check blocks at once until it has passed; after that it must fail twice in a row, so that a
// blip seen once does not make every replica unready. Each change of verdict is logged once.
func TestPreflightBlocking(t *testing.T) {
	var log bytes.Buffer
	p := &Preflight{cfg: PreflightConfig{Sinks: map[string]Sink{"kafka": nil, "file": nil},
		Logger: slog.New(slog.NewTextHandler(&log, nil))}, states: map[string]*checkState{}}
	if got := p.Blocking(); len(got) != 2 || !strings.Contains(got["kafka"], "not finished") {
		t.Fatalf("before the first run: %v, want every sink blocked", got)
	}
	missing := Check{Sink: "kafka", Name: "topic t", Status: CheckFailed, Detail: "does not exist", Fix: "create it"}
	exists := Check{Sink: "kafka", Name: "topic t", Status: CheckPassed}
	down := Check{Sink: "kafka", Name: "connect", Status: CheckDown, Detail: "no broker answered"}
	steps := []struct {
		checks []Check
		want   string // Blocking()["kafka"]
	}{
		{[]Check{missing}, "preflight: topic t: does not exist — fix: create it"},
		{[]Check{missing}, "preflight: topic t: does not exist — fix: create it"},
		{[]Check{exists}, ""},
		{[]Check{missing}, ""}, // once, after it passed: not yet
		{[]Check{down}, ""},    // the Ping's business; a run that did not get to the topic leaves its count
		{[]Check{missing}, "preflight: topic t: does not exist — fix: create it"}, // the second in a row
		{[]Check{missing}, "preflight: topic t: does not exist — fix: create it"},
		{[]Check{exists}, ""},
	}
	for i, s := range steps {
		p.record(s.checks)
		if got := p.Blocking()["kafka"]; got != s.want {
			t.Errorf("step %d: blocking %q, want %q", i, got, s.want)
		}
	}
	if got := p.Blocking(); len(got) > 0 {
		t.Errorf("at the end: %v, want nothing blocked", got)
	}
	lines := strings.Count(log.String(), "\n")
	// missing (new), exists, missing, connect down (new), missing blocks now, exists: 6 changes.
	if lines != 6 {
		t.Errorf("%d log lines, want one per change (6):\n%s", lines, log.String())
	}
}

// The loop runs the checks at once, then again, and stops on Close.
func TestPreflightLoop(t *testing.T) {
	runs := make(chan []string, 10)
	k := &checkerSink{check: func(topics []string) []Check {
		runs <- topics
		return []Check{{Name: "connect", Status: CheckDown}}
	}}
	p := StartPreflight(PreflightConfig{Sinks: map[string]Sink{"k": k}, Topics: []TopicUse{{Sink: "k", Topic: "t"}},
		Interval: time.Hour, Retry: time.Millisecond, Timeout: time.Second})
	for range 2 {
		select {
		case topics := <-runs:
			if len(topics) != 1 || topics[0] != "t" {
				t.Fatalf("checked %v, want [t]", topics)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no run: a failing check is retried after Retry")
		}
	}
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

type checkerSink struct {
	Sink
	check func([]string) []Check
}

func (c *checkerSink) Check(_ context.Context, topics []string) []Check { return c.check(topics) }
