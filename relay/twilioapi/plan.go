package twilioapi

import (
	"cmp"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/relaykit/twilio-relay/relay"
)

// Endpoint is what the plan needs to know of an event-streams endpoint of the configuration.
type Endpoint struct {
	Name string
	// Destination is the sink destination: the endpoint's public URL, with user:pass@ when the endpoint
	// takes Basic credentials.
	Destination string
	BatchEvents bool
	// Types, when set, narrows the subscription to the types matching one of them.
	Types relay.Globs
}

// SinkSpec is the sink and subscription an endpoint should have.
type SinkSpec struct {
	Endpoint    string
	Description string
	Destination string
	BatchEvents bool
	// Types are the types to subscribe, sorted by type.
	Types []TypeVersion
	// Skipped are notes on types a route names but that cannot be subscribed (no such schema version).
	Skipped []string
}

// TestEventType is never subscribed: Twilio sends it only on a sink test.
const testEventType = relay.TestEventType

// Desired returns the sink each endpoint should have: its destination and, for each event type of the
// catalog that a route sends somewhere from that endpoint, the schema version to subscribe. The routes
// are read like the router reads them: a route applies to an endpoint when its endpoints globs match the
// endpoint's name (or it has none) and to a type when its types globs match it (or it has none). The
// version is that of the first applicable route listing schema_versions (the highest listed that
// exists), else the latest. Sources, dataschemas and when conditions select events within a type and do
// not narrow the subscription.
func Desired(eps []Endpoint, router *relay.Router, catalog []EventType) []SinkSpec {
	out := make([]SinkSpec, 0, len(eps))
	for _, ep := range eps {
		spec := SinkSpec{Endpoint: ep.Name, Description: MarkerFor(ep.Name), Destination: ep.Destination, BatchEvents: ep.BatchEvents}
		for _, t := range catalog {
			if t.Type == testEventType || !ep.Types.Match(t.Type) {
				continue
			}
			v, routed, note := versionFor(router, ep.Name, t)
			if note != "" {
				spec.Skipped = append(spec.Skipped, note)
			}
			if routed {
				spec.Types = append(spec.Types, TypeVersion{Type: t.Type, SchemaVersion: v})
			}
		}
		slices.SortFunc(spec.Types, func(a, b TypeVersion) int { return cmp.Compare(a.Type, b.Type) })
		out = append(out, spec)
	}
	return out
}

// versionFor returns the schema version to subscribe t at for endpoint, and whether any route applies.
func versionFor(router *relay.Router, endpoint string, t EventType) (int, bool, string) {
	var note string
	for i := range router.Routes {
		r := &router.Routes[i]
		if !r.Match.Endpoints.Match(endpoint) || !r.Match.Types.Match(t.Type) {
			continue
		}
		if len(r.Match.SchemaVersions) == 0 {
			return t.LatestVersion, true, note
		}
		best := 0
		for _, v := range r.Match.SchemaVersions {
			if v <= t.LatestVersion || t.LatestVersion == 0 {
				best = max(best, v)
			}
		}
		if best > 0 {
			return best, true, note
		}
		note = fmt.Sprintf("route %s: %s has no schema version in %v (latest %d)", r.Name, t.Type, r.Match.SchemaVersions, t.LatestVersion)
	}
	return 0, false, note
}

// RoutesFor names the routes that apply to events of type t arriving on endpoint.
func RoutesFor(router *relay.Router, endpoint, t string) []string {
	var out []string
	for i := range router.Routes {
		r := &router.Routes[i]
		if r.Match.Endpoints.Match(endpoint) && r.Match.Types.Match(t) {
			out = append(out, r.Name)
		}
	}
	return out
}

// Op is one kind of change.
type Op string

// The changes a plan is made of.
const (
	CreateSink         Op = "create sink"
	DeleteSink         Op = "delete sink"
	CreateSubscription Op = "create subscription"
	DeleteSubscription Op = "delete subscription"
	AddType            Op = "add type"
	UpdateType         Op = "update type"
	RemoveType         Op = "remove type"
)

// Action is one change. A subscription action on a sink created by the same plan has no SinkSID: the
// sink is the one created for Endpoint.
type Action struct {
	Op       Op
	Endpoint string
	SinkSID  string
	SubSID   string
	Spec     *SinkSpec     // CreateSink, CreateSubscription
	Type     TypeVersion   // AddType, UpdateType, RemoveType
	From     int           // UpdateType: the version now subscribed
	Foreign  bool          // the relay did not create it: only with Prune
	Why      string        // for people
	Types    []TypeVersion // CreateSubscription
}

// Plan is the ordered list of changes that brings the account to the desired state, and notes on what
// is left alone.
type Plan struct {
	Actions []Action
	Notes   []string
}

