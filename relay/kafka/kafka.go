// Package kafka provides the relay's Kafka sink, built on segmentio/kafka-go: CloudEvents Kafka protocol
// binding (binary or structured), acks=all by default, keys from the routes hashed with Kafka's own
// murmur2 partitioner, TLS and SASL.
package kafka

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/relaykit/twilio-relay/relay"
	kafkago "github.com/segmentio/kafka-go"
	metadataAPI "github.com/segmentio/kafka-go/protocol/metadata"
)

// Sink writes relay messages to Kafka. It is safe for concurrent use.
type Sink struct {
	name       string
	log        *slog.Logger
	transport  *kafkago.Transport
	client     *kafkago.Client // produce requests: its timeout is the write timeout
	meta       *kafkago.Client // Ping: its timeout is the dial timeout
	brokers    []string
	structured bool
	maxBytes   int64
	batchSize  int
	linger     time.Duration
	acks       kafkago.RequiredAcks
	codec      kafkago.Compression
	autoCreate bool
	dial       dialConfig // for Check's own connections
	// Kafka's default partitioner: the same key lands on the same partition as with Java clients; a
	// message without a key goes to a random partition.
	balancer kafkago.Murmur2Balancer
	stats    stats

	mu      sync.RWMutex // Write holds it shared while it queues, Close exclusively to set closed
	closed  bool
	closing chan struct{} // closed by Close: lanes stop lingering
	running sync.WaitGroup
	lanes   sync.Map // laneKey -> *lane

	lastRefresh atomic.Int64 // unix nanoseconds of the last forced metadata refresh
}

var (
	_ relay.Sink    = (*Sink)(nil)
	_ relay.Pinger  = (*Sink)(nil)
	_ relay.Checker = (*Sink)(nil)
)

// New returns a sink for cfg, which has its Defaults and passed Validate (package config does both). It
// reads TLS files but does not connect: the first write or Ping does.
func New(name string, cfg Config, logger *slog.Logger) (*Sink, error) {
	acks, err := parseAcks(cfg.Acks)
	if err != nil {
		return nil, fmt.Errorf("kafka sink %s: acks: %w", name, err)
	}
	codec, err := parseCompression(cfg.Compression)
	if err != nil {
		return nil, fmt.Errorf("kafka sink %s: compression: %w", name, err)
	}
	tlsCfg, err := cfg.TLS.tlsConfig()
	if err != nil {
		return nil, fmt.Errorf("kafka sink %s: %w", name, err)
	}
	mech, err := cfg.SASL.mechanism()
	if err != nil {
		return nil, fmt.Errorf("kafka sink %s: %w", name, err)
	}
	transport := &kafkago.Transport{
		DialTimeout: time.Duration(cfg.DialTimeout),
		ClientID:    cfg.ClientID,
		TLS:         tlsCfg,
		SASL:        mech,
		MetadataTTL: 10 * time.Second,
	}
	addr := kafkago.TCP(cfg.Brokers...)
	return &Sink{
		name:       name,
		log:        logger.With(slog.String("sink", name)),
		transport:  transport,
		client:     &kafkago.Client{Addr: addr, Transport: transport, Timeout: time.Duration(cfg.WriteTimeout)},
		meta:       &kafkago.Client{Addr: addr, Transport: transport, Timeout: time.Duration(cfg.DialTimeout)},
		brokers:    cfg.Brokers,
		structured: cfg.Mode == "structured",
		maxBytes:   int64(cfg.MaxMessageBytes),
		batchSize:  cfg.BatchSize,
		linger:     time.Duration(cfg.BatchTimeout),
		acks:       acks,
		codec:      codec,
		autoCreate: cfg.AllowAutoTopicCreation,
		dial: dialConfig{timeout: time.Duration(cfg.DialTimeout), clientID: cfg.ClientID, tls: tlsCfg, sasl: mech,
			mechanism: cfg.SASL.Mechanism, username: cfg.SASL.Username},
		closing: make(chan struct{}),
	}, nil
}

