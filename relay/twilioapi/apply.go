package twilioapi

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	events "github.com/twilio/twilio-go/rest/events/v1"
)

// ErrSinkNotActive is returned by Apply, after every action is done, when a sink of the relay is not
// active: Twilio does not deliver to it until a sink test and validation (`relay twilio test`).
var ErrSinkNotActive = errors.New("a sink of the relay is not active")

// Apply carries out the plan's actions in order and writes one line per action to w. It stops at the
// first failure and returns it; the actions before it are done, and running the plan again from a fresh
// State finishes the work (every step is idempotent at the level of the plan: a sink created by a run
// that failed later is the one the next run keeps). Each sink it creates is fetched again for its
// status; when that one, or a sink the plan keeps, is not active, Apply returns ErrSinkNotActive naming
// them once everything else is done.
func (c *Client) Apply(p *Plan, w io.Writer) error {
	created := map[string]string{} // endpoint → SID of the sink created by this run
	inactive := slices.Clone(p.Inactive)
	for _, a := range p.Actions {
		if err := c.do(a, created, w); err != nil {
			return fmt.Errorf("twilioapi: %s: %w", Describe(a), err)
		}
		if a.Op != CreateSink {
			continue
		}
		s, err := c.api.FetchSink(created[a.Endpoint])
		if err != nil {
			return fmt.Errorf("twilioapi: read the status of sink %s: %w", created[a.Endpoint], err)
		}
		if sk := sinkFrom(*s); sk.Status != "active" {
			inactive = append(inactive, sk)
		}
	}
	if len(inactive) > 0 {
		var names []string
		for _, s := range inactive {
			ep, _ := endpointOf(s.Description)
			names = append(names, fmt.Sprintf("sink %s of endpoint %s is %q", s.SID, ep, s.Status))
		}
		return fmt.Errorf("twilioapi: %w: %s: Twilio delivers nothing to it until it is tested and validated: "+
			"run `relay twilio test -endpoint <name>` with the relay running", ErrSinkNotActive, strings.Join(names, "; "))
	}
	return nil
}

func (c *Client) do(a Action, created map[string]string, w io.Writer) error {
	switch a.Op {
	case CreateSink:
		params := (&events.CreateSinkParams{}).
			SetDescription(sinkDescription(a.Spec)).
			SetSinkType("webhook").
			// A map, not a JSON string: twilio-go encodes it once into the form field.
			SetSinkConfiguration(map[string]any{"destination": a.Spec.Destination, "method": "POST", "batch_events": a.Spec.BatchEvents})
		s, err := c.api.CreateSink(params)
		if err != nil {
			return err
		}
		created[a.Endpoint] = deref(s.Sid)
		fmt.Fprintf(w, "created sink %s %q → %s (batch_events=%t, status %s)\n", deref(s.Sid), a.Spec.Description,
			redact(a.Spec.Destination), a.Spec.BatchEvents, deref(s.Status))
	case CreateSubscription:
		sink := a.SinkSID
		if sink == "" {
			sink = created[a.Endpoint]
		}
		if sink == "" {
			return fmt.Errorf("no sink was created for endpoint %s", a.Endpoint)
		}
		types := make([]any, len(a.Types))
		for i, t := range a.Types {
			types[i] = map[string]any{"type": t.Type, "schema_version": t.SchemaVersion}
		}
		s, err := c.api.CreateSubscription((&events.CreateSubscriptionParams{}).
			SetDescription(a.Spec.Description).SetSinkSid(sink).SetTypes(types))
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "created subscription %s %q on sink %s with %d types\n", deref(s.Sid), a.Spec.Description, sink, len(a.Types))
	case AddType:
		if _, err := c.api.CreateSubscribedEvent(a.SubSID, (&events.CreateSubscribedEventParams{}).
			SetType(a.Type.Type).SetSchemaVersion(a.Type.SchemaVersion)); err != nil {
			return err
		}
		fmt.Fprintf(w, "subscription %s: added %s v%d\n", a.SubSID, a.Type.Type, a.Type.SchemaVersion)
	case UpdateType:
		if _, err := c.api.UpdateSubscribedEvent(a.SubSID, a.Type.Type, (&events.UpdateSubscribedEventParams{}).
			SetSchemaVersion(a.Type.SchemaVersion)); err != nil {
			return err
		}
		fmt.Fprintf(w, "subscription %s: %s v%d → v%d\n", a.SubSID, a.Type.Type, a.From, a.Type.SchemaVersion)
	case RemoveType:
		if err := c.api.DeleteSubscribedEvent(a.SubSID, a.Type.Type); err != nil {
			return err
		}
		fmt.Fprintf(w, "subscription %s: removed %s\n", a.SubSID, a.Type.Type)
	case DeleteSubscription:
		if err := c.api.DeleteSubscription(a.SubSID); err != nil {
			return err
		}
		fmt.Fprintf(w, "deleted subscription %s\n", a.SubSID)
	case DeleteSink:
		if err := c.api.DeleteSink(a.SinkSID); err != nil {
			return err
		}
		fmt.Fprintf(w, "deleted sink %s\n", a.SinkSID)
	default:
		return fmt.Errorf("unknown action %q", a.Op)
	}
	return nil
}

