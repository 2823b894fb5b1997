package main

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/relaykit/twilio-relay/relay/relaytest/kafkaserver"
	"github.com/relaykit/twilio-relay/relay/relaytest/ledger"
)

// Fault scenarios (issue #7): each drives signed traffic through a fault and proves with the ledger that
// every event answered 200 reached its topic. The table in docs/reliability.md is their output
// (scripts/reliability.sh).

func TestFaultKafkaKilled(t *testing.T) {
	k := startKafka(t)
	h := startRelay(t, k, map[string]string{"DEADLINE": "1500ms"})
	s := newScenario(t, "Kafka broker SIGKILLed during load, restarted", h.sender)
	s.run()
	s.at(0.25, "SIGKILL the broker")
	k.Kill(t)
	s.at(0.5, "restart the broker")
	k.Restart(t)
	s.wait()
	s.redeliver()
	s.check(kafkaIDs(t, k.Addr()), ledger.DupsAtMost(2), "503 while the broker is down; a write in flight at the deadline goes on and, if it lands, its retry is a duplicate answered 200; "+
		"duplicates: writes whose acknowledgement the kill cut off, retried")
}

func TestFaultKafkaPaused(t *testing.T) {
	k := startKafka(t)
	h := startRelay(t, k, map[string]string{"DEADLINE": "1500ms"})
	s := newScenario(t, "Kafka broker SIGSTOPped for 2× the request deadline, resumed", h.sender)
	s.run()
	s.at(0.25, "SIGSTOP the broker for 3s (deadline 1.5s)")
	k.Pause(t)
	time.Sleep(3 * time.Second)
	s.t.Logf("%5.1fs SIGCONT", time.Since(s.start).Seconds())
	k.Resume(t)
	s.wait()
	s.redeliver()
	s.check(kafkaIDs(t, k.Addr()), ledger.DupsAtMost(2), "503 within the deadline while the broker is frozen; the writes in flight go on, land when it resumes and are remembered, "+
		"so Twilio's retries are answered as duplicates; duplicates: writes that timed out in kafka-go although the broker appended them")
}

func TestFaultRelayKilled(t *testing.T) {
	k := startKafka(t)
	p := startRelayProcess(t, k, nil)
	s := newScenario(t, "relay SIGKILLed during load, no spool, restarted", p.Sender())
	s.run()
	s.at(0.35, "SIGKILL the relay")
	p.Signal(syscall.SIGKILL)
	p.Wait(10 * time.Second)
	s.at(0.5, "restart the relay")
	p.Start()
	s.wait()
	s.redeliver()
	s.check(kafkaIDs(t, k.Addr()), ledger.DupsReported, "requests in flight at the kill get no answer and are retried; 200 only after acks=all, so none is lost; "+
		"duplicates: events written whose answer died with the relay, then retried (a SIGKILL writes no dedupe snapshot)")
}

func TestFaultRelayKilledWithSpool(t *testing.T) {
	k := startKafka(t)
	dir := filepath.Join(t.TempDir(), "spool")
	p := startRelayProcess(t, k, map[string]string{"SPOOL_DIR": dir, "SPOOL_SINKS": "kafka"})
	s := newScenario(t, "relay SIGKILLed with events in its spool (Kafka down), restarted", p.Sender())
	s.run()
	s.at(0.2, "stop the broker: events go to the spool")
	k.Stop(t)
	s.at(0.5, "SIGKILL the relay")
	p.Signal(syscall.SIGKILL)
	p.Wait(10 * time.Second)
	s.at(0.6, "restart the broker and the relay")
	k.Restart(t)
	p.Start()
	s.wait()
	waitSpoolEmpty(t, p.Admin())
	s.redeliver()
	s.check(kafkaIDs(t, k.Addr()), ledger.DupsReported, "events answered 200 from the spool survive the kill and drain after the restart")
}

// TestFaultSpoolDiskFull puts the spool on a 2 MiB tmpfs (root only: skipped where mounting is not
// allowed) and stops Kafka: the spool fills the disk, the relay answers 503 from then on, and after
// Kafka is back the spool drains and accepts again.
func TestFaultSpoolDiskFull(t *testing.T) {
	dir := smallDisk(t, "2m")
	k := startKafka(t)
	p := startRelayProcess(t, k, map[string]string{"SPOOL_DIR": dir, "SPOOL_SINKS": "kafka"})
	s := newScenario(t, "spool's disk full (2 MiB tmpfs) while Kafka is down", p.Sender())
	s.run()
	s.at(0.1, "stop the broker: the spool fills its disk")
	k.Stop(t)
	s.at(0.8, "restart the broker")
	k.Restart(t)
	s.wait()
	waitSpoolEmpty(t, p.Admin())
	s.redeliver()
	r := s.check(kafkaIDs(t, k.Addr()), ledger.DupsAtMost(2), "503 once the disk is full; the spool drains when Kafka is back and accepts again")
	if r.Statuses["503"] == 0 {
		t.Errorf("no request was answered 503: the disk never filled (%v)", r.Statuses)
	}
}

