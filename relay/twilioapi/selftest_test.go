package twilioapi_test

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/relaykit/twilio-relay/relay"
	"github.com/relaykit/twilio-relay/relay/receiver"
	"github.com/relaykit/twilio-relay/relay/relaytest"
	"github.com/relaykit/twilio-relay/relay/relaytest/eventsapi"
	"github.com/relaykit/twilio-relay/relay/twilio"
	"github.com/relaykit/twilio-relay/relay/twilioapi"
)

type nopObserver struct{}

func (nopObserver) Request(string, int, time.Duration) {}
func (nopObserver) Rejected(string, string)            {}
func (nopObserver) RejectedUnlogged(string, string)    {}

// stack is the relay's receiving side (receiver → pipeline → an in-memory sink) behind a real listener,
// with the monitor `relay twilio test` reads; the end-to-end version with Kafka is in cmd/relay.
type stack struct {
	addr string
	mon  *twilioapi.Monitor
	sink *relaytest.Sink
}

func startStack(t *testing.T, routes ...relay.Route) *stack {
	t.Helper()
	rt := &relay.Router{Routes: routes}
	st := &stack{mon: twilioapi.NewMonitor(8), sink: &relaytest.Sink{}}
	p, err := relay.NewPipeline(relay.PipelineConfig{Router: rt, Sinks: map[string]relay.Sink{"mem": st.sink},
		DeadLetter: relay.DeadLetterTarget{Sink: "mem", Topic: "dl"}, Dedupe: &relaytest.Deduper{},
		Backoff: relay.Backoff{Initial: 10 * time.Millisecond, Max: 50 * time.Millisecond, Multiplier: 2}})
	if err != nil {
		t.Fatal(err)
	}
	srv := receiver.New(receiver.Config{
		Endpoints: []receiver.Endpoint{{Name: "events", Path: "/twilio/events", SignedURLs: []string{dest},
			Verifier: twilio.NewVerifier([]string{acctToken}), MaxBody: 1 << 20, RejectStatus: 503}},
		Deadline: 400 * time.Millisecond, MaxInFlight: 16, Monitor: st.mon,
	}, p, nopObserver{}, slog.New(slog.DiscardHandler))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close(context.Background()) })
	st.addr = ln.Addr().String()
	return st
}

func (s *stack) state(context.Context) (*twilioapi.MonitorState, error) {
	st := s.mon.State()
	return &st, nil
}

// deliverTo is the client the fake posts test events with: to the stack, whatever the sink destination.
func deliverTo(addr string) *http.Client {
	return &http.Client{Timeout: 5 * time.Second, Transport: &twilioapi.RewriteTransport{Scheme: "http", Host: addr}}
}

