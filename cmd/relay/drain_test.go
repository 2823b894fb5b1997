package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"
)

// TestDrainBeforeStop is the preStop hook of a pod that spools (GET /drain): while Kafka is down it stops
// intake and answers 503 with what the spool still holds, the relay still running; once Kafka is back
// the same call answers 200 with the spool empty and every spooled event in Kafka once. The relay then
// shuts down cleanly (runRelay reports a failed Close).
func TestDrainBeforeStop(t *testing.T) {
	k := startKafka(t)
	h := startRelay(t, k, map[string]string{"SPOOL_DIR": t.TempDir(), "SPOOL_SINKS": "kafka", "DEADLINE": "1500ms"})
	admin := "http://" + h.relay.AdminAddr
	k.Stop(t)
	var sent []string
	for i := range 8 {
		id := fmt.Sprintf("EZdrain%02d", i)
		if r := h.post(event(id, "com.twilio.messaging.message.sent", "SMdr")); r.Status != 200 {
			t.Fatalf("%s during the outage: %d %s, want 200 (spooled)", id, r.Status, r.Body)
		}
		sent = append(sent, id)
	}

	status, body := getDrain(t, admin+"/drain?delay=200ms&timeout=1s")
	if status != http.StatusServiceUnavailable || body.Status != "not drained" || len(body.Sinks) != 1 || body.Sinks[0].Depth != len(sent) {
		t.Fatalf("drain with Kafka down: %d %+v; want 503 \"not drained\" with %d waiting", status, body, len(sent))
	}
	if _, err := h.sender.Post(t.Context(), []json.RawMessage{event("EZdrain-late", "com.twilio.messaging.message.sent", "SMdr")}); err == nil {
		t.Fatal("the webhook listener still answers after /drain stopped intake")
	}
	if resp, err := http.Get(admin + "/readyz"); err != nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("/readyz after /drain: %v %v; want 503", resp, err)
	}

	k.Restart(t)
	status, body = getDrain(t, admin+"/drain?timeout=60s")
	if status != http.StatusOK || body.Status != "drained" || body.Sinks[0].Depth != 0 {
		t.Fatalf("drain with Kafka back: %d %+v; want 200 \"drained\"", status, body)
	}
	got := countByID(readTopic(t, k.Addr(), "twilio.messaging"))
	for _, id := range sent {
		if got[id] != 1 {
			t.Errorf("%s was spooled, then drained, but is in Kafka %d times", id, got[id])
		}
	}
}

// TestDrainRejectsBadParams: a mistyped hook answers 400 and stops nothing.
func TestDrainRejectsBadParams(t *testing.T) {
	k := startKafka(t)
	h := startRelay(t, k, nil)
	if status, _ := getDrain(t, "http://"+h.relay.AdminAddr+"/drain?timeout=soon"); status != http.StatusBadRequest {
		t.Fatalf("timeout=soon: %d, want 400", status)
	}
	if r := h.post(event("EZdrain-after-400", "com.twilio.messaging.message.sent", "SMdr")); r.Status != 200 {
		t.Fatalf("after a refused /drain: %d %s, want 200", r.Status, r.Body)
	}
}

type drainBody struct {
	Status string
	Sinks  []struct {
		Sink  string
		Depth int
	}
}

func getDrain(t *testing.T, url string) (int, drainBody) {
	t.Helper()
	c := &http.Client{Timeout: 90 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b drainBody
	_ = json.NewDecoder(resp.Body).Decode(&b)
	return resp.StatusCode, b
}
