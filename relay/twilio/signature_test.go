package twilio_test

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/relaykit/twilio-relay/relay/twilio"
	"github.com/twilio/twilio-go/client"
)

// Official X-Twilio-Signature vectors, copied from /work/shared/twilio/vectors.txt (section A), which
// takes them from Twilio's own helper libraries and re-computes each independently:
//   - twilio/twilio-go    client/request_validator_test.go      (HEAD d858acd, lib 1.30.9; same in v1.31.0)
//   - twilio/twilio-python tests/unit/test_request_validator.py (HEAD 306691e)
//   - twilio/twilio-node   spec/validation.spec.js              (HEAD 45d3d65)
//
// They are literals on purpose: the test must not read ../shared at run time.
const (
	vecToken     = "12345"
	vecPublicURL = "https://mycompany.com/myapp.php" // BASE_URL without its query

	// A4: JSON body (go/python/node).
	vecA4Body      = `{"property": "value", "boolean": true}`
	vecA4SHA       = "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620"
	vecA4Query1    = "foo=1&bar=2&bodySHA256=" + vecA4SHA // URL=https://mycompany.com/myapp.php?foo=1&bar=2&bodySHA256=...
	vecA4Sig1      = "a9nBmqA0ju/hNViExpshrM61xv4="
	vecA4Query2    = "bodySHA256=" + vecA4SHA // URL=https://mycompany.com/myapp.php?bodySHA256=...
	vecA4Sig2      = "y77kIzt2vzLz71DgmJGsen2scGs="
	vecA4SignedURL = vecPublicURL + "?" + vecA4Query1

	// A5: JSON body "{}" (node); the official signature is over the ":443" form of the URL.
	vecA5Body       = `{}`
	vecA5SHA        = "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
	vecA5Query      = "foo=1&bar=2&bodySHA256=" + vecA5SHA
	vecA5Sig443     = "Ldidvp12m26NI7eqEvxnEpkd9Hc=" // HMAC over https://mycompany.com:443/myapp.php?...
	vecA5SigNoPort  = "rw/jVviOgicj2+kHZULvebnA4ag=" // HMAC over the port-less form
	vecA5PublicPort = "https://mycompany.com:443/myapp.php"

	// A3: a classic form-encoded body validated with twilio-go's ValidateBody (no bodySHA256 at all).
	vecA3Body  = "property=value&boolean=true"
	vecA3Query = "foo=1&bar=2"
	vecA3Sig   = "NBdBDr/T/lgjI+tlgpXjKZQZs/k="
)

// hmacSig is the signature algorithm written out independently of the package under test.
func hmacSig(token, msg string) string {
	m := hmac.New(sha1.New, []byte(token))
	m.Write([]byte(msg))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TestVectorsSelfConsistent guards the literals above: the body hashes and the A4 signatures must be what
// an independent HMAC-SHA1/SHA-256 gives, so a typo in a vector cannot make a test pass or fail by accident.
func TestVectorsSelfConsistent(t *testing.T) {
	if got := sha256Hex([]byte(vecA4Body)); got != vecA4SHA {
		t.Errorf("sha256(A4 body) = %s, vectors.txt says %s", got, vecA4SHA)
	}
	if got := sha256Hex([]byte(vecA5Body)); got != vecA5SHA {
		t.Errorf("sha256(A5 body) = %s, vectors.txt says %s", got, vecA5SHA)
	}
	checks := []struct{ msg, want string }{
		{vecPublicURL + "?" + vecA4Query1, vecA4Sig1},
		{vecPublicURL + "?" + vecA4Query2, vecA4Sig2},
		{vecA5PublicPort + "?" + vecA5Query, vecA5Sig443},
		{vecPublicURL + "?" + vecA5Query, vecA5SigNoPort},
		{vecPublicURL + "?" + vecA3Query + "booleantruepropertyvalue", vecA3Sig},
	}
	for _, c := range checks {
		if got := hmacSig(vecToken, c.msg); got != c.want {
			t.Errorf("HMAC(%q) = %s, vectors.txt says %s", c.msg, got, c.want)
		}
	}
}

func TestVerifyOfficialVectors(t *testing.T) {
	tests := []struct {
		name       string
		publicURLs []string
		query      string
		body       string
		sig        string
	}{
		{"A4 with foo&bar", []string{vecPublicURL}, vecA4Query1, vecA4Body, vecA4Sig1},
		{"A4 bodySHA256 only", []string{vecPublicURL}, vecA4Query2, vecA4Body, vecA4Sig2},
		{"A4 public URL given with :443", []string{vecA5PublicPort}, vecA4Query1, vecA4Body, vecA4Sig1},
		{"A5 :443-form signature, port-less public URL", []string{vecPublicURL}, vecA5Query, vecA5Body, vecA5Sig443},
		{"A5 :443-form signature, public URL with :443", []string{vecA5PublicPort}, vecA5Query, vecA5Body, vecA5Sig443},
		{"A5 port-less signature", []string{vecPublicURL}, vecA5Query, vecA5Body, vecA5SigNoPort},
		{"second public URL matches", []string{"https://other.example/x", vecPublicURL}, vecA4Query1, vecA4Body, vecA4Sig1},
	}
	v := twilio.NewVerifier([]string{vecToken})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := v.Verify(tt.publicURLs, tt.query, []byte(tt.body), tt.sig); err != nil {
				t.Fatalf("Verify(%v, %q) = %v, want nil", tt.publicURLs, tt.query, err)
			}
		})
	}
}

