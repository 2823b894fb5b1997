package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
)

// authConfig is testConfig with credentials on the admin listener.
var authConfig = strings.Replace(testConfig, "admin: { listen: 127.0.0.1:0 }",
	`admin: { listen: 127.0.0.1:0, auth: { token: "${ADMIN_TOKEN}" } }`, 1)

// traceCommand runs `relay trace` with args and returns its output, what it printed on stderr, and its
// error.
func traceCommand(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(context.Background(), append([]string{"trace"}, args...), &out, &errOut)
	return out.String(), errOut.String(), err
}

// TestTraceSeveralRelays: `relay trace SID -admin A,B,C` asks every replica. Two relays on one Kafka took
// one event each about the same message, a third address answers nothing: the table has both events, each
// with the relay that holds it and the partition and offset Kafka holds it at; the address that did not
// answer is named on stderr, and the command still succeeds. Without credentials it says which variables
// to set; an id no relay holds fails.
func TestTraceSeveralRelays(t *testing.T) {
	k := startKafka(t)
	env := map[string]string{"ADMIN_TOKEN": adminToken}
	a, b := startRelayWith(t, k, authConfig, env), startRelayWith(t, k, authConfig, env)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gone := ln.Addr().String()
	ln.Close()

	const sid = "SMtrace0000000000000000000000000"
	idA, idB := "EZtraceA000000000000000000000000", "EZtraceB000000000000000000000000"
	for h, id := range map[*harness]string{a: idA, b: idB} {
		if r := h.post(event(id, "com.twilio.messaging.message.delivered", sid)); r.Status != http.StatusOK {
			t.Fatalf("post %s: %d %s", id, r.Status, r.Body)
		}
	}
	recs := readTopic(t, k.Addr(), "twilio.messaging")
	admins := strings.Join([]string{a.relay.AdminAddr, b.relay.AdminAddr, gone}, ",")

	t.Setenv(envAdminToken, adminToken)
	out, stderr, err := traceCommand(t, "-admin", admins, sid)
	if err != nil {
		t.Fatalf("relay trace %s: %v\n%s", sid, err, stderr)
	}
	t.Logf("relay trace -admin %s %s:\n%s%s", admins, sid, stderr, out)
	for id, relayAddr := range map[string]string{idA: a.relay.AdminAddr, idB: b.relay.AdminAddr} {
		rec := recordOf(t, recs, id)
		where := fmt.Sprintf("partition %d offset %d", rec.Partition, rec.Offset)
		line := lineWith(out, id)
		for _, want := range []string{relayAddr, "delivered", "twilio.messaging", where} {
			if !strings.Contains(line, want) {
				t.Errorf("trace line of %s %q lacks %q (Kafka holds it at %s)", id, line, want, where)
			}
		}
	}
	if !strings.Contains(stderr, gone) {
		t.Errorf("stderr %q does not name the relay that did not answer (%s)", stderr, gone)
	}

	t.Setenv(envAdminToken, "")
	if _, stderr, err := traceCommand(t, "-admin", a.relay.AdminAddr, idA); err == nil || !strings.Contains(stderr, envAdminToken) {
		t.Errorf("relay trace without credentials: %v, stderr %q; want a failure naming %s", err, stderr, envAdminToken)
	}
	t.Setenv(envAdminToken, adminToken)
	if _, _, err := traceCommand(t, "-admin", admins, "EZnobodyhasthis"); err == nil || !strings.Contains(err.Error(), "2 of 3 answered") {
		t.Errorf("relay trace of an unknown id: %v, want a failure saying 2 of 3 answered", err)
	}
}

// lineWith returns the first line of text that contains s.
func lineWith(text, s string) string {
	for l := range strings.SplitSeq(text, "\n") {
		if strings.Contains(l, s) {
			return l
		}
	}
	return ""
}
