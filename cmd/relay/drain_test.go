package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestDrainBeforeStop is the preStop hook of a pod that spools (`relay drain`, POST /drain): while Kafka
// is down it stops intake and answers 503 with what the spool still holds, the relay still running; once
// Kafka is back the same call answers 200 with the spool empty and every spooled event in Kafka once.
// The relay then shuts down cleanly (runRelay reports a failed Close).
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

	out, err := drainCommand(t, "-admin", h.relay.AdminAddr, "-delay", "200ms", "-timeout", "1s")
	if err == nil || !strings.HasPrefix(out, "503 ") || !strings.Contains(out, `"not drained"`) || !strings.Contains(out, fmt.Sprintf(`"Depth":%d`, len(sent))) {
		t.Fatalf("relay drain with Kafka down: %v, %q; want a failure, 503 \"not drained\" with %d waiting", err, out, len(sent))
	}
	if _, err := h.sender.Post(t.Context(), []json.RawMessage{event("EZdrain-late", "com.twilio.messaging.message.sent", "SMdr")}); err == nil {
		t.Fatal("the webhook listener still answers after /drain stopped intake")
	}
	if resp, err := http.Get(admin + "/readyz"); err != nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("/readyz after /drain: %v %v; want 503", resp, err)
	}

	k.Restart(t)
	status, body := postDrain(t, admin+"/drain?timeout=60s")
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

// TestDrainRejectsBadParams: a mistyped hook answers 400, and a GET (what a page in an operator's
// browser can send: <img src=…/drain>) 405; neither stops anything.
func TestDrainRejectsBadParams(t *testing.T) {
	k := startKafka(t)
	h := startRelay(t, k, nil)
	if status, _ := postDrain(t, "http://"+h.relay.AdminAddr+"/drain?timeout=soon"); status != http.StatusBadRequest {
		t.Fatalf("timeout=soon: %d, want 400", status)
	}
	resp, err := http.Get("http://" + h.relay.AdminAddr + "/drain?delay=0s&timeout=0s")
	if err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET /drain: %v %v, want 405", resp, err)
	}
	resp.Body.Close()
	if resp, err := http.Get("http://" + h.relay.AdminAddr + "/readyz"); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/readyz after GET /drain: %v %v; want 200", resp, err)
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

// drainCommand runs `relay drain` with args and returns what it printed.
func drainCommand(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(t.Context(), append([]string{"drain"}, args...), &out, &errOut)
	return out.String() + errOut.String(), err
}

func postDrain(t *testing.T, url string) (int, drainBody) {
	t.Helper()
	c := &http.Client{Timeout: 90 * time.Second}
	resp, err := c.Post(url, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b drainBody
	_ = json.NewDecoder(resp.Body).Decode(&b)
	return resp.StatusCode, b
}

// TestDrainNeedsCredentials: with admin.auth on, POST /drain stops intake only with the credentials, which
// `relay drain` (the chart's preStop hook, in the relay's container) sends from RELAY_ADMIN_TOKEN; without
// them it is refused and the relay keeps taking events.
func TestDrainNeedsCredentials(t *testing.T) {
	k := startKafka(t)
	h := startRelayWith(t, k, authConfig, map[string]string{"ADMIN_TOKEN": adminToken})
	t.Setenv(envAdminToken, "")
	if out, err := drainCommand(t, "-admin", h.relay.AdminAddr, "-timeout", "1s"); err == nil || !strings.HasPrefix(out, "401 ") {
		t.Fatalf("relay drain without credentials: %v, %q; want 401", err, out)
	}
	if r := h.post(event("EZdrain-unauthorized", "com.twilio.messaging.message.sent", "SMdr")); r.Status != 200 {
		t.Fatalf("after an unauthorized /drain: %d %s, want 200", r.Status, r.Body)
	}
	t.Setenv(envAdminToken, adminToken)
	if out, err := drainCommand(t, "-admin", h.relay.AdminAddr, "-timeout", "1s"); err != nil || !strings.HasPrefix(out, "200 ") {
		t.Fatalf("relay drain with the token: %v, %q; want 200", err, out)
	}
}
