package config

import (
	"encoding"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/relaykit/twilio-relay/relay"
	"go.yaml.in/yaml/v3"
)

// expandEnv replaces ${NAME} and ${NAME:-default} in every scalar value (not in keys) with the environment's
// value; $$ stands for a literal $. An unset variable without a default is an error naming the path.
// A plain scalar that was expanded is re-resolved, so "${PORT}" can fill a number.
func expandEnv(n *yaml.Node, path string, env func(string) (string, bool), errs *[]error) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			expandEnv(c, path, env, errs)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			expandEnv(n.Content[i+1], join(path, n.Content[i].Value), env, errs)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			expandEnv(c, fmt.Sprintf("%s[%d]", path, i), env, errs)
		}
	case yaml.ScalarNode:
		if !strings.Contains(n.Value, "$") {
			return
		}
		v, err := expand(n.Value, env)
		if err != nil {
			*errs = append(*errs, fmt.Errorf("%s (line %d): %v", path, n.Line, err))
			return
		}
		n.Value = v
		switch v {
		case "", "~", "null", "Null", "NULL":
			// Stays a string: a secret that reads "null" or "~" must not become empty.
		default:
			if n.Style == 0 { // plain: let YAML resolve the expanded text (numbers, booleans)
				n.Tag = ""
			}
		}
	}
}

func expand(s string, env func(string) (string, bool)) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '{':
			end := strings.IndexByte(s[i:], '}')
			if end < 0 {
				return "", fmt.Errorf("unclosed ${ in %q", s)
			}
			name, def, hasDef := strings.Cut(s[i+2:i+end], ":-")
			v, ok := env(name)
			switch {
			case ok && (v != "" || !hasDef):
				b.WriteString(v)
			case hasDef:
				b.WriteString(def)
			default:
				return "", fmt.Errorf("environment variable %s is not set (write ${%s:-default} for a default)", name, name)
			}
			i += end
		default:
			b.WriteByte('$')
		}
	}
	return b.String(), nil
}

var textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()

// checkKnown reports every mapping key that names no field of the Go type t it will be decoded into,
// with its path, its line and the fields that exist: strict decoding that reports all mistakes at once.
func checkKnown(n *yaml.Node, t reflect.Type, path string, errs *[]error) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.DocumentNode {
		for _, c := range n.Content {
			checkKnown(c, t, path, errs)
		}
		return
	}
	if reflect.PointerTo(t).Implements(textUnmarshaler) {
		return
	}
	switch {
	case n.Kind == yaml.MappingNode && t.Kind() == reflect.Struct:
		fields := yamlFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			f, ok := fields[k.Value]
			if !ok {
				names := make([]string, 0, len(fields))
				for name := range fields {
					names = append(names, name)
				}
				slices.Sort(names)
				*errs = append(*errs, fmt.Errorf("%s (line %d): unknown field; known fields here: %s",
					join(path, k.Value), k.Line, strings.Join(names, ", ")))
				continue
			}
			checkKnown(n.Content[i+1], f.Type, join(path, k.Value), errs)
		}
	case n.Kind == yaml.MappingNode && t.Kind() == reflect.Map:
		for i := 0; i+1 < len(n.Content); i += 2 {
			checkKnown(n.Content[i+1], t.Elem(), join(path, n.Content[i].Value), errs)
		}
	case n.Kind == yaml.SequenceNode && t.Kind() == reflect.Slice:
		for i, c := range n.Content {
			checkKnown(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i), errs)
		}
	}
}

// yamlFields maps the YAML names of t's fields to the fields.
func yamlFields(t reflect.Type) map[string]reflect.StructField {
	out := make(map[string]reflect.StructField, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = f
	}
	return out
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// checkText tries every scalar that will be decoded into an encoding.TextUnmarshaler (durations, sizes)
// and reports each refusal with its path and line. A refused node is replaced by null, so that the
// decoder goes on and reports the other problems too instead of stopping at the first.
func checkText(n *yaml.Node, t reflect.Type, path string, errs *[]error) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case n.Kind == yaml.DocumentNode:
		for _, c := range n.Content {
			checkText(c, t, path, errs)
		}
	case n.Kind == yaml.ScalarNode && reflect.PointerTo(t).Implements(textUnmarshaler):
		if n.Tag == "!!null" {
			return
		}
		v := reflect.New(t).Interface().(encoding.TextUnmarshaler)
		if err := v.UnmarshalText([]byte(n.Value)); err != nil {
			*errs = append(*errs, fmt.Errorf("%s (line %d): %v", path, n.Line, err))
			n.Tag, n.Value, n.Style = "!!null", "", 0
		}
	case n.Kind == yaml.MappingNode && t.Kind() == reflect.Struct:
		fields := yamlFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			if f, ok := fields[n.Content[i].Value]; ok {
				checkText(n.Content[i+1], f.Type, join(path, n.Content[i].Value), errs)
			}
		}
	case n.Kind == yaml.SequenceNode && t.Kind() == reflect.Slice:
		for i, c := range n.Content {
			checkText(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i), errs)
		}
	}
}

