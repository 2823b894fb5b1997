package twilio

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/relaykit/twilio-relay/relay"
	"github.com/twilio/twilio-go/client"
)

// Classic webhooks are the form-encoded requests Twilio sends to a statusCallback URL (messaging and
// voice), to an incoming-message URL, and to the Debugger webhook. They are signed differently from
// Event Streams requests: the HMAC covers the URL followed by every POST parameter (keys sorted), and
// there is no bodySHA256. ClassicTypePrefix starts the CloudEvents type of every event made from one;
// docs/twilio.md has the whole mapping.
const ClassicTypePrefix = "com.twilio.classic."

// IdempotencyHeader is the header in which Twilio sends a token that identifies one webhook request and
// stays the same on Twilio's retries of it.
const IdempotencyHeader = "I-Twilio-Idempotency-Token"

// Reasons a classic request fails verification, besides ErrNoSignature and ErrSignatureMismatch.
var (
	ErrBadForm       = errors.New("body is not a form-encoded parameter list")
	ErrEventsOnForms = errors.New("an Event Streams request (bodySHA256 in the query) on a classic endpoint")
)

// ParseForm parses a form-encoded body exactly as Twilio's libraries read it for the signature.
func ParseForm(body []byte) (url.Values, error) {
	params, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadForm, err)
	}
	return params, nil
}

// VerifyForm checks a classic form-encoded webhook: publicURLs are the forms of the URL Twilio was told to
// call, without query; rawQuery is the query as received, without '?'; params are the POST parameters.
//
// It uses twilio-go's RequestValidator.Validate (URL + parameters sorted by key, with and without the
// default port, constant-time). Validate takes one value per key, and twilio-go keeps the first; Twilio's
// Python and Node libraries sign every value of a repeated key, sorted and de-duplicated (vector A6). A
// request with a repeated key is therefore also checked that way: the values are folded into one map
// entry ("v1" + key + "v2" …) so that Validate's concatenation yields key+v1 key+v2 … in that order.
func (v *Verifier) VerifyForm(publicURLs []string, rawQuery string, params url.Values, signature string) error {
	first := make(map[string]string, len(params))
	var folded map[string]string
	for k, vs := range params {
		first[k] = vs[0]
		if len(vs) > 1 && folded == nil {
			folded = make(map[string]string, len(params))
		}
	}
	if folded != nil {
		for k, vs := range params {
			sorted := slices.Compact(slices.Sorted(slices.Values(vs)))
			folded[k] = strings.Join(sorted, k)
		}
	}
	return v.verifyClassic(publicURLs, rawQuery, signature, func(rv *client.RequestValidator, full string) bool {
		return rv.Validate(full, first, signature) || (folded != nil && rv.Validate(full, folded, signature))
	})
}

// VerifyGet checks a classic webhook sent with GET (a statusCallbackMethod of GET): the parameters are in
// the query, and the signature covers the URL with its query and nothing else: twilio-go's Validate with
// no parameters (URL with and without the default port, constant-time), as twilio-go documents it for
// GET webhooks. publicURLs and rawQuery are as for VerifyForm.
func (v *Verifier) VerifyGet(publicURLs []string, rawQuery, signature string) error {
	return v.verifyClassic(publicURLs, rawQuery, signature, func(rv *client.RequestValidator, full string) bool {
		return rv.Validate(full, nil, signature)
	})
}

// verifyClassic refuses what no classic webhook is (no signature, a bodySHA256 in the query), then asks
// valid about each form of the signed URL (each public URL, with "?" and the query when there is one)
// with each token's validator, until one says yes.
func (v *Verifier) verifyClassic(publicURLs []string, rawQuery, signature string, valid func(rv *client.RequestValidator, full string) bool) error {
	if signature == "" {
		return ErrNoSignature
	}
	if q, err := url.ParseQuery(rawQuery); err == nil && q.Has("bodySHA256") {
		return ErrEventsOnForms
	}
	for _, u := range publicURLs {
		if strings.ContainsAny(u, "?#") {
			continue
		}
		full := u
		if rawQuery != "" {
			full += "?" + rawQuery
		}
		for i := range v.validators {
			if valid(&v.validators[i], full) {
				return nil
			}
		}
	}
	return ErrSignatureMismatch
}

