// Package jsonscan walks JSON text that is already known to be valid, without decoding it: the members
// of an object as raw key and value slices, and string values unquoted. It lets the relay read the few
// attributes and data fields it needs from an event without building maps of every value.
//
// The input must be valid JSON (encoding/json.Valid, or a json.RawMessage from a successful decode): on
// anything else the results are unspecified but the functions never panic or loop for ever.
package jsonscan

import (
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
	if !hasEscape(raw) && utf8.Valid(raw) { // the common case: compare in place
		return len(raw) == len(name)+2 && string(raw[1:len(raw)-1]) == name
	}
	s, ok := String(raw)
	return ok && s == name
}

// String returns the value of a raw JSON string. It reports false for any other kind of value.
func String(raw []byte) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' {
		return "", false
	}
	if !hasEscape(raw) && utf8.Valid(raw) {
		return string(raw[1 : len(raw)-1]), true
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

func hasEscape(raw []byte) bool {
	for _, c := range raw {
		if c == '\\' {
			return true
		}
	}
	return false
}

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
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
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
	i := skipSpace(arr, 0)
	if i >= len(arr) || arr[i] != '[' {
		return false
	}
	i = skipSpace(arr, i+1)
	if i < len(arr) && arr[i] == ']' {
		return true
	}
	for i < len(arr) {
		end := skipValue(arr, i)
		if end <= i {
			return false
		}
		if !fn(arr[i:end]) {
			return true
		}
		i = skipSpace(arr, end)
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
