// Package prometheus provides the relay's metrics: a relay.Observer and a receiver.Observer that count
// into Prometheus collectors on a registry of their own.
package prometheus

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/relaykit/twilio-relay/relay"
	"github.com/relaykit/twilio-relay/relay/receiver"
)

// Metrics holds the relay's collectors.
type Metrics struct {
	Registry *prometheus.Registry
	types    *TypeLabels

	received      *prometheus.CounterVec
	duplicates    *prometheus.CounterVec
	delivered     *prometheus.CounterVec
	spooled       *prometheus.CounterVec
	deadLettered  *prometheus.CounterVec
	dropped       *prometheus.CounterVec
	rejected      *prometheus.CounterVec
	unlogged      *prometheus.CounterVec
	requests      *prometheus.HistogramVec
	sinkWrites    *prometheus.HistogramVec
	dedupeRefused prometheus.Counter
	sharedErrors  *prometheus.CounterVec
	lateWrites    prometheus.Gauge
	lateEnded     *prometheus.CounterVec
	lateRefused   prometheus.Counter
}

var (
	_ relay.Observer    = (*Metrics)(nil)
	_ receiver.Observer = (*Metrics)(nil)
)

// New returns metrics registered on a new registry, with the Go and process collectors. types bounds the
// values of the type label (nil: every type is counted as OtherType).
func New(types *TypeLabels) *Metrics {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		c := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "relay", Name: name, Help: help}, labels)
		r.MustRegister(c)
		return c
	}
	latency := []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2, 3, 4, 5}
	m := &Metrics{
		Registry:     r,
		types:        types,
		received:     counter("events_received_total", "Events decoded from verified requests.", "endpoint", "type"),
		duplicates:   counter("events_duplicate_total", "Events answered as duplicates and not delivered again.", "endpoint", "type"),
		delivered:    counter("events_delivered_total", "Events acknowledged by a sink.", "endpoint", "type", "sink"),
		spooled:      counter("events_spooled_total", "Events a sink could not take in time, stored in the spool and answered 200.", "endpoint", "type", "sink"),
		deadLettered: counter("events_dead_lettered_total", "Events or bodies sent to the dead-letter destination.", "endpoint", "type", "reason"),
		dropped:      counter("events_dropped_total", "Events dropped by policy (no route with no_route: drop).", "endpoint", "type", "reason"),
		rejected:     counter("requests_rejected_total", "Requests refused before decoding: signature, credentials, source, size, framing.", "endpoint", "reason"),
		unlogged: counter("requests_rejected_unlogged_total",
			"Refused requests not logged one by one (over the first few per endpoint and reason in an interval); one summary line per interval counts them.", "endpoint", "reason"),
		requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "relay", Name: "request_duration_seconds",
			Help: "Time from a request's arrival to its answer, by status.", Buckets: latency}, []string{"endpoint", "status"}),
		sinkWrites: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "relay", Name: "sink_write_duration_seconds",
			Help: "Duration of one write attempt to a sink, by result.", Buckets: latency}, []string{"sink", "result"}),
		dedupeRefused: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "relay", Name: "dedupe_remember_refused_total",
			Help: "Delivered events the dedupe cache dropped instead of remembering (a later duplicate may be delivered again)."}),
	}
	m.sharedErrors = counter("dedupe_shared_errors_total", "Shared dedupe tier calls that failed: the relay deduplicated locally only for those events.", "op")
	m.lateWrites = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "relay", Name: "late_writes",
		Help: "Requests (and spooled writes) whose sink writes are still in flight after their deadline."})
	m.lateEnded = counter("late_writes_total", "Writes that outlived their request, by how they ended: landed (remembered; a retry is a duplicate) or failed.", "outcome")
	m.lateRefused = prometheus.NewCounter(prometheus.CounterOpts{Namespace: "relay", Name: "late_writes_refused_total",
		Help: "Requests answered 503 because limits.max_late_writes writes were outliving their requests."})
	r.MustRegister(m.requests, m.sinkWrites, m.dedupeRefused, m.lateWrites, m.lateRefused)
	return m
}