// validTopic reports whether Kafka accepts name as a topic name: 1 to 249 of [a-zA-Z0-9._-], and not "."
// or "..". (A loop rather than a regular expression: it runs for every message.)
func validTopic(name string) bool {
	if len(name) == 0 || len(name) > 249 || name == "." || name == ".." {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// Write writes msgs and waits for the acknowledgements. The messages for one partition go in one
// produce request (with those of concurrent writes, when they queue behind a request in flight), and the
// partitions are written concurrently and fail independently, so that a missing topic holds up only its
// own messages. A message that can never be written (invalid topic name, over max_message_bytes, refused
// by the broker as too large or invalid) fails with a permanent error. Each acknowledged message's
// Position is set to its partition and offset, from the base offset the broker gave its request.
func (s *Sink) Write(ctx context.Context, msgs []relay.Message) error {
	c := &call{s: s, ctx: ctx, errs: make(relay.WriteErrors, len(msgs)), at: make([]relay.Position, len(msgs)),
		done: make(chan struct{})}
	kms := make([]kafkago.Message, len(msgs))
	sizes := make([]int64, len(msgs)) // 0: not to be written
	var topics []string               // in order of first appearance
	for i, m := range msgs {
		if !validTopic(m.Topic) {
			c.errs[i] = relay.Permanent(fmt.Errorf("invalid Kafka topic name %q", m.Topic))
			continue
		}
		km, err := Encode(m, s.structured)
		if err != nil {
			c.errs[i] = relay.Permanent(fmt.Errorf("encode: %w", err))
			continue
		}
		n := size(&km)
		if n > s.maxBytes {
			c.errs[i] = relay.Permanent(fmt.Errorf("message of about %d bytes is over max_message_bytes %d", n, s.maxBytes))
			continue
		}
		kms[i], sizes[i] = km, n
		if !slices.Contains(topics, m.Topic) {
			topics = append(topics, m.Topic)
		}
	}
	if s.isClosed() { // no metadata request, which would open connections again
		return c.closed(msgs)
	}
	var queued []laneChunks
	for _, topic := range topics {
		chunks, err := s.chunks(ctx, c, topic, kms, sizes)
		if err != nil {
			for i := range kms {
				if sizes[i] > 0 && kms[i].Topic == topic {
					c.errs[i] = s.classify(topic, err)
				}
			}
			continue
		}
		for _, lc := range chunks {
			c.left += len(lc.chunks) // before any is queued: a lane may answer at once
		}
		queued = append(queued, chunks...)
	}
	if !s.queue(queued) {
		return c.closed(msgs)
	}
	return c.wait(msgs)
}

// queue puts the chunks on their lanes and starts the senders of idle lanes, unless the sink is closed.
func (s *Sink) queue(chunks []laneChunks) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return false
	}
	for _, lc := range chunks {
		if lc.lane.enqueue(lc.chunks, s.batchSize) {
			s.running.Add(1)
			go s.send(lc.lane)
		}
	}
	return true
}

func (s *Sink) isClosed() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.closed
}

// laneChunks are the chunks of one call for one lane.
type laneChunks struct {
	lane   *lane
	chunks []*chunk
}

// chunks sorts the messages of kms to topic (those with a size: the others are not written) by partition,
// and cuts each partition's run into chunks that fit a produce request.
func (s *Sink) chunks(ctx context.Context, c *call, topic string, kms []kafkago.Message, sizes []int64) ([]laneChunks, error) {
	n, err := s.partitions(ctx, topic)
	if err != nil {
		s.refresh(err)
		return nil, err
	}
	ids := partitionIDs(n)
	part := make([]int, len(kms))
	count := make([]int, n+1)
	for i := range kms {
		if sizes[i] > 0 && kms[i].Topic == topic {
			part[i] = s.balancer.Balance(kafkago.Message{Key: kms[i].Key}, ids...)
			count[part[i]+1]++
		}
	}
	for p := 1; p <= n; p++ { // count[p] is now where partition p's run starts
		count[p] += count[p-1]
	}
	total := count[n]
	sorted := make([]kafkago.Message, total)
	idx := make([]int, total)
	next := slices.Clone(count[:n])
	for i := range kms {
		if sizes[i] > 0 && kms[i].Topic == topic {
			p := part[i]
			sorted[next[p]], idx[next[p]] = kms[i], i
			next[p]++
		}
	}
	var out []laneChunks
	for p := range n {
		lo, hi := count[p], count[p+1]
		if lo == hi {
			continue
		}
		lc := laneChunks{lane: s.lane(laneKey{topic, p})}
		for lo < hi { // cut where batch_size or max_message_bytes says
			ch := &chunk{c: c}
			end := lo
			for end < hi && end-lo < s.batchSize {
				b := sizes[idx[end]]
				if end > lo && ch.bytes+b > s.maxBytes {
					break
				}
				ch.bytes += b
				end++
			}
			ch.msgs, ch.idx = sorted[lo:end:end], idx[lo:end:end]
			for _, i := range ch.idx {
				c.errs[i] = errUnanswered
			}
			lc.chunks = append(lc.chunks, ch)
			lo = end
		}
		out = append(out, lc)
	}
	return out, nil
}