// SignForm returns the classic X-Twilio-Signature of a form-encoded request to rawURL (with its query)
// carrying params: base64(HMAC-SHA1(token, URL + key+value for every key sorted, every value sorted)).
func SignForm(token, rawURL string, params url.Values) string {
	var b strings.Builder
	b.WriteString(rawURL)
	for _, k := range slices.Sorted(maps.Keys(params)) {
		for _, v := range slices.Compact(slices.Sorted(slices.Values(params[k]))) {
			b.WriteString(k)
			b.WriteString(v)
		}
	}
	return SignURL(token, b.String())
}

// classicKind is one kind of classic webhook the relay recognises.
type classicKind struct {
	name     string   // for messages
	sid      []string // parameters that carry the resource SID, in order of preference
	status   []string // parameters that carry the status
	typ      string   // type prefix; the status, lower-cased, follows
	source   func(p url.Values, sid string) string
	timeFrom string // parameter holding the time of the occurrence, if any
}

var classicKinds = []classicKind{
	{
		name: "debugger", sid: []string{"Sid"}, status: []string{"Level"},
		typ:      ClassicTypePrefix + "debugger.alert.",
		source:   func(_ url.Values, sid string) string { return "/v1/Alerts/" + sid },
		timeFrom: "Timestamp",
	},
	{
		name: "messaging", sid: []string{"MessageSid", "SmsSid", "SmsMessageSid"}, status: []string{"MessageStatus", "SmsStatus"},
		typ: ClassicTypePrefix + "messaging.message.",
		source: func(p url.Values, sid string) string {
			return "/2010-04-01/Accounts/" + p.Get("AccountSid") + "/Messages/" + sid + ".json"
		},
	},
	{
		name: "voice", sid: []string{"CallSid"}, status: []string{"CallStatus"},
		typ: ClassicTypePrefix + "voice.call.",
		source: func(p url.Values, sid string) string {
			return "/2010-04-01/Accounts/" + p.Get("AccountSid") + "/Calls/" + sid + ".json"
		},
		timeFrom: "Timestamp",
	},
}

var (
	statusRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	sidRE    = regexp.MustCompile(`^[A-Z]{2}[0-9a-fA-F]{32}$`)
	// tokenRE bounds what an idempotency token may be to become part of an id (Twilio's are UUIDs); any
	// other value is ignored and the id falls back to "<SID>:<status>".
	tokenRE = regexp.MustCompile(`^[A-Za-z0-9._~-]{1,128}$`)
)

// DecodeClassic turns the parameters of a verified classic webhook into a batch of one CloudEvent, or one
// reject (invalid_event, with the form body as its bytes) when the parameters are none of the kinds the
// relay knows. The mapping (docs/twilio.md):
//
//   - Debugger webhook (Sid, Level, and AccountSid): type com.twilio.classic.debugger.alert.<level>,
//     source /v1/Alerts/<Sid>;
//   - messaging status callback or incoming message (MessageSid or SmsSid, MessageStatus or SmsStatus):
//     type com.twilio.classic.messaging.message.<status>, source
//     /2010-04-01/Accounts/<AccountSid>/Messages/<MessageSid>.json;
//   - voice status callback (CallSid, CallStatus): type com.twilio.classic.voice.call.<status>, source
//     /2010-04-01/Accounts/<AccountSid>/Calls/<CallSid>.json.
//
// The id is "<resource SID>:<status>:<token>" when the request carried Twilio's idempotency token (the
// I-Twilio-Idempotency-Token header, the same on Twilio's retries of one callback), else
// "<resource SID>:<status>": a retried callback has the same id and is deduplicated, two callbacks with
// the same SID and status but different tokens (a <Dial action> posting in-progress twice) are two
// events, and the next status of the same resource is a new event. subject is the resource SID (the Kafka key), time
// the callback's Timestamp parameter when it has one, else at. data is a JSON object of the parameters:
// a string per parameter, an array of strings for a repeated one; the Debugger's JSON Payload becomes
// an object unless opts keep data strings.
func DecodeClassic(endpoint string, body []byte, params url.Values, token string, at time.Time, opts DecodeOptions) *relay.Batch {
	b := &relay.Batch{Endpoint: endpoint, ReceivedAt: at}
	ev, err := classicEvent(params, token, at, opts)
	if err != nil {
		b.Rejects = []relay.Reject{{Raw: body, Reason: relay.ReasonInvalidEvent, Detail: "classic webhook: " + err.Error()}}
		return b
	}
	ev.Endpoint = endpoint
	b.Events = []*relay.Event{ev}
	return b
}

