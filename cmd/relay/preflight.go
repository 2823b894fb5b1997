package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/relaykit/twilio-relay/relay"
	"github.com/relaykit/twilio-relay/relay/config"
	"github.com/relaykit/twilio-relay/relay/twilioapi"
)

// preflightRetry is the longest wait between runs of the checks while one of them fails.
const preflightRetry = 5 * time.Second

// startPreflight starts the checks of every sink that serve runs at start and then periodically, and
// waits for the first run (bounded by preflight.timeout), so that /readyz is exact from the moment the
// relay listens; their verdicts feed /readyz.
func (r *Relay) startPreflight() {
	uses, _ := relay.StaticTopics(r.cfg.Router(), deadLetterTarget(r.cfg))
	interval := time.Duration(r.cfg.Preflight.Interval)
	r.preflight = relay.StartPreflight(relay.PreflightConfig{
		Sinks: r.sinks, Topics: uses, Interval: interval, Retry: min(interval, preflightRetry),
		Timeout: time.Duration(r.cfg.Preflight.Timeout), Logger: r.log,
	})
	<-r.preflight.First()
}

// preflightBlocking is what /readyz holds against each sink from the checks.
func (r *Relay) preflightBlocking() map[string]string {
	if r.preflight == nil {
		return nil
	}
	return r.preflight.Blocking()
}

func deadLetterTarget(cfg *config.Config) relay.DeadLetterTarget {
	return relay.DeadLetterTarget{Sink: cfg.DeadLetter.Sink, Topic: cfg.DeadLetter.Topic}
}

// errChecksFailed is the error of `relay check -connect` when a check failed.
var errChecksFailed = errors.New("preflight: checks failed")

// checkConnect runs every sink's checks once, on the topics the configuration names and, when Twilio
// credentials are in the environment, on those the templated topics produce for the event types the
// endpoints' subscriptions would hold. It prints one line per check and fails when one fails; with
// allowUnreachable, destinations that do not answer are printed but do not fail it (readiness waits for
// them, and a sink that spools takes events meanwhile).
func checkConnect(ctx context.Context, cfg *config.Config, log *slog.Logger, stdout io.Writer, allowUnreachable bool) (err error) {
	sinks := map[string]relay.Sink{}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Duration(cfg.Limits.ShutdownTimeout))
		defer cancel()
		for _, name := range slices.Sorted(maps.Keys(sinks)) {
			err = errors.Join(err, sinks[name].Close(cctx))
		}
	}()
	for _, sc := range cfg.Sinks {
		s, err := newSink(sc, log)
		if err != nil {
			return err
		}
		sinks[sc.Name] = s
	}
	uses, templated := relay.StaticTopics(cfg.Router(), deadLetterTarget(cfg))
	more, notes := typeTopics(cfg, templated)
	ctx, cancel := context.WithTimeout(ctx, time.Duration(cfg.Preflight.Timeout))
	defer cancel()
	checks := append(relay.RunChecks(ctx, sinks, relay.MergeTopicUses(uses, more)), notes...)
	counts := map[string]int{}
	var failed []string
	for _, c := range checks {
		fmt.Fprintln(stdout, c)
		counts[c.Status.Mark()]++
		if c.Status == relay.CheckFailed || (c.Status == relay.CheckDown && !allowUnreachable) {
			failed = append(failed, c.Sink+" "+c.Name)
		}
	}
	fmt.Fprintf(stdout, "preflight: %d ✓, %d ✗, %d ?\n", counts["✓"], counts["✗"], counts["?"])
	if len(failed) > 0 {
		// The last line, which a container's termination message keeps whatever the output's length.
		return fmt.Errorf("%w: %s (each ✗ line above says what to do)", errChecksFailed, strings.Join(failed, "; "))
	}
	return nil
}

// typeTopics names the topics the templated targets produce for the event types the endpoints'
// subscriptions would hold (Twilio's catalog, read with the credentials in the environment), and says
// which templated targets stay unchecked, as checks of their own.
func typeTopics(cfg *config.Config, templated []relay.TemplatedTarget) ([]relay.TopicUse, []relay.Check) {
	if len(templated) == 0 {
		return nil, nil
	}
	unchecked := func(ts []relay.TemplatedTarget, why, fix string) []relay.Check {
		var out []relay.Check
		for _, t := range ts {
			out = append(out, relay.Check{Sink: t.Sink, Name: fmt.Sprintf("topics of route %s (%s)", t.Route, t.Topic),
				Status: relay.CheckUnknown, Detail: why, Fix: fix})
		}
		return out
	}
	creds, err := twilioapi.CredentialsFromEnv(os.Getenv)
	if err != nil {
		return nil, unchecked(templated, "unchecked: only events name them",
			"set TWILIO_API_KEY and TWILIO_API_SECRET (or TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN) to have them named from Twilio's catalog")
	}
	client, err := twilioapi.New(twilioapi.Config{Credentials: creds, BaseURL: os.Getenv(twilioapi.EnvBaseURL)})
	var catalog []twilioapi.EventType
	if err == nil {
		catalog, err = client.Catalog()
	}
	if err != nil {
		return nil, unchecked(templated, fmt.Sprintf("unchecked: Twilio's catalog: %v", err), "")
	}
	var eps []twilioapi.Endpoint
	for _, ec := range cfg.Endpoints {
		if ec.Kind == config.KindEventStreams {
			eps = append(eps, twilioEndpoint(ec))
		}
	}
	router := cfg.Router()
	var uses []relay.TopicUse
	unnamed := map[string]relay.TemplatedTarget{}
	// The error names types Twilio would refuse to subscribe: they produce no topic here, and `relay
	// twilio apply` reports them.
	specs, _ := twilioapi.Desired(eps, router, catalog, nil, twilioapi.DesireOptions{})
	for _, spec := range specs {
		types := make([]string, len(spec.Types))
		for i, tv := range spec.Types {
			types[i] = tv.Type
		}
		u, un := relay.TypeTopics(router, spec.Endpoint, types)
		uses = relay.MergeTopicUses(uses, u)
		for _, t := range un {
			unnamed[t.Route+"\x00"+t.Sink+"\x00"+t.Topic.String()] = t
		}
	}
	rest := make([]relay.TemplatedTarget, 0, len(unnamed))
	for _, k := range slices.Sorted(maps.Keys(unnamed)) {
		rest = append(rest, unnamed[k])
	}
	return uses, unchecked(rest, "unchecked: the template names a field only events carry", "")
}
