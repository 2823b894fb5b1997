package httpsink

import (
	"fmt"
	"net/http"
	"net/url"

	"github.com/relaykit/twilio-relay/relay"
	"github.com/relaykit/twilio-relay/relay/ce"
)

// Headers naming the route's topic and key, percent-encoded as URL path segments.
const (
	HeaderTopic = "X-Relay-Topic"
	HeaderKey   = "X-Relay-Key"
)

// Encode returns the headers and body of the request for m under the CloudEvents HTTP protocol
// binding. Binary mode: every attribute as a ce-<name> header (percent-encoded), datacontenttype as
// Content-Type, data as the body. Structured mode: the event in the CloudEvents JSON format as the
// body, Content-Type application/cloudevents+json. Both carry X-Relay-Topic and, when the route set
// one, X-Relay-Key. Header names are lower-case as in the binding (HTTP/2 sends them so anyway).
func Encode(m relay.Message, structured bool) (http.Header, []byte, error) {
	e := m.Event
	h := make(http.Header, 12+len(e.Extensions))
	h[HeaderTopic] = []string{url.PathEscape(m.Topic)}
	if len(m.Key) > 0 {
		h[HeaderKey] = []string{url.PathEscape(string(m.Key))}
	}
	if structured {
		body, err := e.MarshalJSON()
		if err != nil {
			return nil, nil, fmt.Errorf("encode: %w", err)
		}
		h["Content-Type"] = []string{ce.StructuredContentType}
		return h, body, nil
	}
	attrs, err := ce.HeaderAttributes(e)
	if err != nil {
		return nil, nil, fmt.Errorf("encode: %w (structured mode carries any name)", err)
	}
	for _, a := range attrs {
		h["ce-"+a.Name] = []string{ce.HeaderValue(a.Value)}
	}
	if ct := ce.ContentType(e); ct != "" {
		h["Content-Type"] = []string{ct}
	}
	return h, e.Data, nil
}
