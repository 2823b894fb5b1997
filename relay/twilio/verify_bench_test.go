package twilio_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/relaykit/twilio-relay/relay/twilio"
)

// BenchmarkVerify measures Verify on the request shapes it meets: Twilio's own (the destination without
// a query, one bodySHA256), a destination with a query of its own, one with %-escapes in it, a signature
// over the ":443" form of the URL (the twilio-go path), a keyring of three tokens with the right one last,
// and a request signed with another token (every token tried, refused).
//
//	go test -run '^$' -bench Verify -benchmem -count 10 ./relay/twilio/ | benchstat -
func BenchmarkVerify(b *testing.B) {
	s, err := twilio.Samples()
	if err != nil {
		b.Fatal(err)
	}
	body, _ := json.Marshal([]json.RawMessage{s["message-delivered"]})
	const public = "https://relay.example.com/twilio/events"
	type bench struct {
		name, dest string // dest: the sink destination (public URL and its own query)
		tokens     []string
		sign       func(signedURL string) string // the signature Twilio sent, over the signed URL
		want       error
	}
	over := func(token string, rewrite func(string) string) func(string) string {
		return func(u string) string { return twilio.SignURL(token, rewrite(u)) }
	}
	same := func(u string) string { return u }
	with443 := func(u string) string { return strings.Replace(u, "relay.example.com/", "relay.example.com:443/", 1) }
	for _, bc := range []bench{
		{"twilio", public, []string{"tok"}, over("tok", same), nil},
		{"destination-query", public + "?sink=a&x=1", []string{"tok"}, over("tok", same), nil},
		{"escaped-query", public + "?name=a%20b", []string{"tok"}, over("tok", same), nil},
		{"signed-with-443", public, []string{"tok"}, over("tok", with443), nil},
		{"keyring-3", public, []string{"old-1", "old-2", "tok"}, over("tok", same), nil},
		{"wrong-token", public, []string{"tok"}, over("other", same), twilio.ErrSignatureMismatch},
	} {
		b.Run(bc.name, func(b *testing.B) {
			signed, _ := twilio.Sign("unused", bc.dest, body)
			query := signed[strings.IndexByte(signed, '?')+1:]
			sig := bc.sign(signed)
			v := twilio.NewVerifier(bc.tokens)
			urls := []string{public}
			if err := v.Verify(urls, query, body, sig); !errors.Is(err, bc.want) {
				b.Fatalf("Verify = %v, want %v", err, bc.want)
			}
			b.ReportAllocs()
			for b.Loop() {
				_ = v.Verify(urls, query, body, sig)
			}
		})
	}
}
