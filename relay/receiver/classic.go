package receiver

import (
	"bytes"
	"net/url"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/relaykit/twilio-relay/relay"
	"github.com/relaykit/twilio-relay/relay/twilio"
)

// Monitor is told about every request refused before decoding and every batch processed; *twilioapi.Monitor
// is one (it serves what `relay twilio test` reads). Implementations must be fast and must not keep b
// past the call except for copies.
type Monitor interface {
	// Rejected is called with the reason and the URL the signature was checked against (never the token
	// or the signature).
	Rejected(endpoint, reason, verifiedURL string)
	Processed(b *relay.Batch, out relay.Outcome, err error)
}

type nopMonitor struct{}

func (nopMonitor) Rejected(string, string, string)              {}
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

// verifiedURL is the URL the endpoint checks signatures against for this request: the public URL and
// the query as received.
func (ep *Endpoint) verifiedURL(c *fiber.Ctx) string {
	if len(ep.SignedURLs) == 0 {
		return ""
	}
	q := rawQuery(c)
	if q == "" && ep.Classic {
		return ep.SignedURLs[0]
	}
	return ep.SignedURLs[0] + "?" + q
}
