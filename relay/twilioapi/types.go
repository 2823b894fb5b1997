package twilioapi

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/relaykit/twilio-relay/relay"
)

// TypeRow is one event type of the account, against the configuration and the subscriptions.
type TypeRow struct {
	EventType
	// Routed names, per endpoint, the routes that send the type somewhere ("events: messaging").
	Routed []string
	// Subscribed lists the subscriptions holding the type, with the version ("DF…@v5").
	Subscribed []string
	// Note says, for a routed type whose lifecycle status is not available, what apply does with it:
	// why it is not subscribed, or the warning it is subscribed with.
	Note string
}

// Unrouted is a subscribed type that no route matches for the endpoint the subscription delivers to.
// Subscriptions of sinks that deliver elsewhere are none of the relay's business and are not listed.
type Unrouted struct {
	Type        TypeVersion
	Sub, Sink   string
	Endpoint    string
	Description string
}

// TypesReport lists the account's event types with what routes and subscribes them.
type TypesReport struct {
	Rows     []TypeRow
	Unrouted []Unrouted
}

// Types compares the catalog with the routes of eps and the subscriptions of st. A subscription belongs
// to an endpoint when its sink is the relay's sink for it or delivers to its destination.
func Types(catalog []EventType, eps []Endpoint, router *relay.Router, st *State) *TypesReport {
	rep := &TypesReport{}
	sinkEndpoint := map[string]string{}
	for _, s := range st.Sinks {
		for _, ep := range eps {
			if name, ok := endpointOf(s.Description); (ok && name == ep.Name) || SameDestination(s.Destination, ep.Destination) {
				sinkEndpoint[s.SID] = ep.Name
			}
		}
	}
	subscribed := map[string][]string{}
	for _, sub := range st.Subscriptions {
		ep := sinkEndpoint[sub.SinkSID]
		for _, t := range sub.Types {
			subscribed[t.Type] = append(subscribed[t.Type], fmt.Sprintf("%s@v%d", sub.SID, t.SchemaVersion))
			if ep != "" && len(RoutesFor(router, ep, t.Type)) == 0 {
				rep.Unrouted = append(rep.Unrouted, Unrouted{Type: t, Sub: sub.SID, Sink: sub.SinkSID, Endpoint: ep, Description: sub.Description})
			}
		}
	}
	have := map[string]map[string]int{} // endpoint → the relay's subscribed types
	for _, ep := range eps {
		have[ep.Name] = subscribedBy(st, ep.Name)
	}
	for _, t := range catalog {
		row := TypeRow{EventType: t, Subscribed: subscribed[t.Type]}
		var notes []string
		for _, ep := range eps {
			if rs := RoutesFor(router, ep.Name, t.Type); len(rs) > 0 {
				row.Routed = append(row.Routed, ep.Name+": "+strings.Join(rs, ","))
				_, subscribed := have[ep.Name][t.Type]
				if n := lifecycleNote(lifecycle(t, namedExactly(router, ep, t.Type), subscribed)); n != "" && !slices.Contains(notes, n) {
					notes = append(notes, n)
				}
			}
		}
		row.Note = strings.Join(notes, "; ")
		rep.Rows = append(rep.Rows, row)
	}
	slices.SortFunc(rep.Unrouted, func(a, b Unrouted) int { return strings.Compare(a.Type.Type+a.Sub, b.Type.Type+b.Sub) })
	return rep
}

// Print writes the report as a table, then the subscribed types without a route.
func (r *TypesReport) Print(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TYPE\tSCHEMA\tLATEST\tSTATUS\tROUTED BY\tSUBSCRIBED\tNOTE")
	for _, row := range r.Rows {
		fmt.Fprintf(tw, "%s\t%s\tv%d\t%s\t%s\t%s\t%s\n", row.Type, row.SchemaID, row.LatestVersion, orDash(row.Status),
			orDash(strings.Join(row.Routed, "; ")), orDash(strings.Join(row.Subscribed, " ")), orDash(row.Note))
	}
	_ = tw.Flush()
	if len(r.Unrouted) == 0 {
		fmt.Fprintln(w, "\nevery subscribed type has a route")
		return
	}
	fmt.Fprintln(w, "\nsubscribed types no route matches (their events are dead-lettered or dropped, per no_route):")
	for _, u := range r.Unrouted {
		fmt.Fprintf(w, "  %s v%d  subscription %s (%q) on sink %s, endpoint %s\n", u.Type.Type, u.Type.SchemaVersion, u.Sub, u.Description, u.Sink, u.Endpoint)
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// lifecycleNote is what the types report says of a verdict: nothing for an available type.
func lifecycleNote(v verdict) string {
	switch {
	case v.err != "":
		return "configuration error: " + v.err
	case v.skip != "":
		return "not subscribed: " + v.skip
	}
	return v.warn
}
