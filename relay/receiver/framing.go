package receiver

import (
	"bytes"

	"github.com/gofiber/fiber/v2"
	"github.com/relaykit/twilio-relay/relay"
)

// Request smuggling: when two HTTP parsers (a proxy in front of the relay, and the relay) can read a
// request's length differently, bytes one of them takes as body the other takes as the next request.
// Twilio sends one Content-Length, or exactly "Transfer-Encoding: chunked"; anything else is refused
// with 400 and the connection closed, so that nothing after the ambiguous body is read (docs/responses.md).
//
// fasthttp (v1.78) refuses a repeated Content-Length or Transfer-Encoding, and any Transfer-Encoding
// but chunked or identity, while it reads the headers, before the body. It takes Content-Length with
// Transfer-Encoding (as chunked) and "Chunked" or "identity": guardFraming refuses those, and checks
// the others again, from the header lines as they arrived.

var (
	headerContentLength    = []byte(fiber.HeaderContentLength)
	headerTransferEncoding = []byte(fiber.HeaderTransferEncoding)
)

// framingProblem returns what makes the request's framing ambiguous, or "" when it is one
// Content-Length, exactly one "Transfer-Encoding: chunked", or neither.
func framingProblem(c *fiber.Ctx) string {
	lengths, encodings, chunked := 0, 0, true
	for k, v := range c.Request().Header.AllInOrder() {
		switch {
		case bytes.EqualFold(k, headerContentLength):
			lengths++
		case bytes.EqualFold(k, headerTransferEncoding):
			encodings++
			chunked = chunked && string(v) == "chunked"
		}
	}
	switch {
	case lengths > 0 && encodings > 0:
		return "both Content-Length and Transfer-Encoding"
	case lengths > 1:
		return "more than one Content-Length"
	case encodings > 1:
		return "more than one Transfer-Encoding"
	case encodings == 1 && !chunked:
		return "a Transfer-Encoding other than exactly chunked"
	}
	return ""
}

// guardFraming refuses a request whose framing is ambiguous, before any handler (middleware).
func (s *Server) guardFraming(c *fiber.Ctx) error {
	if p := framingProblem(c); p != "" {
		if ep := s.byPath[c.Path()]; ep != nil {
			c.Locals(endpointKey, ep)
		}
		return relay.Errorf(relay.EINVALID, "ambiguous_framing", "request framing is ambiguous: %s", p)
	}
	return c.Next()
}