// smallDisk mounts a tmpfs of size under the test's temp dir, or skips the test where that is not
// allowed.
func smallDisk(t *testing.T, size string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "disk")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
		t.Skipf("cannot mount a %s tmpfs for a full disk (needs root): %v", size, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// TestFaultSpoolCorrupted spools events while Kafka is down, stops the relay, flips one byte of one
// stored entry on disk, and starts it again with Kafka back: the damaged entry is detected by its
// checksum, set aside and counted (relay_spool_corrupt_total), and every other event is delivered.
func TestFaultSpoolCorrupted(t *testing.T) {
	k := startKafka(t)
	dir := filepath.Join(t.TempDir(), "spool")
	p := startRelayProcess(t, k, map[string]string{"SPOOL_DIR": dir, "SPOOL_SINKS": "kafka"})
	s := newScenario(t, "a spooled entry corrupted on disk while the relay is stopped", p.Sender())
	s.run()
	s.at(0.2, "stop the broker: events go to the spool")
	k.Stop(t)
	s.wait()
	p.Signal(syscall.SIGTERM)
	if code := p.Wait(30 * time.Second); code != 0 {
		t.Fatalf("the relay exited with %d on SIGTERM", code)
	}
	victim := fmt.Sprintf("%s%06d", s.driver.Prefix, int(0.5*s.load.rate*s.load.dur.Seconds()))
	flipByteOfEntry(t, filepath.Join(dir, "spool.db"), victim)
	k.Restart(t)
	p.Start()
	waitSpoolEmpty(t, p.Admin())
	if n := metric(t, p.Admin(), "relay_spool_corrupt_total"); n != 1 {
		t.Errorf("relay_spool_corrupt_total = %v, want 1", n)
	}
	s.redeliver()
	s.check(kafkaIDs(t, k.Addr()), ledger.DupsAtMost(2), "the damaged entry is detected (CRC-32C), set aside in _corrupt, counted and logged; no other event is lost", victim)
}

// flipByteOfEntry changes one byte of the stored id of event id in the spool file.
func flipByteOfEntry(t *testing.T, path, id string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	needle := []byte(`"id":"` + id + `"`)
	i := bytes.Index(b, needle)
	if i < 0 || bytes.Count(b, needle) != 1 {
		t.Fatalf("event %s is %d times in the spool file, want once", id, bytes.Count(b, needle))
	}
	b[i+len(needle)-2] ^= 0x01
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestFaultSlowSink sends to an HTTP sink that answers after 3 s while the request deadline is 1.5 s:
// every request is answered 503 well before Twilio's 5 s, never left to time out; once the sink is fast
// again, Twilio's retries deliver everything.
func TestFaultSlowSink(t *testing.T) {
	var slow atomic.Bool
	slow.Store(true)
	var mu sync.Mutex
	got := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost { // the preflight's OPTIONS: not a delivery
			return
		}
		if slow.Load() {
			time.Sleep(3 * time.Second)
		}
		mu.Lock()
		got[r.Header.Get("ce-id")]++
		mu.Unlock()
	}))
	defer srv.Close()
	cfg := `
listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:0 }
log: { level: warn }
limits: { request_deadline: 1500ms }
endpoints:
  - { name: events, path: /twilio/events, public_url: ` + publicURL + `, auth_tokens: [ "${TOKEN}" ] }
sinks:
  - name: web
    http: { url: "` + srv.URL + `/in", timeout: 10s }
routes:
  - { name: all, match: { types: [ "*" ] }, to: [ { sink: web, topic: all } ] }
dead_letter: { sink: web, topic: dead }
`
	h := startRelayWith(t, nil, cfg, nil)
	s := newScenario(t, "HTTP sink answering after 3 s (deadline 1.5 s)", h.sender)
	s.load.dur, s.driver.Rate = 3*time.Second, 50
	s.run()
	s.wait()
	if r := s.ledger.Check("", nil); r.Answered != 0 || r.Statuses["503"] != r.Requests {
		t.Errorf("with the sink slower than the deadline: %v, want every request 503", r.Statuses)
	}
	if l := s.driver.MaxLatency(); l > 4500*time.Millisecond { // 1.5 s deadline, slack for a loaded CI machine
		t.Errorf("the longest answer took %s: Twilio gives up at 5 s", l)
	}
	slow.Store(false)
	s.redeliver()
	mu.Lock()
	defer mu.Unlock()
	s.check(got, ledger.DupsAtMost(0), fmt.Sprintf("every request 503 within %s (deadline 1.5 s); each write goes on after the 503, lands at 3 s and is remembered: "+
		"Twilio's retries are answered as duplicates", s.driver.MaxLatency().Round(100*time.Millisecond)))
}

