package conformance

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
)

// ParseStructured maps an event in the CloudEvents JSON format (structured mode) to a Record: string
// attributes as they are, other attribute values as their JSON text, data as its JSON text, data_base64
// decoded.
func ParseStructured(b []byte) (Record, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return Record{}, fmt.Errorf("not a JSON object: %w", err)
	}
	rec := Record{Attributes: make(map[string]string, len(m))}
	for k, v := range m {
		switch k {
		case "data":
			rec.Data = []byte(v)
		case "data_base64":
			var s string
			if err := json.Unmarshal(v, &s); err != nil {
				return Record{}, fmt.Errorf("data_base64 is not a string: %w", err)
			}
			d, err := base64.StdEncoding.DecodeString(s)
			if err != nil {
				return Record{}, fmt.Errorf("data_base64: %w", err)
			}
			rec.Data = d
		default:
			var s string
			if json.Unmarshal(v, &s) != nil {
				s = string(v)
			}
			rec.Attributes[k] = s
		}
	}
	return rec, nil
}
