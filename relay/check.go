package relay

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
)

// CheckStatus is the verdict of one check.
type CheckStatus int

const (
	// CheckPassed (✓): what was checked is as the configuration needs it.
	CheckPassed CheckStatus = iota
	// CheckFailed (✗): the sink cannot take what the configuration sends it until someone acts: a
	// missing topic, refused credentials, no permission to write. No retry mends it.
	CheckFailed
	// CheckDown (✗): the destination did not answer (unreachable, timed out). It may pass by itself;
	// readiness learns of it from the sink's Ping, as it always has.
	CheckDown
	// CheckUnknown (?): the check could not tell (no permission to look, no probe without side
	// effects, a topic only events can name). Not a failure.
	CheckUnknown
)

// Mark returns the symbol of s: ✓, ✗ or ?.
func (s CheckStatus) Mark() string {
	switch s {
	case CheckPassed:
		return "✓"
	case CheckFailed, CheckDown:
		return "✗"
	}
	return "?"
}

func (s CheckStatus) String() string {
	switch s {
	case CheckPassed:
		return "passed"
	case CheckFailed:
		return "failed"
	case CheckDown:
		return "down"
	}
	return "unknown"
}

// Check is the result of one check of a sink: what was checked, the verdict, what was seen and, when it
// did not pass, what to do about it, in words.
type Check struct {
	Sink string // set by RunChecks
	// Name says what was checked ("connect", "topic twilio.events", "write twilio.events"); it is
	// stable from one run to the next, so that a change of verdict can be told.
	Name string
	// Topic is the destination the check is about, "" for a check of the sink as a whole.
	Topic  string
	Status CheckStatus
	Detail string
	Fix    string
}

// String is the check as one line: "✗ kafka: topic twilio.events: does not exist — fix: create it …".
func (c Check) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s: %s", c.Status.Mark(), c.Sink, c.Name)
	if c.Detail != "" {
		b.WriteString(": " + c.Detail)
	}
	if c.Fix != "" && c.Status != CheckPassed {
		b.WriteString(" — fix: " + c.Fix)
	}
	return b.String()
}

// Checker is implemented by sinks that can tell, before the first event, whether they can take what
// the configuration sends them. Check connects with the sink's configured address, TLS and credentials,
// and looks at each of topics (the destinations the routes and the dead-letter target name literally,
// whatever the sink calls them: topic, stream, subject) without writing anything: no probe message
// reaches any destination. It returns one Check per thing checked, the connection first, in a stable
// order, and returns once ctx ends at the latest. Check is safe for concurrent use with Write; the
// caller fills in Check.Sink.
//
// `relay check -connect`, serve's start and /readyz (through Preflight) use it.
type Checker interface {
	Check(ctx context.Context, topics []string) []Check
}

// TopicUse is a destination the configuration names literally, and what names it.
type TopicUse struct {
	Sink  string
	Topic string
	Users []string // "route all-events", "dead letter"
}

// TemplatedTarget is a route target whose topic only an event can name ("twilio.{type}").
type TemplatedTarget struct {
	Route string
	Sink  string
	Topic Template
}

// StaticTopics returns the destinations the routes' targets and the dead-letter target name literally,
// sorted by sink and topic, and the targets whose topic is a template.
func StaticTopics(r *Router, dl DeadLetterTarget) ([]TopicUse, []TemplatedTarget) {
	uses := map[[2]string][]string{}
	var templated []TemplatedTarget
	for _, rt := range r.Routes {
		for _, t := range rt.Targets {
			if lit, ok := t.Topic.Literal(); ok {
				k := [2]string{t.Sink, lit}
				uses[k] = append(uses[k], "route "+rt.Name)
				continue
			}
			templated = append(templated, TemplatedTarget{Route: rt.Name, Sink: t.Sink, Topic: t.Topic})
		}
	}
	if dl.Sink != "" {
		k := [2]string{dl.Sink, dl.Topic}
		uses[k] = append(uses[k], "dead letter")
	}
	return topicUses(uses), templated
}

