package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSpoolRidesOutKafkaOutage: with the spool on, Kafka stopped for longer than the request deadline
// while events keep coming: every event is answered 200 (stored in the spool), and once Kafka is back
// every one of them is in its topic exactly once.
func TestSpoolRidesOutKafkaOutage(t *testing.T) {
	k := startKafka(t)
	h := startRelay(t, k, map[string]string{"SPOOL_DIR": t.TempDir(), "SPOOL_SINKS": "kafka", "DEADLINE": "1500ms"})
	if r := h.post(event("EZspool-before", "com.twilio.messaging.message.sent", "SMsp")); r.Status != 200 {
		t.Fatalf("before the outage: %d %s", r.Status, r.Body)
	}
	k.Stop(t)
	for i := range 20 {
		id := fmt.Sprintf("EZspool%02d", i)
		if r := h.post(event(id, "com.twilio.messaging.message.sent", fmt.Sprint("SMsp", i%3))); r.Status != 200 {
			t.Fatalf("%s during the outage: %d %s, want 200 (spooled)", id, r.Status, r.Body)
		}
	}
	// A duplicate of a spooled event is a duplicate: it was answered 200 once.
	if r := h.post(event("EZspool00", "com.twilio.messaging.message.sent", "SMsp0")); !strings.Contains(string(r.Body), `"duplicates":1`) {
		t.Fatalf("re-sent spooled event: %d %s", r.Status, r.Body)
	}
	k.Restart(t)
	waitSpoolEmpty(t, "http://"+h.relay.AdminAddr)
	got := countByID(readTopic(t, k.Addr(), "twilio.messaging"))
	for i := range 20 {
		if n := got[fmt.Sprintf("EZspool%02d", i)]; n != 1 {
			t.Errorf("EZspool%02d is in Kafka %d times, want 1", i, n)
		}
	}
}

// TestSpoolFullAnswers503: a spool too small for the outage answers 503 once full, and loses nothing it
// answered 200 for.
func TestSpoolFullAnswers503(t *testing.T) {
	k := startKafka(t)
	h := startRelay(t, k, map[string]string{"SPOOL_DIR": t.TempDir(), "SPOOL_SINKS": "kafka", "SPOOL_MAX": "1MiB", "DEADLINE": "800ms"})
	k.Stop(t)
	big := strings.Repeat("x", 200<<10)
	accepted, refused := []string{}, 0
	for i := range 10 {
		id := fmt.Sprintf("EZfull%02d", i)
		ev := json.RawMessage(fmt.Sprintf(`{"specversion":"1.0","type":"com.twilio.messaging.message.sent","source":"/s","id":%q,"data":{"messageSid":"SMf","pad":%q}}`, id, big))
		switch r := h.post(ev); r.Status {
		case 200:
			accepted = append(accepted, id)
		case 503:
			refused++
		default:
			t.Fatalf("%s: %d %s", id, r.Status, r.Body)
		}
	}
	if refused == 0 || len(accepted) == 0 {
		t.Fatalf("accepted %d, refused %d: a 1 MiB spool must take some 200 KiB events and then refuse", len(accepted), refused)
	}
	k.Restart(t)
	waitSpoolEmpty(t, "http://"+h.relay.AdminAddr)
	got := countByID(readTopic(t, k.Addr(), "twilio.messaging"))
	for _, id := range accepted {
		if got[id] != 1 {
			t.Errorf("%s answered 200 but in Kafka %d times", id, got[id])
		}
	}
}

func waitSpoolEmpty(t *testing.T, admin string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(admin + "/spool")
		if err == nil {
			var st struct{ Sinks []struct{ Depth int } }
			_ = json.NewDecoder(resp.Body).Decode(&st)
			resp.Body.Close()
			if len(st.Sinks) > 0 && st.Sinks[0].Depth == 0 {
				return
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatal("the spool did not drain within 60s of Kafka coming back")
}

// TestSpoolSurvivesSIGKILL runs the relay binary, fills its spool while Kafka is down, kills it with
// SIGKILL, brings Kafka back, restarts the relay, and finds every spooled event in Kafka.
func TestSpoolSurvivesSIGKILL(t *testing.T) {
	k := startKafka(t)
	spoolDir := filepath.Join(t.TempDir(), "spool")
	p := newRelayProcess(t, testConfig, map[string]string{"BROKERS": k.Addr(), "SPOOL_DIR": spoolDir, "SPOOL_SINKS": "kafka"})
	p.Start()
	sender := p.Sender()
	k.Stop(t)
	var ids []string
	for i := range 15 {
		id := fmt.Sprintf("EZkill%02d", i)
		r, err := sender.Post(context.Background(), []json.RawMessage{event(id, "com.twilio.messaging.message.sent", "SMk")})
		if err != nil || r.Status != 200 {
			t.Fatalf("%s: %v %d %s", id, err, r.Status, r.Body)
		}
		ids = append(ids, id)
	}
	p.Signal(syscall.SIGKILL)
	p.Wait(10 * time.Second)
	var out, errOut syncBuffer
	if err := run(context.Background(), []string{"spool", "-dir", spoolDir}, &out, &errOut); err != nil {
		t.Fatalf("relay spool: %v %s", err, errOut.String())
	}
	if !strings.Contains(out.String(), "sink kafka: 15 waiting") || !strings.Contains(out.String(), "EZkill00") {
		t.Fatalf("relay spool after SIGKILL said:\n%s", out.String())
	}
	k.Restart(t)
	p.Start()
	waitSpoolEmpty(t, p.Admin())
	got := countByID(readTopic(t, k.Addr(), "twilio.messaging"))
	for _, id := range ids {
		if got[id] != 1 {
			t.Errorf("%s was answered 200 before SIGKILL but is in Kafka %d times", id, got[id])
		}
	}
}
