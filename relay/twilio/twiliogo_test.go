package twilio_test

import (
	"encoding/hex"
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/relaykit/twilio-relay/relay/twilio"
	"github.com/twilio/twilio-go/client"
)

// The Verifier accepts exactly what twilio-go's RequestValidator.ValidateBody accepts, with two rules of
// its own on top, both refusals:
//
//  1. a request whose bodySHA256 (as twilio-go reads it: the first value, "" when absent) is empty fails
//     (ValidateBody would check the body as a form instead: an Event Streams request always has one);
//  2. a public URL holding '?' or '#' is not a base URL and is never used.
//
// twilioGoVerdict is that definition written out with twilio-go itself, for one public URL.
func twilioGoVerdict(token, public, rawQuery string, body []byte, sig string) bool {
	if strings.ContainsAny(public, "?#") {
		return false
	}
	full := public + "?" + rawQuery
	u, err := url.Parse(full)
	if err != nil || u.Query().Get("bodySHA256") == "" {
		return false
	}
	rv := client.NewRequestValidator(token)
	return rv.ValidateBody(full, body, sig)
}

// nonCanonical returns sig with the unused low bits of its last base64 character set to bits (1..3):
// the same 20 bytes to a lenient decoder, another string to twilio-go, which compares the base64 text.
func nonCanonical(sig string, bits byte) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	i := strings.IndexByte(sig, '=') - 1 // a 20-byte MAC: 27 characters and one '='
	if i < 0 {
		return sig
	}
	v := strings.IndexByte(alphabet, sig[i])
	return sig[:i] + string(alphabet[v|int(bits&3)]) + sig[i+1:]
}

// TestVerifyAsTwilioGo: the corners where the relay's own checks once differed from twilio-go, each with
// twilio-go's verdict checked too, so that the expectation is twilio-go's and not ours.
func TestVerifyAsTwilioGo(t *testing.T) {
	body := []byte(vecA4Body)
	signed := func(q string) string { return hmacSig(vecToken, vecPublicURL+"?"+q) }
	upper := "foo=1&bar=2&bodySHA256=" + strings.ToUpper(vecA4SHA)
	escapedHash := "bodySHA256=%30" + vecA4SHA[1:] // %30 is '0': the same value once unescaped
	tests := []struct {
		name, query, sig string
		want             error
	}{
		{"uppercase hex bodySHA256, signed over it", upper, signed(upper), twilio.ErrBodyHashMismatch},
		{"non-canonical padding bits (1)", vecA4Query1, nonCanonical(vecA4Sig1, 1), twilio.ErrSignatureMismatch},
		{"non-canonical padding bits (2)", vecA4Query1, nonCanonical(vecA4Sig1, 2), twilio.ErrSignatureMismatch},
		{"non-canonical padding bits (3)", vecA4Query1, nonCanonical(vecA4Sig1, 3), twilio.ErrSignatureMismatch},
		{"signature with a line break", vecA4Query1, vecA4Sig1[:10] + "\r\n" + vecA4Sig1[10:], twilio.ErrSignatureMismatch},
		{"signature without padding", vecA4Query1, strings.TrimSuffix(vecA4Sig1, "="), twilio.ErrSignatureMismatch},
		{"canonical signature", vecA4Query1, vecA4Sig1, nil},
		{"';' in the destination's query", "a=1;b=2&bodySHA256=" + vecA4SHA, signed("a=1;b=2&bodySHA256=" + vecA4SHA), nil},
		{"bad %-escape in the destination's query", "a=%zz&bodySHA256=" + vecA4SHA, signed("a=%zz&bodySHA256=" + vecA4SHA), nil},
		{"bodySHA256 %-escaped", escapedHash, signed(escapedHash), nil},
		{"bodySHA256 twice, the first right", vecA4Query1 + "&bodySHA256=x", signed(vecA4Query1 + "&bodySHA256=x"), nil},
		{"bodySHA256 twice, the first wrong", "bodySHA256=x&" + vecA4Query1, signed("bodySHA256=x&" + vecA4Query1), twilio.ErrBodyHashMismatch},
		{"bodySHA256 twice, the first empty", "bodySHA256=&" + vecA4Query1, signed("bodySHA256=&" + vecA4Query1), twilio.ErrNoBodyHash},
		{"control character in the query", "a=\x01&" + vecA4Query2, signed("a=\x01&" + vecA4Query2), twilio.ErrSignatureMismatch},
		{"bodySHA256 after a '#'", "a=1#&" + vecA4Query2, signed("a=1#&" + vecA4Query2), twilio.ErrNoBodyHash},
		{"a fragment after bodySHA256", vecA4Query2 + "#x", signed(vecA4Query2 + "#x"), nil},
	}
	v := twilio.NewVerifier([]string{vecToken})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := twilioGoVerdict(vecToken, vecPublicURL, tt.query, body, tt.sig); got != (tt.want == nil) {
				t.Fatalf("twilio-go says %v: the expectation %v is not twilio-go's", got, tt.want)
			}
			if err := v.Verify([]string{vecPublicURL}, tt.query, body, tt.sig); !errors.Is(err, tt.want) {
				t.Fatalf("Verify(%q, sig %q) = %v, want %v", tt.query, tt.sig, err, tt.want)
			}
		})
	}
}

