package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/relaykit/twilio-relay/relay"
	"github.com/relaykit/twilio-relay/relay/admin"
	"github.com/relaykit/twilio-relay/relay/config"
	"github.com/relaykit/twilio-relay/relay/dedupe"
	"github.com/relaykit/twilio-relay/relay/inspector"
	"github.com/relaykit/twilio-relay/relay/kafka"
	"github.com/relaykit/twilio-relay/relay/prometheus"
	"github.com/relaykit/twilio-relay/relay/receiver"
	"github.com/relaykit/twilio-relay/relay/redis"
	"github.com/relaykit/twilio-relay/relay/spool"
	"github.com/relaykit/twilio-relay/relay/twilio"
	"github.com/relaykit/twilio-relay/relay/twilioapi"
)

// Relay is the running program: every component, built from a configuration and wired together. Open
// starts it; Close stops it in order.
type Relay struct {
	cfg      *config.Config
	log      *slog.Logger
	sinks    map[string]relay.Sink
	dedupe   *dedupe.Cache
	spool    *spool.Spool   // nil when no sink spools
	shared   *redis.Deduper // nil without a shared dedupe tier
	server   *receiver.Server
	admin    *admin.Handler
	pipeline *relay.Pipeline
	metrics  *prometheus.Metrics
	record   *inspector.Record // nil when the inspector is off
	intake   intake
	// preflight runs the sinks' checks from Open until Close; nil before Open.
	preflight *relay.Preflight

	// Addr and AdminAddr are the bound addresses once Open has returned.
	Addr, AdminAddr string
	served          chan error
}

// redisLog sends go-redis's own messages (dial failures, retries) to the relay's log at debug level;
// by default go-redis prints them to stderr. The sinks and the shared dedupe tier log what matters.
type redisLog struct{ log *slog.Logger }

func (l redisLog) Printf(ctx context.Context, format string, v ...any) {
	l.log.DebugContext(ctx, "go-redis: "+fmt.Sprintf(format, v...))
}

