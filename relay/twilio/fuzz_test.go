package twilio_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/relaykit/twilio-relay/relay"
	"github.com/relaykit/twilio-relay/relay/twilio"
)

// FuzzDecode checks what Decode promises for any body:
//   - it never panics and never returns nil; the batch carries the endpoint and the time;
//   - a body whose trimmed text is not a JSON array or a valid JSON object becomes exactly one reject,
//     malformed_body, whose Raw is the whole body, and no event;
//   - otherwise every element becomes exactly one event or one invalid_event reject, in order, whose Raw
//     is that element's bytes (so the only way to get nothing at all is an empty array);
//   - every event has specversion 1.0, non-empty id, source and type, the endpoint, a Raw that is a JSON
//     object holding those same attributes, and Data that is JSON unless Binary;
//   - no core attribute shows up as an extension;
//   - an element is a duplicate_key reject exactly when one of its objects repeats a key (by an
//     independent walk of encoding/json's tokens), or, when data strings are replaced by the JSON they
//     hold, that JSON does; other rejects are invalid_event;
//   - KeepDataString changes data only, and which elements are events only through that last case.
func FuzzDecode(f *testing.F) {
	samples, err := twilio.Samples()
	if err != nil {
		f.Fatal(err)
	}
	var all []json.RawMessage
	for _, name := range twilio.SampleNames() {
		f.Add([]byte(samples[name]), false)
		f.Add([]byte(samples[name]), true)
		all = append(all, samples[name])
	}
	arr, err := json.Marshal(all)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(arr, false)
	f.Add(arr, true)
	for _, s := range []string{
		"", " ", "[]", "{}", "[{}]", "null", "[null]", "42", `"x"`, "[", "{", "]", "[1,2,3]", "[[]]",
		"\xff\xfe", "[" + ev("EZ1", "") + ",{}]", ev("EZ1", `,"data":"{\"a\":1}"`), ev("EZ1", `,"data_base64":"AAE="`),
		ev("EZ1", `,"data":{},"data_base64":""`), ev("EZ1", `,"ext":1,"ext2":"x","ext3":null`), ev("", ""),
		`{"specversion":"0.3","id":"a","source":"s","type":"t"}`, "[" + ev("a", "") + "] trailing",
		ev("a", `,"id":"b"`), ev("a", `,"data":"[ ]"`), ev("a", `,"data":"\u0000"`),
		ev("a", `,"data":{"k":1,"\u006b":2}`), ev("a", `,"data":"{\"k\":1,\"k\":2}"`), ev("a", `,"data":[{"x":{},"x":[]}]`),
	} {
		f.Add([]byte(s), false)
	}
	f.Fuzz(func(t *testing.T, body []byte, keep bool) {
		orig := bytes.Clone(body)
		b := twilio.Decode("ep", body, decodeAt, twilio.DecodeOptions{KeepDataString: keep})
		if b == nil {
			t.Fatal("nil batch")
		}
		if !bytes.Equal(body, orig) {
			t.Fatal("Decode modified the body")
		}
		if b.Endpoint != "ep" || !b.ReceivedAt.Equal(decodeAt) {
			t.Fatalf("batch endpoint/time = %q/%v", b.Endpoint, b.ReceivedAt)
		}

		trimmed := bytes.TrimSpace(body)
		var elems []json.RawMessage
		isArray := len(trimmed) > 0 && trimmed[0] == '[' && json.Unmarshal(trimmed, &elems) == nil
		isObject := len(trimmed) > 0 && trimmed[0] == '{' && json.Valid(trimmed)
		switch {
		case isArray:
		case isObject:
			elems = []json.RawMessage{json.RawMessage(trimmed)}
		default:
			if len(b.Events) != 0 || len(b.Rejects) != 1 {
				t.Fatalf("malformed body %q: %d events, %d rejects", body, len(b.Events), len(b.Rejects))
			}
			r := b.Rejects[0]
			if r.Reason != relay.ReasonMalformedBody || !bytes.Equal(r.Raw, body) || r.Detail == "" {
				t.Fatalf("malformed body %q: reject %+v", body, r)
			}
			return
		}

		if got := len(b.Events) + len(b.Rejects); got != len(elems) {
			t.Fatalf("%d elements became %d events + %d rejects", len(elems), len(b.Events), len(b.Rejects))
		}
		if len(b.Events)+len(b.Rejects) == 0 && !(isArray && len(elems) == 0) {
			t.Fatalf("non-empty body %q gave nothing", body)
		}
		// Walk the elements in order: each is the next event or the next reject.
		ei, ri := 0, 0
		for i, el := range elems {
			switch {
			case ei < len(b.Events) && bytes.Equal(b.Events[ei].Raw, el):
				checkFuzzEvent(t, b.Events[ei], el)
				if duplicateKey(el) || (!keep && duplicateKeyInDataString(el)) {
					t.Fatalf("element %d %q repeats a key, and is an event", i, el)
				}
				ei++
			case ri < len(b.Rejects) && bytes.Equal(b.Rejects[ri].Raw, el):
				r := b.Rejects[ri]
				dup := duplicateKey(el) || (!keep && duplicateKeyInDataString(el) && r.Reason == relay.ReasonDuplicateKey)
				if want := map[bool]string{true: relay.ReasonDuplicateKey, false: relay.ReasonInvalidEvent}[dup]; r.Reason != want || r.Detail == "" {
					t.Fatalf("element %d: reject %+v, want reason %s", i, r, want)
				}
				ri++
			default:
				t.Fatalf("element %d %q is neither the next event nor the next reject", i, el)
			}
		}

		// KeepDataString must not change which elements decode, but for data strings holding a repeated key.
		other := twilio.Decode("ep", body, decodeAt, twilio.DecodeOptions{KeepDataString: !keep})
		kept, replaced := b, other
		if !keep {
			kept, replaced = other, b
		}
		var dataDup []string
		for _, e := range kept.Events {
			if duplicateKeyInDataString(e.Raw) {
				dataDup = append(dataDup, e.ID)
			}
		}
		if !slices.Equal(slices.DeleteFunc(ids(kept.Events), func(id string) bool { return slices.Contains(dataDup, id) }), ids(replaced.Events)) ||
			len(kept.Rejects)+len(dataDup) != len(replaced.Rejects) {
			t.Fatalf("KeepDataString changes the outcome: %v vs %v", ids(kept.Events), ids(replaced.Events))
		}
	})
}

