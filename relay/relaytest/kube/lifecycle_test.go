package kube

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relaykit/twilio-relay/relay/relaytest/ledger"
	"github.com/relaykit/twilio-relay/relay/spool"
)

// tokenRotation follows the documented rotation (docs/operations.md, docs/deploy-kubernetes.md) on a
// release whose tokens are in an existing Secret: add the new token to the Secret and restart, Twilio
// then signs with it, remove the old token and restart. Events signed with either token are delivered
// while both are listed; once the old one is removed, events it signs are refused and reach no topic.
func (e *env) tokenRotation(t *testing.T, file string) {
	r := e.newRelease(t, "rotation", file, nil)
	tw := readValues(t, e.values, file).Twilio
	secret, key := tw.ExistingSecret, tw.ExistingSecretKey
	if secret == "" {
		t.Fatalf("%s sets no twilio.existingSecret", file)
	}
	r.install(t)
	oldToken, newToken := r.token, "tok-"+randomWord()
	l := ledger.New()
	send := func(token, phase string) {
		t.Helper()
		d := r.driver(l, token, phase, 50)
		d.Run(context.Background(), time.Second)
		if left := l.Unacknowledged(); len(left) > 0 {
			t.Fatalf("%s: %d events signed with a listed token were not answered 200 (e.g. %s)", phase, len(left), left[0])
		}
	}
	rotate := func(tokens string) {
		t.Helper()
		manifest := r.e.c.Kubectl(t, "-n", r.ns, "create", "secret", "generic", secret, "--from-literal="+key+"="+tokens,
			"--dry-run=client", "-o", "yaml")
		if _, err := r.e.c.KubectlErr([]byte(manifest), "-n", r.ns, "apply", "-f", "-"); err != nil {
			t.Fatal(err)
		}
		begin := time.Now()
		r.e.c.Kubectl(t, "-n", r.ns, "rollout", "restart", "deployment/relay")
		r.e.c.Kubectl(t, "-n", r.ns, "rollout", "status", "deployment/relay", "--timeout", "3m")
		t.Logf("Secret %s = %d token(s); rollout restart took %v", secret, strings.Count(tokens, ",")+1, time.Since(begin).Round(100*time.Millisecond))
	}

	send(oldToken, "old")
	rotate(oldToken + "," + newToken)
	send(oldToken, "both-old")
	send(newToken, "both-new")
	rotate(newToken)
	send(newToken, "new")

	// The old token no longer verifies: each such event is refused (503 by default, so Twilio would retry
	// while the keyring is fixed) and must never reach a topic.
	var refused []string
	s := r.sender(oldToken)
	for i := range 20 {
		id := fmt.Sprintf("%sremoved-%02d", r.prefix, i)
		resp, err := s.Post(context.Background(), []json.RawMessage{ledger.Event(id)})
		if err != nil {
			t.Fatal(err)
		}
		if resp.Status == 200 {
			t.Fatalf("%s signed with the removed token was answered 200", id)
		}
		refused = append(refused, id)
	}
	r.check(t, "token rotation (existingSecret + rollout restart)", l,
		fmt.Sprintf("%d events signed with the removed token refused and absent (counted as forged)", len(refused)), refused...)
	r.uninstall(t)
}

// spoolAcrossPods runs the spool's StatefulSet: events are answered 200 into the spool while Kafka is
// down, the pod is deleted, the new pod (same volume) finds them and delivers them once Kafka is back.
func (e *env) spoolAcrossPods(t *testing.T, file string) {
	r := e.newRelease(t, "spool", file, map[string]any{
		"spool": map[string]any{"enabled": true, "size": "1Gi", "maxBytes": "256MiB"},
	})
	volume := e.hostPathVolume(t, r.ns, "spool-relay-0", "1Gi")
	r.install(t)
	first := r.onePod(t)
	l := ledger.New()
	d := r.driver(l, r.token, "up", 50)
	d.Run(context.Background(), 2*time.Second)

	e.kafka.Stop(t)
	d = r.driver(l, r.token, "down", 20)
	d.Run(context.Background(), 5*time.Second)
	spooled, err := r.spoolDepth()
	if err != nil || spooled == 0 {
		t.Fatalf("Kafka is down and the spool holds %d messages (%v): nothing went through the spool", spooled, err)
	}
	t.Logf("Kafka stopped: %d events answered 200 in all, %d messages in the spool", l.Acknowledged(), spooled)

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
	if err := d.Redeliver(context.Background(), time.Minute); err != nil {
		t.Fatal(err)
	}
	r.check(t, "spool: pod deleted while Kafka is down", l,
		fmt.Sprintf("%d spooled by the old pod, delivered by the new one", spooled))
	r.uninstall(t, "persistentvolumeclaim/spool-relay-0")
	// The claim stays (docs/deploy-kubernetes.md); the spool on it holds nothing undelivered.
	rep, err := spool.Inspect(volume, 0)
	if err != nil {
		t.Fatalf("the spool on the kept volume: %v", err)
	}
	for _, st := range rep.Sinks {
		if st.Depth != 0 {
			t.Errorf("the kept volume's spool still holds %d messages for %s", st.Depth, st.Sink)
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
