package relay

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"maps"
	"slices"
)

// MarshalJSON encodes e in the CloudEvents JSON event format (structured mode): the context attributes,
// the extensions, and data as JSON when the content is JSON, else as data_base64.
func (e *Event) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.Grow(len(e.Data) + 256)
	b.WriteByte('{')
	first := true
	field := func(name string, v []byte) {
		if !first {
			b.WriteByte(',')
		}
		first = false
		writeJSONString(&b, name)
		b.WriteByte(':')
		b.Write(v)
	}
	str := func(name, v string) {
		if v == "" {
			return
		}
		var s bytes.Buffer
		writeJSONString(&s, v)
		field(name, s.Bytes())
	}
	str("specversion", e.SpecVersion)
	str("id", e.ID)
	str("source", e.Source)
	str("type", e.Type)
	str("subject", e.Subject)
	str("time", e.Time)
	str("dataschema", e.DataSchema)
	str("datacontenttype", e.DataContentType)
	for _, k := range slices.Sorted(maps.Keys(e.Extensions)) {
		str(k, e.Extensions[k])
	}
	switch {
	case e.Binary:
		field("data_base64", []byte(`"`+base64.StdEncoding.EncodeToString(e.Data)+`"`))
	case len(e.Data) > 0:
		field("data", e.Data)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func writeJSONString(b *bytes.Buffer, s string) {
	enc, _ := json.Marshal(s) // a string always marshals
	b.Write(enc)
}
