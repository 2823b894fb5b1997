package twilio

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	gojson "github.com/goccy/go-json"
	"github.com/relaykit/twilio-relay/relay"
	"github.com/relaykit/twilio-relay/relay/internal/jsonscan"
)

// DecodeOptions tune Decode.
type DecodeOptions struct {
	// KeepDataString keeps a data attribute that arrived as a JSON-encoded string as it arrived, instead of
	// replacing it with the JSON value the string holds.
	KeepDataString bool
	// MaxEvents bounds the elements of an array body: a longer array is one malformed_body reject of the
	// whole body, not an event or reject per element (256 KiB of "0," would be 131k dead letters).
	// 0: no bound.
	MaxEvents int
}

// Decode turns a webhook-sink body into a batch: a JSON array of CloudEvents, or one bare event object.
// It never fails: a body that is not JSON, or not an array or object, becomes one reject with reason
// malformed_body; an element that is not a valid CloudEvents 1.0 event becomes a reject with reason
// invalid_event, and the other events go on. The events and rejects keep slices of body: the caller must
// not reuse body while the batch is in use.
func Decode(endpoint string, body []byte, at time.Time, opts DecodeOptions) *relay.Batch {
	b := &relay.Batch{Endpoint: endpoint, ReceivedAt: at}
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 || (trimmed[0] != '[' && trimmed[0] != '{') {
		return reject(b, body, "body is neither a JSON array of events nor a JSON object")
	}
	// One validation of the whole body; then the scanner reads it in place.
	if !validJSON(trimmed) {
		if trimmed[0] == '{' {
			return reject(b, body, "body is not valid JSON")
		}
		err := json.Unmarshal(trimmed, new([]json.RawMessage))
		return reject(b, body, fmt.Sprintf("body is not a JSON array of events: %v", err))
	}
	u := uniques.Get().(*jsonscan.Unique)
	defer uniques.Put(u)
	// add reads the event at the start of rest and returns its length.
	add := func(i int, rest []byte) int {
		ev, raw, err := decodeEvent(rest, opts, u)
		if err != nil {
			reason := relay.ReasonInvalidEvent
			if errors.As(err, new(duplicateKeyError)) {
				reason = relay.ReasonDuplicateKey
			}
			b.Rejects = append(b.Rejects, relay.Reject{Raw: raw, Reason: reason, Detail: fmt.Sprintf("event %d: %v", i, err)})
			return len(raw)
		}
		ev.Endpoint = endpoint
		b.Events = append(b.Events, ev)
		return len(raw)
	}
	if trimmed[0] == '{' {
		add(0, trimmed)
		return b
	}
	i, over := 0, false
	jsonscan.ElementsRead(trimmed, func(rest []byte) int {
		if over = opts.MaxEvents > 0 && i == opts.MaxEvents; over {
			return 0 // one element too many: the whole body is rejected below
		}
		i++
		return add(i-1, rest)
	})
	if over {
		b.Events = nil
		return reject(b, body, fmt.Sprintf("a JSON array of more than %d elements (max_events)", opts.MaxEvents))
	}
	return b
}

// uniques holds the duplicate-key scanners' memory between bodies: it grows to the keys of the most
// nested objects seen and is reused, rather than grown anew for every body (7 allocations per event).
// A cache, not state: what a scanner holds between uses is never read.
var uniques = sync.Pool{New: func() any { return new(jsonscan.Unique) }}

// validJSON reports whether b is one JSON value, exactly as encoding/json.Valid does (nesting deeper than
// 10 000 levels included), in a fraction of its time: goccy/go-json's Valid, chosen by measurement
// (docs/benchmarks.md). FuzzValidEquivalent holds it to encoding/json.Valid.
func validJSON(b []byte) bool { return gojson.Valid(b) }

func reject(b *relay.Batch, body []byte, detail string) *relay.Batch {
	b.Rejects = []relay.Reject{{Raw: body, Reason: relay.ReasonMalformedBody, Detail: detail}}
	return b
}

// contextAttrs are the CloudEvents context attributes the relay reads, required ones first.
var contextAttrs = [...]string{"specversion", "id", "source", "type", "subject", "time", "dataschema", "datacontenttype"}

const requiredAttrs = 4

// duplicateKeyError is an event with a key repeated in one of its objects: encoding/json would take the
// last, a lookup in place the first (its id from one member, its record key from another), so the event
// is refused as a whole, with reason duplicate_key.
type duplicateKeyError struct{ key []byte }

func (e duplicateKeyError) Error() string { return fmt.Sprintf("duplicate key %s in an object", e.key) }

