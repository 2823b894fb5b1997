package twilioapi

import "fmt"

// The lifecycle statuses of an event type (EventsV1EventType.status in twilio-go). What Twilio allows in
// each (https://www.twilio.com/docs/events/event-types-lifecycle):
//
//	status        events in existing subscriptions   new subscriptions   added to a subscription
//	available     yes                                yes                 yes
//	deprecated    yes                                yes                 yes
//	restricted    yes                                no                  no
//	discontinued  no                                 no                  no
const (
	StatusAvailable    = "available"
	StatusDeprecated   = "deprecated"
	StatusRestricted   = "restricted"
	StatusDiscontinued = "discontinued"
)

// verdict is what the relay does with one event type that a route sends somewhere from an endpoint.
type verdict struct {
	subscribe bool   // it belongs in the subscription
	keep      bool   // only as it is: it is subscribed already, and Twilio would refuse to add it again
	warn      string // said when it is subscribed or kept
	skip      string // why it is not subscribed
	err       string // a configuration error: the configuration asks for what Twilio refuses
}

// lifecycle decides for type t: named says whether a route (or the endpoint's twilio.types) names it
// exactly rather than through a glob, subscribed whether the relay's subscription holds it now.
//
//   - available (or a catalog without statuses): subscribed.
//   - deprecated: subscribed when named exactly, with a warning that cites its documentation; kept with
//     the warning when subscribed already (removing it would stop events that still flow); else skipped:
//     a glob does not sign up for a type on its way out.
//   - restricted: kept with a warning when subscribed already (Twilio still delivers it there, and
//     would not take it back once removed); else skipped, and named exactly it is a configuration error.
//   - discontinued: never subscribed (Twilio sends none, and refuses it); named exactly it is a
//     configuration error; a subscription that holds it loses it.
//   - a status the relay does not know: skipped, unless subscribed already (kept).
func lifecycle(t EventType, named, subscribed bool) verdict {
	doc := ""
	if t.DocumentationURL != "" {
		doc = " (see " + t.DocumentationURL + ")"
	}
	switch t.Status {
	case "", StatusAvailable:
		return verdict{subscribe: true}
	case StatusDeprecated:
		warn := fmt.Sprintf("%s is deprecated: Twilio will restrict or discontinue it; plan its replacement%s", t.Type, doc)
		if named || subscribed {
			return verdict{subscribe: true, warn: warn}
		}
		return verdict{skip: "deprecated, and matched only by a glob: name it in a route to subscribe it" + doc}
	case StatusRestricted:
		if subscribed {
			return verdict{subscribe: true, keep: true,
				warn: fmt.Sprintf("%s is restricted: Twilio still delivers it to this subscription but would refuse to add it again; replace it%s", t.Type, doc)}
		}
		v := verdict{skip: "restricted: Twilio refuses it in new subscriptions" + doc}
		if named {
			v.err = fmt.Sprintf("%s is restricted: Twilio refuses to add it to a subscription%s; remove it from the configuration", t.Type, doc)
		}
		return v
	case StatusDiscontinued:
		v := verdict{skip: "discontinued: Twilio no longer sends it and refuses it in subscriptions" + doc}
		if named {
			v.err = fmt.Sprintf("%s is discontinued: Twilio no longer sends it and refuses it in subscriptions%s; remove it from the configuration", t.Type, doc)
		}
		return v
	}
	if subscribed {
		return verdict{subscribe: true, keep: true, warn: fmt.Sprintf("%s has the status %q, which the relay does not know: kept as it is%s", t.Type, t.Status, doc)}
	}
	return verdict{skip: fmt.Sprintf("status %q, which the relay does not know", t.Status) + doc}
}
