package receiver

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/netip"
	"strings"

	"github.com/gofiber/fiber/v2"
	"github.com/relaykit/twilio-relay/relay"
	"github.com/relaykit/twilio-relay/relay/twilio"
)

// Endpoint is one path Twilio posts to, with everything needed to accept its requests.
type Endpoint struct {
	Name string
	Path string
	// SignedURLs are the forms of the sink destination (without its query) Twilio may have signed: the
	// public URL, and the same with user:pass@ when Basic credentials are set (whether Twilio signs the
	// userinfo is not documented, so both are accepted).
	SignedURLs []string
	Verifier   *twilio.Verifier
	BasicAuth  *BasicAuth
	// AllowedCIDRs, when set, are the only source addresses accepted.
	AllowedCIDRs []netip.Prefix
	// ClientIPHeader, when set, names a header (X-Forwarded-For style) that carries the client address;
	// it is believed only for requests that come from one of TrustedProxies.
	ClientIPHeader string
	TrustedProxies []netip.Prefix
	MaxBody        int
	Decode         twilio.DecodeOptions
	// RejectStatus answers requests that are not verified or are over the body limit. 503 (the default)
	// keeps the event alive at Twilio, which retries for four hours; 401 or 403 make Twilio drop it.
	RejectStatus int
	// Classic makes the endpoint take classic form-encoded webhooks (status callbacks, the Debugger
	// webhook) instead of Event Streams batches; see classic.go.
	Classic bool
}

// BasicAuth is the user and password Twilio sends when the sink URL carries user:pass@.
type BasicAuth struct {
	User, Password string
}

// check compares the Authorization header with the credentials in constant time (hashes first, so that
// lengths do not leak either).
func (b *BasicAuth) check(header string) bool {
	enc, ok := strings.CutPrefix(header, "Basic ")
	if !ok {
		return false
	}
	raw, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		return false
	}
	user, pass, ok := strings.Cut(string(raw), ":")
	if !ok {
		return false
	}
	gu, wu := sha256.Sum256([]byte(user)), sha256.Sum256([]byte(b.User))
	gp, wp := sha256.Sum256([]byte(pass)), sha256.Sum256([]byte(b.Password))
	return subtle.ConstantTimeCompare(gu[:], wu[:])&subtle.ConstantTimeCompare(gp[:], wp[:]) == 1
}

// clientIP returns the address the request came from: the peer's, or, when the peer is a trusted proxy
// and a client IP header is configured, the right-most address in that header that is not a trusted
// proxy itself.
func (ep *Endpoint) clientIP(c *fiber.Ctx) (netip.Addr, bool) {
	peer, ok := netip.AddrFromSlice(c.Context().RemoteIP())
	if !ok {
		return netip.Addr{}, false
	}
	peer = peer.Unmap()
	if ep.ClientIPHeader == "" || !inAny(ep.TrustedProxies, peer) {
		return peer, true
	}
	hops := strings.Split(c.Get(ep.ClientIPHeader), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return netip.Addr{}, false
		}
		if a = a.Unmap(); !inAny(ep.TrustedProxies, a) {
			return a, true
		}
	}
	return peer, true
}

func inAny(prefixes []netip.Prefix, a netip.Addr) bool {
	for _, p := range prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// authenticate applies the endpoint's source allowlist and Basic credentials.
func (ep *Endpoint) authenticate(c *fiber.Ctx) error {
	if len(ep.AllowedCIDRs) > 0 {
		if ip, ok := ep.clientIP(c); !ok || !inAny(ep.AllowedCIDRs, ip) {
			return relay.Errorf(relay.EUNAUTHORIZED, "source_not_allowed", "source address not allowed")
		}
	}
	if ep.BasicAuth != nil && !ep.BasicAuth.check(c.Get(fiber.HeaderAuthorization)) {
		return relay.Errorf(relay.EUNAUTHORIZED, "basic_auth", "basic credentials missing or wrong")
	}
	return nil
}

// rawQuery returns the request's query exactly as it arrived, without '?'.
func rawQuery(c *fiber.Ctx) string {
	uri := c.Request().Header.RequestURI()
	if i := strings.IndexByte(string(uri), '?'); i >= 0 {
		q := uri[i+1:]
		if j := strings.IndexByte(string(q), '#'); j >= 0 {
			q = q[:j]
		}
		return string(q)
	}
	return ""
}
