package kafka

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// stats counts a sink's produce requests. The counters only grow; the collector derives the averages
// since its last scrape from their differences.
type stats struct {
	writes, messages, bytes, errors, nanos atomic.Int64
}

// observe counts one produce request of n messages (about nbytes) that took d and ended with err.
func (st *stats) observe(n int, nbytes int64, d time.Duration, err error) {
	st.writes.Add(1)
	st.messages.Add(int64(n))
	st.bytes.Add(nbytes)
	st.nanos.Add(int64(d))
	if err != nil {
		st.errors.Add(1)
	}
}

// snapshot is the counters at one scrape.
type snapshot struct{ writes, messages, bytes, errors, nanos int64 }

func (st *stats) snapshot() snapshot {
	return snapshot{st.writes.Load(), st.messages.Load(), st.bytes.Load(), st.errors.Load(), st.nanos.Load()}
}

// Collector exports the produce statistics of sinks as Prometheus metrics.
type Collector struct {
	mu    sync.Mutex
	sinks []*Sink
	last  map[*Sink]snapshot // at the previous scrape, for the averages
}

// NewCollector returns a collector for sinks.
func NewCollector(sinks ...*Sink) *Collector {
	return &Collector{sinks: sinks, last: make(map[*Sink]snapshot)}
}

var (
	descWrites   = prometheus.NewDesc("relay_kafka_writes_total", "Produce requests sent.", []string{"sink"}, nil)
	descMessages = prometheus.NewDesc("relay_kafka_messages_total", "Messages sent in produce requests, acknowledged or not (see relay_events_delivered_total for acknowledged events).", []string{"sink"}, nil)
	descBytes    = prometheus.NewDesc("relay_kafka_bytes_total", "Bytes of the messages sent (keys, values, headers), before compression.", []string{"sink"}, nil)
	descErrors   = prometheus.NewDesc("relay_kafka_errors_total", "Produce requests that failed.", []string{"sink"}, nil)
	descBatchAvg = prometheus.NewDesc("relay_kafka_batch_size_avg", "Average messages per produce request since the last scrape.", []string{"sink"}, nil)
	descWriteAvg = prometheus.NewDesc("relay_kafka_write_seconds_avg", "Average produce round trip since the last scrape.", []string{"sink"}, nil)
)

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descWrites, descMessages, descBytes, descErrors, descBatchAvg, descWriteAvg} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.sinks {
		now, last := s.stats.snapshot(), c.last[s]
		c.last[s] = now
		batchAvg, writeAvg := 0.0, 0.0
		if w := now.writes - last.writes; w > 0 {
			batchAvg = float64(now.messages-last.messages) / float64(w)
			writeAvg = time.Duration((now.nanos - last.nanos) / w).Seconds()
		}
		ch <- prometheus.MustNewConstMetric(descWrites, prometheus.CounterValue, float64(now.writes), s.name)
		ch <- prometheus.MustNewConstMetric(descMessages, prometheus.CounterValue, float64(now.messages), s.name)
		ch <- prometheus.MustNewConstMetric(descBytes, prometheus.CounterValue, float64(now.bytes), s.name)
		ch <- prometheus.MustNewConstMetric(descErrors, prometheus.CounterValue, float64(now.errors), s.name)
		ch <- prometheus.MustNewConstMetric(descBatchAvg, prometheus.GaugeValue, batchAvg, s.name)
		ch <- prometheus.MustNewConstMetric(descWriteAvg, prometheus.GaugeValue, writeAvg, s.name)
	}
}