func TestSelfTest(t *testing.T) {
	ep := twilioapi.Endpoint{Name: "events", Destination: dest, BatchEvents: true}
	all := route("all", "*")
	tests := []struct {
		name       string
		routes     []relay.Route
		opts       eventsapi.Options
		setup      func(*eventsapi.Server, *stack)
		noApply    bool
		wait       time.Duration
		hop        string
		problem    []string
		validation bool
	}{
		{name: "delivered", routes: []relay.Route{all}},
		{name: "a sink that is not active yet is validated with the test id", routes: []relay.Route{all},
			opts: eventsapi.Options{NewSinkStatus: "initialized"}, validation: true},
		{name: "signed with a token the relay does not hold: verification, with the URL it checked", routes: []relay.Route{all},
			setup: func(f *eventsapi.Server, _ *stack) { f.SetSigningToken(acct, "rotatedtokenrotatedtokenrotated12") },
			hop:   twilioapi.HopVerify, problem: []string{"signature_mismatch", "verified against " + dest + "?bodySHA256=…"}},
		{name: "no route for the test event", routes: []relay.Route{route("messaging", "com.twilio.messaging.*")},
			hop: twilioapi.HopRoute, problem: []string{"no route matches com.twilio.eventstreams.test-event"}},
		{name: "the relay's sink is down", routes: []relay.Route{all},
			setup: func(_ *eventsapi.Server, s *stack) { s.sink.SetDown(true) },
			hop:   twilioapi.HopRelaySink, problem: []string{"failed", "sink_unavailable"}},
		{name: "no sink at Twilio", routes: []relay.Route{all}, noApply: true,
			hop: twilioapi.HopTwilioSink, problem: []string{`no sink "twilio-relay:events"`}},
		{name: "Twilio refuses the test", routes: []relay.Route{all},
			setup: func(f *eventsapi.Server, _ *stack) {
				f.Fail(http.MethodPost, "*", 500, 20500, 1, "Internal Server Error")
			},
			hop: twilioapi.HopTwilioSink, problem: []string{"Twilio refused the sink test: HTTP 500, Twilio error 20500"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := startStack(t, tt.routes...)
			tt.opts.Deliver = deliverTo(st.addr)
			fake := startFake(t, tt.opts)
			c := newClient(t, fake, twilioapi.Credentials{AccountSID: acct, AuthToken: acctToken})
			if !tt.noApply {
				sync(t, c, []twilioapi.Endpoint{ep}, &relay.Router{Routes: tt.routes}, twilioapi.PlanOptions{})
			}
			if tt.setup != nil {
				tt.setup(fake, st)
			}
			rep, err := c.SelfTest(context.Background(), twilioapi.SelfTestConfig{Endpoint: ep, Relay: st.state,
				Wait: 5 * time.Second, Poll: 20 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			if tt.hop == "" {
				if !rep.OK || rep.TestID == "" {
					t.Fatalf("report %+v", rep)
				}
				acked := 0
				for _, m := range st.sink.Acked() {
					if m.Event.IsTest() {
						acked++
					}
				}
				if acked != 1 {
					t.Errorf("the sink acknowledged %d test events, want 1", acked)
				}
			} else if rep.OK || rep.Hop != tt.hop {
				t.Fatalf("report OK=%v hop=%q problem=%q, want hop %q", rep.OK, rep.Hop, rep.Problem, tt.hop)
			}
			for _, p := range tt.problem {
				if !strings.Contains(rep.Problem, p) {
					t.Errorf("problem %q lacks %q", rep.Problem, p)
				}
			}
			validated := false
			for _, r := range fake.Requests() {
				if strings.HasSuffix(r.Path, "/Validate") {
					validated = r.Form.Get("TestId") == rep.TestID
				}
			}
			if validated != tt.validation {
				t.Errorf("validated with the test id: %v, want %v (steps %q)", validated, tt.validation, rep.Steps)
			}
		})
	}
}

// TestSelfTestRefusalAmongNoise: requests anyone can send (unsigned, without bodySHA256) keep arriving
// while Twilio's test request is refused; the report still names Twilio's refusal, not the last noise.
func TestSelfTestRefusalAmongNoise(t *testing.T) {
	st := startStack(t, route("all", "*"))
	fake := startFake(t, eventsapi.Options{Deliver: deliverTo(st.addr)})
	c := newClient(t, fake, twilioapi.Credentials{AccountSID: acct, AuthToken: acctToken})
	ep := twilioapi.Endpoint{Name: "events", Destination: dest, BatchEvents: true}
	sync(t, c, []twilioapi.Endpoint{ep}, router(route("all", "*")), twilioapi.PlanOptions{})
	fake.SetSigningToken(acct, "rotatedtokenrotatedtokenrotated12")
	stop, done := make(chan struct{}), make(chan struct{})
	go func() { // noise: 5 ms apart, at most 2,000 requests, until the self-test ends
		defer close(done)
		for i := 0; i < 2000; i++ {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			query := []string{"", "?bodySHA256=&x=1", "?utm=" + strings.Repeat("x", 100)}[i%3]
			resp, err := http.Post("http://"+st.addr+"/twilio/events"+query, "application/json", strings.NewReader("[]"))
			if err == nil {
				resp.Body.Close()
			}
		}
	}()
	rep, err := c.SelfTest(context.Background(), twilioapi.SelfTestConfig{Endpoint: ep, Relay: st.state,
		Wait: 5 * time.Second, Poll: 20 * time.Millisecond})
	close(stop)
	<-done
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK || rep.Hop != twilioapi.HopVerify || rep.Rejected == nil || rep.Rejected.Reason != "signature_mismatch" ||
		rep.Rejected.URL != dest+"?bodySHA256=…" {
		t.Fatalf("report OK=%v hop=%q rejected %+v problem %q; want Twilio's signature_mismatch", rep.OK, rep.Hop, rep.Rejected, rep.Problem)
	}
	for _, byReason := range st.mon.State().Refused {
		for _, r := range byReason {
			for _, rej := range r.Last {
				if strings.Contains(rej.URL, "utm") || strings.Contains(rej.URL, "x=1") {
					t.Errorf("a refused request's query was kept: %q", rej.URL)
				}
			}
		}
	}
}

func TestSelfTestNothingArrives(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	st := startStack(t, route("all", "*"))
	fake := startFake(t, eventsapi.Options{Deliver: deliverTo(closed)})
	c := newClient(t, fake, twilioapi.Credentials{AccountSID: acct, AuthToken: acctToken})
	ep := twilioapi.Endpoint{Name: "events", Destination: dest, BatchEvents: true}
	sync(t, c, []twilioapi.Endpoint{ep}, router(route("all", "*")), twilioapi.PlanOptions{})
	rep, err := c.SelfTest(context.Background(), twilioapi.SelfTestConfig{Endpoint: ep, Relay: st.state, Wait: 500 * time.Millisecond, Poll: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK || rep.Hop != twilioapi.HopNetwork || !strings.Contains(rep.Problem, "check that "+dest+" reaches the relay") {
		t.Fatalf("report %+v", rep)
	}
}
