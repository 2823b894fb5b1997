// Package checktest runs a sink's preflight checks (relay.Checker) in tests and asserts on their
// verdicts and lines.
package checktest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/relaykit/twilio-relay/relay"
)

// Run runs c's checks of topics within 20 seconds and logs each line.
func Run(t testing.TB, c relay.Checker, topics ...string) []relay.Check {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	checks := c.Check(ctx, topics)
	for _, ch := range checks {
		t.Log(ch)
	}
	return checks
}

// Want fails the test unless each named check is among checks with the status wanted.
func Want(t testing.TB, checks []relay.Check, want map[string]relay.CheckStatus) {
	t.Helper()
	for name, status := range want {
		c, ok := Find(checks, name)
		switch {
		case !ok:
			t.Errorf("no check %q in %v", name, checks)
		case c.Status != status:
			t.Errorf("%s: %v, want %v", name, c, status)
		}
	}
}

// WantIn fails the test unless the line of the named check holds every part.
func WantIn(t testing.TB, checks []relay.Check, name string, parts ...string) {
	t.Helper()
	c, ok := Find(checks, name)
	if !ok {
		t.Errorf("no check %q in %v", name, checks)
		return
	}
	for _, p := range parts {
		if !strings.Contains(c.String(), p) {
			t.Errorf("%s: %q does not say %q", name, c, p)
		}
	}
}

// Find returns the check named name.
func Find(checks []relay.Check, name string) (relay.Check, bool) {
	for _, c := range checks {
		if c.Name == name {
			return c, true
		}
	}
	return relay.Check{}, false
}