func TestVerifyFailsClosed(t *testing.T) {
	upperQuery := "foo=1&bar=2&bodySHA256=" + strings.ToUpper(vecA4SHA)
	tamperedBody := `{"property": "value", "boolean": false}`
	tests := []struct {
		name       string
		tokens     []string
		publicURLs []string
		query      string
		body       string
		sig        string
		want       error
	}{
		{"missing signature", nil, nil, vecA4Query1, vecA4Body, "", twilio.ErrNoSignature},
		{"missing signature wins over everything", []string{vecToken}, []string{vecPublicURL}, "", "", "", twilio.ErrNoSignature},
		{"no bodySHA256", nil, nil, "foo=1&bar=2", vecA4Body, vecA4Sig1, twilio.ErrNoBodyHash},
		{"empty query", nil, nil, "", vecA4Body, vecA4Sig1, twilio.ErrNoBodyHash},
		{"empty bodySHA256", nil, nil, "foo=1&bar=2&bodySHA256=", vecA4Body, vecA4Sig1, twilio.ErrNoBodyHash},
		{"bodySHA256 without =", nil, nil, "foo=1&bodySHA256", vecA4Body, vecA4Sig1, twilio.ErrNoBodyHash},
		// Two bodySHA256: twilio-go reads the first, and the signature covers both.
		{"two bodySHA256", nil, nil, vecA4Query1 + "&bodySHA256=" + vecA4SHA, vecA4Body, vecA4Sig1, twilio.ErrSignatureMismatch},
		{"two bodySHA256, one empty", nil, nil, "bodySHA256=&" + vecA4Query1, vecA4Body, vecA4Sig1, twilio.ErrNoBodyHash},
		{"bodySHA256 with a different case in the name", nil, nil, "foo=1&bar=2&bodysha256=" + vecA4SHA, vecA4Body, vecA4Sig1, twilio.ErrNoBodyHash},
		// A query url.ParseQuery refuses still has its bodySHA256 for twilio-go (TestVerifyAsTwilioGo): the
		// signature decides.
		{"unparseable query (semicolon)", nil, nil, "foo=1;bar=2&bodySHA256=" + vecA4SHA, vecA4Body, vecA4Sig1, twilio.ErrSignatureMismatch},
		{"unparseable query (bad escape)", nil, nil, "foo=%zz&bodySHA256=" + vecA4SHA, vecA4Body, vecA4Sig1, twilio.ErrSignatureMismatch},
		{"body tampered", nil, nil, vecA4Query1, tamperedBody, vecA4Sig1, twilio.ErrBodyHashMismatch},
		{"body with trailing newline", nil, nil, vecA4Query1, vecA4Body + "\n", vecA4Sig1, twilio.ErrBodyHashMismatch},
		{"empty body", nil, nil, vecA4Query1, "", vecA4Sig1, twilio.ErrBodyHashMismatch},
		{"bodySHA256 truncated", nil, nil, "foo=1&bar=2&bodySHA256=" + vecA4SHA[:63], vecA4Body, vecA4Sig1, twilio.ErrBodyHashMismatch},
		{"body and bodySHA256 both replaced", nil, nil, "foo=1&bar=2&bodySHA256=" + sha256Hex([]byte(tamperedBody)), tamperedBody, vecA4Sig1, twilio.ErrSignatureMismatch},
		{"query value tampered", nil, nil, "foo=3&bar=2&bodySHA256=" + vecA4SHA, vecA4Body, vecA4Sig1, twilio.ErrSignatureMismatch},
		{"extra query parameter", nil, nil, vecA4Query1 + "&x=1", vecA4Body, vecA4Sig1, twilio.ErrSignatureMismatch},
		{"query parameter dropped", nil, nil, "foo=1&bodySHA256=" + vecA4SHA, vecA4Body, vecA4Sig1, twilio.ErrSignatureMismatch},
		{"query reordered", nil, nil, "bar=2&foo=1&bodySHA256=" + vecA4SHA, vecA4Body, vecA4Sig1, twilio.ErrSignatureMismatch},
		{"query re-encoded", nil, nil, "foo=%31&bar=2&bodySHA256=" + vecA4SHA, vecA4Body, vecA4Sig1, twilio.ErrSignatureMismatch},
		{"wrong token", []string{"54321"}, nil, vecA4Query1, vecA4Body, vecA4Sig1, twilio.ErrSignatureMismatch},
		{"token with a trailing space", []string{"12345 "}, nil, vecA4Query1, vecA4Body, vecA4Sig1, twilio.ErrSignatureMismatch},
		{"empty keyring", []string{}, nil, vecA4Query1, vecA4Body, vecA4Sig1, twilio.ErrSignatureMismatch},
		{"no public URLs", []string{vecToken}, []string{}, vecA4Query1, vecA4Body, vecA4Sig1, twilio.ErrSignatureMismatch},
		{"public URL with trailing slash", []string{vecToken}, []string{vecPublicURL + "/"}, vecA4Query1, vecA4Body, vecA4Sig1, twilio.ErrSignatureMismatch},
		{"public URL with another scheme", []string{vecToken}, []string{"http://mycompany.com/myapp.php"}, vecA4Query1, vecA4Body, vecA4Sig1, twilio.ErrSignatureMismatch},
		{"public URL with another path", []string{vecToken}, []string{"https://mycompany.com/other.php"}, vecA4Query1, vecA4Body, vecA4Sig1, twilio.ErrSignatureMismatch},
		{"signature of another URL", nil, nil, vecA4Query1, vecA4Body, vecA4Sig2, twilio.ErrSignatureMismatch},
		{"signature not base64", nil, nil, vecA4Query1, vecA4Body, "not a signature", twilio.ErrSignatureMismatch},
		{"signature with one character changed", nil, nil, vecA4Query1, vecA4Body, "b" + vecA4Sig1[1:], twilio.ErrSignatureMismatch},
		{"signature without padding", nil, nil, vecA4Query1, vecA4Body, strings.TrimRight(vecA4Sig1, "="), twilio.ErrSignatureMismatch},
		// Uppercase hex: twilio-go compares bodySHA256 with the lowercase hex of the body, case and all, so
		// even a request correctly signed over the uppercase URL fails (Twilio sends lowercase, FACTS.md).
		{"uppercase hex bodySHA256, correctly signed", nil, nil, upperQuery, vecA4Body, hmacSig(vecToken, vecPublicURL+"?"+upperQuery), twilio.ErrBodyHashMismatch},
		{"uppercase hex bodySHA256, lowercase signature", nil, nil, upperQuery, vecA4Body, vecA4Sig1, twilio.ErrBodyHashMismatch},
		// A3: a genuinely valid classic form signature (twilio-go's ValidateBody accepts it, see
		// TestFormSignatureIsGenuine) must not pass: an Event Streams request always has bodySHA256.
		{"form body with valid classic signature", nil, nil, vecA3Query, vecA3Body, vecA3Sig, twilio.ErrNoBodyHash},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// nil means the default (the vector token, the vector URL); the nil keyring and nil URL list
			// are covered by TestVerifyKeyring and TestVerifyNilPublicURLs.
			tokens, urls := tt.tokens, tt.publicURLs
			if tokens == nil {
				tokens = []string{vecToken}
			}
			if urls == nil {
				urls = []string{vecPublicURL}
			}
			err := twilio.NewVerifier(tokens).Verify(urls, tt.query, []byte(tt.body), tt.sig)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify(%v, %q, %q, %q) with tokens %q = %v, want %v", urls, tt.query, tt.body, tt.sig, tokens, err, tt.want)
			}
		})
	}
}