// NewRelay builds every component from cfg. Nothing listens yet. When a component cannot be built, those
// built before it are closed.
func NewRelay(cfg *config.Config, log *slog.Logger) (_ *Relay, err error) {
	goredis.SetLogger(redisLog{log})
	r := &Relay{cfg: cfg, log: log, sinks: map[string]relay.Sink{}, intake: intake{closing: make(chan struct{})}}
	defer func() {
		if err != nil {
			ctx, cancel := context.WithTimeout(context.Background(), time.Duration(cfg.Limits.ShutdownTimeout))
			defer cancel()
			err = errors.Join(err, r.Close(ctx))
		}
	}()
	router := cfg.Router()
	exact, patterns := prometheus.RouteTypes(router.Routes)
	metrics := prometheus.New(prometheus.NewTypeLabels(append(twilioapi.KnownTypes(), exact...), patterns))
	r.metrics = metrics
	pingers := map[string]relay.Pinger{}
	var kafkaSinks []*kafka.Sink
	for _, sc := range cfg.Sinks {
		s, err := newSink(sc, log)
		if err != nil {
			return nil, err
		}
		r.sinks[sc.Name] = s
		if p, ok := s.(relay.Pinger); ok {
			pingers[sc.Name] = p
		}
		if k, ok := s.(*kafka.Sink); ok { // its writer's statistics, for the metrics
			kafkaSinks = append(kafkaSinks, k)
		}
	}
	metrics.Registry.MustRegister(kafka.NewCollector(kafkaSinks...))
	// Loaded here, before the listener opens: a restarted relay answers Twilio's retries of what it
	// delivered before as duplicates.
	dd, err := dedupe.New(dedupe.Config{Window: time.Duration(cfg.Dedupe.Window), MaxIDs: cfg.Dedupe.MaxIDs,
		Snapshot: cfg.Dedupe.Snapshot}, log)
	if err != nil {
		return nil, err
	}
	r.dedupe = dd
	shared, err := sharedDedupe(cfg, log)
	if err != nil {
		return nil, err
	}
	r.shared = shared
	pcfg := relay.PipelineConfig{
		Router:     router,
		Sinks:      r.sinks,
		DeadLetter: deadLetterTarget(cfg),
		NoRoute:    cfg.NoRoutePolicy(),
		Dedupe:     dd,
		Backoff:    cfg.Backoff(),
		Observer:   metrics,
		Logger:     log,

		AttemptTimeout: time.Duration(cfg.Limits.AttemptTimeout),
		MaxLateWrites:  cfg.Limits.MaxLateWrites,
	}
	if shared != nil {
		pcfg.Shared = shared
	}
	if sinks := cfg.SpoolSinks(); len(sinks) > 0 {
		names := slices.Sorted(maps.Keys(sinks))
		sp, err := spool.Open(spool.Config{Dir: cfg.Spool.Dir, MaxBytes: int64(cfg.Spool.MaxBytes), Sinks: names, Logger: log})
		if err != nil {
			return nil, err
		}
		r.spool = sp
		pcfg.Spool, pcfg.SpoolSinks, pcfg.SpoolReserve = sp, sinks, time.Duration(cfg.Spool.Reserve)
		metrics.Registry.MustRegister(prometheus.NewSpoolCollector(sp.Stats, sp.Corrupt))
	}
	if cfg.Inspector.On() { // told what the receiver sees, and what writes that outlive requests settle
		r.record = inspector.New(cfg.InspectorConfig())
		pcfg.Settled = r.record.Settle
	}
	pipeline, err := relay.NewPipeline(pcfg)
	if err != nil {
		return nil, err
	}
	r.pipeline = pipeline
	endpoints := make([]receiver.Endpoint, 0, len(cfg.Endpoints))
	for _, ec := range cfg.Endpoints {
		ep, err := endpoint(ec, cfg.Limits.MaxEvents)
		if err != nil {
			return nil, err
		}
		endpoints = append(endpoints, ep)
	}
	monitor := twilioapi.NewMonitor(64) // test events and refusals, for `relay twilio test`
	monitors := receiver.Monitors{monitor}
	if r.record != nil {
		monitors = append(monitors, r.record)
	}
	r.server = receiver.New(receiver.Config{
		Monitor:        monitors,
		Endpoints:      endpoints,
		Deadline:       time.Duration(cfg.Limits.RequestDeadline),
		MaxInFlight:    cfg.Limits.MaxInFlight,
		MaxConnections: cfg.Limits.MaxConnections,
		ReadTimeout:    time.Duration(cfg.Limits.ReadTimeout),
		IdleTimeout:    time.Duration(cfg.Limits.IdleTimeout),
	}, pipeline, metrics, log)
	acfg := admin.Config{Pingers: pingers, Registry: metrics.Registry, Pprof: cfg.Admin.Pprof, Preflight: r.preflightBlocking,
		Hosts: admin.NewHosts(append([]string{cfg.Admin.Listen}, cfg.Admin.AllowedHosts...)...)}
	acfg.Handlers = map[string]http.Handler{"GET /twilio/test-events": monitor, "POST /drain": r.drainHandler()}
	if r.spool != nil {
		acfg.Spool, acfg.Spooled = r.spool.Stats, cfg.SpoolSinks()
	}
	if a := cfg.Admin.Auth; a.On() {
		acfg.Auth = &admin.Auth{Token: a.Token, Username: a.Username, Password: a.Password}
	}
	if r.record != nil {
		acfg.Root = inspector.Handler(r.record, r.inspectorActions(monitor))
	}
	r.admin = admin.New(acfg)
	return r, nil
}

// sharedDedupe builds the shared dedupe tier, or returns nil when there is none. A claim outlives the
// longest delivery with a margin: the request deadline, and an attempt that started just before it and
// goes on for the attempt timeout; the delivery commits or releases it when it ends. A replica that dies
// mid-delivery holds an event for seconds, not for the window.
func sharedDedupe(cfg *config.Config, log *slog.Logger) (*redis.Deduper, error) {
	if cfg.Dedupe.Shared == nil || cfg.Dedupe.Shared.Redis == nil {
		return nil, nil
	}
	claim := time.Duration(cfg.Limits.RequestDeadline) + time.Duration(cfg.Limits.AttemptTimeout) + 5*time.Second
	return redis.NewDeduper(*cfg.Dedupe.Shared.Redis, claim, time.Duration(cfg.Dedupe.Window), log)
}

