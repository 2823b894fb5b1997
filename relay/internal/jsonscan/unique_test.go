package jsonscan

import (
	"fmt"
	"strings"
	"testing"
)

func TestUnique(t *testing.T) {
	big := func(dupAt int) string { // an object of 100 keys, the last repeating key dupAt when >= 0
		var b strings.Builder
		b.WriteString("{")
		for i := range 100 {
			fmt.Fprintf(&b, `"k%d":%d,`, i, i)
		}
		if dupAt >= 0 {
			fmt.Fprintf(&b, `"k%d":0,`, dupAt)
		}
		b.WriteString(`"end":[]}`)
		return b.String()
	}
	for _, tc := range []struct{ json, dup string }{
		{`{"a":1,"b":2}`, ``},
		{`{"a":1,"a":2}`, `"a"`},
		{`{"a":1,"\u0061":2}`, `"\u0061"`},
		{`{"a\"":1,"a\u0022":2}`, `"a\u0022"`},
		{`{"a":{"x":1},"b":{"x":1}}`, ``}, // the same key in two objects
		{`{"a":{"x":1,"y":{"z":[{"q":1},{"q":2,"q":3}]}}}`, `"q"`},
		{`[{"a":1},{"a":1}]`, ``},
		{`[{"a":1,"b":[],"a":2}]`, `"a"`},
		{`{"a":"\"a\":","a":1}`, `"a"`},
		{`{"s":"{\"a\":1,\"a\":2}"}`, ``},       // inside a string: not an object
		{"{\"\xb4\":1,\"\x88\":2}", "\"\x88\""}, // invalid UTF-8: both read as U+FFFD (found by FuzzDecode)
		{`{"é":1,"è":2,"e":3}`, ``},
		{`{"e":{},"f":{},"e":{}}`, `"e"`},
		{big(-1), ``},
		{big(3), `"k3"`},
		{big(99), `"k99"`},
		{strings.Repeat(`{"a":`, 5000) + "1" + strings.Repeat("}", 5000), ``},
		{`"x"`, ``}, {`12`, ``}, {`null`, ``},
	} {
		var u Unique
		if got := string(u.Duplicate([]byte(tc.json))); got != tc.dup {
			t.Errorf("Duplicate(%.50s) = %s, want %s", tc.json, got, tc.dup)
		}
		if strings.HasPrefix(tc.json, "{") {
			n := 0
			isObj, end, dup := u.Members([]byte(tc.json+`,"after"]`), func(k, v []byte) bool { n++; return true })
			if !isObj || end != len(tc.json) || string(dup) != tc.dup {
				t.Errorf("Members(%.50s) = %v, %d, %s; want an object, %d, %s", tc.json, isObj, end, dup, len(tc.json), tc.dup)
			}
		}
	}
	var u Unique // reused: nothing of one value is left for the next
	u.Duplicate([]byte(`{"a":{"b":1`))
	if dup := u.Duplicate([]byte(`{"b":1}`)); dup != nil {
		t.Errorf("a reused Unique found %s", dup)
	}
}

// BenchmarkUniqueMembers compares the member walk with and without the duplicate check, on a Twilio event.
func BenchmarkUniqueMembers(b *testing.B) {
	ev := []byte(`{"specversion":"1.0","type":"com.twilio.messaging.message.delivered","source":"/2010-04-01/Accounts/AC00000000000000000000000000000000/Messages/SM00000000000000000000000000000000.json","id":"EZ00000000000000000000000000000000","dataschema":"https://events-schemas.twilio.com/Messaging.MessageStatus/5","datacontenttype":"application/json","time":"2026-11-23T10:00:00.000Z","data":{"messageSid":"SM00000000000000000000000000000000","timestamp":"2026-11-23T10:00:00.000Z","accountSid":"AC00000000000000000000000000000000","eventName":"com.twilio.messaging.message.delivered","apiVersion":"2010-04-01","from":"+15017122661","to":"+15558675310","messageStatus":"DELIVERED","numberOfSegments":1,"mcc":"310","mnc":"260","dateUpdated":"2026-11-23T10:00:00.000Z","tags":{"campaign":"x"}}}`)
	b.Run("Members", func(b *testing.B) {
		for b.Loop() {
			Members(ev, func(k, v []byte) bool { return true })
		}
	})
	b.Run("Unique.Members", func(b *testing.B) {
		var u Unique
		for b.Loop() {
			u.Members(ev, func(k, v []byte) bool { return true })
		}
	})
}