// Empty reports whether the plan changes nothing.
func (p *Plan) Empty() bool { return len(p.Actions) == 0 }

// PlanOptions tune MakePlan.
type PlanOptions struct {
	// Prune deletes resources the relay did not create that deliver to a configured endpoint, and
	// subscriptions the relay did not create on its own sinks.
	Prune bool
	// Known are the names of every event-streams endpoint of the configuration, including those not in
	// desired (when one endpoint is applied at a time): a marked sink of an endpoint in Known but not in
	// desired is left alone; one of an endpoint not in Known is extra and deleted.
	Known []string
}

// MakePlan compares the desired sinks with the account's state. It is pure: the same inputs give the
// same plan. For each endpoint: a marked sink whose configuration matches is kept and its subscription
// brought to the desired types; when none matches (the destination or batch_events changed: Twilio
// cannot update a sink's configuration) a new sink and subscription are created first and the old ones
// deleted after, so that no event is missed in between (the overlap is deduplicated). Marked sinks of
// endpoints no longer configured are deleted. A resource without the mark is never deleted unless
// Prune is set; the plan notes it instead.
func MakePlan(desired []SinkSpec, st *State, opts PlanOptions) *Plan {
	p := &Plan{}
	subsOf := map[string][]Subscription{}
	for _, s := range st.Subscriptions {
		subsOf[s.SinkSID] = append(subsOf[s.SinkSID], s)
	}
	wanted := map[string]bool{}
	for _, n := range opts.Known {
		wanted[n] = true
	}
	for _, d := range desired {
		wanted[d.Endpoint] = true
	}
	for i := range desired {
		p.planEndpoint(&desired[i], st, subsOf, opts)
	}
	defer func() {
		// Creations first, then changes, then deletions: events keep flowing while a sink is replaced.
		slices.SortStableFunc(p.Actions, func(a, b Action) int { return cmp.Compare(rank(a.Op), rank(b.Op)) })
	}()
	// Sinks the relay created for endpoints that are no longer configured.
	for _, s := range st.Sinks {
		ep, ok := endpointOf(s.Description)
		if !ok || wanted[ep] {
			continue
		}
		p.deleteSink(s, subsOf[s.SID], opts, fmt.Sprintf("endpoint %q is not in the configuration", ep))
	}
	return p
}

func (p *Plan) planEndpoint(d *SinkSpec, st *State, subsOf map[string][]Subscription, opts PlanOptions) {
	var keep *Sink
	var stale []Sink
	for i := range st.Sinks {
		s := st.Sinks[i]
		if _, marked := endpointOf(s.Description); !marked {
			if s.Destination != "" && withoutUser(s.Destination) == withoutUser(d.Destination) {
				if opts.Prune {
					p.deleteSink(s, subsOf[s.SID], opts, "a sink the relay did not create delivers to endpoint "+d.Endpoint)
				} else {
					p.note("sink %s (%q) was not created by the relay and also delivers to endpoint %s: left alone (--prune deletes it)",
						s.SID, s.Description, d.Endpoint)
				}
			}
			continue
		}
		if s.Description != d.Description {
			continue // another endpoint's
		}
		if keep == nil && sinkMatches(s, d) {
			keep = &st.Sinks[i]
			continue
		}
		stale = append(stale, s)
	}
	if keep == nil {
		p.add(Action{Op: CreateSink, Endpoint: d.Endpoint, Spec: d, Why: "no sink of the relay has this configuration"})
		if len(d.Types) > 0 {
			p.add(Action{Op: CreateSubscription, Endpoint: d.Endpoint, Spec: d, Types: d.Types})
		}
	} else {
		p.planSubscription(d, keep, subsOf[keep.SID], opts)
	}
	for _, s := range stale {
		why := "a second sink of the relay for this endpoint"
		if keep == nil {
			why = "replaced: " + sinkDiff(s, d)
		}
		p.deleteSink(s, subsOf[s.SID], opts, why)
	}
	for _, n := range d.Skipped {
		p.note("endpoint %s: %s", d.Endpoint, n)
	}
}