// TestFaultGracefulShutdown sends SIGTERM to the relay under load: it stops accepting, answers what it
// has, exits 0, and nothing it answered 200 is missing.
func TestFaultGracefulShutdown(t *testing.T) {
	k := startKafka(t)
	p := startRelayWithSnapshot(t, k)
	s := newScenario(t, "relay SIGTERMed during load (graceful shutdown), restarted", p.Sender())
	s.run()
	s.at(0.35, "SIGTERM the relay")
	p.Signal(syscall.SIGTERM)
	if code := p.Wait(30 * time.Second); code != 0 {
		t.Errorf("the relay exited with %d on SIGTERM, want 0", code)
	}
	s.at(0.5, "restart the relay")
	p.Start()
	s.wait()
	s.redeliver()
	s.check(kafkaIDs(t, k.Addr()), ledger.DupsAtMost(0), "requests in progress at SIGTERM are answered before exit 0, their writes waited for; new ones are refused until the restart "+
		"and retried; the dedupe snapshot makes the restarted relay answer Twilio's duplicates of what it delivered before")
}

// TestFaultRestartResend: the relay answers a run of traffic, is SIGTERMed (a rolling deploy) and
// restarted, and then every event it answered 200 is sent again, as Twilio does when it never saw the
// answer. The restarted relay loads the dedupe snapshot before it listens, answers them all 200 as
// duplicates, and produces none of them again.
func TestFaultRestartResend(t *testing.T) {
	k := startKafka(t)
	p := startRelayWithSnapshot(t, k)
	s := newScenario(t, "relay SIGTERMed and restarted, then every event already answered 200 sent again", p.Sender())
	s.run()
	s.wait()
	s.redeliver()
	s.t.Logf("%5.1fs SIGTERM the relay", time.Since(s.start).Seconds())
	p.Signal(syscall.SIGTERM)
	if code := p.Wait(30 * time.Second); code != 0 {
		t.Fatalf("the relay exited with %d on SIGTERM, want 0", code)
	}
	p.Start()
	ids := s.ledger.AcknowledgedIDs()
	s.t.Logf("%5.1fs restarted; sending the %d events answered 200 again", time.Since(s.start).Seconds(), len(ids))
	before := s.ledger.Check("", nil).Statuses["200"]
	s.driver.Resend(context.Background(), ids)
	r := s.check(kafkaIDs(t, k.Addr()), ledger.DupsAtMost(0), "every event answered 200 before the restart is answered 200 again as a duplicate, from the dedupe snapshot "+
		"written at SIGTERM and loaded before the listener opened")
	batch := max(s.driver.Batch, 1)
	if resent, bodies := r.Statuses["200"]-before, (len(ids)+batch-1)/batch; resent != bodies {
		t.Errorf("%d of the %d bodies sent again were answered 200, want all (%v)", resent, bodies, r.Statuses)
	}
}

// startRelayProcess runs the relay binary with testConfig against k, a 1.5 s deadline and env.
func startRelayProcess(t *testing.T, k *kafkaserver.Server, env map[string]string) *relayProcess {
	t.Helper()
	return startRelayProcessWith(t, k, testConfig, env)
}

// startRelayProcessWith runs the relay binary with yaml against k, a 1.5 s deadline and env.
func startRelayProcessWith(t *testing.T, k *kafkaserver.Server, yaml string, env map[string]string) *relayProcess {
	t.Helper()
	vars := map[string]string{"BROKERS": k.Addr(), "DEADLINE": "1500ms"}
	maps.Copy(vars, env)
	p := newRelayProcess(t, yaml, vars)
	p.Start()
	return p
}

// startRelayWithSnapshot runs the relay binary with testConfig and a dedupe snapshot in the test's
// temporary directory.
func startRelayWithSnapshot(t *testing.T, k *kafkaserver.Server) *relayProcess {
	t.Helper()
	return startRelayProcessWith(t, k, testConfig+"dedupe: { snapshot: \"${DEDUPE_SNAPSHOT}\" }\n",
		map[string]string{"DEDUPE_SNAPSHOT": filepath.Join(t.TempDir(), "dedupe.snapshot")})
}
