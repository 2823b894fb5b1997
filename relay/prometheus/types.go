package prometheus

import (
	"strings"
	"sync"

	"github.com/relaykit/twilio-relay/relay"
)

// An event's type comes from the body of a verified request: whoever holds a token (a leaked one, a
// compromised subaccount) chooses it. As a label value it must be bounded, or one body of 3,000 types
// makes 3,000 series of every per-type metric (issue #17). TypeLabels keeps a type as its own label
// when the catalog knows it, or when a route's type pattern matches it (types Twilio added since the
// catalog was compiled, routed by "com.twilio.messaging.*"; not "*", which matches anything), up to
// MaxRoutedTypes such types; every other type, and any longer than MaxTypeLength, is counted as
// OtherType.

const (
	// OtherType is the type label of the events whose own type is not kept.
	OtherType = "other"
	// MaxTypeLength is the longest type kept as a label.
	MaxTypeLength = 128
	// MaxRoutedTypes bounds the types outside the catalog kept because a route pattern matches them.
	MaxRoutedTypes = 100
)

// TypeLabels maps event types to label values. The zero value (no catalog) keeps nothing: every type is
// OtherType. It is safe for concurrent use.
type TypeLabels struct {
	known  map[string]bool
	routed relay.Globs

	mu    sync.RWMutex
	extra map[string]bool
}

// NewTypeLabels returns the labels of the types in known (the catalog, and the exact types the routes
// name) and of those the patterns routed match, up to MaxRoutedTypes of them.
func NewTypeLabels(known []string, routed relay.Globs) *TypeLabels {
	l := &TypeLabels{known: make(map[string]bool, len(known)), routed: routed, extra: map[string]bool{}}
	for _, t := range known {
		l.known[t] = true
	}
	return l
}

// RouteTypes splits the type criteria of routes into the exact types and the patterns. A pattern of
// stars alone ("*": every type) names no type, and is left out.
func RouteTypes(routes []relay.Route) (exact []string, patterns relay.Globs) {
	for _, r := range routes {
		for _, g := range r.Match.Types {
			switch {
			case strings.Trim(string(g), "*") == "":
			case strings.Contains(string(g), "*"):
				patterns = append(patterns, g)
			default:
				exact = append(exact, string(g))
			}
		}
	}
	return exact, patterns
}

// Label returns the label value for an event type ("" stays "": a body-level dead letter has none).
func (l *TypeLabels) Label(typ string) string {
	if typ == "" {
		return ""
	}
	if l == nil || len(typ) > MaxTypeLength {
		return OtherType
	}
	if l.known[typ] {
		return typ
	}
	if len(l.routed) == 0 || !l.routed.Match(typ) {
		return OtherType
	}
	l.mu.RLock()
	kept, full := l.extra[typ], len(l.extra) >= MaxRoutedTypes
	l.mu.RUnlock()
	if kept {
		return typ
	}
	if full {
		return OtherType
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.extra) >= MaxRoutedTypes {
		return OtherType
	}
	l.extra[typ] = true
	return typ
}
