package twilioapi

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

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

// Plan is the ordered list of changes that brings the account to the desired state, notes on what is
// left alone, the types routed but not subscribed, and the sinks the relay keeps that are not active.
type Plan struct {
	Actions  []Action
	Notes    []string
	Skipped  []EndpointSkip
	Inactive []Sink
}

// EndpointSkip is a type an endpoint's routes send somewhere that is not subscribed, and why.
type EndpointSkip struct {
	Endpoint string
	Skip
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
	var matching, stale []Sink
	for _, s := range st.Sinks {
		m, marked := parseMark(s.Description)
		switch {
		case !marked:
			if s.Destination != "" && withoutUser(s.Destination) == withoutUser(d.Destination) {
				if opts.Prune {
					p.deleteSink(s, subsOf[s.SID], opts, "a sink the relay did not create delivers to endpoint "+d.Endpoint)
				} else {
					p.note("sink %s (%q) was not created by the relay and also delivers to endpoint %s: left alone (--prune deletes it)",
						s.SID, s.Description, d.Endpoint)
				}
			}
		case m.endpoint != d.Endpoint: // another endpoint's
		case len(sinkDiffs(s, d)) == 0:
			matching = append(matching, s)
		default:
			stale = append(stale, s)
		}
	}
	// Of the sinks that match, the one that already has the relay's subscription stays: after a run
	// that created a sink and failed before its subscription, the rerun finishes that sink.
	var keep *Sink
	for i := range matching {
		if keep == nil || (!hasSub(subsOf[keep.SID], d.Description) && hasSub(subsOf[matching[i].SID], d.Description)) {
			keep = &matching[i]
		}
	}
	if keep == nil {
		p.add(Action{Op: CreateSink, Endpoint: d.Endpoint, Spec: d, Why: "no sink of the relay has this configuration"})
		if types := p.movable(d, stale); len(types) > 0 {
			p.add(Action{Op: CreateSubscription, Endpoint: d.Endpoint, Spec: d, Types: types})
		}
	} else {
		p.planSubscription(d, keep, subsOf[keep.SID], opts)
		if keep.Status != "" && keep.Status != "active" {
			p.Inactive = append(p.Inactive, *keep)
		}
	}
	for _, s := range matching {
		if s.SID != keep.SID {
			p.deleteSink(s, subsOf[s.SID], opts, "a second sink of the relay for this endpoint")
		}
	}
	for _, s := range stale {
		why := "a second sink of the relay for this endpoint"
		if keep == nil {
			why = "replaced: " + strings.Join(sinkDiffs(s, d), ", ")
		}
		p.deleteSink(s, subsOf[s.SID], opts, why)
	}
	for _, n := range d.Notes {
		p.note("endpoint %s: %s", d.Endpoint, n)
	}
	for _, sk := range d.Skipped {
		p.Skipped = append(p.Skipped, EndpointSkip{Endpoint: d.Endpoint, Skip: sk})
	}
}

// movable returns the types a new subscription for d can hold: Twilio refuses the kept ones (restricted)
// in a new subscription, so their events stop when the old sink goes, which the plan says.
func (p *Plan) movable(d *SinkSpec, old []Sink) []TypeVersion {
	var out []TypeVersion
	for _, t := range d.Types {
		if !d.Kept[t.Type] {
			out = append(out, t)
			continue
		}
		var sids []string
		for _, s := range old {
			sids = append(sids, s.SID)
		}
		p.note("endpoint %s: %s cannot move to the new sink's subscription (Twilio refuses it in new subscriptions): "+
			"its events stop when sink %s is deleted", d.Endpoint, t.Type, strings.Join(sids, ", "))
	}
	return out
}

func hasSub(subs []Subscription, description string) bool {
	return slices.ContainsFunc(subs, func(s Subscription) bool { return s.Description == description })
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
	skipped := map[string]string{}
	for _, sk := range d.Skipped {
		skipped[sk.Type] = sk.Why
	}
	for _, t := range own.Types {
		if !want[t.Type] {
			why := "no route matches it"
			if w, ok := skipped[t.Type]; ok {
				why = w
			}
			p.add(Action{Op: RemoveType, Endpoint: d.Endpoint, SinkSID: sink.SID, SubSID: own.SID, Type: t, Why: why})
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
