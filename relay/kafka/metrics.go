package kafka

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Collector exports the kafka-go writer statistics of sinks as Prometheus metrics. kafka-go resets its
// counters on every Stats call, so the collector accumulates them.
type Collector struct {
	mu     sync.Mutex
	sinks  []*Sink
	totals map[string]map[string]float64 // sink -> metric -> running total
}

// NewCollector returns a collector for sinks.
func NewCollector(sinks ...*Sink) *Collector {
	return &Collector{sinks: sinks, totals: make(map[string]map[string]float64)}
}

var (
	descWrites   = prometheus.NewDesc("relay_kafka_writes_total", "Produce requests sent by the kafka-go writer.", []string{"sink"}, nil)
	descMessages = prometheus.NewDesc("relay_kafka_messages_total", "Messages the kafka-go writer sent, acknowledged or not (see relay_events_delivered_total for acknowledged events).", []string{"sink"}, nil)
	descBytes    = prometheus.NewDesc("relay_kafka_bytes_total", "Bytes written by the kafka-go writer.", []string{"sink"}, nil)
	descErrors   = prometheus.NewDesc("relay_kafka_errors_total", "Errors seen by the kafka-go writer.", []string{"sink"}, nil)
	descBatchAvg = prometheus.NewDesc("relay_kafka_batch_size_avg", "Average messages per batch since the last scrape.", []string{"sink"}, nil)
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
		st := s.Stats()
		t := c.totals[s.name]
		if t == nil {
			t = make(map[string]float64)
			c.totals[s.name] = t
		}
		t["writes"] += float64(st.Writes)
		t["messages"] += float64(st.Messages)
		t["bytes"] += float64(st.Bytes)
		t["errors"] += float64(st.Errors)
		ch <- prometheus.MustNewConstMetric(descWrites, prometheus.CounterValue, t["writes"], s.name)
		ch <- prometheus.MustNewConstMetric(descMessages, prometheus.CounterValue, t["messages"], s.name)
		ch <- prometheus.MustNewConstMetric(descBytes, prometheus.CounterValue, t["bytes"], s.name)
		ch <- prometheus.MustNewConstMetric(descErrors, prometheus.CounterValue, t["errors"], s.name)
		ch <- prometheus.MustNewConstMetric(descBatchAvg, prometheus.GaugeValue, float64(st.BatchSize.Avg), s.name)
		ch <- prometheus.MustNewConstMetric(descWriteAvg, prometheus.GaugeValue, st.WriteTime.Avg.Seconds(), s.name)
	}
}