func TestVerifyNilPublicURLs(t *testing.T) {
	err := twilio.NewVerifier([]string{vecToken}).Verify(nil, vecA4Query1, []byte(vecA4Body), vecA4Sig1)
	if !errors.Is(err, twilio.ErrSignatureMismatch) {
		t.Fatalf("Verify(nil URLs) = %v, want ErrSignatureMismatch", err)
	}
}

// TestFormSignatureIsGenuine proves the A3 case above is meaningful: twilio-go itself accepts it.
func TestFormSignatureIsGenuine(t *testing.T) {
	rv := client.NewRequestValidator(vecToken)
	if !rv.ValidateBody(vecPublicURL+"?"+vecA3Query, []byte(vecA3Body), vecA3Sig) {
		t.Fatal("twilio-go rejects vector A3; the fail-closed form case would test nothing")
	}
}

func TestVerifyKeyring(t *testing.T) {
	tests := []struct {
		name   string
		tokens []string
		ok     bool
	}{
		{"right token only", []string{vecToken}, true},
		{"right token second", []string{"old-token", vecToken}, true},
		{"right token last of three", []string{"a", "b", vecToken}, true},
		{"right token duplicated", []string{vecToken, vecToken}, true},
		{"only wrong tokens", []string{"a", "b", "1234", "123456"}, false},
		{"empty token", []string{""}, false},
		{"empty keyring", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := twilio.NewVerifier(tt.tokens).Verify([]string{vecPublicURL}, vecA4Query1, []byte(vecA4Body), vecA4Sig1)
			if tt.ok && err != nil {
				t.Fatalf("Verify with %q = %v, want nil", tt.tokens, err)
			}
			if !tt.ok && !errors.Is(err, twilio.ErrSignatureMismatch) {
				t.Fatalf("Verify with %q = %v, want ErrSignatureMismatch", tt.tokens, err)
			}
		})
	}
}

