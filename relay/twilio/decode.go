package twilio

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/relaykit/twilio-relay/relay"
)

// DecodeOptions tune Decode.
type DecodeOptions struct {
	// KeepDataString keeps a data attribute that arrived as a JSON-encoded string as it arrived, instead of
	// replacing it with the JSON value the string holds.
	KeepDataString bool
}

// Decode turns a webhook-sink body into a batch: a JSON array of CloudEvents, or one bare event object.
// It never fails: a body that is not JSON, or not an array or object, becomes one reject with reason
// malformed_body; an element that is not a valid CloudEvents 1.0 event becomes a reject with reason
// invalid_event, and the other events go on. The events and rejects keep slices of body: the caller must
// not reuse body while the batch is in use.
func Decode(endpoint string, body []byte, at time.Time, opts DecodeOptions) *relay.Batch {
	b := &relay.Batch{Endpoint: endpoint, ReceivedAt: at}
	trimmed := bytes.TrimSpace(body)
	var raws []json.RawMessage
	switch {
	case len(trimmed) > 0 && trimmed[0] == '[':
		if err := json.Unmarshal(trimmed, &raws); err != nil {
			return reject(b, body, fmt.Sprintf("body is not a JSON array of events: %v", err))
		}
	case len(trimmed) > 0 && trimmed[0] == '{':
		if !json.Valid(trimmed) {
			return reject(b, body, "body is not valid JSON")
		}
		raws = []json.RawMessage{trimmed}
	default:
		return reject(b, body, "body is neither a JSON array of events nor a JSON object")
	}
	b.Events = make([]*relay.Event, 0, len(raws))
	for i, raw := range raws {
		ev, err := decodeEvent(raw, opts)
		if err != nil {
			b.Rejects = append(b.Rejects, relay.Reject{Raw: raw, Reason: relay.ReasonInvalidEvent,
				Detail: fmt.Sprintf("event %d: %v", i, err)})
			continue
		}
		ev.Endpoint = endpoint
		b.Events = append(b.Events, ev)
	}
	return b
}

func reject(b *relay.Batch, body []byte, detail string) *relay.Batch {
	b.Rejects = []relay.Reject{{Raw: body, Reason: relay.ReasonMalformedBody, Detail: detail}}
	return b
}

// decodeEvent checks one event against CloudEvents 1.0: specversion "1.0" and non-empty string id, source
// and type are required; the other context attributes, when present, must be strings.
func decodeEvent(raw json.RawMessage, opts DecodeOptions) (*relay.Event, error) {
	var attrs map[string]json.RawMessage
	if err := json.Unmarshal(raw, &attrs); err != nil {
		return nil, fmt.Errorf("not a JSON object: %v", err)
	}
	ev := &relay.Event{Raw: raw}
	var errs []string
	str := func(name string, required bool) string {
		v, ok := attrs[name]
		if !ok || string(v) == "null" {
			if required {
				errs = append(errs, "missing required attribute "+name)
			}
			return ""
		}
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			errs = append(errs, "attribute "+name+" is not a string")
			return ""
		}
		if required && s == "" {
			errs = append(errs, "attribute "+name+" is empty")
		}
		return s
	}
	ev.SpecVersion = str("specversion", true)
	ev.ID = str("id", true)
	ev.Source = str("source", true)
	ev.Type = str("type", true)
	ev.Subject = str("subject", false)
	ev.Time = str("time", false)
	ev.DataSchema = str("dataschema", false)
	ev.DataContentType = str("datacontenttype", false)
	if ev.SpecVersion != "" && ev.SpecVersion != "1.0" {
		errs = append(errs, fmt.Sprintf("specversion %q is not 1.0", ev.SpecVersion))
	}
	data, hasData := attrs["data"]
	b64, hasB64 := attrs["data_base64"]
	switch {
	case hasData && hasB64:
		errs = append(errs, "both data and data_base64 are present")
	case hasB64:
		var s string
		if err := json.Unmarshal(b64, &s); err != nil {
			errs = append(errs, "data_base64 is not a string")
		} else if ev.Data, err = base64.StdEncoding.DecodeString(s); err != nil {
			errs = append(errs, "data_base64 is not base64")
		}
		ev.Binary = true
	case hasData:
		ev.Data = normaliseData(data, opts)
	}
	if len(errs) > 0 {
		return nil, errors.New(strings.Join(errs, "; "))
	}
	for name, v := range attrs {
		switch name {
		case "specversion", "id", "source", "type", "subject", "time", "dataschema", "datacontenttype", "data", "data_base64":
			continue
		}
		if ev.Extensions == nil {
			ev.Extensions = make(map[string]string, len(attrs)-8)
		}
		var s string
		if json.Unmarshal(v, &s) != nil {
			s = string(v) // numbers, booleans: their JSON text
		}
		ev.Extensions[name] = s
	}
	return ev, nil
}

// normaliseData returns data as JSON: a JSON-encoded string holding a JSON object or array is replaced by
// that value (older Twilio payloads carry data that way) unless opts keep it; anything else is kept.
func normaliseData(data json.RawMessage, opts DecodeOptions) []byte {
	if opts.KeepDataString || len(data) == 0 || data[0] != '"' {
		return data
	}
	var s string
	if json.Unmarshal(data, &s) != nil {
		return data
	}
	inner := bytes.TrimSpace([]byte(s))
	if len(inner) > 0 && (inner[0] == '{' || inner[0] == '[') && json.Valid(inner) {
		return inner
	}
	return data
}