// MergeTopicUses merges lists of uses into one, each destination once with every user, sorted.
func MergeTopicUses(lists ...[]TopicUse) []TopicUse {
	uses := map[[2]string][]string{}
	for _, l := range lists {
		for _, u := range l {
			k := [2]string{u.Sink, u.Topic}
			uses[k] = append(uses[k], u.Users...)
		}
	}
	return topicUses(uses)
}

func topicUses(uses map[[2]string][]string) []TopicUse {
	out := make([]TopicUse, 0, len(uses))
	for _, k := range slices.SortedFunc(maps.Keys(uses), func(a, b [2]string) int {
		return strings.Compare(a[0]+"\x00"+a[1], b[0]+"\x00"+b[1])
	}) {
		var users []string
		for _, u := range uses[k] {
			if !slices.Contains(users, u) {
				users = append(users, u)
			}
		}
		out = append(out, TopicUse{Sink: k[0], Topic: k[1], Users: users})
	}
	return out
}

// TypeTopics returns the topics the templated targets produce for events of the given types arriving at
// the endpoint, as the router would route them: a route applies when its endpoints and types globs match,
// and one with no other criteria that does not continue catches every event of the type. It knows only
// the type and the endpoint of such events, so a template naming any other field is left out (unnamed
// in the result's second value, by route).
func TypeTopics(r *Router, endpoint string, types []string) (uses []TopicUse, unnamed []TemplatedTarget) {
	found := map[[2]string][]string{}
	seen := map[string]bool{}
	for _, typ := range types {
		ev := &Event{Type: typ, Endpoint: endpoint}
		for _, rt := range r.Routes {
			if !rt.Match.Endpoints.Match(endpoint) || !rt.Match.Types.Match(typ) {
				continue
			}
			for _, t := range rt.Targets {
				if _, ok := t.Topic.Literal(); ok {
					continue
				}
				if !onlyTypeAndEndpoint(t.Topic) {
					if k := rt.Name + "\x00" + t.Sink + "\x00" + t.Topic.String(); !seen[k] {
						seen[k] = true
						unnamed = append(unnamed, TemplatedTarget{Route: rt.Name, Sink: t.Sink, Topic: t.Topic})
					}
					continue
				}
				topic, err := t.Topic.Render(ev)
				if err != nil {
					continue
				}
				k := [2]string{t.Sink, topic}
				found[k] = append(found[k], "route "+rt.Name+" ("+typ+")")
			}
			if catchesEveryEvent(&rt.Match) && !rt.Continue {
				break
			}
		}
	}
	return topicUses(found), unnamed
}

func onlyTypeAndEndpoint(t Template) bool {
	for _, f := range t.Fields() {
		if f != "type" && f != "endpoint" {
			return false
		}
	}
	return true
}

// catchesEveryEvent reports whether m selects events by endpoint and type only.
func catchesEveryEvent(m *Match) bool {
	return len(m.Sources) == 0 && len(m.DataSchemas) == 0 && len(m.SchemaVersions) == 0 && len(m.Conditions) == 0
}

// RunChecks runs the Checker of every sink named by uses (all sinks at once), each with its topics in
// order, and returns the checks sorted by sink, in each sink's own order. A sink without a Checker gets
// one CheckUnknown.
func RunChecks(ctx context.Context, sinks map[string]Sink, uses []TopicUse) []Check {
	topics := map[string][]string{}
	for name := range sinks {
		topics[name] = nil
	}
	for _, u := range uses {
		topics[u.Sink] = append(topics[u.Sink], u.Topic)
	}
	names := slices.Sorted(maps.Keys(topics))
	results := make([][]Check, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, ok := sinks[name].(Checker)
			if !ok {
				results[i] = []Check{{Name: "checks", Status: CheckUnknown, Detail: "this kind of sink has none"}}
				return
			}
			results[i] = c.Check(ctx, topics[name])
		}()
	}
	wg.Wait()
	users := map[[2]string]string{}
	for _, u := range uses {
		users[[2]string{u.Sink, u.Topic}] = strings.Join(u.Users, ", ")
	}
	var out []Check
	for i, cs := range results {
		for _, c := range cs {
			c.Sink = names[i]
			if u := users[[2]string{c.Sink, c.Topic}]; c.Topic != "" && u != "" {
				c.Name += " (" + u + ")"
			}
			out = append(out, c)
		}
	}
	return out
}