// Describe says what an action does, in one line.
func Describe(a Action) string {
	foreign := ""
	if a.Foreign {
		foreign = " (not created by the relay; --prune)"
	}
	why := ""
	if a.Why != "" {
		why = ": " + a.Why
	}
	switch a.Op {
	case CreateSink:
		return fmt.Sprintf("+ sink %q webhook POST %s batch_events=%t%s", a.Spec.Description, redact(a.Spec.Destination), a.Spec.BatchEvents, why)
	case CreateSubscription:
		on := a.SinkSID
		if on == "" {
			on = "the new sink"
		}
		return fmt.Sprintf("+ subscription %q on %s with %d types", a.Spec.Description, on, len(a.Types))
	case AddType:
		return fmt.Sprintf("+ type %s v%d in subscription %s", a.Type.Type, a.Type.SchemaVersion, a.SubSID)
	case UpdateType:
		return fmt.Sprintf("~ type %s v%d → v%d in subscription %s", a.Type.Type, a.From, a.Type.SchemaVersion, a.SubSID)
	case RemoveType:
		return fmt.Sprintf("- type %s v%d from subscription %s%s", a.Type.Type, a.Type.SchemaVersion, a.SubSID, why)
	case DeleteSubscription:
		return fmt.Sprintf("- subscription %s on sink %s%s%s", a.SubSID, a.SinkSID, foreign, why)
	case DeleteSink:
		return fmt.Sprintf("- sink %s%s%s", a.SinkSID, foreign, why)
	}
	return string(a.Op)
}

// Print writes the plan as a diff: + missing (to create), ~ changed, - extra (to delete), with the types
// of each subscription to create, and the notes on what is left alone.
func (p *Plan) Print(w io.Writer) {
	if p.Empty() {
		fmt.Fprintln(w, "nothing to change: Twilio matches the configuration")
	}
	for _, a := range p.Actions {
		fmt.Fprintln(w, Describe(a))
		if a.Op == CreateSubscription {
			for _, t := range a.Types {
				fmt.Fprintf(w, "    + %s v%d\n", t.Type, t.SchemaVersion)
			}
		}
	}
	for _, n := range p.Notes {
		fmt.Fprintln(w, "! "+n)
	}
	for _, s := range p.Inactive {
		fmt.Fprintf(w, "! sink %s is %q, not active: Twilio delivers nothing to it until `relay twilio test` has tested and validated it\n", s.SID, s.Status)
	}
	if len(p.Skipped) > 0 {
		fmt.Fprintln(w, "not subscribed (routed, but Twilio's lifecycle status of the type says no):")
		for _, s := range p.Skipped {
			fmt.Fprintf(w, "  %s  endpoint %s: %s\n", s.Type, s.Endpoint, s.Why)
		}
	}
}

// Summary counts the plan's actions by kind: "2 to create, 1 to change, 0 to delete".
func (p *Plan) Summary() string {
	var add, change, del int
	for _, a := range p.Actions {
		switch a.Op {
		case CreateSink, CreateSubscription, AddType:
			add++
		case UpdateType:
			change++
		default:
			del++
		}
	}
	return strings.Join([]string{fmt.Sprintf("%d to create", add), fmt.Sprintf("%d to change", change), fmt.Sprintf("%d to delete", del)}, ", ")
}