func (m *Metrics) EventReceived(ep, typ string) {
	m.received.WithLabelValues(ep, m.types.Label(typ)).Inc()
}
func (m *Metrics) EventDuplicate(ep, typ string) {
	m.duplicates.WithLabelValues(ep, m.types.Label(typ)).Inc()
}
func (m *Metrics) EventDelivered(ep, typ, sink string) {
	m.delivered.WithLabelValues(ep, m.types.Label(typ), sink).Inc()
}
func (m *Metrics) EventSpooled(ep, typ, sink string) {
	m.spooled.WithLabelValues(ep, m.types.Label(typ), sink).Inc()
}
func (m *Metrics) EventDeadLettered(ep, typ, reason string) {
	m.deadLettered.WithLabelValues(ep, m.types.Label(typ), reason).Inc()
}
func (m *Metrics) EventDropped(ep, typ, reason string) {
	m.dropped.WithLabelValues(ep, m.types.Label(typ), reason).Inc()
}
func (m *Metrics) SharedDedupeError(op string) { m.sharedErrors.WithLabelValues(op).Inc() }
func (m *Metrics) DedupeRememberRefused()      { m.dedupeRefused.Inc() }
func (m *Metrics) LateWrites(n int)            { m.lateWrites.Set(float64(n)) }
func (m *Metrics) LateWriteRefused()           { m.lateRefused.Inc() }
func (m *Metrics) LateWriteEnded(landed bool) {
	outcome := "failed"
	if landed {
		outcome = "landed"
	}
	m.lateEnded.WithLabelValues(outcome).Inc()
}

func (m *Metrics) SinkWrite(sink string, _ int, took time.Duration, err error) {
	result := "ok"
	switch {
	case relay.IsPermanent(err):
		result = "permanent_error"
	case err != nil:
		result = "error"
	}
	m.sinkWrites.WithLabelValues(sink, result).Observe(took.Seconds())
}

func (m *Metrics) Request(ep string, status int, took time.Duration) {
	m.requests.WithLabelValues(ep, strconv.Itoa(status)).Observe(took.Seconds())
}

func (m *Metrics) Rejected(ep, reason string)         { m.rejected.WithLabelValues(ep, reason).Inc() }
func (m *Metrics) RejectedUnlogged(ep, reason string) { m.unlogged.WithLabelValues(ep, reason).Inc() }

// SpoolCollector exports the spool's state on every scrape.
type SpoolCollector struct {
	stats   func() []relay.SpoolStat
	corrupt func() uint64
}

// NewSpoolCollector returns a collector reading stats and the count of damaged files and entries.
func NewSpoolCollector(stats func() []relay.SpoolStat, corrupt func() uint64) *SpoolCollector {
	return &SpoolCollector{stats: stats, corrupt: corrupt}
}

var (
	descSpoolDepth   = prometheus.NewDesc("relay_spool_depth", "Messages waiting in the spool.", []string{"sink"}, nil)
	descSpoolBytes   = prometheus.NewDesc("relay_spool_bytes", "Bytes the waiting messages take.", []string{"sink"}, nil)
	descSpoolAge     = prometheus.NewDesc("relay_spool_oldest_age_seconds", "Age of the oldest waiting message (0 when empty).", []string{"sink"}, nil)
	descSpoolStored  = prometheus.NewDesc("relay_spool_stored_total", "Messages stored in the spool since start.", []string{"sink"}, nil)
	descSpoolDrained = prometheus.NewDesc("relay_spool_drained_total", "Messages delivered from the spool since start.", []string{"sink"}, nil)
	descSpoolCorrupt = prometheus.NewDesc("relay_spool_corrupt_total", "Damaged spool files and entries set aside since start.", nil, nil)
)

// Describe implements prometheus.Collector.
func (c *SpoolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descSpoolDepth, descSpoolBytes, descSpoolAge, descSpoolStored, descSpoolDrained, descSpoolCorrupt} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *SpoolCollector) Collect(ch chan<- prometheus.Metric) {
	for _, st := range c.stats() {
		age := 0.0
		if !st.Oldest.IsZero() {
			age = time.Since(st.Oldest).Seconds()
		}
		ch <- prometheus.MustNewConstMetric(descSpoolDepth, prometheus.GaugeValue, float64(st.Depth), st.Sink)
		ch <- prometheus.MustNewConstMetric(descSpoolBytes, prometheus.GaugeValue, float64(st.Bytes), st.Sink)
		ch <- prometheus.MustNewConstMetric(descSpoolAge, prometheus.GaugeValue, age, st.Sink)
		ch <- prometheus.MustNewConstMetric(descSpoolStored, prometheus.CounterValue, float64(st.Spooled), st.Sink)
		ch <- prometheus.MustNewConstMetric(descSpoolDrained, prometheus.CounterValue, float64(st.Drained), st.Sink)
	}
	ch <- prometheus.MustNewConstMetric(descSpoolCorrupt, prometheus.CounterValue, float64(c.corrupt()))
}
