package admin

import (
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
)

// DNS rebinding: a page an operator opens in a browser, while the admin port is reachable from it
// (port-forwarded to localhost, or on the node), can make its own name resolve to that address and then
// read the admin endpoints as its own origin. The browser still sends the page's name in Host, so the
// admin listener answers only requests whose Host is an address (no page can be served from one the
// attacker controls), localhost, this machine's name (a pod's name), or a name configured in
// admin.allowed_hosts (a Service's DNS name).

// Hosts is the set of names the admin listener answers to, besides addresses and localhost.
type Hosts struct {
	names map[string]bool
}

// NewHosts returns the names allowed: this machine's host name (a pod's name), and names (a port, if
// any, is ignored). Comparison ignores case.
func NewHosts(names ...string) *Hosts {
	h := &Hosts{names: map[string]bool{"localhost": true}}
	if hn, err := os.Hostname(); err == nil && hn != "" {
		h.names[strings.ToLower(hn)] = true
	}
	for _, n := range names {
		if host, _, err := net.SplitHostPort(n); err == nil {
			n = host
		}
		if n != "" {
			h.names[strings.ToLower(n)] = true
		}
	}
	return h
}

// Allowed reports whether a request's Host header (host or host:port) names this listener: an IP
// address, localhost, or one of the names.
func (h *Hosts) Allowed(hostHeader string) bool {
	host := hostHeader
	if hp, _, err := net.SplitHostPort(hostHeader); err == nil {
		host = hp
	}
	host = strings.TrimSuffix(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"), ".")
	if host == "" {
		return false
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return true
	}
	return h.names[strings.ToLower(host)]
}

// Check wraps next: a request whose Host is not allowed is answered 421 Misdirected Request and goes no
// further. Every handler on the admin listener sits behind it; a new page or API there (an inspector)
// gets it by being added to the listener's mux, or by wrapping its own handler.
func (h *Hosts) Check(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !h.Allowed(r.Host) {
			http.Error(w, "admin listener: Host not allowed (add the name to admin.allowed_hosts)", http.StatusMisdirectedRequest)
			return
		}
		next.ServeHTTP(w, r)
	})
}