// decodeEvent checks one event against CloudEvents 1.0: specversion "1.0" and non-empty string id, source
// and type are required; the other context attributes, when present, must be strings; no object in it
// may repeat a key (u finds them as it reads the members). The event is the JSON value at the start of
// rest, which is valid JSON and may go on after it (the rest of an array); raw is the event's text, found
// in the same pass as its members.
func decodeEvent(rest []byte, opts DecodeOptions, u *jsonscan.Unique) (ev *relay.Event, raw []byte, err error) {
	ev = &relay.Event{}
	var attrs [len(contextAttrs)][]byte
	var data, b64 []byte
	isObject, end, dup := u.Members(rest, func(k, v []byte) bool {
		name, ok := jsonscan.Text(k) // in place: no copy of the key unless it is an extension's
		if !ok {
			return true
		}
		if i := slices.IndexFunc(contextAttrs[:], func(a string) bool { return a == string(name) }); i >= 0 {
			attrs[i] = v
			return true
		}
		switch string(name) {
		case "data":
			data = v
		case "data_base64":
			b64 = v
		default:
			if ev.Extensions == nil {
				ev.Extensions = make(map[string]string, 2)
			}
			s, ok := jsonscan.String(v)
			if !ok {
				s = string(v) // numbers, booleans: their JSON text
			}
			ev.Extensions[string(name)] = s
		}
		return true
	})
	raw = rest[:max(end, 0)]
	ev.Raw = raw
	switch {
	case dup != nil:
		return nil, raw, duplicateKeyError{dup}
	case !isObject && string(raw) != "null":
		return nil, raw, errors.New("not a JSON object")
	}
	var errs []string
	dst := [...]*string{&ev.SpecVersion, &ev.ID, &ev.Source, &ev.Type, &ev.Subject, &ev.Time, &ev.DataSchema, &ev.DataContentType}
	strs, isStr := attrStrings(&attrs)
	for i, name := range contextAttrs {
		v, required := attrs[i], i < requiredAttrs
		if v == nil || string(v) == "null" {
			if required {
				errs = append(errs, "missing required attribute "+name)
			}
			continue
		}
		str, ok := strs[i], isStr[i]
		switch {
		case !ok:
			errs = append(errs, "attribute "+name+" is not a string")
		case required && str == "":
			errs = append(errs, "attribute "+name+" is empty")
		}
		*dst[i] = str
	}
	if ev.SpecVersion != "" && ev.SpecVersion != "1.0" {
		errs = append(errs, fmt.Sprintf("specversion %q is not 1.0", ev.SpecVersion))
	}
	switch {
	case data != nil && b64 != nil:
		errs = append(errs, "both data and data_base64 are present")
	case b64 != nil:
		str, ok := jsonscan.String(b64)
		if !ok {
			errs = append(errs, "data_base64 is not a string")
		} else if d, err := base64.StdEncoding.DecodeString(str); err != nil {
			errs = append(errs, "data_base64 is not base64")
		} else {
			ev.Data = d
		}
		ev.Binary = true
	case data != nil:
		var replaced bool
		if ev.Data, replaced = normaliseData(data, opts); replaced { // the JSON a data string held
			if dup := u.Duplicate(ev.Data); dup != nil {
				return nil, raw, duplicateKeyError{dup}
			}
		}
	}
	if len(errs) > 0 {
		return nil, raw, errors.New(strings.Join(errs, "; "))
	}
	return ev, raw, nil
}

// attrStrings returns the string value of each attribute and whether it is a JSON string. The values
// without escapes, nearly all, are copied side by side into one string and sliced out of it: one
// allocation per event instead of one per attribute.
func attrStrings(attrs *[len(contextAttrs)][]byte) (strs [len(contextAttrs)]string, ok [len(contextAttrs)]bool) {
	var plain [len(contextAttrs)][]byte
	n := 0
	for i, v := range attrs {
		if p, isPlain := jsonscan.Plain(v); isPlain {
			plain[i], ok[i] = p, true
			n += len(p)
		}
	}
	var all strings.Builder
	all.Grow(n)
	for _, p := range plain {
		all.Write(p)
	}
	s := all.String()
	for i, v := range attrs {
		if ok[i] {
			strs[i], s = s[:len(plain[i])], s[len(plain[i]):]
		} else {
			strs[i], ok[i] = jsonscan.String(v)
		}
	}
	return strs, ok
}

// normaliseData returns data as JSON: a JSON-encoded string holding a JSON object or array is replaced by
// that value (older Twilio payloads carry data that way) unless opts keep it; anything else is kept. It
// reports whether it replaced data.
func normaliseData(data json.RawMessage, opts DecodeOptions) ([]byte, bool) {
	if opts.KeepDataString || len(data) == 0 || data[0] != '"' {
		return data, false
	}
	var s string
	if json.Unmarshal(data, &s) != nil {
		return data, false
	}
	inner := bytes.TrimSpace([]byte(s))
	if len(inner) > 0 && (inner[0] == '{' || inner[0] == '[') && validJSON(inner) {
		return inner, true
	}
	return data, false
}
