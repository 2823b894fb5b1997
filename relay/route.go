package relay

import (
	"fmt"
	"slices"
)

// Route sends the events it matches to its targets. Routes are tried in order; the first that matches
// decides, unless it sets Continue, in which case the following routes are tried too.
type Route struct {
	Name     string
	Match    Match
	Targets  []Target
	Continue bool
}

// Match selects events. Every non-empty criterion must hold; an empty Match matches every event.
type Match struct {
	Types          Globs
	Sources        Globs
	DataSchemas    Globs
	Endpoints      Globs
	SchemaVersions []int
	Conditions     []Condition
}

// Condition tests one field of an event (see Event.Field for the names: "data.status", "subject" …).
// Exactly one of Equals, In, Glob and Exists is meaningful: In (any of) when non-empty, else Glob when
// set, else Exists when set, else Equals.
type Condition struct {
	Field  string
	Equals string
	In     []string
	Glob   Glob
	Exists *bool
}

// Target is one destination of a route: a sink by name, the topic template and the key template. A zero
// Key template keys by the event's resource SID (see Event.ResourceSID).
type Target struct {
	Sink  string
	Topic Template
	Key   Template
}

// Delivery is one event routed to one sink.
type Delivery struct {
	Route string
	Sink  string
	Message
}

// Matches reports whether the event satisfies m.
func (m *Match) Matches(e *Event) bool {
	if !m.Types.Match(e.Type) || !m.Sources.Match(e.Source) ||
		!m.DataSchemas.Match(e.DataSchema) || !m.Endpoints.Match(e.Endpoint) {
		return false
	}
	if len(m.SchemaVersions) > 0 {
		v, ok := e.SchemaVersion()
		if !ok || !slices.Contains(m.SchemaVersions, v) {
			return false
		}
	}
	for i := range m.Conditions {
		if !m.Conditions[i].Holds(e) {
			return false
		}
	}
	return true
}

// Holds reports whether the condition is true of e.
func (c *Condition) Holds(e *Event) bool {
	v, ok := e.Field(c.Field)
	switch {
	case len(c.In) > 0:
		return ok && slices.Contains(c.In, v)
	case c.Glob != "":
		return ok && c.Glob.Match(v)
	case c.Exists != nil:
		return ok == *c.Exists
	}
	return ok && v == c.Equals
}

// Router picks the deliveries for an event. It is a pure function of its routes and the event.
type Router struct {
	Routes []Route
}

// Route returns the deliveries for e, in route and target order, and an error when a matching route's
// template cannot be rendered for e (a field it names is absent). No match is no deliveries and no error.
func (r *Router) Route(e *Event) ([]Delivery, error) {
	var out []Delivery
	for i := range r.Routes {
		rt := &r.Routes[i]
		if !rt.Match.Matches(e) {
			continue
		}
		for _, t := range rt.Targets {
			topic, err := t.Topic.Render(e)
			if err != nil {
				return nil, fmt.Errorf("route %s: topic: %w", rt.Name, err)
			}
			var key []byte
			if t.Key.IsZero() {
				key = e.resourceKey()
			} else {
				k, err := t.Key.Render(e)
				if err != nil {
					return nil, fmt.Errorf("route %s: key: %w", rt.Name, err)
				}
				key = []byte(k)
			}
			out = append(out, Delivery{Route: rt.Name, Sink: t.Sink, Message: Message{Event: e, Topic: topic, Key: key}})
		}
		if !rt.Continue {
			break
		}
	}
	return out, nil
}
