package receiver

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Refused requests are logged sampled, per endpoint and reason: the first Burst in an interval one line
// each, the rest only counted (Observer.RejectedUnlogged, a metric) and written as one summary line when
// the interval ends. Anyone who can reach the listener can be refused as often as they like; the log must
// not grow with them (issue #17: 596,000 forged requests in 10 s wrote 99 MB).

// Defaults of Config.RejectLogBurst and Config.RejectLogInterval.
const (
	DefaultRejectLogBurst    = 10
	DefaultRejectLogInterval = 10 * time.Second
)

type refusalKey struct{ endpoint, reason string }

// refusalWindow is one key's interval: when it began, the lines written, the refusals not written, and
// the timer that writes their summary.
type refusalWindow struct {
	start     time.Time
	logged    int
	unlogged  int
	summarize *time.Timer
}

type refusalLog struct {
	log      *slog.Logger
	obs      Observer
	burst    int
	interval time.Duration

	mu      sync.Mutex
	windows map[refusalKey]*refusalWindow
}

func newRefusalLog(log *slog.Logger, obs Observer, burst int, interval time.Duration) *refusalLog {
	if burst <= 0 {
		burst = DefaultRejectLogBurst
	}
	if interval <= 0 {
		interval = DefaultRejectLogInterval
	}
	return &refusalLog{log: log, obs: obs, burst: burst, interval: interval, windows: map[refusalKey]*refusalWindow{}}
}

// refused logs one refusal with attrs, or counts it when its key's burst is spent for this interval.
func (l *refusalLog) refused(endpoint, reason string, attrs ...slog.Attr) {
	k := refusalKey{endpoint, reason}
	now := time.Now()
	l.mu.Lock()
	w := l.windows[k]
	if w == nil || (w.unlogged == 0 && now.Sub(w.start) >= l.interval) {
		w = &refusalWindow{start: now}
		l.windows[k] = w
	}
	write := w.logged < l.burst
	if write {
		w.logged++
	} else if w.unlogged++; w.unlogged == 1 { // the first one left out: the summary is due at the interval's end
		w.summarize = time.AfterFunc(w.start.Add(l.interval).Sub(now), func() { l.summarize(k, w) })
	}
	l.mu.Unlock()
	if write {
		l.log.LogAttrs(context.Background(), slog.LevelWarn, "request rejected",
			append([]slog.Attr{slog.String("endpoint", endpoint), slog.String("reason", reason)}, attrs...)...)
		return
	}
	l.obs.RejectedUnlogged(endpoint, reason)
}

// summarize ends w's interval: one line for the refusals it did not log.
func (l *refusalLog) summarize(k refusalKey, w *refusalWindow) {
	l.mu.Lock()
	n := w.unlogged
	if l.windows[k] == w {
		delete(l.windows, k)
	}
	w.unlogged = 0
	l.mu.Unlock()
	if n > 0 {
		l.log.LogAttrs(context.Background(), slog.LevelWarn, "requests rejected, not logged one by one",
			slog.String("endpoint", k.endpoint), slog.String("reason", k.reason), slog.Int("count", n),
			slog.Time("since", w.start), slog.Duration("interval", l.interval), slog.Int("logged", w.logged))
	}
}

// flush writes the summaries still due, at shutdown.
func (l *refusalLog) flush() {
	l.mu.Lock()
	pending := make(map[refusalKey]*refusalWindow, len(l.windows))
	for k, w := range l.windows {
		if w.summarize != nil && w.summarize.Stop() {
			pending[k] = w
		}
	}
	l.mu.Unlock()
	for k, w := range pending {
		l.summarize(k, w)
	}
}
