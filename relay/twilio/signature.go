// Package twilio speaks Twilio's side of Event Streams: it verifies X-Twilio-Signature on webhook-sink
// requests (with twilio-go's RequestValidator), signs requests the same way for tools and tests, and
// decodes the CloudEvents a sink receives into relay events.
package twilio

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"hash"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/twilio/twilio-go/client"
)

// SignatureHeader is the header Twilio signs its requests in.
const SignatureHeader = "X-Twilio-Signature"

// Reasons a request fails verification. Each is also a metric label (see Reason).
var (
	ErrNoSignature       = errors.New("no X-Twilio-Signature header")
	ErrNoBodyHash        = errors.New("no single bodySHA256 query parameter")
	ErrBodyHashMismatch  = errors.New("bodySHA256 does not match the body")
	ErrSignatureMismatch = errors.New("signature does not match the public URL and query with any configured token")
)

// Reason returns a short label for a verification error, for metrics and logs.
func Reason(err error) string {
	switch {
	case errors.Is(err, ErrNoSignature):
		return "no_signature"
	case errors.Is(err, ErrNoBodyHash):
		return "no_body_hash"
	case errors.Is(err, ErrBodyHashMismatch):
		return "body_hash_mismatch"
	case errors.Is(err, ErrSignatureMismatch):
		return "signature_mismatch"
	case errors.Is(err, ErrBadForm):
		return "bad_form"
	case errors.Is(err, ErrEventsOnForms):
		return "event_streams_on_classic"
	}
	return "other"
}

// Verifier checks X-Twilio-Signature on Event Streams webhook requests against a keyring of auth tokens:
// a request signed with any of them passes (token rotation, one token per subaccount).
//
// It accepts exactly what twilio-go's RequestValidator.ValidateBody accepts for the same URL, body and
// signature, with two refusals of its own: a request without a bodySHA256 value fails (ValidateBody would
// check the body as a form instead), and a public URL holding '?' or '#' is never used. The common case
// (one HMAC per token over the URL exactly as given) is checked without allocating; twilio-go itself
// checks the rest (the URL with the default port added or removed). FuzzVerifyAsTwilioGo holds the two to
// the same answers.
type Verifier struct {
	validators []client.RequestValidator
	macs       []sync.Pool // per token: *macState keyed with it
	parsed     atomic.Pointer[map[string]bool]
}

// macState is one token's HMAC-SHA1 with the buffers a check writes, pooled so that the common case
// allocates nothing.
type macState struct {
	mac hash.Hash
	msg []byte // the signed URL: public URL + "?" + query
	sum [sha1.Size]byte
}

// NewVerifier returns a Verifier for the tokens. With no tokens it fails every request.
func NewVerifier(tokens []string) *Verifier {
	v := &Verifier{macs: make([]sync.Pool, len(tokens))}
	for i, t := range tokens {
		v.validators = append(v.validators, client.NewRequestValidator(t))
		key := []byte(t)
		v.macs[i].New = func() any { return &macState{mac: hmac.New(sha1.New, key)} }
	}
	return v
}

// sigLen is the length of a canonical X-Twilio-Signature: a 20-byte HMAC-SHA1 in padded standard base64.
const sigLen = 28

// exact reports whether signature is, character for character, the base64 of the HMAC of publicURL + "?"
// + rawQuery with one of the tokens. twilio-go compares the base64 text too, so a signature that decodes
// to the same bytes but is written another way (non-canonical padding bits, line breaks, no padding)
// fails, as it does there.
func (v *Verifier) exact(publicURL, rawQuery, signature string) bool {
	if len(signature) != sigLen {
		return false
	}
	var got, want [sigLen]byte
	copy(got[:], signature)
	for i := range v.macs {
		st := v.macs[i].Get().(*macState)
		st.mac.Reset()
		st.msg = append(append(append(st.msg[:0], publicURL...), '?'), rawQuery...)
		st.mac.Write(st.msg)
		base64.StdEncoding.Encode(want[:], st.mac.Sum(st.sum[:0]))
		v.macs[i].Put(st)
		if subtle.ConstantTimeCompare(got[:], want[:]) == 1 {
			return true
		}
	}
	return false
}

// Verify checks a JSON webhook request: publicURLs are the forms of the URL Twilio was told to call,
// without its query (scheme, host, optional port, path), any of which may have been signed; rawQuery is
// the query exactly as received, without '?'; body is the raw body. It fails closed: a missing signature
// or a missing or empty bodySHA256 never passes, and the body hash is checked before any signature.
func (v *Verifier) Verify(publicURLs []string, rawQuery string, body []byte, signature string) error {
	if signature == "" {
		return ErrNoSignature
	}
	h := bodySHA256(rawQuery)
	if h == "" {
		return ErrNoBodyHash
	}
	if !bodyHashMatches(body, h) {
		return ErrBodyHashMismatch
	}
	for _, u := range publicURLs {
		if strings.ContainsAny(u, "?#") {
			continue // not a base URL: the query it would hide could select twilio-go's form check
		}
		if !v.parses(u, rawQuery) {
			continue // ValidateBody refuses a URL that url.Parse refuses
		}
		if v.exact(u, rawQuery, signature) {
			return nil
		}
		full := u + "?" + rawQuery
		for i := range v.validators {
			// Validate with no parameters: the HMAC over the URL alone, with and without the default
			// port, compared in constant time: what ValidateBody does once it has found bodySHA256 (and
			// the body hash is checked above).
			if v.validators[i].Validate(full, nil, signature) {
				return nil
			}
		}
	}
	return ErrSignatureMismatch
}

// bodyHashMatches compares h with the lowercase hex SHA-256 of body, in constant time and case-sensitively
// like twilio-go (which formats the sum with %x): uppercase hex does not match.
func bodyHashMatches(body []byte, h string) bool {
	if len(h) != 2*sha256.Size {
		return false
	}
	sum := sha256.Sum256(body)
	var want, got [2 * sha256.Size]byte
	hex.Encode(want[:], sum[:])
	copy(got[:], h)
	return subtle.ConstantTimeCompare(want[:], got[:]) == 1
}

// Sign does what Twilio does before it posts body to a webhook sink at rawURL: it appends the
// bodySHA256 query parameter and signs the resulting URL with token. It returns the URL to post to and the
// X-Twilio-Signature value.
func Sign(token, rawURL string, body []byte) (signedURL, signature string) {
	sum := sha256.Sum256(body)
	sep := "?"
	if strings.Contains(rawURL, "?") {
		sep = "&"
	}
	signedURL = rawURL + sep + "bodySHA256=" + hex.EncodeToString(sum[:])
	return signedURL, SignURL(token, signedURL)
}

// SignURL returns base64(HMAC-SHA1(token, url)): Twilio's signature of a JSON request's URL.
func SignURL(token, url string) string {
	m := hmac.New(sha1.New, []byte(token))
	m.Write([]byte(url))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}
