package nats_test

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/relaykit/twilio-relay/relay"
	"github.com/relaykit/twilio-relay/relay/relaytest/conformance"

	natsgo "github.com/nats-io/nats.go"
)

// reader reads a JetStream server back for the conformance suite: one stream per topic, read message
// by message by sequence number.
type reader struct {
	nc *natsgo.Conn
	js jetstream.JetStream
}

func newReader(t *testing.T, url string) *reader {
	t.Helper()
	nc, err := natsgo.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return &reader{nc: nc, js: js}
}

// streamName is the stream that captures topic.
func streamName(topic string) string {
	return strings.NewReplacer(".", "_", "*", "_", ">", "_").Replace(topic)
}

// createStream creates a stream capturing subjects.
func (r *reader) createStream(t *testing.T, name string, cfg jetstream.StreamConfig) jetstream.Stream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cfg.Name = name
	st, err := r.js.CreateStream(ctx, cfg)
	if err != nil {
		t.Fatalf("create stream %s: %v", name, err)
	}
	return st
}

func (r *reader) Prepare(t *testing.T, topic string) {
	r.createStream(t, streamName(topic), jetstream.StreamConfig{Subjects: []string{topic}})
}

func (r *reader) Read(t *testing.T, topic string) []conformance.Record {
	t.Helper()
	var out []conformance.Record
	for _, m := range r.messages(t, streamName(topic)) {
		if m.Subject != topic {
			t.Errorf("stream of %s holds a message on %s", topic, m.Subject)
		}
		rec, err := decode(m.Header, m.Data)
		if err != nil {
			t.Errorf("message %d: %v", m.Sequence, err)
		}
		rec.Position = relay.Position{Set: true, Partition: relay.NoPartition, Stream: streamName(topic), Offset: int64(m.Sequence)}
		out = append(out, rec)
	}
	return out
}

// messages returns every message the stream holds, oldest first.
func (r *reader) messages(t *testing.T, stream string) []*jetstream.RawStreamMsg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := r.js.Stream(ctx, stream)
	if err != nil {
		t.Fatalf("stream %s: %v", stream, err)
	}
	state := st.CachedInfo().State
	var out []*jetstream.RawStreamMsg
	for seq := state.FirstSeq; state.Msgs > 0 && seq <= state.LastSeq; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("stream %s: message %d: %v", stream, seq, err)
		}
		out = append(out, m)
	}
	return out
}

// decode maps a stored message to a record: structured mode by its content type, else binary mode.
func decode(h natsgo.Header, data []byte) (conformance.Record, error) {
	if h.Get("content-type") == "application/cloudevents+json" {
		return conformance.ParseStructured(data)
	}
	rec := conformance.Record{Attributes: map[string]string{}, Data: data}
	for k, vs := range h {
		name, ok := strings.CutPrefix(k, "ce-")
		if !ok {
			continue
		}
		v, err := url.PathUnescape(vs[0])
		if err != nil {
			return rec, fmt.Errorf("header %s: %w", k, err)
		}
		rec.Attributes[name] = v
	}
	if ct := h.Get("content-type"); ct != "" {
		rec.Attributes["datacontenttype"] = ct
	}
	return rec, nil
}

// KeepsKeys: NATS has no message key; the subject is the unit of order.
func (r *reader) KeepsKeys() bool { return false }

// Refused returns a message over the server's max_payload (1 MiB by default).
func (r *reader) Refused(topic string) (relay.Message, bool) {
	e := &relay.Event{SpecVersion: "1.0", ID: "EZtoolarge", Source: "/s", Type: "t",
		DataContentType: "application/octet-stream", Binary: true, Data: make([]byte, r.nc.MaxPayload()+1)}
	return relay.Message{Event: e, Topic: topic}, true
}

// Stall puts a plain subscriber on topic that never answers: a JetStream publish there waits for an
// acknowledgement that does not come.
func (r *reader) Stall(t *testing.T, topic string) (func(), bool) {
	t.Helper()
	sub, err := r.nc.SubscribeSync(topic)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return func() { _ = sub.Unsubscribe() }, true
}