// lane returns the lane of a partition, making it on first use.
func (s *Sink) lane(k laneKey) *lane {
	if l, ok := s.lanes.Load(k); ok {
		return l.(*lane)
	}
	l, _ := s.lanes.LoadOrStore(k, &lane{key: k, full: make(chan struct{}, 1)})
	return l.(*lane)
}

// partitions returns how many partitions topic has, from the transport's cached metadata (which asks the
// cluster, and creates the topic when allowed, when it does not know the topic).
func (s *Sink) partitions(ctx context.Context, topic string) (int, error) {
	r, err := s.transport.RoundTrip(ctx, s.client.Addr, &metadataAPI.Request{TopicNames: []string{topic}, AllowAutoTopicCreation: s.autoCreate})
	if err != nil {
		return 0, err
	}
	for _, t := range r.(*metadataAPI.Response).Topics {
		if t.Name == topic {
			if t.ErrorCode != 0 {
				return 0, kafkago.Error(t.ErrorCode)
			}
			if len(t.Partitions) == 0 {
				return 0, kafkago.UnknownTopicOrPartition
			}
			return len(t.Partitions), nil
		}
	}
	return 0, kafkago.UnknownTopicOrPartition
}

// partitionIDs returns 0..n-1, shared: the balancer wants the partitions as a list.
func partitionIDs(n int) []int {
	if n <= len(firstPartitions) {
		return firstPartitions[:n]
	}
	ids := make([]int, n)
	for i := range ids {
		ids[i] = i
	}
	return ids
}

var firstPartitions = func() []int {
	ids := make([]int, 256)
	for i := range ids {
		ids[i] = i
	}
	return ids
}()

// refresh makes the next request fetch the cluster's metadata anew when err says the cached layout is
// stale, at most twice a second. kafka-go's transport only refreshes on a timer; dropping its connection
// pools is the one way to make it forget (requests in flight finish on their connections).
func (s *Sink) refresh(err error) {
	if !staleLayout(err) {
		return
	}
	now, last := time.Now().UnixNano(), s.lastRefresh.Load()
	if now-last < int64(refreshEvery) || !s.lastRefresh.CompareAndSwap(last, now) {
		return
	}
	s.log.Debug("kafka metadata refresh", "cause", err)
	s.transport.CloseIdleConnections()
}

const refreshEvery = 500 * time.Millisecond

// errUnanswered marks, in a call's errors, a message queued and not yet answered.
var errUnanswered = errors.New("not answered")

// wait waits for every chunk of the call, or for its context, and returns the call's result. When the
// context ends first, each message not yet answered fails with its error (it is still queued or in
// flight, and may yet be written).
func (c *call) wait(msgs []relay.Message) error {
	c.mu.Lock()
	pending := c.left > 0
	c.mu.Unlock()
	if pending {
		select {
		case <-c.done:
		case <-c.ctx.Done():
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.left > 0 {
		c.gone = true
		for i, err := range c.errs {
			if err == errUnanswered {
				c.errs[i] = c.s.classify(msgs[i].Topic, c.ctx.Err())
			}
		}
	}
	for i, at := range c.at { // where the acknowledged ones landed, for people (relay.Sink)
		if at.Set && c.errs[i] == nil {
			msgs[i].Position = at
		}
	}
	return c.result()
}

// closed fails every message of the call that was to be written: the sink is closed. Nothing is queued.
func (c *call) closed(msgs []relay.Message) error {
	for i, err := range c.errs {
		if err == nil || err == errUnanswered {
			c.errs[i] = c.s.classify(msgs[i].Topic, io.ErrClosedPipe)
		}
	}
	return c.result()
}

// result is the call's errors as Write returns them: nil when every message was acknowledged.
func (c *call) result() error {
	if c.errs.Count() == 0 {
		return nil
	}
	return c.errs
}

// Ping asks a broker for its API versions: a cheap proof that the cluster answers.
func (s *Sink) Ping(ctx context.Context) error {
	var last error
	for _, b := range s.brokers {
		_, err := s.meta.ApiVersions(ctx, &kafkago.ApiVersionsRequest{Addr: kafkago.TCP(b)})
		if err == nil {
			return nil
		}
		last = err
	}
	return fmt.Errorf("kafka %s: no broker answered: %w", s.name, last)
}

// Close stops new writes (they fail with io.ErrClosedPipe), sends what is queued at once (no more
// batch_timeout), waits for every produce request to be answered, and closes the connections. ctx bounds
// the wait.
func (s *Sink) Close(ctx context.Context) error {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.closing)
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() {
		s.running.Wait()
		s.transport.CloseIdleConnections()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("kafka %s: close: %w", s.name, ctx.Err())
	}
}
