package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relaykit/twilio-relay/relay/relaytest/servers"
)

const sharedConfig = testConfig + `
dedupe:
  shared:
    redis: { addr: "${REDIS_ADDR}" }
`

// TestSharedDedupeAcrossReplicas: two relays sharing Redis, the same events sent to both, one after the
// other and at the same time: each id is produced once. With Redis gone, both keep delivering.
func TestSharedDedupeAcrossReplicas(t *testing.T) {
	k := startKafka(t)
	rd := servers.StartRedis(t)
	env := map[string]string{"REDIS_ADDR": rd.Addr()}
	a := startRelayWith(t, k, sharedConfig, env)
	b := startRelayWith(t, k, sharedConfig, env)

	ev := event("EZshared-seq", "com.twilio.messaging.message.sent", "SMsh")
	if r := a.post(ev); r.Status != 200 || !strings.Contains(string(r.Body), `"delivered":1`) {
		t.Fatalf("replica a: %d %s", r.Status, r.Body)
	}
	if r := b.post(ev); r.Status != 200 || !strings.Contains(string(r.Body), `"duplicates":1`) {
		t.Fatalf("replica b, same event: %d %s; want a duplicate", r.Status, r.Body)
	}

	// At the same time, to both: a replica that finds the event in flight at the other answers 503 and
	// Twilio retries; retry until 200, as Twilio would.
	var wg sync.WaitGroup
	for i := range 10 {
		e := event(fmt.Sprintf("EZshared%02d", i), "com.twilio.messaging.message.sent", "SMsh")
		for _, h := range []*harness{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for attempt := 0; attempt < 20; attempt++ {
					resp, err := h.sender.Post(t.Context(), []json.RawMessage{e})
					if err == nil && resp.Status == 200 {
						return
					}
					time.Sleep(100 * time.Millisecond)
				}
				t.Errorf("%s never answered 200", e)
			}()
		}
	}
	wg.Wait()
	got := countByID(readTopic(t, k.Addr(), "twilio.messaging"))
	for _, id := range append([]string{"EZshared-seq"}, ids("EZshared", 10)...) {
		if got[id] != 1 {
			t.Errorf("%s produced %d times across two replicas, want 1", id, got[id])
		}
	}

	rd.Kill()
	for i, h := range []*harness{a, b} {
		if r := h.post(event(fmt.Sprint("EZnoredis", i), "com.twilio.messaging.message.sent", "SMsh")); r.Status != 200 {
			t.Fatalf("replica %d without Redis: %d %s; want 200 (local dedupe only)", i, r.Status, r.Body)
		}
	}
	resp, err := http.Get("http://" + a.relay.AdminAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `relay_dedupe_shared_errors_total{op="claim"}`) {
		t.Fatal("the shared tier's failures are not in the metrics")
	}
}

func ids(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%02d", prefix, i)
	}
	return out
}
