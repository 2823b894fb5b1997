package inspector

import (
	"bytes"
	"encoding/json"
	"strings"

	"github.com/relaykit/twilio-relay/relay"
)

// Redacted replaces the value at a redacted path.
const Redacted = "[redacted]"

// maxData bounds the data kept of one event.
const maxData = maxPayload / 2

func splitPaths(paths []string) [][]string {
	out := make([][]string, 0, len(paths))
	for _, p := range paths {
		out = append(out, strings.Split(p, "."))
	}
	return out
}

// redactData returns the event's data with every redacted path replaced, as compact JSON; nil for binary
// data, data that is not JSON, and data over maxData once redacted (a note says which).
func (r *Record) redactData(ev *relay.Event) []byte {
	if ev.Binary || len(ev.Data) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(ev.Data))
	dec.UseNumber() // numbers as written
	var v any
	if dec.Decode(&v) != nil {
		return nil
	}
	for _, p := range r.redact {
		v = redactPath(v, p)
	}
	out, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	if len(out) > maxData {
		return []byte(`"[data over the record's limit]"`)
	}
	return out
}

// redactPath replaces every value at path in v: object keys, * for any key or array element. A path
// reaches into arrays of objects too (data.items.to reaches each item's to).
func redactPath(v any, path []string) any {
	if len(path) == 0 {
		return Redacted
	}
	switch t := v.(type) {
	case map[string]any:
		for k, child := range t {
			if path[0] == "*" || path[0] == k {
				t[k] = redactPath(child, path[1:])
			}
		}
	case []any:
		for i, child := range t {
			if path[0] == "*" {
				t[i] = redactPath(child, path[1:])
			} else {
				t[i] = redactPath(child, path) // an array of objects: the path applies to each
			}
		}
	}
	return v
}
