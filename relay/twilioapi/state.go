package twilioapi

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"

	events "github.com/twilio/twilio-go/rest/events/v1"
)

// TypeVersion is one subscribed event type with its schema version.
type TypeVersion struct {
	Type          string `json:"type"`
	SchemaVersion int    `json:"schema_version"`
}

// Sink is a sink as Twilio holds it.
type Sink struct {
	SID, Description, SinkType, Status string
	Destination, Method                string
	// BatchEvents is nil when the configuration does not say.
	BatchEvents *bool
}

// Subscription is a subscription as Twilio holds it, with its types.
type Subscription struct {
	SID, Description, SinkSID string
	Types                     []TypeVersion
}

// State is the account's sinks and subscriptions.
type State struct {
	Sinks         []Sink
	Subscriptions []Subscription
}

// EventType is an event type of the account's catalog, with its latest schema version. Status is its
// lifecycle status (lifecycle.go): available, deprecated, restricted or discontinued; DocumentationURL
// points to its documentation or to the Twilio changelog entry about its status.
type EventType struct {
	Type, SchemaID, Description, Status string
	DocumentationURL                    string
	LatestVersion                       int
}

// State lists every sink and subscription of the account, and the types of the subscriptions whose sink
// want selects (nil: all): one request per subscription, so only those that matter.
func (c *Client) State(want func(Sink) bool) (*State, error) {
	ps := c.pageSize
	sinks, err := c.api.ListSink(&events.ListSinkParams{PageSize: &ps})
	if err != nil {
		return nil, fmt.Errorf("twilioapi: list sinks: %w", err)
	}
	st := &State{}
	selected := map[string]bool{}
	for _, s := range sinks {
		sk := sinkFrom(s)
		st.Sinks = append(st.Sinks, sk)
		selected[sk.SID] = want == nil || want(sk)
	}
	subs, err := c.api.ListSubscription(&events.ListSubscriptionParams{PageSize: &ps})
	if err != nil {
		return nil, fmt.Errorf("twilioapi: list subscriptions: %w", err)
	}
	for _, s := range subs {
		sub := Subscription{SID: deref(s.Sid), Description: deref(s.Description), SinkSID: deref(s.SinkSid)}
		if selected[sub.SinkSID] {
			if sub.Types, err = c.subscribedTypes(sub.SID); err != nil {
				return nil, err
			}
		}
		st.Subscriptions = append(st.Subscriptions, sub)
	}
	return st, nil
}

func (c *Client) subscribedTypes(subSID string) ([]TypeVersion, error) {
	ps := c.pageSize
	evs, err := c.api.ListSubscribedEvent(subSID, &events.ListSubscribedEventParams{PageSize: &ps})
	if err != nil {
		return nil, fmt.Errorf("twilioapi: list the types of subscription %s: %w", subSID, err)
	}
	out := make([]TypeVersion, 0, len(evs))
	for _, e := range evs {
		out = append(out, TypeVersion{Type: deref(e.Type), SchemaVersion: e.SchemaVersion})
	}
	slices.SortFunc(out, func(a, b TypeVersion) int { return cmp.Compare(a.Type, b.Type) })
	return out, nil
}

// Catalog lists the event types available to the account with the latest version of each one's schema
// (one request per schema for the versions), sorted by type.
func (c *Client) Catalog() ([]EventType, error) {
	ps := c.pageSize
	types, err := c.api.ListEventType(&events.ListEventTypeParams{PageSize: &ps})
	if err != nil {
		return nil, fmt.Errorf("twilioapi: list event types: %w", err)
	}
	latest := map[string]int{}
	out := make([]EventType, 0, len(types))
	for _, t := range types {
		et := EventType{Type: deref(t.Type), SchemaID: deref(t.SchemaId), Description: deref(t.Description), Status: deref(t.Status),
			DocumentationURL: deref(t.DocumentationUrl)}
		if et.SchemaID != "" {
			v, ok := latest[et.SchemaID]
			if !ok {
				versions, err := c.api.ListSchemaVersion(et.SchemaID, &events.ListSchemaVersionParams{PageSize: &ps})
				if err != nil {
					return nil, fmt.Errorf("twilioapi: list the versions of schema %s: %w", et.SchemaID, err)
				}
				for _, sv := range versions {
					v = max(v, sv.SchemaVersion)
				}
				latest[et.SchemaID] = v
			}
			et.LatestVersion = v
		}
		out = append(out, et)
	}
	slices.SortFunc(out, func(a, b EventType) int { return cmp.Compare(a.Type, b.Type) })
	return out, nil
}

// sinkFrom reads a sink resource; sink_configuration is a JSON object whose batch_events may come back
// as a boolean or as a string.
func sinkFrom(s events.EventsV1Sink) Sink {
	out := Sink{SID: deref(s.Sid), Description: deref(s.Description), SinkType: deref(s.SinkType), Status: deref(s.Status)}
	if s.SinkConfiguration == nil {
		return out
	}
	var conf map[string]any
	switch v := (*s.SinkConfiguration).(type) {
	case map[string]any:
		conf = v
	case string: // defensively: a configuration encoded twice
		_ = json.Unmarshal([]byte(v), &conf)
	}
	out.Destination, _ = conf["destination"].(string)
	out.Method, _ = conf["method"].(string)
	switch b := conf["batch_events"].(type) {
	case bool:
		out.BatchEvents = &b
	case string:
		if v, err := strconv.ParseBool(b); err == nil {
			out.BatchEvents = &v
		}
	}
	return out
}

func deref[T any](p *T) T {
	if p == nil {
		var zero T
		return zero
	}
	return *p
}
