package nats

import (
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/relaykit/twilio-relay/relay"
	"github.com/relaykit/twilio-relay/relay/ce"

	natsgo "github.com/nats-io/nats.go"
)

// HeaderContentType carries datacontenttype in binary mode, as in the CloudEvents NATS binding.
const HeaderContentType = "content-type"

// Encode turns a relay message into a NATS message on the subject m.Topic, under the CloudEvents NATS
// protocol binding. Binary mode: every attribute as a ce-<name> header (percent-encoded as in the HTTP
// binding), datacontenttype as content-type, data as the payload. Structured mode: the event in the
// CloudEvents JSON format as the payload, content-type application/cloudevents+json. Both carry
// Nats-Msg-Id (see MsgID).
func Encode(m relay.Message, structured bool) (*natsgo.Msg, error) {
	if err := CheckSubject(m.Topic); err != nil {
		return nil, err
	}
	e := m.Event
	nm := &natsgo.Msg{Subject: m.Topic, Header: make(natsgo.Header, 10+len(e.Extensions))}
	if id := MsgID(m); id != "" {
		nm.Header[jetstream.MsgIDHeader] = []string{id}
	}
	if structured {
		body, err := e.MarshalJSON()
		if err != nil {
			return nil, fmt.Errorf("encode: %w", err)
		}
		nm.Header[HeaderContentType] = []string{ce.StructuredContentType}
		nm.Data = body
		return nm, nil
	}
	attrs, err := ce.HeaderAttributes(e)
	if err != nil {
		return nil, fmt.Errorf("encode: %w (structured mode carries any name)", err)
	}
	for _, a := range attrs {
		nm.Header["ce-"+a.Name] = []string{ce.HeaderValue(a.Value)}
	}
	if ct := ce.ContentType(e); ct != "" {
		nm.Header[HeaderContentType] = []string{ct}
	}
	nm.Data = e.Data
	return nm, nil
}

// MsgID returns the Nats-Msg-Id of m: the event id and the subject, "<id>@<subject>". JetStream drops
// a publish whose id it has seen in the stream's duplicate window, so a Twilio retry of an event whose
// first write was stored but not acknowledged in time is stored once. The subject is part of the id
// because the window is per stream: one event routed to two subjects of the same stream is two
// messages, not a duplicate. Test events all carry the account SID as their id, so they get none.
func MsgID(m relay.Message) string {
	if m.Event.IsTest() || m.Event.ID == "" {
		return ""
	}
	return m.Event.ID + "@" + m.Topic
}

// errBadSubject is the cause of a subject no NATS server accepts for a publish.
var errBadSubject = errors.New("not a NATS subject to publish to")

// CheckSubject reports whether s can be published to: non-empty dot-separated tokens, no white space,
// and no wildcard token ('*' or '>').
func CheckSubject(s string) error {
	if s == "" || strings.ContainsAny(s, " \t\r\n\f\v") {
		return fmt.Errorf("subject %q: %w", s, errBadSubject)
	}
	for tok := range strings.SplitSeq(s, ".") {
		if tok == "" || tok == "*" || tok == ">" {
			return fmt.Errorf("subject %q: %w", s, errBadSubject)
		}
	}
	return nil
}
