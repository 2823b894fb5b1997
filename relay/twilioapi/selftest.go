package twilioapi

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/relaykit/twilio-relay/relay"
	events "github.com/twilio/twilio-go/rest/events/v1"
)

// Hops of the self-test: where a sink test event can be lost.
const (
	HopTwilioSink = "twilio-sink" // the sink at Twilio: missing, wrong destination, test or validation refused
	HopNetwork    = "network"     // nothing reached the relay's endpoint
	HopVerify     = "verification"
	HopRoute      = "route"      // the relay took the event but no route sends it anywhere
	HopRelaySink  = "relay-sink" // a sink of the relay (Kafka …) did not take it
)

// SelfTestConfig configures SelfTest.
type SelfTestConfig struct {
	Endpoint Endpoint
	// SinkSID picks the sink to test; by default the relay's sink for the endpoint.
	SinkSID string
	// Relay reads the relay's admin listener (GET /twilio/test-events).
	Relay func(ctx context.Context) (*MonitorState, error)
	// Wait bounds the wait for the test event (default 30s); Poll is the interval between reads of the
	// relay's state (default 250ms).
	Wait, Poll time.Duration
	// Validate is "auto" (default: when the sink is not active yet), "always" or "never".
	Validate string
}

// SelfTestReport is the outcome: OK, or the hop that failed and why.
type SelfTestReport struct {
	OK       bool
	Hop      string
	SinkSID  string
	TestID   string
	Steps    []string // what was done and seen, in order
	Problem  string   // when not OK: what failed, with the evidence
	Event    *TestEvent
	Rejected *Rejection
}

func (r *SelfTestReport) step(format string, args ...any) {
	r.Steps = append(r.Steps, fmt.Sprintf(format, args...))
}

func (r *SelfTestReport) fail(hop, format string, args ...any) *SelfTestReport {
	r.OK, r.Hop, r.Problem = false, hop, fmt.Sprintf(format, args...)
	return r
}

// SelfTest triggers Twilio's sink test (CreateSinkTest), waits until the relay has received the test
// event (a test_id it had not seen before on the endpoint), checks what became of it, and calls
// CreateSinkValidate with its test_id when the sink is not active yet. The error is for failures of the
// test itself (the relay's admin listener cannot be read); a failed hop is a report that is not OK.
func (c *Client) SelfTest(ctx context.Context, cfg SelfTestConfig) (*SelfTestReport, error) {
	if cfg.Wait <= 0 {
		cfg.Wait = 30 * time.Second
	}
	if cfg.Poll <= 0 {
		cfg.Poll = 250 * time.Millisecond
	}
	r := &SelfTestReport{}
	sink, err := c.findSink(cfg)
	if err != nil {
		return r.fail(HopTwilioSink, "%v", err), nil
	}
	r.SinkSID = sink.SID
	r.step("sink %s %q: %s, status %s", sink.SID, sink.Description, redact(sink.Destination), sink.Status)
	destNote := ""
	if !sameDestination(sink.Destination, cfg.Endpoint.Destination) { // the echo may mask a password
		destNote = fmt.Sprintf("; the sink's destination %s is not the endpoint's public URL %s",
			redact(sink.Destination), redact(cfg.Endpoint.Destination))
		r.step("warning%s", destNote)
	}
	before, err := cfg.Relay(ctx)
	if err != nil {
		return nil, fmt.Errorf("twilioapi: self-test: read the relay's admin listener: %w", err)
	}
	seen := map[string]bool{}
	for _, te := range before.TestEvents {
		seen[te.TestID] = true
	}

	res, err := c.api.CreateSinkTest(sink.SID)
	if err != nil {
		return r.fail(HopTwilioSink, "Twilio refused the sink test: %v", describeErr(err)), nil
	}
	r.step("Twilio: sink test %s", deref(res.Result))

	te, rej, err := waitForTest(ctx, cfg, seen, before)
	if err != nil {
		return nil, err
	}
	switch {
	case te == nil && rej != nil:
		r.Rejected = rej
		return r.fail(HopVerify, "the relay refused Twilio's request on endpoint %s: %s; it verified against %s%s",
			cfg.Endpoint.Name, rej.Reason, rej.URL, hint(rej, destNote)), nil
	case te == nil:
		return r.fail(HopNetwork, "no test event reached endpoint %s within %s and the relay refused no request: "+
			"check that %s reaches the relay (DNS, ingress, TLS, firewall) and that its path is the endpoint's "+
			"(a wrong path is answered 404 and not recorded)%s", cfg.Endpoint.Name, cfg.Wait,
			redact(sink.Destination), destNote), nil
	}
	r.Event, r.TestID = te, te.TestID
	r.step("relay: test event %s received on endpoint %s: %s %s", te.TestID, te.Endpoint, te.Status, strings.Join(te.Routes, ", "))
	switch te.Status {
	case relay.Delivered.String(), relay.Spooled.String(): // safe: spooled means a sink delivers it later
	case relay.Dropped.String():
		return r.fail(HopRoute, "test event %s: no route matches %s (no_route: drop)", te.TestID, relay.TestEventType), nil
	case relay.DeadLettered.String():
		if len(te.Routes) == 0 {
			return r.fail(HopRoute, "test event %s: no route matches %s; it went to the dead-letter topic", te.TestID, relay.TestEventType), nil
		}
		return r.fail(HopRelaySink, "test event %s: %s", te.TestID, te.Detail), nil
	default:
		return r.fail(HopRelaySink, "test event %s: %s: %s", te.TestID, te.Status, te.Detail), nil
	}

	fresh, err := c.api.FetchSink(sink.SID)
	if err != nil {
		return r.fail(HopTwilioSink, "fetch sink %s after the test: %v", sink.SID, describeErr(err)), nil
	}
	status := deref(fresh.Status)
	if cfg.Validate == "always" || (cfg.Validate != "never" && status != "active") {
		v, err := c.api.CreateSinkValidate(sink.SID, (&events.CreateSinkValidateParams{}).SetTestId(te.TestID))
		if err != nil {
			return r.fail(HopTwilioSink, "Twilio refused to validate sink %s with test id %s: %v", sink.SID, te.TestID, describeErr(err)), nil
		}
		r.step("Twilio: validate with test id %s: %s", te.TestID, deref(v.Result))
		if deref(v.Result) != "valid" {
			return r.fail(HopTwilioSink, "Twilio answered %q to the validation of sink %s", deref(v.Result), sink.SID), nil
		}
	} else {
		r.step("Twilio: sink status %s, no validation needed", status)
	}
	r.OK = true
	return r, nil
}

