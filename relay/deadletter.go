package relay

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"
)

// Dead-letter reasons: the deadletterreason extension of a dead-letter record, and a metric label.
const (
	ReasonMalformedBody = "malformed_body" // the body is not a JSON array or object of events
	ReasonInvalidEvent  = "invalid_event"  // an event lacks a required CloudEvents attribute
	ReasonDuplicateKey  = "duplicate_key"  // an event repeats a key within one of its objects
	ReasonNoRoute       = "no_route"       // no route matched and no_route is dead_letter
	ReasonRouteError    = "route_error"    // a route's topic or key template could not be rendered
	ReasonSinkRejected  = "sink_rejected"  // a sink refused the message for good (too large, bad topic)
)

// Reject is a part of a request that could not be taken as an event: the bytes, the reason code and a
// detail for people.
type Reject struct {
	Raw    []byte
	Reason string
	Detail string
}

// DeadLetterTarget is where dead letters go: a sink and a topic.
type DeadLetterTarget struct {
	Sink  string
	Topic string
}

// NewDeadLetter wraps what could not be delivered in a CloudEvent of type DeadLetterType whose data is the
// original bytes, unchanged (JSON when they are JSON, else binary), with the reason, the detail, the
// endpoint and, when known, the original event's id, type and source as extension attributes. Its id is
// derived from the endpoint, the reason and the bytes, so a re-sent dead letter has the same id.
func NewDeadLetter(endpoint string, raw []byte, reason, detail string, orig *Event, at time.Time) *Event {
	h := sha256.New()
	h.Write([]byte(endpoint))
	h.Write([]byte{0})
	h.Write([]byte(reason))
	h.Write([]byte{0})
	h.Write(raw)
	ext := map[string]string{
		"deadletterreason": reason,
		"deadletterdetail": detail,
		"endpoint":         endpoint,
	}
	if orig != nil {
		ext["originalid"], ext["originaltype"], ext["originalsource"] = orig.ID, orig.Type, orig.Source
	}
	dl := &Event{
		Endpoint:        endpoint,
		SpecVersion:     "1.0",
		ID:              hex.EncodeToString(h.Sum(nil)[:16]),
		Source:          "/relay/endpoints/" + endpoint,
		Type:            DeadLetterType,
		Time:            at.UTC().Format(time.RFC3339Nano),
		DataContentType: "application/json",
		Extensions:      ext,
		Data:            raw,
	}
	if !json.Valid(raw) {
		dl.DataContentType, dl.Binary = "application/octet-stream", true
	}
	return dl
}

// MaxRejectLetters bounds the dead letters one body's rejects make: past it, the first
// MaxRejectLetters-1 rejects are dead-lettered one each and the rest together in one, so that a body of
// 10,000 "{}" does not write 10,000 dead letters (issue #17).
const MaxRejectLetters = 100

// rejectLetters returns the dead letters of a batch's rejects, capped at MaxRejectLetters. The last one,
// when the cap is reached, holds the rest: their bytes in order as one JSON array (what `relay dlq
// replay` decodes as a body), the reason of the first of them, and a detail that counts them.
func (p *Pipeline) rejectLetters(b *Batch, rejects []Reject) []pending {
	one := len(rejects)
	if one > MaxRejectLetters {
		one = MaxRejectLetters - 1
	}
	dls := make([]pending, 0, min(len(rejects), MaxRejectLetters))
	for _, r := range rejects[:one] {
		dls = append(dls, pending{msg: p.deadLetterMessage(b.Endpoint, nil, r.Raw, r.Reason, r.Detail, b.ReceivedAt)})
	}
	if rest := rejects[one:]; len(rest) > 0 {
		raw := append([]byte{'['}, bytes.Join(rejectRaws(rest), []byte{','})...)
		detail := fmt.Sprintf("%d more rejects of this body, their bytes in order as one JSON array (dead letters per body are capped at %d); the first: %s",
			len(rest), MaxRejectLetters, rest[0].Detail)
		dls = append(dls, pending{msg: p.deadLetterMessage(b.Endpoint, nil, append(raw, ']'), rest[0].Reason, detail, b.ReceivedAt)})
	}
	return dls
}

func rejectRaws(rs []Reject) [][]byte {
	raws := make([][]byte, len(rs))
	for i := range rs {
		raws[i] = rs[i].Raw
	}
	return raws
}
