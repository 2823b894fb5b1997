package config

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"
)

// FuzzParse checks that Parse never panics and answers in exactly one of two ways: a non-nil *Config and
// no error, or a nil *Config and an Errors holding at least one non-nil problem. A configuration it
// accepts satisfies what validation promises, and its router has one compiled route per route.
func FuzzParse(f *testing.F) {
	shipped, err := os.ReadFile(shippedConfig)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(shipped, "", false)
	f.Add(shipped, "x", true)
	f.Add([]byte(minimal), "", false)
	for _, tc := range errorCases(f) {
		f.Add([]byte(tc.yaml), "12", true)
	}
	for _, s := range []string{"", "~", "{}", "[]", "a: &a [*a]", "<<: {listen: x}", "listen: !!binary aGk=",
		"endpoints: [{auth_tokens: ${X:-a,b}}]", "limits: {max_in_flight: 99999999999999999999}", "\xff"} {
		f.Add([]byte(s), "", false)
	}
	f.Fuzz(func(t *testing.T, data []byte, envVal string, set bool) {
		env := func(k string) (string, bool) {
			if k == "TWILIO_AUTH_TOKENS" {
				return "tok", true
			}
			return envVal, set
		}
		c, err := Parse(data, env)
		if (c == nil) == (err == nil) {
			t.Fatalf("Parse = (%v, %v): want exactly one of them", c, err)
		}
		if err != nil {
			var es Errors
			if !errors.As(err, &es) || len(es) == 0 {
				t.Fatalf("error %T %q is not a non-empty Errors", err, err)
			}
			for i, e := range es {
				if e == nil || e.Error() == "" {
					t.Fatalf("problem %d is empty", i)
				}
			}
			if !strings.HasPrefix(err.Error(), fmt.Sprintf("%d problem(s)", len(es))) {
				t.Fatalf("error text %q does not start with its count", err)
			}
			if _, err2 := Parse(data, env); err2 == nil || err2.Error() != err.Error() {
				t.Fatalf("Parse is not deterministic: %q then %v", err, err2)
			}
			return
		}

		// Accepted: what validation guarantees holds.
		if d := time.Duration(c.Limits.RequestDeadline); d <= 0 || d >= 5*time.Second {
			t.Fatalf("request_deadline %v accepted", d)
		}
		if c.Limits.MaxInFlight < 1 || c.Dedupe.Window <= 0 || c.Dedupe.MaxIDs < 1 || c.Retry.Multiplier < 1 {
			t.Fatalf("limits accepted: %+v %+v %+v", c.Limits, c.Dedupe, c.Retry)
		}
		if c.NoRoute != "dead_letter" && c.NoRoute != "drop" {
			t.Fatalf("no_route %q accepted", c.NoRoute)
		}
		if len(c.Endpoints) == 0 || len(c.Sinks) == 0 {
			t.Fatalf("accepted with %d endpoints, %d sinks", len(c.Endpoints), len(c.Sinks))
		}
		paths := map[string]bool{}
		for i, ep := range c.Endpoints {
			if len(ep.AuthTokens) == 0 {
				t.Fatalf("endpoints[%d] accepted without tokens", i)
			}
			u, err := url.Parse(ep.PublicURL)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.User != nil {
				t.Fatalf("endpoints[%d].public_url %q accepted", i, ep.PublicURL)
			}
			if !strings.HasPrefix(ep.Path, "/") || paths[ep.Path] {
				t.Fatalf("endpoints[%d].path %q accepted", i, ep.Path)
			}
			paths[ep.Path] = true
			if ep.RejectStatus < 400 || ep.RejectStatus > 599 || ep.MaxBody < 1<<10 {
				t.Fatalf("endpoints[%d] accepted: %+v", i, ep)
			}
		}
		sinks := map[string]bool{}
		for i, s := range c.Sinks {
			if s.Kafka == nil || len(s.Kafka.Brokers) == 0 || sinks[s.Name] {
				t.Fatalf("sinks[%d] accepted: %+v", i, s)
			}
			sinks[s.Name] = true
		}
		if !sinks[c.DeadLetter.Sink] || c.DeadLetter.Topic == "" || strings.ContainsAny(c.DeadLetter.Topic, "{}") {
			t.Fatalf("dead_letter %+v accepted", c.DeadLetter)
		}
		router := c.Router()
		if len(router.Routes) != len(c.Routes) {
			t.Fatalf("%d routes compiled into %d", len(c.Routes), len(router.Routes))
		}
		for i, r := range router.Routes {
			if r.Name != c.Routes[i].Name || len(r.Targets) == 0 || len(r.Targets) != len(c.Routes[i].To) ||
				len(r.Match.Conditions) != len(c.Routes[i].Match.When) {
				t.Fatalf("route %d compiled as %+v from %+v", i, r, c.Routes[i])
			}
			for _, tg := range r.Targets {
				if !sinks[tg.Sink] || tg.Topic.IsZero() {
					t.Fatalf("route %d target %+v accepted", i, tg)
				}
			}
		}
	})
}
