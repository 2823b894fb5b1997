package relay

import (
	"fmt"
	"strings"
)

// Template is a topic or key template: literal text with {field} placeholders, each naming a field that
// Event.Field understands ("twilio.{type}", "{data.accountSid}", "{resource_sid}"). "{{" and "}}" stand for
// literal braces. Templates are parsed once, when the configuration is loaded.
type Template struct {
	src   string
	parts []templatePart
}

type templatePart struct {
	lit   string
	field string // "" for a literal part
}

// ParseTemplate parses s. It fails on an unclosed or empty placeholder, or on a field name Event.Field
// cannot know (names are letters, digits, '_', '-' and '.').
func ParseTemplate(s string) (Template, error) {
	t := Template{src: s}
	var lit strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '{' && i+1 < len(s) && s[i+1] == '{', c == '}' && i+1 < len(s) && s[i+1] == '}':
			lit.WriteByte(c)
			i++
		case c == '{':
			end := strings.IndexByte(s[i:], '}')
			if end < 0 {
				return Template{}, fmt.Errorf("unclosed placeholder at offset %d", i)
			}
			field := strings.TrimSpace(s[i+1 : i+end])
			if err := CheckFieldName(field); err != nil {
				return Template{}, err
			}
			if lit.Len() > 0 {
				t.parts = append(t.parts, templatePart{lit: lit.String()})
				lit.Reset()
			}
			t.parts = append(t.parts, templatePart{field: field})
			i += end
		case c == '}':
			return Template{}, fmt.Errorf("unmatched '}' at offset %d (write '}}' for a literal brace)", i)
		default:
			lit.WriteByte(c)
		}
	}
	if lit.Len() > 0 {
		t.parts = append(t.parts, templatePart{lit: lit.String()})
	}
	return t, nil
}

// MustParseTemplate is ParseTemplate for templates known to be valid; it panics otherwise.
func MustParseTemplate(s string) Template {
	t, err := ParseTemplate(s)
	if err != nil {
		panic(err)
	}
	return t
}

// CheckFieldName reports whether f can name a field (see Event.Field): letters, digits, '_', '-' and
// '.', at least one.
func CheckFieldName(f string) error {
	if f == "" {
		return fmt.Errorf("empty placeholder {}")
	}
	for _, r := range f {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.') {
			return fmt.Errorf("placeholder {%s}: %q is not allowed in a field name", f, r)
		}
	}
	return nil
}

// IsZero reports whether t is the zero Template (no source at all).
func (t Template) IsZero() bool { return t.src == "" && t.parts == nil }

// String returns the template's source text.
func (t Template) String() string { return t.src }

// Literal returns the text t always renders to, and true, when t has no placeholder.
func (t Template) Literal() (string, bool) {
	var b strings.Builder
	for _, p := range t.parts {
		if p.field != "" {
			return "", false
		}
		b.WriteString(p.lit)
	}
	return b.String(), true
}

// Fields returns the fields t's placeholders name, in order.
func (t Template) Fields() []string {
	var out []string
	for _, p := range t.parts {
		if p.field != "" {
			out = append(out, p.field)
		}
	}
	return out
}

// Render fills the placeholders from e. It fails, naming the field, when a placeholder's field is absent
// or empty.
func (t Template) Render(e *Event) (string, error) {
	if len(t.parts) == 1 && t.parts[0].field == "" {
		return t.parts[0].lit, nil
	}
	// The field values first, so that the result is built in one allocation of the right size.
	var buf [4]string
	vals, n := buf[:0], 0
	for _, p := range t.parts {
		if p.field == "" {
			n += len(p.lit)
			continue
		}
		v, ok := e.Field(p.field)
		if !ok || v == "" {
			return "", fmt.Errorf("template %q: field %s is absent", t.src, p.field)
		}
		vals = append(vals, v)
		n += len(v)
	}
	var b strings.Builder
	b.Grow(n)
	for _, p := range t.parts {
		if p.field == "" {
			b.WriteString(p.lit)
		} else {
			b.WriteString(vals[0])
			vals = vals[1:]
		}
	}
	return b.String(), nil
}