// ruleError is a problem found by validate: the path of the value and, when the file has that place
// (or, failing that, the nearest enclosing one), its line.
type ruleError struct {
	path, msg string
	line      int
}

func (e *ruleError) Error() string {
	if e.line == 0 {
		return e.path + ": " + e.msg
	}
	return fmt.Sprintf("%s: %s (line %d)", e.path, e.msg, e.line)
}

// lineAt returns the line of the deepest node of the file on path (such as routes[0].to[1].sink), or 0
// when not even its first key is in the file.
func lineAt(root *yaml.Node, path string) int {
	n, line := root, 0
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	for _, seg := range strings.Split(path, ".") {
		key, idx, _ := strings.Cut(seg, "[")
		if n.Kind != yaml.MappingNode {
			return line
		}
		var v *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				v, line = n.Content[i+1], n.Content[i].Line
			}
		}
		if v == nil {
			return line
		}
		for n = v; idx != ""; { // "0]" or "0][1]"
			var num string
			num, idx, _ = strings.Cut(idx, "]")
			idx = strings.TrimPrefix(idx, "[")
			i, err := strconv.Atoi(num)
			if err != nil || n.Kind != yaml.SequenceNode || i < 0 || i >= len(n.Content) {
				return line
			}
			n, line = n.Content[i], n.Content[i].Line
		}
	}
	return line
}

var yamlUnmarshaler = reflect.TypeFor[yaml.Unmarshaler]()

// asWritten maps the types that decode a list of strings themselves to the shape they are written in.
var asWritten = map[reflect.Type]reflect.Type{
	reflect.TypeFor[relay.List](): reflect.TypeFor[[]string](),
	reflect.TypeFor[Prefixes]():   reflect.TypeFor[[]string](),
}

// checkTypes reports, with its path and line, every value that cannot become the Go type it is decoded
// into (a word where a number goes, a list where a mapping goes …) and every key repeated in one
// mapping, and takes the offending node out so that the decoder goes on and reports nothing twice. The
// decoder alone would report these as "line N: cannot unmarshal …", without the path.
func checkTypes(n *yaml.Node, t reflect.Type, path string, errs *[]error) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.DocumentNode {
		for _, c := range n.Content {
			checkTypes(c, t, path, errs)
		}
		return
	}
	if w, ok := asWritten[t]; ok {
		t = w
	}
	if n.Kind == yaml.AliasNode || n.ShortTag() == "!!null" ||
		reflect.PointerTo(t).Implements(textUnmarshaler) || reflect.PointerTo(t).Implements(yamlUnmarshaler) {
		return
	}
	refuse := func() {
		what := n.ShortTag()
		if n.Kind == yaml.ScalarNode {
			what += " `" + n.Value + "`"
		}
		where := fmt.Sprintf("%s (line %d)", path, n.Line)
		if path == "" {
			where = fmt.Sprintf("line %d", n.Line)
		}
		*errs = append(*errs, fmt.Errorf("%s: cannot unmarshal %s into %s", where, what, t))
		*n = yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Line: n.Line, Column: n.Column}
	}
	switch t.Kind() {
	case reflect.Struct, reflect.Map:
		if n.Kind != yaml.MappingNode {
			refuse()
			return
		}
		var fields map[string]reflect.StructField
		if t.Kind() == reflect.Struct {
			fields = yamlFields(t)
		}
		first := map[string]int{}
		for i := 0; i+1 < len(n.Content); {
			k, v := n.Content[i], n.Content[i+1]
			if at, ok := first[k.Value]; ok {
				*errs = append(*errs, fmt.Errorf("%s (line %d): mapping key %q already defined at line %d", join(path, k.Value), k.Line, k.Value, at))
				n.Content = append(n.Content[:i], n.Content[i+2:]...)
				continue
			}
			first[k.Value] = k.Line
			if t.Kind() == reflect.Map {
				checkTypes(v, t.Elem(), join(path, k.Value), errs)
			} else if f, ok := fields[k.Value]; ok {
				checkTypes(v, f.Type, join(path, k.Value), errs)
			}
			i += 2
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			refuse()
			return
		}
		for i, c := range n.Content {
			checkTypes(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i), errs)
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		// yaml would truncate 1.5 to 1 (and 0.5 to 0, which then takes the default).
		if n.Kind != yaml.ScalarNode || n.ShortTag() == "!!float" || n.Decode(reflect.New(t).Interface()) != nil {
			refuse()
		}
	case reflect.String, reflect.Bool, reflect.Float32, reflect.Float64:
		if n.Kind != yaml.ScalarNode || n.Decode(reflect.New(t).Interface()) != nil {
			refuse()
		}
	}
}