// duplicateKey reports whether a JSON value repeats a key within one of its objects, by encoding/json's
// tokens: the fuzz oracle of jsonscan.Unique.
func duplicateKey(v []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(v))
	type level struct {
		object, key bool // an object, whose next token is a key
		keys        map[string]bool
	}
	var stack []*level
	for {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		top := (*level)(nil)
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.object && top.key {
			if d, ok := tok.(json.Delim); ok && d == '}' {
				stack = stack[:len(stack)-1]
				continue
			}
			k := tok.(string)
			if top.keys[k] {
				return true
			}
			top.keys[k], top.key = true, false
			continue
		}
		if top != nil && top.object {
			top.key = true // this token is the member's value
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &level{object: true, key: true, keys: map[string]bool{}})
		case json.Delim('['):
			stack = append(stack, &level{})
		case json.Delim(']'), json.Delim('}'):
			stack = stack[:len(stack)-1]
		}
	}
}

// duplicateKeyInDataString reports whether an event's data is a string holding a JSON object or array
// that repeats a key.
func duplicateKeyInDataString(el []byte) bool {
	var ev map[string]json.RawMessage // "data" exactly: a struct field would match "Data" too
	var s string
	if json.Unmarshal(el, &ev) != nil || json.Unmarshal(ev["data"], &s) != nil {
		return false
	}
	inner := bytes.TrimSpace([]byte(s))
	return len(inner) > 0 && (inner[0] == '{' || inner[0] == '[') && json.Valid(inner) && duplicateKey(inner)
}

