package jsonscan

import (
	"bytes"
	"encoding/json"
	"testing"
)

func TestMembers(t *testing.T) {
	obj := []byte(` { "a" : 1, "b\"q":"x\\y", "c": {"d": [1, {"e": "}"}]}, "f": null, "g": true , "h":-1.5e3 } `)
	var got []string
	if !Members(obj, func(k, v []byte) bool { got = append(got, string(k)+"="+string(v)); return true }) {
		t.Fatal("not an object")
	}
	want := []string{`"a"=1`, `"b\"q"="x\\y"`, `"c"={"d": [1, {"e": "}"}]}`, `"f"=null`, `"g"=true`, `"h"=-1.5e3`}
	if len(got) != len(want) {
		t.Fatalf("got %q", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("member %d = %s, want %s", i, got[i], want[i])
		}
	}
	if v, ok := Lookup(obj, "c", "d"); !ok || string(v) != `[1, {"e": "}"}]` {
		t.Errorf("Lookup c.d = %s, %v", v, ok)
	}
	if _, ok := Lookup(obj, "c", "x"); ok {
		t.Error("Lookup of a missing key succeeded")
	}
	if v, ok := Lookup(obj, `b"q`); !ok || string(v) != `"x\\y"` {
		t.Errorf("escaped key lookup = %s, %v", v, ok)
	}
	if s, ok := String([]byte(`"x\\y\u00e9"`)); !ok || s != `x\yé` {
		t.Errorf("String = %q, %v", s, ok)
	}
	for _, bad := range []string{`[]`, `"x"`, `1`, ``, `{`} {
		if Members([]byte(bad), func(k, v []byte) bool { return true }) {
			t.Errorf("Members(%q) = true", bad)
		}
	}
	if !Members([]byte(`{}`), func(k, v []byte) bool { t.Fatal("member in {}"); return true }) {
		t.Error("{} is an object")
	}
}

// FuzzMembers checks the scanner against encoding/json on every valid object: the same keys, in
// order, with values that decode to the same thing.
func FuzzMembers(f *testing.F) {
	for _, s := range []string{`{"a":1}`, `{"a":{"b":[1,"]",{"c":"\"}"}]},"d":"é\u00e9\\"}`, ` {"x" : [ ] , "y":{ }}`, `{"k":"v","k":2}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if !json.Valid(b) {
			Members(b, func(k, v []byte) bool { return true }) // must not panic or hang
			return
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		if d, ok := tok.(json.Delim); !ok || d != '{' {
			if Members(b, func(k, v []byte) bool { return true }) {
				t.Fatalf("Members accepted a non-object %q", b)
			}
			return
		}
		var keys []string
		var vals []json.RawMessage
		for dec.More() {
			k, _ := dec.Token()
			var v json.RawMessage
			if err := dec.Decode(&v); err != nil {
				t.Fatal(err)
			}
			keys = append(keys, k.(string))
			vals = append(vals, v)
		}
		i := 0
		ok := Members(b, func(k, v []byte) bool {
			ks, kok := String(k)
			if i >= len(keys) || !kok || ks != keys[i] {
				t.Fatalf("member %d key %s, want %q", i, k, keys[i])
			}
			a, aerr := decodeNumbers(v)
			w, werr := decodeNumbers(vals[i])
			if aerr != nil || werr != nil {
				t.Fatalf("member %d value %s does not decode", i, v)
			}
			if !jsonEqual(a, w) {
				t.Fatalf("member %d value %s, want %s", i, v, vals[i])
			}
			if !KeyIs(k, keys[i]) {
				t.Fatalf("KeyIs(%s, %q) = false", k, keys[i])
			}
			i++
			return true
		})
		if !ok || i != len(keys) {
			t.Fatalf("Members = %v after %d of %d members of %q", ok, i, len(keys), b)
		}
	})
}

func decodeNumbers(b []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	err := d.Decode(&v)
	return v, err
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

// FuzzElements checks Elements against encoding/json on every valid array.
func FuzzElements(f *testing.F) {
	for _, s := range []string{`[]`, `[1, "a", {"b":[2]}, [3,[4]], null]`, ` [ "]" , "\"]" ] `} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var want []json.RawMessage
		if t := bytes.TrimSpace(b); !json.Valid(b) || t[0] != '[' || json.Unmarshal(b, &want) != nil {
			Elements(b, func([]byte) bool { return true })
			return
		}
		i := 0
		ok := Elements(b, func(v []byte) bool {
			if i >= len(want) || !bytes.Equal(bytes.TrimSpace(v), bytes.TrimSpace(want[i])) {
				t.Fatalf("element %d = %s", i, v)
			}
			i++
			return true
		})
		if !ok || i != len(want) {
			t.Fatalf("Elements = %v after %d of %d elements", ok, i, len(want))
		}
	})
}

func TestPlainAndText(t *testing.T) {
	for _, tt := range []struct {
		raw, text string
		plain, ok bool
	}{
		{`"abc"`, "abc", true, true},
		{`""`, "", true, true},
		{`"a\"b"`, `a"b`, false, true},
		{`"\u00e9"`, "é", false, true},
		{"\"\xff\"", "\ufffd", false, true}, // invalid UTF-8 is replaced, as encoding/json does
		{`1`, "", false, false},
		{`{}`, "", false, false},
		{`"`, "", false, false},
	} {
		p, plain := Plain([]byte(tt.raw))
		if plain != tt.plain || (plain && string(p) != tt.text) {
			t.Errorf("Plain(%s) = %q, %v", tt.raw, p, plain)
		}
		text, ok := Text([]byte(tt.raw))
		if ok != tt.ok || string(text) != tt.text {
			t.Errorf("Text(%s) = %q, %v, want %q, %v", tt.raw, text, ok, tt.text, tt.ok)
		}
		if s, ok := String([]byte(tt.raw)); ok != tt.ok || s != tt.text {
			t.Errorf("String(%s) = %q, %v", tt.raw, s, ok)
		}
	}
	raw := []byte(`"abc"`)
	if p, _ := Plain(raw); &p[0] != &raw[1] {
		t.Error("Plain copied")
	}
}
