package jsonscan

import "unicode/utf8"

// Duplicate keys: encoding/json keeps the last of a repeated key, a lookup in place finds the first. An
// object with a repeated key can so mean two things at once (an event's id from one member, its record
// key from another), and strict parsers (I-JSON, RFC 7493) refuse it. Unique finds the first key repeated
// within one object, at any depth, while it walks the value to its end: the walk the reader does anyway.

// smallObject is the number of keys up to which an object's keys are compared with each other; a bigger
// object gets a set, so that a body of one object with 100,000 keys stays linear.
const smallObject = 32

// Unique walks JSON values and reports repeated keys. The zero value is ready; reusing one across values
// reuses its memory. It is not safe for concurrent use.
type Unique struct {
	keys   [][]byte // the keys of the objects open now, outermost first
	frames []frame
}

// frame is an open object or array: where its keys start in Unique.keys, whether one of them needs
// decoding to compare (needsDecoding), a 64-bit summary of its keys (a key whose bit is not set cannot be a repeat: no comparison),
// and, for a big object, the set of its keys.
type frame struct {
	object, escaped bool
	start           int
	bits            uint64
	set             map[string]struct{}
}

// keyBit is a raw key's bit in frame.bits: from its length and its first and last characters.
func keyBit(key []byte) uint64 {
	n := len(key)
	h := uint(n) * 31
	if n > 2 { // within the quotes
		h += uint(key[1]) + uint(key[n-2])*7
	}
	return 1 << (h & 63)
}

// Members calls fn for each member of the JSON object at the start of obj, as the package's Members
// does, and reports whether it is an object, the index just after the value at obj's start (no more
// than the value's start when it has no end: obj is not valid JSON there), and the first key that appears twice in one object, the
// object itself or any object inside it (raw, with its quotes), or nil. It stops calling fn at that key,
// before its member. obj may go on after the value (the rest of an array): what follows is not read, so
// an array's element is read in one pass instead of once to find its end and again for its members.
func (u *Unique) Members(obj []byte, fn func(key, value []byte) bool) (isObject bool, end int, dup []byte) {
	start := skipSpace(obj, 0)
	if start >= len(obj) || obj[start] != '{' {
		return false, skipValue(obj, start), nil
	}
	end, stopped, dup := u.members(obj, start, fn)
	if stopped || dup != nil {
		end = skipValue(obj, start) // the rest of the object was not walked
	}
	return end > start, end, dup
}

// members walks the object at obj[start] (a '{'): the index after it (start when malformed), whether fn
// stopped the walk, and the first repeated key.
func (u *Unique) members(obj []byte, start int, fn func(key, value []byte) bool) (end int, stopped bool, dup []byte) {
	u.keys, u.frames = u.keys[:0], append(u.frames[:0], frame{object: true})
	i := skipSpace(obj, start+1)
	if i < len(obj) && obj[i] == '}' {
		return i + 1, false, nil
	}
	for i < len(obj) {
		kEnd := skipString(obj, i)
		if kEnd <= i {
			return start, false, nil
		}
		key := obj[i:kEnd]
		if u.add(key) {
			return start, false, key
		}
		i = skipSpace(obj, kEnd)
		if i >= len(obj) || obj[i] != ':' {
			return start, false, nil
		}
		vStart := skipSpace(obj, i+1)
		vEnd, dup := u.skip(obj, vStart)
		if dup != nil {
			return start, false, dup
		}
		if vEnd <= vStart {
			return start, false, nil
		}
		if !fn(key, obj[vStart:vEnd]) {
			return start, true, nil
		}
		i = skipSpace(obj, vEnd)
		if i >= len(obj) {
			return start, false, nil
		}
		if obj[i] == '}' {
			return i + 1, false, nil
		}
		if obj[i] != ',' {
			return start, false, nil
		}
		i = skipSpace(obj, i+1)
	}
	return start, false, nil
}

// Duplicate reports the first key that appears twice in one object of the JSON value v, or nil.
func (u *Unique) Duplicate(v []byte) []byte {
	u.keys, u.frames = u.keys[:0], u.frames[:0]
	_, dup := u.skip(v, skipSpace(v, 0))
	return dup
}

// skip returns the index after the value starting at b[i] (i when there is none, as skipValue), and the
// first key repeated within one of its objects.
func (u *Unique) skip(b []byte, i int) (end int, dup []byte) {
	if i >= len(b) || (b[i] != '{' && b[i] != '[') {
		return skipValue(b, i), nil
	}
	base := len(u.frames)
	keyNext := false // the next string is a key: just after '{' or after ',' in an object
	for j := i; j < len(b); j++ {
		switch b[j] {
		case '"':
			e := skipString(b, j)
			if e == j {
				return i, nil
			}
			if keyNext {
				if u.add(b[j:e]) {
					return i, b[j:e]
				}
				keyNext = false
			}
			j = e - 1
		case '{':
			u.frames = append(u.frames, frame{object: true, start: len(u.keys)})
			keyNext = true
		case '[':
			u.frames = append(u.frames, frame{start: len(u.keys)})
		case ',':
			keyNext = u.frames[len(u.frames)-1].object
		case '}', ']':
			u.keys = u.keys[:u.frames[len(u.frames)-1].start]
			if u.frames = u.frames[:len(u.frames)-1]; len(u.frames) == base {
				return j + 1, nil
			}
		}
	}
	return i, nil
}

// add adds key to the innermost open object and reports whether it was there already.
func (u *Unique) add(key []byte) bool {
	f := &u.frames[len(u.frames)-1]
	if f.set != nil {
		return f.insert(key)
	}
	bit, escaped := keyBit(key), needsDecoding(key)
	if f.bits&bit != 0 {
		for _, k := range u.keys[f.start:] {
			if string(k) == string(key) {
				return true
			}
		}
	}
	if escaped || f.escaped { // the same name may be written two ways: compare the decoded names too
		for _, k := range u.keys[f.start:] {
			if sameText(k, key) {
				return true
			}
		}
	}
	f.bits |= bit
	f.escaped = f.escaped || escaped
	if u.keys = append(u.keys, key); len(u.keys)-f.start > smallObject {
		f.set = make(map[string]struct{}, 2*smallObject)
		for _, k := range u.keys[f.start:] {
			f.insert(k)
		}
	}
	return false
}

// insert adds key to a big object's set, by its decoded text, and reports whether it was there.
func (f *frame) insert(key []byte) bool {
	text := string(key[1 : len(key)-1])
	if needsDecoding(key) {
		text, _ = String(key)
	}
	if _, ok := f.set[text]; ok {
		return true
	}
	f.set[text] = struct{}{}
	return false
}

// needsDecoding reports whether a raw key may name the same member as different bytes: it has an escape,
// or bytes outside ASCII (invalid UTF-8 decodes to U+FFFD, as encoding/json reads it).
func needsDecoding(key []byte) bool {
	for _, c := range key {
		if c == '\\' || c >= utf8.RuneSelf {
			return true
		}
	}
	return false
}

// sameText reports whether two raw keys are the same once decoded.
func sameText(a, b []byte) bool {
	sa, _ := String(a)
	sb, _ := String(b)
	return sa == sb
}
