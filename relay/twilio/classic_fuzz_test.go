package twilio_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/relaykit/twilio-relay/relay/twilio"
)

// FuzzClassic: any form body and query go in; parsing, verifying and decoding never panic, a random
// signature never verifies, the signature SignForm makes always does, and every event made is a valid
// CloudEvent whose id is its subject and status.
func FuzzClassic(f *testing.F) {
	samples, err := twilio.ClassicSamples()
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range twilio.ClassicSampleNames() {
		f.Add([]byte(samples[name].Encode()), "foo=1", "AAAA")
	}
	f.Add([]byte(vecA1Params.Encode()), "foo=1&bar=2", "RSOYDt4T1cUTdK1PDd93/VVr8B8=")
	f.Add([]byte(vecA6Params.Encode()), "foo=1&bar=2", "IK+Dwps556ElfBT0I3Rgjkr1wJU=")
	f.Add([]byte("a=%zz&b"), "bodySHA256=x", "")
	const public, token = "https://relay.example.com/twilio/classic", "fuzz-token"
	v := twilio.NewVerifier([]string{token})
	f.Fuzz(func(t *testing.T, body []byte, rawQuery, sig string) {
		params, err := twilio.ParseForm(body)
		if err != nil {
			return
		}
		if sig != "" && v.VerifyForm([]string{public}, rawQuery, params, sig) == nil {
			t.Fatalf("a random signature %q verified", sig)
		}
		full := public
		if rawQuery != "" {
			full += "?" + rawQuery
		}
		if !strings.Contains(rawQuery, "bodySHA256") && !strings.ContainsAny(rawQuery, "#") {
			if err := v.VerifyForm([]string{public}, rawQuery, params, twilio.SignForm(token, full, params)); err != nil {
				t.Fatalf("SignForm's signature does not verify: %v (query %q, params %v)", err, rawQuery, params)
			}
		}
		b := twilio.DecodeClassic("c", body, params, "", time.Unix(0, 0), twilio.DecodeOptions{})
		if len(b.Events)+len(b.Rejects) != 1 {
			t.Fatalf("%d events, %d rejects", len(b.Events), len(b.Rejects))
		}
		for _, ev := range b.Events {
			if !json.Valid(ev.Raw) || !json.Valid(ev.Data) || ev.ID == "" || !strings.HasPrefix(ev.ID, ev.Subject+":") ||
				!strings.HasPrefix(ev.Type, twilio.ClassicTypePrefix) {
				t.Fatalf("bad event %+v", ev)
			}
		}
	})
}