// TestVerifyConcurrent: one Verifier shared by many requests at once (its HMAC states are pooled) gives
// each the answer it would get alone. Run with -race.
func TestVerifyConcurrent(t *testing.T) {
	v := twilio.NewVerifier([]string{"old-token", vecToken})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				body := []byte(fmt.Sprintf(`[{"id":"EZ%d-%d"}]`, g, i))
				signed, sig := twilio.Sign(vecToken, vecPublicURL, body)
				q := signed[strings.IndexByte(signed, '?')+1:]
				if err := v.Verify([]string{vecPublicURL}, q, body, sig); err != nil {
					t.Errorf("genuine request: %v", err)
					return
				}
				_, other := twilio.Sign("another-token", vecPublicURL, body)
				if err := v.Verify([]string{vecPublicURL}, q, body, other); !errors.Is(err, twilio.ErrSignatureMismatch) {
					t.Errorf("request signed with another token: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// TestVerifyDefaultPorts checks the port variants twilio-go tries, with signatures computed here.
func TestVerifyDefaultPorts(t *testing.T) {
	body := []byte(`[{"id":"EZ1"}]`)
	q := "bodySHA256=" + sha256Hex(body)
	tests := []struct {
		name, public, signedBase string
		ok                       bool
	}{
		{"https signed with :443", "https://relay.example.com/e", "https://relay.example.com:443/e", true},
		{"https signed without port, public has :443", "https://relay.example.com:443/e", "https://relay.example.com/e", true},
		{"http signed with :80", "http://relay.example.com/e", "http://relay.example.com:80/e", true},
		{"non-default port kept", "https://relay.example.com:8443/e", "https://relay.example.com:8443/e", true},
		{"https signed with :80", "https://relay.example.com/e", "https://relay.example.com:80/e", false},
		{"http signed with :443", "http://relay.example.com/e", "http://relay.example.com:443/e", false},
		{"other host", "https://relay.example.com/e", "https://relay.example.org/e", false},
	}
	v := twilio.NewVerifier([]string{"tok"})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := v.Verify([]string{tt.public}, q, body, hmacSig("tok", tt.signedBase+"?"+q))
			if tt.ok != (err == nil) {
				t.Fatalf("Verify = %v, want ok=%v", err, tt.ok)
			}
			if !tt.ok && !errors.Is(err, twilio.ErrSignatureMismatch) {
				t.Fatalf("Verify = %v, want ErrSignatureMismatch", err)
			}
		})
	}
}