// endpoint turns an endpoint's configuration, and the limit on events per body, into the receiver's form.
func endpoint(ec config.Endpoint, maxEvents int) (receiver.Endpoint, error) {
	ep := receiver.Endpoint{
		Name:           ec.Name,
		Path:           ec.Path,
		SignedURLs:     []string{ec.PublicURL},
		Verifier:       twilio.NewVerifier(ec.AuthTokens),
		AllowedCIDRs:   ec.AllowedCIDRs.List(),
		ClientIPHeader: ec.ClientIPHeader,
		TrustedProxies: ec.TrustedProxies.List(),
		MaxBody:        int(ec.MaxBody),
		Decode:         twilio.DecodeOptions{KeepDataString: ec.Data == "keep", MaxEvents: maxEvents},
		RejectStatus:   ec.RejectStatus,
		Classic:        ec.Kind == config.KindClassic,
	}
	if b := ec.BasicAuth; b != nil {
		ep.BasicAuth = &receiver.BasicAuth{User: b.Username, Password: b.Password}
		u, err := url.Parse(ec.PublicURL)
		if err != nil {
			return receiver.Endpoint{}, err
		}
		u.User = url.UserPassword(b.Username, b.Password)
		ep.SignedURLs = append(ep.SignedURLs, u.String())
	}
	return ep, nil
}

// Open runs the sinks' checks once, binds both listeners and starts serving; the checks go on
// periodically until Close.
func (r *Relay) Open() error {
	r.startPreflight() // before the admin listener serves /readyz, which reads it
	ln, err := net.Listen("tcp", r.cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	aln, err := net.Listen("tcp", r.cfg.Admin.Listen)
	if err != nil {
		ln.Close()
		return fmt.Errorf("admin listen: %w", err)
	}
	r.Addr, r.AdminAddr = ln.Addr().String(), aln.Addr().String()
	if r.spool != nil { // drain what a previous run left, and what this one stores, until Close
		r.spool.Start(context.Background(), r.redeliver)
	}
	r.served = make(chan error, 2)
	go func() {
		if err := r.server.Serve(ln); err != nil || !r.intake.stopped.Load() { // not stopped by /drain
			r.served <- err
		}
	}()
	go func() {
		if err := r.admin.Serve(aln); err != nil {
			r.served <- err
		}
	}()
	r.log.Info("relay listening", slog.String("addr", r.Addr), slog.String("admin", r.AdminAddr),
		slog.Int("endpoints", len(r.cfg.Endpoints)), slog.Int("sinks", len(r.sinks)))
	return nil
}

// Served reports a listener that stopped on its own.
func (r *Relay) Served() <-chan error { return r.served }

// closer is one step of shutting down: a component's whole Close.
type closer struct {
	name  string
	close func(context.Context) error
}

// Close shuts down in order, each component by its own Close: fail readiness; stop taking requests and
// finish those in flight (unless POST /drain did); wait for the writes that outlived their requests; stop
// the spool's drainers (what they were delivering stays in the spool) and close its file; flush and close
// the sinks; close the dedupe tiers (the in-process one writes its snapshot); stop the admin listener.
// ctx bounds the whole; every error is returned. Components NewRelay did not get to build are skipped.
func (r *Relay) Close(ctx context.Context) error {
	r.beginClose() // a /drain still waiting for the spool returns
	if r.admin != nil {
		r.admin.Drain()
	}
	var order []closer
	if r.preflight != nil { // its checks use the sinks
		order = append(order, closer{"preflight", r.preflight.Close})
	}
	if r.server != nil {
		order = append(order, closer{"receiver", r.stopIntake}) // unless /drain stopped it already
	}
	if r.pipeline != nil { // writes that outlived their requests land (and are remembered) first
		order = append(order, closer{"late writes", r.pipeline.Close})
	}
	if r.spool != nil {
		order = append(order, closer{"spool", r.spool.Close})
	}
	for _, name := range slices.Sorted(maps.Keys(r.sinks)) {
		order = append(order, closer{"sink " + name, r.sinks[name].Close})
	}
	if r.dedupe != nil {
		order = append(order, closer{"dedupe", r.dedupe.Close})
	}
	if r.shared != nil {
		order = append(order, closer{"shared dedupe", r.shared.Close})
	}
	if r.admin != nil {
		order = append(order, closer{"admin", r.admin.Close})
	}
	var errs []error
	for _, c := range order {
		if err := c.close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", c.name, err))
		}
	}
	return errors.Join(errs...)
}