func (p *Plan) planSubscription(d *SinkSpec, sink *Sink, subs []Subscription, opts PlanOptions) {
	var own *Subscription
	for i := range subs {
		s := subs[i]
		switch {
		case s.Description == d.Description && own == nil:
			own = &subs[i]
		case s.Description == d.Description:
			p.add(Action{Op: DeleteSubscription, Endpoint: d.Endpoint, SinkSID: sink.SID, SubSID: s.SID, Why: "a second subscription of the relay on its sink"})
		case opts.Prune:
			p.add(Action{Op: DeleteSubscription, Endpoint: d.Endpoint, SinkSID: sink.SID, SubSID: s.SID, Foreign: true,
				Why: fmt.Sprintf("not created by the relay (%q)", s.Description)})
		default:
			p.note("subscription %s (%q) on the relay's sink %s was not created by the relay: left alone (--prune deletes it)", s.SID, s.Description, sink.SID)
		}
	}
	switch {
	case own == nil && len(d.Types) > 0:
		p.add(Action{Op: CreateSubscription, Endpoint: d.Endpoint, SinkSID: sink.SID, Spec: d, Types: d.Types})
		return
	case own == nil:
		return
	case len(d.Types) == 0:
		p.add(Action{Op: DeleteSubscription, Endpoint: d.Endpoint, SinkSID: sink.SID, SubSID: own.SID, Why: "no route matches any event type"})
		return
	}
	have := map[string]int{}
	for _, t := range own.Types {
		have[t.Type] = t.SchemaVersion
	}
	want := map[string]bool{}
	for _, t := range d.Types {
		want[t.Type] = true
		v, ok := have[t.Type]
		switch {
		case !ok:
			p.add(Action{Op: AddType, Endpoint: d.Endpoint, SinkSID: sink.SID, SubSID: own.SID, Type: t})
		case v != t.SchemaVersion:
			p.add(Action{Op: UpdateType, Endpoint: d.Endpoint, SinkSID: sink.SID, SubSID: own.SID, Type: t, From: v})
		}
	}
	for _, t := range own.Types {
		if !want[t.Type] {
			p.add(Action{Op: RemoveType, Endpoint: d.Endpoint, SinkSID: sink.SID, SubSID: own.SID, Type: t, Why: "no route matches it"})
		}
	}
}

// deleteSink deletes a sink after its subscriptions: the relay's own always, others only with Prune; a
// sink that keeps a subscription the relay may not delete is kept too.
func (p *Plan) deleteSink(s Sink, subs []Subscription, opts PlanOptions, why string) {
	_, ownSink := endpointOf(s.Description)
	ep, _ := endpointOf(s.Description)
	blocked := false
	for _, sub := range subs {
		_, own := endpointOf(sub.Description)
		if !own && !opts.Prune {
			blocked = true
			p.note("subscription %s (%q) on sink %s was not created by the relay: left alone (--prune deletes it)", sub.SID, sub.Description, s.SID)
			continue
		}
		p.add(Action{Op: DeleteSubscription, Endpoint: ep, SinkSID: s.SID, SubSID: sub.SID, Foreign: !own, Why: "its sink is deleted"})
	}
	if blocked {
		p.note("sink %s is kept: a subscription the relay did not create still uses it (%s)", s.SID, why)
		return
	}
	p.add(Action{Op: DeleteSink, Endpoint: ep, SinkSID: s.SID, Foreign: !ownSink, Why: why})
}

func (p *Plan) add(a Action) { p.Actions = append(p.Actions, a) }

func rank(op Op) int {
	switch op {
	case CreateSink:
		return 0
	case CreateSubscription:
		return 1
	case AddType, UpdateType, RemoveType:
		return 2
	case DeleteSubscription:
		return 3
	}
	return 4
}

func (p *Plan) note(format string, args ...any) {
	p.Notes = append(p.Notes, fmt.Sprintf(format, args...))
}

func sinkMatches(s Sink, d *SinkSpec) bool {
	return s.SinkType == "webhook" && s.Destination == d.Destination && strings.EqualFold(s.Method, "POST") &&
		s.BatchEvents != nil && *s.BatchEvents == d.BatchEvents
}

// sinkDiff says how a sink differs from the spec, for people (passwords redacted).
func sinkDiff(s Sink, d *SinkSpec) string {
	var diffs []string
	if s.SinkType != "webhook" {
		diffs = append(diffs, fmt.Sprintf("sink_type %s → webhook", s.SinkType))
	}
	if s.Destination != d.Destination {
		diffs = append(diffs, fmt.Sprintf("destination %s → %s", redact(s.Destination), redact(d.Destination)))
	}
	if !strings.EqualFold(s.Method, "POST") {
		diffs = append(diffs, fmt.Sprintf("method %q → POST", s.Method))
	}
	if s.BatchEvents == nil || *s.BatchEvents != d.BatchEvents {
		was := "unset"
		if s.BatchEvents != nil {
			was = fmt.Sprint(*s.BatchEvents)
		}
		diffs = append(diffs, fmt.Sprintf("batch_events %s → %t", was, d.BatchEvents))
	}
	return strings.Join(diffs, ", ")
}

// redact hides the password of a URL with user:pass@.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

// SameDestination reports whether two sink destinations are the same URL, credentials aside.
func SameDestination(a, b string) bool { return a != "" && withoutUser(a) == withoutUser(b) }

// withoutUser returns the URL without user:pass@.
func withoutUser(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	u.User = nil
	return u.String()
}