// TestVerifyBasicAuthURLForm: the relay passes the public URL with and without user:pass@ (whether
// Twilio signs the userinfo is not confirmed); either signed form must pass.
func TestVerifyBasicAuthURLForm(t *testing.T) {
	body := []byte(`[]`)
	q := "bodySHA256=" + sha256Hex(body)
	urls := []string{"https://relay.example.com/e", "https://user:pass@relay.example.com/e"}
	v := twilio.NewVerifier([]string{"tok"})
	for _, signed := range urls {
		if err := v.Verify(urls, q, body, hmacSig("tok", signed+"?"+q)); err != nil {
			t.Errorf("signed over %s: Verify = %v, want nil", signed, err)
		}
		if err := v.Verify(urls[:1], q, body, hmacSig("tok", "https://other:pass@relay.example.com/e?"+q)); !errors.Is(err, twilio.ErrSignatureMismatch) {
			t.Errorf("other userinfo: Verify = %v, want ErrSignatureMismatch", err)
		}
	}
}

// TestVerifyNeverFallsBackToFormValidation is the fail-closed rule in its sharpest form: when the URL the
// verifier builds hides bodySHA256 from twilio-go (a public URL ending in '#' or '?', or a '#' in the
// query), twilio-go's ValidateBody falls back to the classic form algorithm (URL + sorted form params of
// the body). A signature made that way must never pass an Event Streams request.
func TestVerifyNeverFallsBackToFormValidation(t *testing.T) {
	body := []byte(`{}`)
	h := sha256Hex(body)
	tests := []struct{ name, public, query string }{
		{"public URL ends in #", "https://relay.example.com/e#", "bodySHA256=" + h},
		{"public URL ends in ?", "https://relay.example.com/e?", "bodySHA256=" + h},
		{"# in the raw query", "https://relay.example.com/e", "a=#&bodySHA256=" + h},
	}
	v := twilio.NewVerifier([]string{"tok"})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The classic algorithm: URL, then each form parameter of the body as key+value, sorted.
			// The JSON body "{}" parses as one form key "{}" with an empty value.
			formSig := hmacSig("tok", tt.public+"?"+tt.query+"{}")
			if err := v.Verify([]string{tt.public}, tt.query, body, formSig); err == nil {
				t.Fatalf("Verify(%q, %q) accepted a classic form signature", tt.public, tt.query)
			}
		})
	}
}

