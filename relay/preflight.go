package relay

import (
	"context"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"
)

// PreflightConfig configures a Preflight.
type PreflightConfig struct {
	Sinks  map[string]Sink
	Topics []TopicUse
	// Interval is the time between runs while no check fails; Retry, while one does (so that a fix is
	// seen soon). Each is jittered by up to a tenth, so that replicas do not check in step.
	Interval, Retry time.Duration
	// Timeout bounds one run.
	Timeout time.Duration
	Logger  *slog.Logger
}

// Preflight runs every sink's checks (RunChecks) when it starts and then periodically, logs one line
// per check whose verdict changed, and tells readiness which sinks cannot take what the configuration
// sends them (Blocking). Only CheckFailed blocks: a destination that does not answer is the sink's Ping's
// business, and is not held against it here for a whole interval. A check that has passed before must
// fail on two runs in a row before it blocks, so that a blip seen once does not make every replica
// unready at the same moment; one that has never passed blocks at once.
type Preflight struct {
	cfg    PreflightConfig
	cancel context.CancelFunc
	done   chan struct{}
	first  chan struct{} // closed once the first run is recorded, or the loop has ended
	once   sync.Once     // closes first

	mu     sync.Mutex
	ran    bool
	states map[string]*checkState // by sink and name
}

type checkState struct {
	last   Check
	fails  int  // runs in a row that failed it
	passed bool // it has passed since the start
}

func (s *checkState) blocking() bool {
	return s.last.Status == CheckFailed && (!s.passed || s.fails >= 2)
}

// StartPreflight runs the first checks at once, in the background, and the next ones until Close.
func StartPreflight(cfg PreflightConfig) *Preflight {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Preflight{cfg: cfg, cancel: cancel, done: make(chan struct{}), first: make(chan struct{}), states: map[string]*checkState{}}
	go p.loop(ctx)
	return p
}

// First is closed once the first run's verdicts are in (within the configured Timeout of the start),
// or on Close.
func (p *Preflight) First() <-chan struct{} { return p.first }

func (p *Preflight) loop(ctx context.Context) {
	defer close(p.done)
	defer p.once.Do(func() { close(p.first) })
	for {
		rctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
		checks := RunChecks(rctx, p.cfg.Sinks, p.cfg.Topics)
		cancel()
		if ctx.Err() != nil {
			return
		}
		wait := p.cfg.Interval
		if p.record(checks) {
			wait = p.cfg.Retry
		}
		p.once.Do(func() { close(p.first) })
		t := time.NewTimer(wait - time.Duration(rand.Int64N(int64(wait)/10+1)))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// record keeps the verdicts of a run, logs those that changed, and reports whether any check did not
// pass (failed or down).
func (p *Preflight) record(checks []Check) (failing bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ran = true
	for _, c := range checks {
		key := c.Sink + "\x00" + c.Name
		s, ok := p.states[key]
		if !ok {
			s = &checkState{}
			p.states[key] = s
		}
		prevStatus, prevBlocking := s.last.Status, s.blocking()
		s.last = c
		switch c.Status {
		case CheckPassed:
			s.fails, s.passed = 0, true
		case CheckFailed:
			s.fails++
		default:
			s.fails = 0
		}
		failing = failing || c.Status == CheckFailed || c.Status == CheckDown
		if !ok || prevStatus != c.Status || prevBlocking != s.blocking() {
			p.log(c, s.blocking())
		}
	}
	return failing
}

func (p *Preflight) log(c Check, blocking bool) {
	level := slog.LevelInfo
	if c.Status == CheckFailed || c.Status == CheckDown {
		level = slog.LevelWarn
	}
	attrs := []slog.Attr{slog.String("sink", c.Sink), slog.String("check", c.Name),
		slog.String("status", c.Status.String()), slog.String("detail", c.Detail)}
	if c.Status != CheckPassed && c.Fix != "" {
		attrs = append(attrs, slog.String("fix", c.Fix))
	}
	if c.Status == CheckFailed {
		attrs = append(attrs, slog.Bool("blocks_readiness", blocking))
	}
	p.cfg.Logger.LogAttrs(context.Background(), level, "preflight "+c.Status.Mark()+" "+c.Sink+": "+c.Name, attrs...)
}

// Blocking returns, by sink, why the sink cannot take what the configuration sends it (the failed
// checks that block, each with its fix), for /readyz. Until the first run has finished, every sink is
// blocked by it.
func (p *Preflight) Blocking() map[string]string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string]string{}
	if !p.ran {
		for name := range p.cfg.Sinks {
			out[name] = "preflight: the first checks have not finished yet"
		}
		return out
	}
	reasons := map[string][]string{}
	for _, key := range slices.Sorted(maps.Keys(p.states)) {
		s := p.states[key]
		if !s.blocking() {
			continue
		}
		c := s.last
		r := c.Name + ": " + c.Detail
		if c.Fix != "" {
			r += " — fix: " + c.Fix
		}
		reasons[c.Sink] = append(reasons[c.Sink], r)
	}
	for sink, rs := range reasons {
		out[sink] = "preflight: " + strings.Join(rs, "; ")
	}
	return out
}

// Close stops the checks, cancelling a run in progress, and waits for it within ctx.
func (p *Preflight) Close(ctx context.Context) error {
	p.cancel()
	select {
	case <-p.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