// FuzzVerifyAsTwilioGo runs Verify and twilio-go's ValidateBody on the same URL, body and signature and
// fails on any disagreement, either way (twilioGoVerdict: ValidateBody and the Verifier's two refusals).
// The URL is a fuzzed public URL and a fuzzed destination query, with bodySHA256 added in one of the
// forms withHash makes; the signature is fuzzed, or made over that URL as Twilio would (as given, with
// the default port, without the port) and then possibly rewritten the ways a lenient base64 decoder would
// still take (makeSig).
func FuzzVerifyAsTwilioGo(f *testing.F) {
	for _, s := range []struct {
		public, dest string
		hashForm     uint8
	}{
		{vecPublicURL, "foo=1&bar=2", 1}, {vecPublicURL, "", 1}, {"https://relay.example.com:443/e", "", 1},
		{"http://relay.example.com/twilio/events", "sink=a&x=%20y", 3}, {"https://user:pass@relay.example.com/e", "", 1},
		{vecPublicURL, "a=1;b=2", 1}, {vecPublicURL, "a=%zz", 1}, {vecPublicURL, "a=\x01", 1}, {vecPublicURL, "a=#", 1},
		{vecPublicURL, "a=1", 4}, {vecPublicURL, "a=1", 5}, {vecPublicURL, "a=1", 7}, {vecPublicURL, "", 2},
		{"https://[::1]:8443/e", "", 1}, {"https://relay.example.com/e%zz", "", 1}, {"relay.example.com/e", "", 1},
	} {
		for sigForm := range uint8(8) {
			f.Add(vecToken, s.public, s.dest, []byte(vecA4Body), s.hashForm, sigForm, vecA4Sig1)
		}
	}
	f.Add(vecToken, vecPublicURL, "foo=1&bar=2", []byte(vecA3Body), uint8(0), uint8(0), vecA3Sig)
	f.Fuzz(func(t *testing.T, token, public, dest string, body []byte, hashForm, sigForm uint8, sigIn string) {
		q := withHash(dest, body, hashForm)
		sig := makeSig(token, public+"?"+q, sigForm, sigIn)
		other := token + "x"
		for _, tokens := range [][]string{{token}, {other, token}, {other}} {
			want := false
			for _, tok := range tokens {
				want = want || twilioGoVerdict(tok, public, q, body, sig)
			}
			err := twilio.NewVerifier(tokens).Verify([]string{public}, q, body, sig)
			if (err == nil) != want {
				t.Fatalf("tokens %q, public %q, query %q, body %q, signature %q: Verify = %v, twilio-go accepts = %v",
					tokens, public, q, body, sig, err, want)
			}
			if err != nil && twilio.Reason(err) == "other" {
				t.Fatalf("Verify returned an error outside the sentinels: %v", err)
			}
		}
	})
}

// withHash adds bodySHA256 to the destination's query in one of eight forms: none, appended (the way
// Twilio does it), uppercase, prepended, twice, with a %-escape, empty, and under a %-escaped name.
func withHash(dest string, body []byte, form uint8) string {
	h := sha256Hex(body)
	join := func(a, b string) string {
		if a == "" {
			return b
		}
		return a + "&" + b
	}
	switch form % 8 {
	case 1:
		return join(dest, "bodySHA256="+h)
	case 2:
		return join(dest, "bodySHA256="+strings.ToUpper(h))
	case 3:
		return join("bodySHA256="+h, dest)
	case 4:
		return join(join(dest, "bodySHA256="+h), "bodySHA256="+h)
	case 5:
		return join(dest, "bodySHA256=%"+strings.ToUpper(hex.EncodeToString([]byte{h[0]}))+h[1:])
	case 6:
		return join(dest, "bodySHA256=")
	case 7:
		return join(dest, "bodySHA%32%35%36="+h)
	}
	return dest
}

// makeSig returns the signature of one of eight kinds: the fuzzed one, the HMAC over the URL as given,
// with the scheme's default port added, with the port removed, with non-canonical padding bits, with a
// line break inside, without its padding, and the HMAC with another token.
func makeSig(token, signedURL string, form uint8, in string) string {
	canonical := hmacSig(token, signedURL)
	switch form % 8 {
	case 1:
		return canonical
	case 2, 3:
		u, err := url.Parse(signedURL)
		if err != nil {
			return canonical
		}
		if form%8 == 3 {
			u.Host = u.Hostname()
		} else if u.Port() == "" {
			u.Host += map[bool]string{true: ":443", false: ":80"}[u.Scheme == "https"]
		}
		return hmacSig(token, u.String())
	case 4:
		return nonCanonical(canonical, byte(len(in)%3+1))
	case 5:
		i := len(in) % len(canonical)
		return canonical[:i] + "\n" + canonical[i:]
	case 6:
		return strings.TrimRight(canonical, "=")
	case 7:
		return hmacSig(token+"y", signedURL)
	}
	return in
}
