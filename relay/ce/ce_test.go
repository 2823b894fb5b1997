package ce_test

import (
	"net/url"
	"testing"

	"github.com/relaykit/twilio-relay/relay"
	"github.com/relaykit/twilio-relay/relay/ce"
)

func TestHeaderValue(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"com.twilio.messaging.message.sent", "com.twilio.messaging.message.sent"},
		{"/2010-04-01/Accounts/AC1/Messages/SM1", "/2010-04-01/Accounts/AC1/Messages/SM1"},
		{"a b", "a%20b"},
		{`say "hi"`, "say%20%22hi%22"},
		{"100%", "100%25"},
		{"é", "%C3%A9"},
		{"line\r\nbreak\x00\x7f", "line%0D%0Abreak%00%7F"},
	} {
		got := ce.HeaderValue(tc.in)
		if got != tc.want {
			t.Errorf("HeaderValue(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if back, err := url.PathUnescape(got); err != nil || back != tc.in {
			t.Errorf("PathUnescape(%q) = %q, %v; want %q", got, back, err, tc.in)
		}
	}
}

func TestAttributes(t *testing.T) {
	e := &relay.Event{SpecVersion: "1.0", ID: "EZ1", Source: "/s", Type: "t", Time: "2024-01-01T00:00:00Z",
		Extensions: map[string]string{"zeta": "z", "alpha": "a", "empty": ""}}
	got, err := ce.HeaderAttributes(e)
	if err != nil {
		t.Fatal(err)
	}
	want := []ce.Attribute{{"specversion", "1.0"}, {"id", "EZ1"}, {"source", "/s"}, {"type", "t"},
		{"time", "2024-01-01T00:00:00Z"}, {"alpha", "a"}, {"zeta", "z"}}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("attribute %d: got %v, want %v", i, got[i], want[i])
		}
	}
	for _, bad := range []string{"Upper", "with-dash", "sp ace", "x:y"} {
		e.Extensions = map[string]string{bad: "v"}
		if _, err := ce.HeaderAttributes(e); err == nil {
			t.Errorf("extension %q accepted", bad)
		}
		if n := len(ce.Attributes(e)); n != 6 {
			t.Errorf("Attributes with extension %q: %d attributes, want 6", bad, n)
		}
	}
}

func TestContentType(t *testing.T) {
	for _, tc := range []struct {
		e    relay.Event
		want string
	}{
		{relay.Event{DataContentType: "text/plain", Data: []byte("x")}, "text/plain"},
		{relay.Event{Data: []byte(`{}`)}, "application/json"},
		{relay.Event{Data: []byte{1}, Binary: true}, ""},
		{relay.Event{}, ""},
	} {
		if got := ce.ContentType(&tc.e); got != tc.want {
			t.Errorf("ContentType(%+v) = %q, want %q", tc.e, got, tc.want)
		}
	}
}
