package twilioapi

import (
	"crypto/pbkdf2"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// Marker is the description prefix of everything the relay creates at Twilio; the endpoint name follows.
const Marker = "twilio-relay:"

// MarkerFor returns the description the relay gives the subscription of an endpoint. The sink's starts
// the same way (sinkDescription).
func MarkerFor(endpoint string) string { return Marker + endpoint }

// mark is what a description written by the relay says: the endpoint, and for a sink what it was created
// with that Twilio may not echo in full (see sinkDiffs).
type mark struct {
	endpoint    string
	batch       *bool  // batch_events=
	credentials string // credentials=: credentialTag of the destination's password
}

// parseMark reads a description: "twilio-relay:<endpoint>", then space-separated key=value attributes.
// Endpoint names hold no spaces (config checks them). ok is false when the relay did not write it.
func parseMark(description string) (mark, bool) {
	rest, ok := strings.CutPrefix(description, Marker)
	fields := strings.Fields(rest)
	if !ok || len(fields) == 0 || !strings.HasPrefix(rest, fields[0]) {
		return mark{}, false
	}
	m := mark{endpoint: fields[0]}
	for _, f := range fields[1:] {
		k, v, _ := strings.Cut(f, "=")
		switch k {
		case "batch_events":
			if b, err := strconv.ParseBool(v); err == nil {
				m.batch = &b
			}
		case "credentials":
			m.credentials = v
		}
	}
	return m, true
}

// endpointOf returns the endpoint a description marks, or false when the relay did not create it.
func endpointOf(description string) (string, bool) {
	m, ok := parseMark(description)
	return m.endpoint, ok
}

// sinkDescription is the description of the sink the relay creates for d: the endpoint's marker, then
// batch_events, then a tag of the Basic password when the destination has one. Twilio cannot change a
// sink's configuration, and its GET may leave out batch_events or mask the password: the description
// keeps what the relay asked for, so that a later apply can tell a changed configuration from an echo
// that says less.
func sinkDescription(d *SinkSpec) string {
	desc := fmt.Sprintf("%s batch_events=%t", MarkerFor(d.Endpoint), d.BatchEvents)
	if tag := credentialTag(d.Endpoint, d.Destination); tag != "" {
		desc += " credentials=" + tag
	}
	return desc
}

// credentialTag is a short, salted and slow hash of the Basic password in destination ("" when it has
// none): enough to see that the password changed, without putting it, or a fast hash of it, in a
// description that everyone with access to the Twilio account can read. PBKDF2-HMAC-SHA256, 100 000
// rounds, salted with the endpoint and the destination without the password, 9 bytes.
func credentialTag(endpoint, destination string) string {
	u, err := url.Parse(destination)
	if err != nil || u.User == nil {
		return ""
	}
	pass, ok := u.User.Password()
	if !ok {
		return ""
	}
	u.User = url.User(u.User.Username())
	key, err := pbkdf2.Key(sha256.New, pass, []byte(Marker+endpoint+" "+u.String()), 100_000, 9)
	if err != nil {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString(key)
}

// sinkDiffs says how a sink of the relay differs from the spec, for people (passwords redacted); none
// means it is kept. Only what Twilio reliably echoes is compared with the echo: the sink type, the
// destination without its password (scheme, host, port, path, query, and the user name when the echo
// has one), and the method when the echo has one. batch_events is compared with the echo when it holds
// it, else with the description's record; the password with the description's record only (an echo may
// mask it), or, for a sink made before the record, by whether the echo shows credentials at all. What
// neither says is taken as unchanged.
func sinkDiffs(s Sink, d *SinkSpec) []string {
	var diffs []string
	if s.SinkType != "webhook" {
		diffs = append(diffs, fmt.Sprintf("sink_type %s → webhook", s.SinkType))
	}
	if !sameDestination(s.Destination, d.Destination) {
		diffs = append(diffs, fmt.Sprintf("destination %s → %s", redact(s.Destination), redact(d.Destination)))
	}
	if s.Method != "" && !strings.EqualFold(s.Method, "POST") {
		diffs = append(diffs, fmt.Sprintf("method %q → POST", s.Method))
	}
	m, _ := parseMark(s.Description)
	batch := s.BatchEvents
	if batch == nil {
		batch = m.batch
	}
	if batch != nil && *batch != d.BatchEvents {
		diffs = append(diffs, fmt.Sprintf("batch_events %t → %t", *batch, d.BatchEvents))
	}
	tag := credentialTag(d.Endpoint, d.Destination)
	switch {
	case m.credentials != "" && m.credentials != tag:
		diffs = append(diffs, "the Basic credentials in the destination changed")
	case m.credentials == "" && tag != "" && !hasUser(s.Destination):
		diffs = append(diffs, "Basic credentials added to the destination")
	}
	return diffs
}

func hasUser(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && u.User != nil
}

// sameDestination compares an echoed destination with the desired one: everything but the password, and
// the user name only when the echo shows one.
func sameDestination(echo, want string) bool {
	e, err1 := url.Parse(echo)
	w, err2 := url.Parse(want)
	if err1 != nil || err2 != nil {
		return echo == want
	}
	if e.User != nil && (w.User == nil || e.User.Username() != w.User.Username()) {
		return false
	}
	e.User, w.User = nil, nil
	return e.String() == w.String()
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
