package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/relaykit/twilio-relay/relay"
	"github.com/relaykit/twilio-relay/relay/config"
	"github.com/relaykit/twilio-relay/relay/inspector"
	"github.com/relaykit/twilio-relay/relay/twilioapi"
)

// This file wires the inspector (relay/inspector) to the running relay: what its page shows besides the
// record, and what its buttons do, each by the code the matching command uses.

// redeliver is the spool's delivery: the pipeline's Redeliver, and the record told what left the spool.
func (r *Relay) redeliver(ctx context.Context, sink string, msgs []relay.Message) []error {
	errs := r.pipeline.Redeliver(ctx, sink, msgs)
	if r.record != nil {
		r.record.Redelivered(sink, msgs, errs)
	}
	return errs
}

// inspectorActions are the page's other parts: the spool, the routes, the dead letters of a file
// dead-letter sink and their replay (`relay dlq replay`, when inspector.allow_replay), and Twilio's sink
// test (`relay twilio test`, when Twilio credentials are in the environment).
func (r *Relay) inspectorActions(monitor *twilioapi.Monitor) inspector.Actions {
	cfg := r.cfg
	acts := inspector.Actions{Routes: routeInfos(cfg)}
	acts.Name, _ = os.Hostname()
	if r.spool != nil {
		acts.Spool = r.spool.Stats
	}
	if dlqIsFile(cfg) {
		acts.DeadLetters = func(ctx context.Context, reason, endpoint string) ([]inspector.DeadLetter, error) {
			dls, err := selectDeadLetters(ctx, cfg, "", reason, endpoint)
			out := make([]inspector.DeadLetter, 0, len(dls))
			for _, d := range dls {
				out = append(out, inspector.DeadLetter{Line: d.Line, Endpoint: d.Endpoint, Reason: d.Reason, OriginalID: d.OriginalID, Bytes: len(d.Raw)})
			}
			return out, err
		}
		if cfg.Inspector.AllowReplay {
			acts.Replay = func(ctx context.Context, reason, endpoint string) (string, error) {
				dls, err := selectDeadLetters(ctx, cfg, "", reason, endpoint)
				if err != nil {
					return "", err
				}
				r.log.Info("inspector: replaying dead letters", "count", len(dls), "reason", reason, "endpoint", endpoint)
				return replayThrough(ctx, cfg, r.sinks, r.metrics, r.log, dls)
			}
		}
	}
	if test, eps := r.sinkTest(monitor); test != nil {
		acts.SinkTest, acts.SinkTestEndpoints = test, eps
	}
	return acts
}

func dlqIsFile(cfg *config.Config) bool {
	for _, s := range cfg.Sinks {
		if s.Name == cfg.DeadLetter.Sink {
			return s.File != nil
		}
	}
	return false
}

// sinkTest returns what runs Twilio's sink test for an event-streams endpoint from the page, reading the
// test event from this relay's own monitor, and the endpoints it can test; nil without credentials.
func (r *Relay) sinkTest(monitor *twilioapi.Monitor) (func(context.Context, string) (string, error), []string) {
	creds, err := twilioapi.CredentialsFromEnv(os.Getenv)
	if err != nil {
		return nil, nil
	}
	client, err := twilioapi.New(twilioapi.Config{Credentials: creds, BaseURL: os.Getenv(twilioapi.EnvBaseURL)})
	if err != nil {
		r.log.Warn("inspector: no sink test", "error", err)
		return nil, nil
	}
	eps := map[string]twilioapi.Endpoint{}
	var names []string
	for _, ec := range r.cfg.Endpoints {
		if ec.Kind != config.KindClassic {
			eps[ec.Name] = twilioEndpoint(ec)
			names = append(names, ec.Name)
		}
	}
	read := func(context.Context) (*twilioapi.MonitorState, error) { st := monitor.State(); return &st, nil }
	return func(ctx context.Context, endpoint string) (string, error) {
		rep, err := client.SelfTest(ctx, twilioapi.SelfTestConfig{Endpoint: eps[endpoint], Relay: read})
		if err != nil {
			return "", err
		}
		var b strings.Builder
		printSelfTest(&b, rep)
		if !rep.OK {
			return b.String(), errors.New("the sink test failed at " + rep.Hop)
		}
		return b.String(), nil
	}, names
}

// routeInfos describes the configured routes for the page.
func routeInfos(cfg *config.Config) []inspector.RouteInfo {
	out := make([]inspector.RouteInfo, 0, len(cfg.Routes))
	for _, rc := range cfg.Routes {
		var match []string
		m := rc.Match
		for name, vs := range map[string][]string{"types": m.Types, "sources": m.Sources, "dataschemas": m.DataSchemas, "endpoints": m.Endpoints} {
			if len(vs) > 0 {
				match = append(match, name+" "+strings.Join(vs, ", "))
			}
		}
		if len(m.SchemaVersions) > 0 {
			match = append(match, fmt.Sprint("schema versions ", m.SchemaVersions))
		}
		for _, w := range m.When {
			match = append(match, "when "+w.Field)
		}
		if len(match) == 0 {
			match = []string{"every event"}
		}
		var to []string
		for _, t := range rc.To {
			to = append(to, t.Sink+": "+t.Topic)
		}
		if rc.Continue {
			to = append(to, "(continue)")
		}
		slices.Sort(match) // the map's order is not the same twice
		out = append(out, inspector.RouteInfo{Name: rc.Name, Match: strings.Join(match, "; "), Targets: strings.Join(to, ", ")})
	}
	return out
}
