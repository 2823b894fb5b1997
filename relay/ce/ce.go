// Package ce holds what the relay's CloudEvents protocol bindings share in binary content mode: an
// event's context attributes as name/value pairs, the check that a name can be carried in a header, and
// the percent-encoding of header values (CloudEvents HTTP protocol binding 3.1.3.2, which the NATS
// binding reuses). Each sink package owns the rest of its binding.
package ce

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/relaykit/twilio-relay/relay"
)

// StructuredContentType is the media type of an event in the CloudEvents JSON format (structured mode).
const StructuredContentType = "application/cloudevents+json"

// Attribute is one context attribute or extension of an event.
type Attribute struct {
	Name, Value string
}

// Attributes returns e's context attributes other than datacontenttype (bindings carry it as their
// content type), in a fixed order: specversion, id, source, type, subject, time, dataschema, then the
// extensions sorted by name. Empty attributes are left out.
func Attributes(e *relay.Event) []Attribute {
	out := make([]Attribute, 0, 7+len(e.Extensions))
	add := func(name, v string) {
		if v != "" {
			out = append(out, Attribute{name, v})
		}
	}
	add("specversion", e.SpecVersion)
	add("id", e.ID)
	add("source", e.Source)
	add("type", e.Type)
	add("subject", e.Subject)
	add("time", e.Time)
	add("dataschema", e.DataSchema)
	for _, k := range slices.Sorted(maps.Keys(e.Extensions)) {
		add(k, e.Extensions[k])
	}
	return out
}

// HeaderAttributes is Attributes for bindings that carry attributes as headers (HTTP, NATS): it fails
// when an extension's name is not a valid CloudEvents attribute name, which no header name can hold
// safely. Structured mode carries any name.
func HeaderAttributes(e *relay.Event) ([]Attribute, error) {
	for k := range e.Extensions {
		if err := CheckName(k); err != nil {
			return nil, err
		}
	}
	return Attributes(e), nil
}

// ContentType returns the content type binary mode announces for e's data: datacontenttype, or
// application/json for JSON data without one (Twilio sends JSON; consumers need not guess), or "" when
// there is nothing to announce.
func ContentType(e *relay.Event) string {
	switch {
	case e.DataContentType != "":
		return e.DataContentType
	case !e.Binary && len(e.Data) > 0:
		return "application/json"
	}
	return ""
}

// CheckName reports whether name is a valid CloudEvents attribute name: lower-case ASCII letters and
// digits only (CloudEvents 1.0, "Attribute Naming Convention").
func CheckName(name string) error {
	if name == "" {
		return fmt.Errorf("empty extension attribute name")
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return fmt.Errorf("extension attribute name %q is not lower-case letters and digits", name)
		}
	}
	return nil
}

// HeaderValue percent-encodes s as the CloudEvents HTTP binding requires for header values: every byte
// of its UTF-8 form outside printable ASCII (U+0021 to U+007E), and space, '"' and '%', become %XX.
// Decoding is plain percent-decoding (url.PathUnescape).
func HeaderValue(s string) string {
	n := 0
	for i := 0; i < len(s); i++ {
		if escape(s[i]) {
			n++
		}
	}
	if n == 0 {
		return s
	}
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s) + 2*n)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if escape(c) {
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

func escape(c byte) bool { return c <= 0x20 || c >= 0x7f || c == '"' || c == '%' }
