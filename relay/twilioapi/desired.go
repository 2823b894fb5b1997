package twilioapi

import (
	"cmp"
	"errors"
	"fmt"
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
	Endpoint string
	// Description is the subscription's (MarkerFor); the sink's adds what it is created with
	// (sinkDescription).
	Description string
	Destination string
	BatchEvents bool
	// Types are the types to subscribe, sorted by type.
	Types []TypeVersion
	// Kept are types of Types that stay only because the subscription holds them already: Twilio would
	// refuse to add them again (a restricted type), so they are never added, changed, or carried to a new
	// sink.
	Kept map[string]bool
	// Skipped are the types a route sends somewhere but that are not subscribed, and why.
	Skipped []Skip
	// Notes are for people: warnings on deprecated and restricted types, versions kept by the
	// subscription, schema_versions that do not exist.
	Notes []string
}

// Skip is a type a route sends somewhere that is not subscribed, and why.
type Skip struct{ Type, Why string }

// TestEventType is never subscribed: Twilio sends it only on a sink test.
const testEventType = relay.TestEventType

// DesireOptions tune Desired.
type DesireOptions struct {
	// UpgradeSchemas moves each subscribed type that no route pins with schema_versions to the latest
	// version of its schema. Without it such a type stays at the version its subscription holds.
	UpgradeSchemas bool
}

// Desired returns the sink each endpoint should have: its destination and, for each event type of the
// catalog that a route sends somewhere from that endpoint and that Twilio lets it subscribe (lifecycle),
// the schema version to subscribe. The routes are read like the router reads them: a route applies to an
// endpoint when its endpoints globs match the endpoint's name (or it has none) and to a type when its
// types globs match it (or it has none). Sources, dataschemas and when conditions select events within a
// type and do not narrow the subscription.
//
// The version is that of the first applicable route listing schema_versions (the highest listed that
// exists); else the version the relay's subscription for the endpoint in st holds (st may be nil), so
// that payload shapes change only on purpose; else, for a type not subscribed yet or with
// opts.UpgradeSchemas, the latest. The error lists every type the configuration names exactly that
// Twilio refuses (restricted, discontinued).
func Desired(eps []Endpoint, router *relay.Router, catalog []EventType, st *State, opts DesireOptions) ([]SinkSpec, error) {
	out := make([]SinkSpec, 0, len(eps))
	var problems []string
	for _, ep := range eps {
		spec, errs := desiredFor(ep, router, catalog, subscribedBy(st, ep.Name), opts)
		out = append(out, spec)
		problems = append(problems, errs...)
	}
	if len(problems) > 0 {
		return out, errors.New(strings.Join(problems, "\n"))
	}
	return out, nil
}

func desiredFor(ep Endpoint, router *relay.Router, catalog []EventType, have map[string]int, opts DesireOptions) (SinkSpec, []string) {
	spec := SinkSpec{Endpoint: ep.Name, Description: MarkerFor(ep.Name), Destination: ep.Destination, BatchEvents: ep.BatchEvents,
		Kept: map[string]bool{}}
	var problems, behind []string
	for _, t := range catalog {
		if t.Type == testEventType || !ep.Types.Match(t.Type) {
			continue
		}
		v, routed, pinned, note := versionFor(router, ep.Name, t)
		if note != "" {
			spec.Notes = append(spec.Notes, note)
		}
		if !routed {
			continue
		}
		cur, subscribed := have[t.Type]
		vd := lifecycle(t, namedExactly(router, ep, t.Type), subscribed)
		switch {
		case vd.err != "":
			problems = append(problems, fmt.Sprintf("endpoint %s: %s", ep.Name, vd.err))
			continue
		case !vd.subscribe:
			spec.Skipped = append(spec.Skipped, Skip{Type: t.Type, Why: vd.skip})
			continue
		case vd.warn != "":
			spec.Notes = append(spec.Notes, vd.warn)
		}
		switch {
		case vd.keep:
			if pinned && v != cur {
				spec.Notes = append(spec.Notes, fmt.Sprintf("%s stays at v%d: Twilio would refuse the change to v%d", t.Type, cur, v))
			}
			v = cur
			spec.Kept[t.Type] = true
		case subscribed && !pinned && !opts.UpgradeSchemas:
			if cur < v {
				behind = append(behind, fmt.Sprintf("%s v%d (latest v%d)", t.Type, cur, v))
			}
			v = cur
		}
		spec.Types = append(spec.Types, TypeVersion{Type: t.Type, SchemaVersion: v})
	}
	if len(behind) > 0 {
		spec.Notes = append(spec.Notes, fmt.Sprintf("%d subscribed types keep their schema version though a newer one exists "+
			"(apply -upgrade-schemas, or schema_versions in a route, moves them): %s", len(behind), strings.Join(behind, ", ")))
	}
	slices.SortFunc(spec.Types, func(a, b TypeVersion) int { return cmp.Compare(a.Type, b.Type) })
	return spec, problems
}

// subscribedBy returns the types, with their versions, of the relay's subscription for endpoint in st.
func subscribedBy(st *State, endpoint string) map[string]int {
	have := map[string]int{}
	if st == nil {
		return have
	}
	for _, sub := range st.Subscriptions {
		if sub.Description != MarkerFor(endpoint) {
			continue
		}
		for _, t := range sub.Types {
			if _, dup := have[t.Type]; !dup {
				have[t.Type] = t.SchemaVersion
			}
		}
	}
	return have
}

// namedExactly reports whether the endpoint's twilio.types, or the types of a route that applies to the
// endpoint, name typ itself rather than match it with a glob.
func namedExactly(router *relay.Router, ep Endpoint, typ string) bool {
	if slices.Contains(ep.Types, relay.Glob(typ)) {
		return true
	}
	for i := range router.Routes {
		r := &router.Routes[i]
		if r.Match.Endpoints.Match(ep.Name) && slices.Contains(r.Match.Types, relay.Glob(typ)) {
			return true
		}
	}
	return false
}

// versionFor returns the schema version to subscribe t at for endpoint, whether any route applies, and
// whether a route's schema_versions chose it (else it is the latest).
func versionFor(router *relay.Router, endpoint string, t EventType) (v int, routed, pinned bool, note string) {
	for i := range router.Routes {
		r := &router.Routes[i]
		if !r.Match.Endpoints.Match(endpoint) || !r.Match.Types.Match(t.Type) {
			continue
		}
		if len(r.Match.SchemaVersions) == 0 {
			return t.LatestVersion, true, false, note
		}
		best := 0
		for _, v := range r.Match.SchemaVersions {
			if v <= t.LatestVersion || t.LatestVersion == 0 {
				best = max(best, v)
			}
		}
		if best > 0 {
			return best, true, true, note
		}
		note = fmt.Sprintf("route %s: %s has no schema version in %v (latest %d)", r.Name, t.Type, r.Match.SchemaVersions, t.LatestVersion)
	}
	return 0, false, false, note
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
