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
	"net/url"
	"strings"
	"sync"

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
type Verifier struct {
	validators []client.RequestValidator
	macs       []sync.Pool // per token: *macState keyed with it
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

// exact reports whether signature is the HMAC of publicURL + "?" + rawQuery, exactly as given, with one of
// the tokens: the common case, one HMAC per token. twilio-go's Validate accepts this form too, and also the
// URL with the default port added or removed, at two HMACs and several URL parses per token.
func (v *Verifier) exact(publicURL, rawQuery, signature string) bool {
	var buf [32]byte // a signature is 28 characters: decoded here; a longer one the allocating way
	var want []byte
	if base64.StdEncoding.DecodedLen(len(signature)) <= len(buf) {
		n, err := base64.StdEncoding.Decode(buf[:], []byte(signature))
		if err != nil {
			return false
		}
		want = buf[:n]
	} else {
		var err error
		if want, err = base64.StdEncoding.DecodeString(signature); err != nil { // it may hold CR and LF, skipped
			return false
		}
	}
	if len(want) != sha1.Size {
		return false
	}
	for i := range v.macs {
		st := v.macs[i].Get().(*macState)
		st.mac.Reset()
		st.msg = append(append(append(st.msg[:0], publicURL...), '?'), rawQuery...)
		st.mac.Write(st.msg)
		ok := hmac.Equal(st.mac.Sum(st.sum[:0]), want)
		v.macs[i].Put(st)
		if ok {
			return true
		}
	}
	return false
}

// Verify checks a JSON webhook request: publicURLs are the forms of the URL Twilio was told to call,
// without its query (scheme, host, optional port, path), any of which may have been signed; rawQuery is
// the query exactly as received, without '?'; body is the raw body. It fails closed: a missing signature or a missing or repeated bodySHA256 parameter never
// passes, and the body hash is checked before any signature.
func (v *Verifier) Verify(publicURLs []string, rawQuery string, body []byte, signature string) error {
	if signature == "" {
		return ErrNoSignature
	}
	q, err := url.ParseQuery(rawQuery)
	if err != nil || len(q["bodySHA256"]) != 1 || q.Get("bodySHA256") == "" {
		return ErrNoBodyHash
	}
	sum := sha256.Sum256(body)
	var want [2 * sha256.Size]byte
	hex.Encode(want[:], sum[:])
	if subtle.ConstantTimeCompare(want[:], []byte(strings.ToLower(q.Get("bodySHA256")))) != 1 {
		return ErrBodyHashMismatch
	}
	for _, u := range publicURLs {
		if strings.ContainsAny(u, "?#") {
			continue // not a base URL: the query it would hide could select twilio-go's form check
		}
		if v.exact(u, rawQuery, signature) {
			return nil
		}
		full := u + "?" + rawQuery
		for i := range v.validators {
			// Validate with no parameters: the HMAC over the URL alone, with and without the default
			// port, compared in constant time. Not ValidateBody: the body hash is checked above, and
			// ValidateBody falls back to the form-encoded check when it finds no bodySHA256.
			if v.validators[i].Validate(full, nil, signature) {
				return nil
			}
		}
	}
	return ErrSignatureMismatch
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
