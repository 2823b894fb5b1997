// Package jsonscan walks JSON text that is already known to be valid, without decoding it: the members
// of an object as raw key and value slices, and string values unquoted. It lets the relay read the few
// attributes and data fields it needs from an event without building maps of every value.
//
// The input must be valid JSON (encoding/json.Valid, or a json.RawMessage from a successful decode): on
// anything else the results are unspecified but the functions never panic or loop for ever.
package jsonscan

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"
)

// Members calls fn for each member of the JSON object obj, in order, with the raw key (still quoted) and
// the raw value, until fn returns false. It reports false when obj is not an object.
func Members(obj []byte, fn func(key, value []byte) bool) bool {
	i := skipSpace(obj, 0)
	if i >= len(obj) || obj[i] != '{' {
		return false
	}
	i = skipSpace(obj, i+1)
	if i < len(obj) && obj[i] == '}' {
		return true
	}
	for i < len(obj) {
		kEnd := skipString(obj, i)
		if kEnd <= i {
			return false
		}
		key := obj[i:kEnd]
		i = skipSpace(obj, kEnd)
		if i >= len(obj) || obj[i] != ':' {
			return false
		}
		vStart := skipSpace(obj, i+1)
		vEnd := skipValue(obj, vStart)
		if vEnd <= vStart {
			return false
		}
		if !fn(key, obj[vStart:vEnd]) {
			return true
		}
		i = skipSpace(obj, vEnd)
		if i >= len(obj) {
			return false
		}
		if obj[i] == '}' {
			return true
		}
		if obj[i] != ',' {
			return false
		}
		i = skipSpace(obj, i+1)
	}
	return false
}

// Lookup returns the raw value at the path of object keys inside obj.
func Lookup(obj []byte, path ...string) ([]byte, bool) {
	cur := obj
	for _, name := range path {
		var found []byte
		ok := Members(cur, func(k, v []byte) bool {
			if KeyIs(k, name) {
				found = v
				return false
			}
			return true
		})
		if !ok || found == nil {
			return nil, false
		}
		cur = found
	}
	return cur, true
}

// KeyIs reports whether the raw (quoted) key equals name.
func KeyIs(raw []byte, name string) bool {
	if p, ok := Plain(raw); ok { // the common case: compare in place
		return string(p) == name
	}
	s, ok := String(raw)
	return ok && s == name
}

// Plain returns the text between the quotes of a raw JSON string that has no escape and is valid UTF-8,
// in place: what String would return, without copying it. It reports false for any other string (String
// decodes those) and for any other kind of value.
func Plain(raw []byte) ([]byte, bool) {
	if len(raw) < 2 || raw[0] != '"' || hasEscape(raw) || !utf8.Valid(raw) {
		return nil, false
	}
	return raw[1 : len(raw)-1], true
}

// Text returns the value of a raw JSON string as bytes: in place when Plain can, else decoded into a new
// slice. It reports false for any other kind of value.
func Text(raw []byte) ([]byte, bool) {
	if p, ok := Plain(raw); ok {
		return p, true
	}
	s, ok := String(raw)
	return []byte(s), ok
}

// String returns the value of a raw JSON string. It reports false for any other kind of value.
func String(raw []byte) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' {
		return "", false
	}
	if p, ok := Plain(raw); ok {
		return string(p), true
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

func hasEscape(raw []byte) bool { return bytes.IndexByte(raw, '\\') >= 0 }

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index after the string starting at b[i], or i when there is none.
func skipString(b []byte, i int) int {
	if i >= len(b) || b[i] != '"' {
		return i
	}
	for j := i + 1; j < len(b); {
		q := bytes.IndexByte(b[j:], '"')
		if q < 0 {
			return i
		}
		j += q
		// The quote ends the string unless an odd run of backslashes escapes it.
		k := j
		for k > i+1 && b[k-1] == '\\' {
			k--
		}
		if (j-k)%2 == 0 {
			return j + 1
		}
		j++
	}
	return i
}

// skipValue returns the index after the value starting at b[i], or i when there is none.
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return i
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				end := skipString(b, j)
				if end == j {
					return i
				}
				j = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return i
	}
	j := i // number, true, false, null
	for j < len(b) && b[j] != ',' && b[j] != '}' && b[j] != ']' && b[j] != ' ' && b[j] != '\t' && b[j] != '\n' && b[j] != '\r' {
		j++
	}
	return j
}

// Elements calls fn for each element of the JSON array arr, in order, with its raw value, until fn
// returns false. It reports false when arr is not an array.
func Elements(arr []byte, fn func(value []byte) bool) bool {
	stopped := false
	ok := ElementsRead(arr, func(rest []byte) int {
		end := skipValue(rest, 0)
		if end > 0 && !fn(rest[:end]) {
			stopped = true
			return 0
		}
		return end
	})
	return ok || stopped
}

// ElementsRead walks the JSON array arr as Elements does, but leaves finding each element's end to read:
// it calls read with arr from the element's start on, and read returns the element's length, or 0 to
// stop. A reader that finds the end as it reads (Unique.Members) so scans each element once. It reports
// false when arr is not an array, read stopped, or what follows an element is neither ',' nor ']'.
func ElementsRead(arr []byte, read func(rest []byte) int) bool {
	i := skipSpace(arr, 0)
	if i >= len(arr) || arr[i] != '[' {
		return false
	}
	i = skipSpace(arr, i+1)
	if i < len(arr) && arr[i] == ']' {
		return true
	}
	for i < len(arr) {
		n := read(arr[i:])
		if n <= 0 {
			return false
		}
		i = skipSpace(arr, i+n)
		if i >= len(arr) {
			return false
		}
		if arr[i] == ']' {
			return true
		}
		if arr[i] != ',' {
			return false
		}
		i = skipSpace(arr, i+1)
	}
	return false
}
