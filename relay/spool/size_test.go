package spool

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/relaykit/twilio-relay/relay"
	"github.com/relaykit/twilio-relay/relay/twilio"
)

// TestEntrySize logs what a typical Twilio event costs in the spool, for docs/durability.md.
func TestEntrySize(t *testing.T) {
	s, err := twilio.Samples()
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal([]json.RawMessage{s["message-delivered"]})
	b := twilio.Decode("events", body, time.Now(), twilio.DecodeOptions{})
	v, err := encode(relay.Message{Event: b.Events[0], Topic: "twilio.events", Key: []byte("SM1")}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("event %d bytes as received, %d bytes in the spool (%.1fx)", len(b.Events[0].Raw), len(v), float64(len(v))/float64(len(b.Events[0].Raw)))
	if len(v) < len(b.Events[0].Raw) {
		t.Fatal("an entry smaller than its event: something is missing")
	}
}
