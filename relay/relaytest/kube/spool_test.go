package kube

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/relaykit/twilio-relay/relay/relaytest/ledger"
	"github.com/relaykit/twilio-relay/relay/spool"
)

// spoolRelease installs the chart with the spool (a StatefulSet of one pod, its claim bound to a hostPath
// volume), and has events answered 200 while Kafka is up, then into the spool while Kafka is stopped. It
// returns the release, the volume's directory, the ledger, and how many messages the spool holds. Kafka is
// left stopped.
func (e *env) spoolRelease(t *testing.T, ns, file string, drainTimeout int) (*release, string, *ledger.Ledger, int) {
	t.Helper()
	r := e.newRelease(t, ns, file, map[string]any{
		"spool": map[string]any{"enabled": true, "size": "1Gi", "maxBytes": "256MiB", "drainTimeoutSeconds": drainTimeout},
	})
	volume := e.hostPathVolume(t, r.ns, "spool-relay-0", "1Gi")
	r.install(t)
	l := ledger.New()
	r.driver(l, r.token, "up", 50).Run(context.Background(), 2*time.Second)
	e.kafka.Stop(t)
	r.driver(l, r.token, "down", 20).Run(context.Background(), 5*time.Second)
	spooled, err := r.spoolDepth()
	if err != nil || spooled == 0 {
		t.Fatalf("Kafka is down and the spool holds %d messages (%v): nothing went through the spool", spooled, err)
	}
	if left := l.Unacknowledged(); len(left) > 0 {
		t.Fatalf("%d events were not answered 200 while the spool had room (e.g. %s)", len(left), left[0])
	}
	t.Logf("Kafka stopped: %d events answered 200 in all, %d messages in the spool", l.Acknowledged(), spooled)
	return r, volume, l, spooled
}

// spoolAcrossPods: events are answered 200 into the spool while Kafka is down, the pod is deleted (its
// drain gives up after spool.drainTimeoutSeconds, the claim keeps the spool), and the new pod of the same
// ordinal finds them and delivers them once Kafka is back.
func (e *env) spoolAcrossPods(t *testing.T, file string) {
	r, volume, l, spooled := e.spoolRelease(t, "spool", file, 5)
	first := r.onePod(t)
	begin := time.Now()
	r.e.c.Kubectl(t, "-n", r.ns, "delete", "pod", first.Name, "--wait", "--timeout", "2m")
	waitFor(t, "a new pod Ready", 2*time.Minute, func() bool {
		pods := r.pods(t)
		return len(pods) == 1 && pods[0].UID != first.UID && pods[0].Ready
	})
	t.Logf("pod %s deleted and replaced in %v (Kafka still down)", first.Name, time.Since(begin).Round(100*time.Millisecond))
	if n, err := r.spoolDepth(); err != nil || n != spooled {
		t.Fatalf("the new pod's spool holds %d messages (%v), the old one's held %d", n, err, spooled)
	}
	e.kafka.Restart(t)
	waitFor(t, "the new pod's spool drained", 90*time.Second, func() bool {
		n, err := r.spoolDepth()
		return err == nil && n == 0
	})
	r.check(t, "spool: pod deleted while Kafka is down", l,
		fmt.Sprintf("%d spooled by the old pod, delivered by the new one", spooled))
	r.uninstall(t, "persistentvolumeclaim/spool-relay-0")
	checkSpoolEmpty(t, volume)
}

// spoolScaleDown scales the StatefulSet down (helm upgrade replicaCount=0, as the chart allows it) while
// its pod's spool holds events and Kafka is down; Kafka comes back during the pod's termination, and the
// stopping pod's preStop drain (relay drain: POST /drain, up to spool.drainTimeoutSeconds) delivers them before it
// goes: nothing stays on the claim, although no pod of that ordinal will run again.
func (e *env) spoolScaleDown(t *testing.T, file string) {
	r, volume, l, spooled := e.spoolRelease(t, "scaledown", file, 60)
	p := r.onePod(t)
	begin := time.Now()
	r.e.c.Helm(t, r.helmArgs("upgrade", "relay", r.e.chart, "-n", r.ns, "--set", "replicaCount=0")...)
	time.Sleep(15 * time.Second) // past preStopSleepSeconds: intake stopped, the drain waiting for Kafka
	if pods := r.pods(t); len(pods) != 1 || pods[0].UID != p.UID || !pods[0].Deleting {
		t.Fatalf("15 s into the scale-down the pod should still be draining: %v", pods)
	}
	if n, err := r.spoolDepth(); err != nil || n != spooled {
		t.Fatalf("the draining pod's spool holds %d messages (%v), want %d", n, err, spooled)
	}
	e.kafka.Restart(t)
	restarted := time.Since(begin)
	waitFor(t, "the pod gone", 2*time.Minute, func() bool { return len(r.pods(t)) == 0 })
	t.Logf("scaled to 0: Kafka back %v into the pod's termination, pod gone after %v", restarted.Round(100*time.Millisecond),
		time.Since(begin).Round(100*time.Millisecond))
	checkSpoolEmpty(t, volume)
	r.check(t, "spool: scale-down while Kafka is down", l,
		fmt.Sprintf("%d spooled, drained by the stopping pod once Kafka was back", spooled))
	r.uninstall(t, "persistentvolumeclaim/spool-relay-0")
}

// checkSpoolEmpty reads the spool a pod left on its volume: it must hold nothing undelivered.
func checkSpoolEmpty(t *testing.T, volume string) {
	t.Helper()
	rep, err := spool.Inspect(volume, 0)
	if err != nil {
		t.Fatalf("the spool on the volume: %v", err)
	}
	for _, st := range rep.Sinks {
		if st.Depth != 0 {
			t.Errorf("the spool on the volume still holds %d messages for %s", st.Depth, st.Sink)
		}
	}
}

// hostPathVolume creates a PersistentVolume on a directory of the cluster, bound in advance to the claim
// (the node has no provisioner), writable by the relay's uid.
func (e *env) hostPathVolume(t *testing.T, ns, claim, size string) string {
	t.Helper()
	dir := filepath.Join(e.c.Dir, "volumes", ns+"-"+claim)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, 65532, 65532); err != nil {
		t.Fatal(err)
	}
	pv := fmt.Sprintf(`apiVersion: v1
kind: PersistentVolume
metadata:
  name: %[1]s-%[2]s
spec:
  capacity: {storage: %[3]s}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  storageClassName: ""
  claimRef: {namespace: %[1]s, name: %[2]s}
  hostPath: {path: %[4]s, type: Directory}
`, ns, claim, size, dir)
	if _, err := e.c.KubectlErr([]byte(pv), "apply", "-f", "-"); err != nil {
		t.Fatal(err)
	}
	return dir
}
