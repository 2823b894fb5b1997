package inspector

import (
	"maps"
	"slices"
	"time"

	"github.com/relaykit/twilio-relay/relay"
)

// Refusal is a refused request as the API shows it.
type Refusal struct {
	At        time.Time `json:"at"`
	Endpoint  string    `json:"endpoint"`
	Reason    string    `json:"reason"`
	Remote    string    `json:"remote"`
	BodyBytes int       `json:"body_bytes"`
}

// EndpointStats counts what an endpoint received since the relay started.
type EndpointStats struct {
	Name string `json:"name"`
	// Verified and Refused count requests; Events counts the events of the verified ones.
	Verified    int64    `json:"verified"`
	Refused     int64    `json:"refused"`
	Events      int64    `json:"events"`
	LastRefusal *Refusal `json:"last_refusal,omitempty"`
}

// RouteHits is how many events a route matched since the relay started.
type RouteHits struct {
	Route string `json:"route"`
	Hits  int64  `json:"hits"`
}

// NoRoute is the name RouteHits gives the events no route matched.
const NoRoute = "(no route)"

// stats are the record's counters and its ring of refusals; the Record's lock guards them.
type stats struct {
	refusals  []Refusal // ring; next is the oldest once full
	next      int
	max       int
	endpoints map[string]*EndpointStats
	routes    map[string]int64
}

func (s *stats) init(maxRefusals int) {
	s.max, s.endpoints, s.routes = maxRefusals, map[string]*EndpointStats{}, map[string]int64{}
}

func (s *stats) endpoint(name string) *EndpointStats {
	e := s.endpoints[name]
	if e == nil {
		e = &EndpointStats{Name: name}
		s.endpoints[name] = e
	}
	return e
}

// Rejected records a refused request (it is a receiver.Monitor).
func (r *Record) Rejected(f relay.Refusal) {
	rf := Refusal{At: f.At, Endpoint: f.Endpoint, Reason: f.Reason, Remote: f.Remote, BodyBytes: f.BodyBytes}
	if rf.At.IsZero() {
		rf.At = time.Now()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	s := &r.stats
	if len(s.refusals) < s.max {
		s.refusals = append(s.refusals, rf)
	} else {
		s.refusals[s.next] = rf
		s.next = (s.next + 1) % s.max
	}
	e := s.endpoint(f.Endpoint)
	e.Refused++
	e.LastRefusal = &rf
}

// Refusals returns up to limit refused requests, newest first, of one endpoint or of all ("").
func (r *Record) Refusals(endpoint string, limit int) []Refusal {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := &r.stats
	out := []Refusal{}
	for i := range s.refusals {
		j := (s.next - 1 - i + 2*len(s.refusals)) % len(s.refusals)
		if f := s.refusals[j]; endpoint == "" || f.Endpoint == endpoint {
			if out = append(out, f); len(out) == limit {
				break
			}
		}
	}
	return out
}

// Endpoints returns every endpoint's counts, by name.
func (r *Record) Endpoints() []EndpointStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]EndpointStats, 0, len(r.stats.endpoints))
	for _, name := range slices.Sorted(maps.Keys(r.stats.endpoints)) {
		e := *r.stats.endpoints[name]
		if e.LastRefusal != nil {
			last := *e.LastRefusal
			e.LastRefusal = &last
		}
		out = append(out, e)
	}
	return out
}

// Routes returns every route's hits, by name, NoRoute last.
func (r *Record) Routes() []RouteHits {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]RouteHits, 0, len(r.stats.routes))
	for _, name := range slices.Sorted(maps.Keys(r.stats.routes)) {
		if name != NoRoute {
			out = append(out, RouteHits{Route: name, Hits: r.stats.routes[name]})
		}
	}
	if n, ok := r.stats.routes[NoRoute]; ok {
		out = append(out, RouteHits{Route: NoRoute, Hits: n})
	}
	return out
}
