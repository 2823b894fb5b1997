package kube

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/relaykit/twilio-relay/relay/relaytest/ledger"
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
	answers := map[string]int{}
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
		answers[strconv.Itoa(resp.Status)]++
	}
	r.check(t, "token rotation (existingSecret + rollout restart)", l,
		fmt.Sprintf("%d events signed with the removed token answered %s and absent (counted as forged)", len(refused),
			statusList(answers)), refused...)
	r.uninstall(t)
}
