package twilio

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// validCases are the corners of RFC 8259 where JSON validators tend to differ. encoding/json.Valid is the
// reference: whatever it says, validJSON must say too.
var validCases = []string{
	// empty, white space, top-level scalars, trailing garbage
	"", " ", "\t\n\r ", "null", "true", "false", "1", `"x"`, "{} x", "{}}", "[] []", "[]]", "[1]\x00", "\x00[1]",
	"[1] \x00", "\ufeff[1]", "[1]\ufeff", "\v[1]", "\f[1]", "\u00a0[1]", "[\v1]", "nul", "tru", "truex", "nulll",
	// numbers: leading zeros, signs, fractions, exponents
	"-0", "0", "01", "-01", "00", "0.", ".5", "1.", "1e", "1e+", "1E-7", "+1", "-", "--1", "1e999999", "0x10",
	"123456789012345678901234567890", "Infinity", "NaN", "[-]", "[1.e1]", "[0e]", "[1,-]",
	// strings: invalid UTF-8 and lone surrogates (accepted by both: the grammar allows them), escapes,
	// control characters
	`"\xff"`, `"\xc3\x28"`, `"\xed\xa0\x80"`, `"\ud800"`, `"\udc00\ud800"`, `"\u00zz"`, `"\u+123"`, `"\u 123"`,
	`"\u12"`, `"\x"`, `"\'"`, `"\/"`, "\"\x01\"", "\"\t\"", "\"\x7f\"", "\"a\x00\"", `"\u0000"`, `"\"`, `"\\"`,
	`"`, `"abc`, "\"\x1f\"", `"\U0041"`,
	// objects and arrays
	"{}", "[]", "[1,]", "[,1]", "[1 2]", `{"a":1,}`, `{"a"}`, `{1:2}`, `{"a":1 "b":2}`, `{"a" 1}`, `{"a":}`, `{,}`,
	`{"a":1,"a":2}`, `{"\u0000":1}`, "{\"\x01\":1}", `{"a\":1}`, `[{"a":[{"b":[]}]}]`, "[1,\n2]", "[1\r,2]",
	`[true,false,null]`, `[tru]`, `{"a":[}`, `[{]`, `{"a":1]`, `[1}`,
	// nesting: encoding/json refuses more than 10 000 levels
	strings.Repeat("[", 10000) + strings.Repeat("]", 10000),
	strings.Repeat("[", 10001) + strings.Repeat("]", 10001),
	strings.Repeat(`{"a":`, 10000) + "1" + strings.Repeat("}", 10000),
	strings.Repeat(`{"a":`, 10001) + "1" + strings.Repeat("}", 10001),
	strings.Repeat("[", 9999) + `{"a":1}` + strings.Repeat("]", 9999),
	strings.Repeat("[", 10000) + `{"a":1}` + strings.Repeat("]", 10000),
	strings.Repeat("[", 64) + strings.Repeat("]", 64), strings.Repeat("[", 65) + strings.Repeat("]", 65),
	strings.Repeat("[", 1000),
}

func TestValidJSONAgreesWithEncodingJSON(t *testing.T) {
	samples, err := Samples()
	if err != nil {
		t.Fatal(err)
	}
	cases := validCases
	for _, s := range samples {
		cases = append(cases, string(s), "["+string(s)+"]", string(s[:len(s)/2]))
	}
	for _, s := range cases {
		if got, want := validJSON([]byte(s)), json.Valid([]byte(s)); got != want {
			t.Errorf("validJSON(%.60q) = %v, encoding/json.Valid %v", s, got, want)
		}
	}
}

// TestValidJSONDeepNesting: a body of a million '[' (a hostile, authentic body) is refused quickly and
// without exhausting the stack.
func TestValidJSONDeepNesting(t *testing.T) {
	const n = 1_000_000
	for _, body := range []string{
		strings.Repeat("[", n),
		strings.Repeat("[", n) + strings.Repeat("]", n),
		strings.Repeat(`{"a":`, n) + "1" + strings.Repeat("}", n),
	} {
		start := time.Now()
		if validJSON([]byte(body)) {
			t.Errorf("%.10q… (%d bytes) is valid", body, len(body))
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("%.10q… (%d bytes) took %v", body, len(body), d)
		}
	}
}

// FuzzValidEquivalent holds validJSON to encoding/json.Valid on any bytes: the relay's scanner reads only
// what validJSON passed, so it must accept exactly what encoding/json accepts.
func FuzzValidEquivalent(f *testing.F) {
	samples, err := Samples()
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range samples {
		f.Add([]byte(s))
		f.Add([]byte("[" + string(s) + "]"))
	}
	for _, s := range validCases {
		if len(s) < 1000 {
			f.Add([]byte(s))
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := validJSON(b), json.Valid(b); got != want {
			t.Fatalf("validJSON(%q) = %v, encoding/json.Valid %v", b, got, want)
		}
	})
}

// BenchmarkValidJSON compares validJSON with encoding/json.Valid on the sample bodies (one event each,
// compact, as Twilio sends them) and on a body of 50 events.
//
//	go test -run '^$' -bench ValidJSON -benchmem ./relay/twilio/ | benchstat -col /v -
func BenchmarkValidJSON(b *testing.B) {
	samples, err := Samples()
	if err != nil {
		b.Fatal(err)
	}
	bodies := map[string][]byte{}
	var names []string
	var all []json.RawMessage
	for _, name := range SampleNames() {
		body, _ := json.Marshal([]json.RawMessage{samples[name]})
		bodies["1ev-"+name] = body
		names = append(names, "1ev-"+name)
		all = append(all, samples[name])
	}
	var fifty []json.RawMessage
	for i := range 50 {
		fifty = append(fifty, all[i%len(all)])
	}
	bodies["50ev"], _ = json.Marshal(fifty)
	names = append(names, "50ev")
	for _, name := range names {
		for _, v := range []struct {
			name  string
			valid func([]byte) bool
		}{{"encoding-json", json.Valid}, {"validJSON", validJSON}} {
			b.Run("payload="+name+"/v="+v.name, func(b *testing.B) {
				body := bodies[name]
				b.SetBytes(int64(len(body)))
				b.ReportAllocs()
				for b.Loop() {
					if !v.valid(body) {
						b.Fatal("invalid")
					}
				}
			})
		}
	}
}
