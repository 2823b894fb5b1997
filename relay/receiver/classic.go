package receiver

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"net/url"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/relaykit/twilio-relay/relay"
	"github.com/relaykit/twilio-relay/relay/twilio"
)

// Monitor is told about every request refused before decoding and every batch processed; *twilioapi.Monitor
// is one (it serves what `relay twilio test` reads). Implementations must be fast and must not keep b
// past the call except for copies.
type Monitor interface {
	// Rejected is called with the reason, the URL the signature is checked against without its query
	// (whoever is refused chose it), and whether the query had the bodySHA256 parameter Twilio always
	// sends. Never the token or the signature.
	Rejected(endpoint, reason, url string, bodySHA256 bool)
	Processed(b *relay.Batch, out relay.Outcome, err error)
}

type nopMonitor struct{}

func (nopMonitor) Rejected(string, string, string, bool)        {}
func (nopMonitor) Processed(*relay.Batch, relay.Outcome, error) {}

// classic verifies a classic webhook (status callbacks, the Debugger webhook) and turns it into a batch of
// one event. A POST carries its parameters as a form body, signed with the URL (the classic signature);
// a GET (statusCallbackMethod GET) carries them in the query, and the signature covers the URL alone.
// Twilio's I-Twilio-Idempotency-Token, when present, becomes part of the event's id.
func (ep *Endpoint) classic(c *fiber.Ctx, raw []byte, arrived time.Time) (*relay.Batch, error) {
	var body []byte
	var params url.Values
	var err error
	if c.Method() == fiber.MethodGet {
		q := rawQuery(c)
		body = []byte(q) // what a reject keeps: the parameters as received
		if params, err = twilio.ParseForm(body); err == nil {
			err = ep.Verifier.VerifyGet(ep.SignedURLs, q, c.Get(twilio.SignatureHeader))
		}
	} else {
		body = bytes.Clone(raw) // fasthttp reuses the buffer; the batch keeps the bytes
		if params, err = twilio.ParseForm(body); err == nil {
			err = ep.Verifier.VerifyForm(ep.SignedURLs, rawQuery(c), params, c.Get(twilio.SignatureHeader))
		}
	}
	if err != nil {
		return nil, &relay.Error{Code: relay.EUNAUTHORIZED, Reason: twilio.Reason(err), Message: "request not verified: " + err.Error()}
	}
	return twilio.DecodeClassic(ep.Name, body, params, c.Get(twilio.IdempotencyHeader), arrived, ep.Decode), nil
}

// refusedURL is what the Monitor keeps of a refused request's URL: the endpoint's public URL, with
// "?bodySHA256=…" when the query has that parameter as Twilio sends it (64 hex digits; the rest of the
// query is the sender's to choose, and is not kept), and whether it has.
func (ep *Endpoint) refusedURL(c *fiber.Ctx) (string, bool) {
	if len(ep.SignedURLs) == 0 {
		return "", false
	}
	for param := range strings.SplitSeq(rawQuery(c), "&") {
		if v, ok := strings.CutPrefix(param, "bodySHA256="); ok && len(v) == sha256.Size*2 && isHex(v) {
			return ep.SignedURLs[0] + "?bodySHA256=…", true
		}
	}
	return ep.SignedURLs[0], false
}

func isHex(s string) bool {
	_, err := hex.DecodeString(s)
	return err == nil
}