func TestReason(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{twilio.ErrNoSignature, "no_signature"},
		{twilio.ErrNoBodyHash, "no_body_hash"},
		{twilio.ErrBodyHashMismatch, "body_hash_mismatch"},
		{twilio.ErrSignatureMismatch, "signature_mismatch"},
		{fmt.Errorf("endpoint events: %w", twilio.ErrSignatureMismatch), "signature_mismatch"},
		{fmt.Errorf("wrapped twice: %w", fmt.Errorf("x: %w", twilio.ErrNoBodyHash)), "no_body_hash"},
		{errors.New(twilio.ErrNoSignature.Error()), "other"}, // same text, different error
		{errors.New("boom"), "other"},
		{nil, "other"},
	}
	for _, tt := range tests {
		if got := twilio.Reason(tt.err); got != tt.want {
			t.Errorf("Reason(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
	// The sentinels are distinct: a label never covers two of them.
	sentinels := []error{twilio.ErrNoSignature, twilio.ErrNoBodyHash, twilio.ErrBodyHashMismatch, twilio.ErrSignatureMismatch}
	for i, a := range sentinels {
		for j, b := range sentinels {
			if i != j && errors.Is(a, b) {
				t.Errorf("errors.Is(%v, %v) = true", a, b)
			}
		}
	}
}

func TestSignURLOfficialVectors(t *testing.T) {
	tests := []struct{ url, want string }{
		{vecPublicURL + "?" + vecA4Query1, vecA4Sig1},
		{vecPublicURL + "?" + vecA4Query2, vecA4Sig2},
		{vecA5PublicPort + "?" + vecA5Query, vecA5Sig443},
		{vecPublicURL + "?" + vecA5Query, vecA5SigNoPort},
	}
	for _, tt := range tests {
		if got := twilio.SignURL(vecToken, tt.url); got != tt.want {
			t.Errorf("SignURL(%q) = %s, want %s (vectors.txt)", tt.url, got, tt.want)
		}
	}
	// And against an independent HMAC for inputs outside the vectors.
	for _, tok := range []string{"", "tok", "ünïcode", strings.Repeat("k", 200)} {
		for _, u := range []string{"", "https://a/b?c=d", "http://[::1]:80/x?y=%20"} {
			if got, want := twilio.SignURL(tok, u), hmacSig(tok, u); got != want {
				t.Errorf("SignURL(%q, %q) = %s, want %s", tok, u, got, want)
			}
		}
	}
}

func TestSign(t *testing.T) {
	tests := []struct {
		name, rawURL, body string
		wantURL, wantSig   string
	}{
		// vectors.txt A4: Sign must reproduce Twilio's URL and signature exactly.
		{"A4 URL with query", "https://mycompany.com/myapp.php?foo=1&bar=2", vecA4Body, vecA4SignedURL, vecA4Sig1},
		{"A4 URL without query", vecPublicURL, vecA4Body, vecPublicURL + "?" + vecA4Query2, vecA4Sig2},
		{"A5 port-less", "https://mycompany.com/myapp.php?foo=1&bar=2", vecA5Body, vecPublicURL + "?" + vecA5Query, vecA5SigNoPort},
		{"A5 with :443", "https://mycompany.com:443/myapp.php?foo=1&bar=2", vecA5Body, vecA5PublicPort + "?" + vecA5Query, vecA5Sig443},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gotURL, gotSig := twilio.Sign(vecToken, tt.rawURL, []byte(tt.body))
			if gotURL != tt.wantURL || gotSig != tt.wantSig {
				t.Fatalf("Sign = (%q, %q), want (%q, %q)", gotURL, gotSig, tt.wantURL, tt.wantSig)
			}
		})
	}
}

func TestSignVerifyRoundTrip(t *testing.T) {
	tests := []struct {
		name, public, query string
		body                []byte
	}{
		{"no query", "https://relay.example.com/twilio/events", "", []byte(`[{"id":"EZ1"}]`)},
		{"query", "https://relay.example.com/twilio/events", "sink=a&x=%20y", []byte(`[]`)},
		{"empty body", "http://127.0.0.1:8080/e", "", nil},
		{"binary body", "https://relay.example.com/e", "a=1", []byte{0, 1, 2, 0xff}},
		{"trailing slash", "https://relay.example.com/e/", "", []byte(`{}`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := tt.public
			if tt.query != "" {
				raw += "?" + tt.query
			}
			signed, sig := twilio.Sign("tok", raw, tt.body)
			wantQuery := "bodySHA256=" + sha256Hex(tt.body)
			if tt.query != "" {
				wantQuery = tt.query + "&" + wantQuery
			}
			if signed != tt.public+"?"+wantQuery {
				t.Fatalf("Sign URL = %q, want %q", signed, tt.public+"?"+wantQuery)
			}
			if want := hmacSig("tok", signed); sig != want {
				t.Fatalf("Sign signature = %q, want %q", sig, want)
			}
			rawQuery := strings.TrimPrefix(signed, tt.public+"?")
			v := twilio.NewVerifier([]string{"other", "tok"})
			if err := v.Verify([]string{tt.public}, rawQuery, tt.body, sig); err != nil {
				t.Fatalf("Verify(Sign(...)) = %v", err)
			}
			if err := twilio.NewVerifier([]string{"other"}).Verify([]string{tt.public}, rawQuery, tt.body, sig); !errors.Is(err, twilio.ErrSignatureMismatch) {
				t.Fatalf("Verify with the wrong token = %v, want ErrSignatureMismatch", err)
			}
			tampered := append([]byte{}, tt.body...)
			tampered = append(tampered, ' ')
			if err := v.Verify([]string{tt.public}, rawQuery, tampered, sig); !errors.Is(err, twilio.ErrBodyHashMismatch) {
				t.Fatalf("Verify with a tampered body = %v, want ErrBodyHashMismatch", err)
			}
		})
	}
}
