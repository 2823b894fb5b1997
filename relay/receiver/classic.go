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

// Monitor is told about every request refused before decoding and every batch processed, on the request
// path; *twilioapi.Monitor (what `relay twilio test` reads) and *inspector.Record are. Implementations
// must be fast and must not keep b past the call except for copies.
type Monitor interface {
	// Rejected is called with what the refusal holds (see refusal): never the token, the signature or
	// the query beyond bodySHA256's presence.
	Rejected(f relay.Refusal)
	Processed(b *relay.Batch, out relay.Outcome, err error)
}

type nopMonitor struct{}

func (nopMonitor) Rejected(relay.Refusal)                       {}
func (nopMonitor) Processed(*relay.Batch, relay.Outcome, error) {}

// Monitors tells each of its monitors, in order.
type Monitors []Monitor

// Rejected implements Monitor.
func (ms Monitors) Rejected(f relay.Refusal) {
	for _, m := range ms {
		m.Rejected(f)
	}
}

// Processed implements Monitor.
func (ms Monitors) Processed(b *relay.Batch, out relay.Outcome, err error) {
	for _, m := range ms {
		m.Processed(b, out, err)
	}
}

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

// refusal describes a request the endpoint refuses for reason, as every Monitor is told it: no
// credential, signature, body or query of the sender's choosing.
func (ep *Endpoint) refusal(c *fiber.Ctx, reason string) relay.Refusal {
	f := relay.Refusal{At: time.Now().UTC(), Endpoint: ep.Name, Reason: reason, BodyBytes: len(c.Request().Body())}
	f.URL, f.BodySHA256 = ep.refusedURL(c)
	if n := c.Request().Header.ContentLength(); f.BodyBytes == 0 && n > 0 {
		f.BodyBytes = n // not read: over the limit
	}
	if ip, ok := ep.clientIP(c); ok {
		f.Remote = ip.String()
	}
	return f
}

// refusedURL is what a refusal keeps of a refused request's URL: the endpoint's public URL, with
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