func checkFuzzEvent(t *testing.T, e *relay.Event, el []byte) {
	t.Helper()
	if e.SpecVersion != "1.0" || e.ID == "" || e.Source == "" || e.Type == "" || e.Endpoint != "ep" {
		t.Fatalf("event %+v breaks the CloudEvents minimum", e)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(el, &m); err != nil || m == nil {
		t.Fatalf("event Raw %q is not a JSON object: %v", el, err)
	}
	attr := func(name string) string {
		var s string
		_ = json.Unmarshal(m[name], &s)
		return s
	}
	if attr("id") != e.ID || attr("source") != e.Source || attr("type") != e.Type || attr("specversion") != "1.0" {
		t.Fatalf("event %+v does not match its Raw %q", e, el)
	}
	if !e.Binary && e.Data != nil && !json.Valid(e.Data) {
		t.Fatalf("event %s: Data %q is not JSON", e.ID, e.Data)
	}
	if e.Binary != (m["data_base64"] != nil) {
		t.Fatalf("event %s: Binary=%v but data_base64 present=%v", e.ID, e.Binary, m["data_base64"] != nil)
	}
	if e.Binary && m["data"] != nil {
		t.Fatalf("event %s has both data and data_base64", e.ID)
	}
	for _, core := range []string{"specversion", "id", "source", "type", "subject", "time", "dataschema", "datacontenttype", "data", "data_base64"} {
		if _, ok := e.Extensions[core]; ok {
			t.Fatalf("event %s: core attribute %s is an extension", e.ID, core)
		}
	}
	for name := range m {
		if _, ok := e.Extensions[name]; !ok && !strings.Contains(" specversion id source type subject time dataschema datacontenttype data data_base64 ", " "+name+" ") {
			t.Fatalf("event %s: attribute %s is lost", e.ID, name)
		}
	}
}

// FuzzVerify checks that a signature never verifies unless it was made with the token over the URL and
// query sent, and that what Sign makes always does, with any change to the body caught.
func FuzzVerify(f *testing.F) {
	f.Add("12345", []byte(vecA4Body), "foo", "1", vecA4Sig1, vecA4Query1, vecPublicURL)
	f.Add("12345", []byte(vecA5Body), "", "", vecA5Sig443, vecA5Query, vecPublicURL)
	f.Add("", []byte{}, "bodySHA256", "x", "", "", "")
	f.Add("tok", []byte(`[{"id":"EZ1"}]`), "a b", "c&d=e", "AAAA", "bodySHA256=&bodySHA256=", "https://relay.example.com/e#")
	f.Add("tok", []byte("property=value"), "k", "", vecA3Sig, vecA3Query, "http://h:80/x")
	const public = "https://relay.example.com/twilio/events"
	f.Fuzz(func(t *testing.T, token string, body []byte, key, value, sig, rawQuery, anyURL string) {
		v := twilio.NewVerifier([]string{token})

		// 1. Anything goes in: Verify never panics, and a random signature never passes.
		for _, u := range []string{public, anyURL} {
			err := v.Verify([]string{u}, rawQuery, body, sig)
			if err == nil {
				if !slices.Contains(portForms(token, u, rawQuery), sig) || sha256Hex(body) != queryParam(rawQuery) {
					t.Fatalf("Verify(%q, %q, %q, %q) passed with token %q", u, rawQuery, body, sig, token)
				}
			} else if twilio.Reason(err) == "other" {
				t.Fatalf("Verify returned an error outside the sentinels: %v", err)
			}
		}

		// 2. What Sign makes verifies.
		raw := public
		if key != "" && key != "bodySHA256" {
			raw += "?" + url.Values{key: {value}}.Encode()
		}
		signed, s := twilio.Sign(token, raw, body)
		if want := hmacSig(token, signed); s != want {
			t.Fatalf("Sign signature %q, independent HMAC %q", s, want)
		}
		rawQ, ok := strings.CutPrefix(signed, public+"?")
		if !ok || !strings.HasSuffix(rawQ, "bodySHA256="+sha256Hex(body)) {
			t.Fatalf("Sign URL %q", signed)
		}
		if err := v.Verify([]string{public}, rawQ, body, s); err != nil {
			t.Fatalf("Verify(Sign(%q, %q)) = %v", token, raw, err)
		}
		// 3. Any other signature fails (the :443 form of the URL is the only other one Twilio may use).
		s443 := hmacSig(token, strings.Replace(signed, "relay.example.com/", "relay.example.com:443/", 1))
		if err := v.Verify([]string{public}, rawQ, body, sig); sig != s && sig != s443 && err == nil {
			t.Fatalf("Verify passed with signature %q (want %q)", sig, s)
		} else if sig == "" && !errors.Is(err, twilio.ErrNoSignature) {
			t.Fatalf("empty signature: %v", err)
		}
		// 4. Another token fails.
		if err := twilio.NewVerifier([]string{token + "x"}).Verify([]string{public}, rawQ, body, s); !errors.Is(err, twilio.ErrSignatureMismatch) {
			t.Fatalf("Verify with another token = %v", err)
		}
		// 5. Flipping any byte of the body fails (every byte for small bodies, a spread for large ones).
		step := max(1, len(body)/64)
		for i := 0; i < len(body); i += step {
			tampered := bytes.Clone(body)
			tampered[i] ^= 0x01
			if err := v.Verify([]string{public}, rawQ, tampered, s); !errors.Is(err, twilio.ErrBodyHashMismatch) {
				t.Fatalf("body byte %d flipped: Verify = %v", i, err)
			}
		}
		// 6. Adding or removing a byte fails too.
		if err := v.Verify([]string{public}, rawQ, append(bytes.Clone(body), 0), s); !errors.Is(err, twilio.ErrBodyHashMismatch) {
			t.Fatalf("byte appended: Verify = %v", err)
		}
		if len(body) > 0 {
			if err := v.Verify([]string{public}, rawQ, body[:len(body)-1], s); !errors.Is(err, twilio.ErrBodyHashMismatch) {
				t.Fatalf("byte removed: Verify = %v", err)
			}
		}
	})
}

// portForms returns the signatures of u?q made with token over u as written, with the scheme's default
// port added and with any port removed: the forms Twilio's libraries accept.
func portForms(token, u, q string) []string {
	out := []string{hmacSig(token, u+"?"+q)}
	p, err := url.Parse(u + "?" + q)
	if err != nil {
		return out
	}
	host := p.Hostname()
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	def := map[string]string{"https": "443", "http": "80"}[p.Scheme]
	for _, h := range []string{host, host + ":" + def} {
		c := *p
		c.Host = h
		out = append(out, hmacSig(token, c.String()))
	}
	return out
}

// queryParam returns the bodySHA256 value of q as twilio-go reads it (the query up to any '#', the first
// value of the parameters url.ParseQuery could parse), or "" (independent of the package under test).
func queryParam(q string) string {
	q, _, _ = strings.Cut(q, "#")
	vals, _ := url.ParseQuery(q)
	return vals.Get("bodySHA256")
}
