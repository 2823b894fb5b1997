package admin

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"
)

// Auth are the credentials the admin listener requires, when set: a bearer token, Basic credentials, or
// both. A browser, which cannot send a bearer token, may send the token as the Basic password with any
// user name.
type Auth struct {
	Token              string
	Username, Password string
}

// open are the paths served without credentials: the kubelet's probes carry none. POST /drain is not:
// it stops intake, and its client (`relay drain`, the chart's preStop hook, run in the relay's own
// container) sends the credentials of the relay's environment.
var open = map[string]bool{"/healthz": true, "/readyz": true}

// require wraps next so that every request but the open paths carries the credentials; the others are
// answered 401 with a Basic challenge (a browser then asks for them).
func (a *Auth) require(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if open[r.URL.Path] || a.allows(r) {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Set("WWW-Authenticate", `Basic realm="twilio-relay admin", charset="UTF-8"`)
		http.Error(w, "unauthorized: the admin listener needs a bearer token or Basic credentials", http.StatusUnauthorized)
	})
}

// allows checks the Authorization header in constant time (hashes first, so that lengths do not leak).
func (a *Auth) allows(r *http.Request) bool {
	if token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		return a.Token != "" && same(token, a.Token) == 1
	}
	user, pass, ok := r.BasicAuth()
	if !ok {
		return false
	}
	byToken := a.Token != "" && same(pass, a.Token) == 1
	byUser := a.Username != "" && same(user, a.Username)&same(pass, a.Password) == 1
	return byToken || byUser
}

func same(got, want string) int {
	g, w := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(g[:], w[:])
}
