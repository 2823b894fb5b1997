package relay_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/relaykit/twilio-relay/relay"
	"github.com/relaykit/twilio-relay/relay/relaytest"
)

// A misconfigured destination is tried once: neither retried within the request nor dead-lettered,
// and the request fails (503) so that the sender keeps the event.
func TestMisconfiguredIsNotRetried(t *testing.T) {
	f := newFixture(t, relay.NoRouteDeadLetter)
	missing := relay.Misconfigured(errors.New("topic other does not exist"))
	f.other.SetReject(func(relay.Message) error { return missing })
	out, err := process(t, f, batch(ev("1", "a.x"), ev("2", "b.y")), 2*time.Second)
	if relay.ErrorCode(err) != relay.EUNAVAILABLE {
		t.Fatalf("Process: %v, want EUNAVAILABLE", err)
	}
	if n := f.other.Writes(); n != 1 {
		t.Errorf("the misconfigured sink was written %d times, want once", n)
	}
	if n := len(f.dlq.Acked()); n != 0 {
		t.Errorf("%d dead letters, want none: the event is not at fault", n)
	}
	if out.Events[0].Fate != relay.Delivered || out.Events[1].Fate != relay.Failed || !relay.IsMisconfigured(out.Events[1].Err) {
		t.Errorf("outcomes %+v, want the first delivered and the second failed as misconfigured", out.Events)
	}
}

func TestStaticTopics(t *testing.T) {
	r := &relay.Router{Routes: []relay.Route{
		{Name: "messaging", Targets: []relay.Target{{Sink: "kafka", Topic: relay.MustParseTemplate("twilio.messaging")}}},
		{Name: "all", Targets: []relay.Target{
			{Sink: "kafka", Topic: relay.MustParseTemplate("twilio.messaging")},
			{Sink: "kafka", Topic: relay.MustParseTemplate("twilio.{type}")},
			{Sink: "redis", Topic: relay.MustParseTemplate("events{{raw}}")},
		}},
	}}
	uses, templated := relay.StaticTopics(r, relay.DeadLetterTarget{Sink: "kafka", Topic: "twilio.deadletter"})
	got := fmt.Sprint(uses)
	want := "[{kafka twilio.deadletter [dead letter]} {kafka twilio.messaging [route messaging route all]} {redis events{raw} [route all]}]"
	if got != want {
		t.Errorf("static topics\n%s\nwant\n%s", got, want)
	}
	if len(templated) != 1 || templated[0].Route != "all" || templated[0].Topic.String() != "twilio.{type}" {
		t.Errorf("templated %+v, want route all's twilio.{type}", templated)
	}
}

// TypeTopics routes the catalog's types as the router would: first match wins unless it continues or
// selects by more than endpoint and type.
func TestTypeTopics(t *testing.T) {
	r := &relay.Router{Routes: []relay.Route{
		{Name: "failed", Match: relay.Match{Types: relay.Globs{"*.message.*"}, Conditions: []relay.Condition{{Field: "data.status", Equals: "failed"}}},
			Targets: []relay.Target{{Sink: "kafka", Topic: relay.MustParseTemplate("failed.{type}")}}},
		{Name: "messages", Match: relay.Match{Types: relay.Globs{"*.message.*"}},
			Targets: []relay.Target{{Sink: "kafka", Topic: relay.MustParseTemplate("{endpoint}.{type}")}}},
		{Name: "by-account", Targets: []relay.Target{{Sink: "kafka", Topic: relay.MustParseTemplate("acct.{data.accountSid}")}}},
	}}
	uses, unnamed := relay.TypeTopics(r, "events", []string{"com.twilio.messaging.message.sent", "com.twilio.voice.x"})
	var topics []string
	for _, u := range uses {
		topics = append(topics, u.Topic)
	}
	want := []string{"events.com.twilio.messaging.message.sent", "failed.com.twilio.messaging.message.sent"}
	if !slices.Equal(topics, want) {
		t.Errorf("topics %v, want %v (by-account is never reached by messages: messages catches them)", topics, want)
	}
	if len(unnamed) != 1 || unnamed[0].Route != "by-account" {
		t.Errorf("unnamed %+v, want route by-account (only voice events reach it)", unnamed)
	}
}

// checker is a sink whose checks a test sets.
type checker struct {
	relaytest.Sink
	checks func(topics []string) []relay.Check
}

func (c *checker) Check(_ context.Context, topics []string) []relay.Check { return c.checks(topics) }

func TestRunChecks(t *testing.T) {
	k := &checker{checks: func(topics []string) []relay.Check {
		out := []relay.Check{{Name: "connect", Status: relay.CheckPassed}}
		for _, tp := range topics {
			out = append(out, relay.Check{Name: "topic " + tp, Topic: tp, Status: relay.CheckFailed, Detail: "does not exist", Fix: "create it"})
		}
		return out
	}}
	checks := relay.RunChecks(context.Background(), map[string]relay.Sink{"kafka": k, "plain": &relaytest.Sink{}},
		[]relay.TopicUse{{Sink: "kafka", Topic: "a", Users: []string{"route r", "dead letter"}}})
	var lines []string
	for _, c := range checks {
		lines = append(lines, c.String())
	}
	want := []string{
		"✓ kafka: connect",
		"✗ kafka: topic a (route r, dead letter): does not exist — fix: create it",
		"? plain: checks: this kind of sink has none",
	}
	if !slices.Equal(lines, want) {
		t.Errorf("lines\n%q\nwant\n%q", lines, want)
	}
}