func classicEvent(p url.Values, token string, at time.Time, opts DecodeOptions) (*relay.Event, error) {
	var kind *classicKind
	var sid, status string
	for i := range classicKinds {
		k := &classicKinds[i]
		s, st := firstOf(p, k.sid), firstOf(p, k.status)
		if s == "" || st == "" {
			continue
		}
		if k.name == "debugger" && (p.Get("AccountSid") == "" || !p.Has("Payload")) {
			continue // a Sid and a Level alone do not make a Debugger alert
		}
		kind, sid, status = k, s, st
		break
	}
	if kind == nil {
		return nil, errors.New("the parameters are none of: a messaging or voice status callback (MessageSid/SmsSid + MessageStatus/SmsStatus, CallSid + CallStatus), a Debugger alert (Sid + Level + Payload)")
	}
	if !sidRE.MatchString(sid) {
		return nil, fmt.Errorf("%s resource SID %q is not a Twilio SID", kind.name, sid)
	}
	if !statusRE.MatchString(status) {
		return nil, fmt.Errorf("%s status %q is not a status word", kind.name, status)
	}
	if acct := p.Get("AccountSid"); !sidRE.MatchString(acct) || !strings.HasPrefix(acct, "AC") {
		return nil, fmt.Errorf("%s callback without a valid AccountSid (%q)", kind.name, acct)
	}
	status = strings.ToLower(status)
	data, err := classicData(p, opts)
	if err != nil {
		return nil, err
	}
	id := sid + ":" + status
	if tokenRE.MatchString(token) {
		id += ":" + token
	}
	ev := &relay.Event{
		SpecVersion:     "1.0",
		ID:              id,
		Source:          kind.source(p, sid),
		Type:            kind.typ + status,
		Subject:         sid,
		Time:            classicTime(p.Get(kind.timeFrom), at),
		DataContentType: "application/json",
		Data:            data,
	}
	if ev.Raw, err = ev.MarshalJSON(); err != nil {
		return nil, err
	}
	return ev, nil
}

func firstOf(p url.Values, names []string) string {
	for _, n := range names {
		if v := p.Get(n); v != "" {
			return v
		}
	}
	return ""
}

// classicData encodes the parameters as a JSON object with sorted keys.
func classicData(p url.Values, opts DecodeOptions) ([]byte, error) {
	m := make(map[string]any, len(p))
	for k, vs := range p {
		switch {
		case len(vs) > 1:
			m[k] = vs
		case k == "Payload" && !opts.KeepDataString && json.Valid([]byte(vs[0])) && strings.HasPrefix(strings.TrimSpace(vs[0]), "{"):
			m[k] = json.RawMessage(vs[0])
		default:
			m[k] = vs[0]
		}
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // URLs in parameters stay readable: & not \u0026
	if err := enc.Encode(m); err != nil {
		return nil, err
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}

// classicTime returns the occurrence time from a Timestamp parameter (RFC 1123 in voice callbacks,
// RFC 3339 in Debugger alerts), or at when there is none that parses.
func classicTime(v string, at time.Time) string {
	for _, layout := range []string{time.RFC3339Nano, time.RFC1123Z, time.RFC1123} {
		if t, err := time.Parse(layout, v); err == nil {
			return t.UTC().Format(time.RFC3339Nano)
		}
	}
	return at.UTC().Format(time.RFC3339Nano)
}