// waitForTest polls the relay until a test event it had not seen arrives on the endpoint, or the wait
// ends. A new refusal on the endpoint ends the wait one second later if no test event arrives; of the
// new refusals, the one returned is the newest shaped like Twilio's request (with bodySHA256), so that
// requests anyone can send meanwhile do not hide it.
func waitForTest(ctx context.Context, cfg SelfTestConfig, seen map[string]bool, before *MonitorState) (*TestEvent, *Rejection, error) {
	deadline := time.Now().Add(cfg.Wait)
	var rej *Rejection
	var rejDeadline time.Time
	for {
		st, err := cfg.Relay(ctx)
		if err != nil {
			return nil, nil, fmt.Errorf("twilioapi: self-test: read the relay's admin listener: %w", err)
		}
		for i := range st.TestEvents {
			te := st.TestEvents[i]
			if te.Endpoint == cfg.Endpoint.Name && !seen[te.TestID] {
				return &te, nil, nil
			}
		}
		if news := st.NewRefusals(before, cfg.Endpoint.Name); len(news) > 0 {
			i := max(slices.IndexFunc(news, func(r Rejection) bool { return r.BodySHA256 }), 0)
			rej = &news[i]
			if rejDeadline.IsZero() {
				rejDeadline = time.Now().Add(time.Second)
			}
		}
		now := time.Now()
		if now.After(deadline) || (rej != nil && now.After(rejDeadline)) {
			return nil, rej, nil
		}
		select {
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		case <-time.After(cfg.Poll):
		}
	}
}

// hint adds what usually causes a refusal.
func hint(r *Rejection, destNote string) string {
	switch r.Reason {
	case "signature_mismatch":
		return ": either the sink's destination is not exactly the endpoint's public_url (scheme, host, port, path)" +
			" or the account's primary auth token is not in auth_tokens" + destNote
	case "source_not_allowed":
		return ": the request came from outside allowed_cidrs (Twilio uses 35.90.102.128/25; behind a proxy set client_ip_header and trusted_proxies)"
	case "basic_auth":
		return ": the sink destination's user:pass@ does not match basic_auth"
	}
	return destNote
}

func (c *Client) findSink(cfg SelfTestConfig) (*Sink, error) {
	if cfg.SinkSID != "" {
		s, err := c.api.FetchSink(cfg.SinkSID)
		if err != nil {
			return nil, fmt.Errorf("fetch sink %s: %v", cfg.SinkSID, describeErr(err))
		}
		out := sinkFrom(*s)
		return &out, nil
	}
	st, err := c.State(func(Sink) bool { return false })
	if err != nil {
		return nil, err
	}
	for i := range st.Sinks {
		if ep, ok := endpointOf(st.Sinks[i].Description); ok && ep == cfg.Endpoint.Name {
			return &st.Sinks[i], nil
		}
	}
	return nil, fmt.Errorf("the account has no sink %q: run `relay twilio apply` first, or give -sink DG…", MarkerFor(cfg.Endpoint.Name))
}

// describeErr makes a Twilio API error short: status, code and message.
func describeErr(err error) string {
	if te, ok := APIError(err); ok {
		return fmt.Sprintf("HTTP %d, Twilio error %d: %s", te.Status, te.Code, te.Message)
	}
	return err.Error()
}
