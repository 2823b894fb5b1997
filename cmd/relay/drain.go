package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/relaykit/twilio-relay/relay"
)

// intake is the webhook listener's lifetime. It stops once: by POST /drain (a pod's preStop hook) or by
// Close, whichever comes first.
type intake struct {
	once    sync.Once
	stopped atomic.Bool // stopped on purpose: the listener returning is no failure
	// closing is closed when Close starts, so that a /drain still waiting for the spool returns.
	closing   chan struct{}
	closeOnce sync.Once
}

// stopIntake closes the webhook listener and waits, within ctx, for the requests in flight to be
// answered. Only the first call does anything.
func (r *Relay) stopIntake(ctx context.Context) error {
	var err error
	r.intake.once.Do(func() {
		r.intake.stopped.Store(true)
		err = r.server.Close(ctx)
	})
	return err
}

// beginClose wakes a waiting /drain: the spool's drainers are about to stop.
func (r *Relay) beginClose() { r.intake.closeOnce.Do(func() { close(r.intake.closing) }) }

// drainHandler serves POST /drain?delay=D&timeout=T on the admin listener (`relay drain`, the preStop
// hook of a pod), so that a pod removed by a scale-down does not leave events on its volume. POST only: a
// GET that stops intake could be fired by any page an operator's browser opens (an <img> pointing at a
// port-forwarded admin port), and would carry no admin token. It fails /readyz,
// keeps serving for D (load balancers stop sending meanwhile), stops intake (the webhook listener
// closes once the requests in flight are answered; Twilio retries what then finds no listener), and
// waits up to T for the spool's drainers to hand everything to the sinks. It answers 200 "drained" when
// the spool is empty (at once without a spool), or 503 "not drained" with what the spool still holds
// when T passed first or the relay began to close: that stays on disk for the next run on the same
// volume. The relay keeps running either way until it gets SIGTERM. Calling it again is harmless.
func (r *Relay) drainHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		delay, timeout, ok := drainParams(w, req)
		if !ok {
			return
		}
		r.admin.Drain()
		r.log.Info("drain: readiness failed; stopping intake", slog.Duration("delay", delay), slog.Duration("timeout", timeout))
		select {
		case <-time.After(delay):
		case <-r.intake.closing:
		}
		sctx, cancel := context.WithTimeout(context.Background(), time.Duration(r.cfg.Limits.ShutdownTimeout))
		err := r.stopIntake(sctx)
		cancel()
		if err != nil {
			r.log.Warn("drain: stopping intake", slog.Any("error", err))
		}
		stats, empty := r.waitSpoolEmpty(timeout)
		if !empty {
			r.log.Warn("drain: the spool still holds messages; they stay on its volume for the next run",
				slog.Duration("timeout", timeout), slog.Any("sinks", stats))
			writeDrain(w, http.StatusServiceUnavailable, "not drained", stats)
			return
		}
		r.log.Info("drain: spool empty")
		writeDrain(w, http.StatusOK, "drained", stats)
	})
}

// drainParams reads ?delay and ?timeout (Go durations; default 0 and 30s), or answers 400.
func drainParams(w http.ResponseWriter, req *http.Request) (delay, timeout time.Duration, ok bool) {
	timeout = 30 * time.Second
	for name, dst := range map[string]*time.Duration{"delay": &delay, "timeout": &timeout} {
		s := req.URL.Query().Get(name)
		if s == "" {
			continue
		}
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 {
			http.Error(w, "drain: "+name+" must be a duration such as 10s", http.StatusBadRequest)
			return 0, 0, false
		}
		*dst = d
	}
	return delay, timeout, true
}

// waitSpoolEmpty polls the spool until it holds nothing, timeout passes, or Close begins.
func (r *Relay) waitSpoolEmpty(timeout time.Duration) ([]relay.SpoolStat, bool) {
	if r.spool == nil {
		return nil, true
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		stats := r.spool.Stats()
		waiting := 0
		for _, s := range stats {
			waiting += s.Depth
		}
		if waiting == 0 {
			return stats, true
		}
		select {
		case <-tick.C:
		case <-deadline.C:
			return stats, false
		case <-r.intake.closing:
			return stats, false
		}
	}
}

func writeDrain(w http.ResponseWriter, status int, verdict string, stats []relay.SpoolStat) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"status": verdict, "sinks": stats})
}
