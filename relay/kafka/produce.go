package kafka

import (
	"bytes"
	"context"
	"io"
	"sync"
	"time"

	"github.com/relaykit/twilio-relay/relay"
	kafkago "github.com/segmentio/kafka-go"
)

// How messages reach the broker. Each Write sorts its messages by partition into chunks (one per
// partition, split only where batch_size or max_message_bytes says so) and queues each chunk on its
// partition's lane. A lane has at most one produce request in flight, so the records of one partition
// keep the order they were queued in; the chunks that queue up while a request is in flight go together
// in the next one. An idle lane sends at once (after batch_timeout, when one is set), so a lone request
// does not wait for company and a busy relay still sends few, large requests.

// call is one Write waiting for its chunks.
type call struct {
	s    *Sink
	ctx  context.Context
	mu   sync.Mutex
	errs relay.WriteErrors // under mu; read by Write after done, or given up when ctx ends
	at   []relay.Position  // where each acknowledged message landed, under mu
	left int               // chunks not yet answered, under mu
	gone bool              // Write returned early: answers are dropped, under mu
	done chan struct{}
}

// chunk is the part of one call for one partition that goes in one produce request.
type chunk struct {
	c     *call
	msgs  []kafkago.Message
	idx   []int // each message's position in the call
	bytes int64
}

// answer records the outcome of each of ch's messages, written to partition: at(j) gives message j's
// error, nil when it was acknowledged, and its offset (-1 when the broker did not say: acks=none).
func (ch *chunk) answer(partition int, at func(j int) (offset int64, err error)) {
	c := ch.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gone {
		return
	}
	for j, i := range ch.idx {
		off, err := at(j)
		c.errs[i] = err
		if err == nil && off >= 0 {
			c.at[i] = relay.Position{Set: true, Partition: int32(partition), Offset: off}
		}
	}
	if c.left--; c.left == 0 {
		close(c.done)
	}
}

type laneKey struct {
	topic     string
	partition int
}

// lane queues the chunks of one partition and sends them, one produce request at a time.
type lane struct {
	key    laneKey
	mu     sync.Mutex
	queue  []*chunk
	queued int           // messages in queue
	busy   bool          // a goroutine is running send
	full   chan struct{} // wakes a lane lingering for batch_timeout once batch_size messages wait
}

// enqueue adds chunks to the lane and reports whether the caller must start its sender.
func (l *lane) enqueue(chs []*chunk, batchSize int) (start bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, ch := range chs {
		l.queue = append(l.queue, ch)
		l.queued += len(ch.msgs)
	}
	if l.queued >= batchSize {
		select {
		case l.full <- struct{}{}:
		default:
		}
	}
	if l.busy {
		return false
	}
	l.busy = true
	return true
}

// take removes the next batch from the queue: whole chunks, as many as batch_size and max_message_bytes
// allow (at least one). Chunks of calls that have given up are answered with their context's error and
// not sent. With nothing left it marks the lane idle and returns nil.
func (l *lane) take(batchSize int, maxBytes int64) []*chunk {
	var dropped []*chunk
	defer func() {
		for _, ch := range dropped {
			err := ch.c.s.classify(l.key.topic, ch.c.ctx.Err())
			ch.answer(l.key.partition, func(int) (int64, error) { return -1, err })
		}
	}()
	l.mu.Lock()
	defer l.mu.Unlock()
	n, nbytes, k := 0, int64(0), 0
	var batch []*chunk
	for ; k < len(l.queue); k++ {
		ch := l.queue[k]
		if ch.c.ctx.Err() != nil {
			dropped = append(dropped, ch)
			continue
		}
		if len(batch) > 0 && (n+len(ch.msgs) > batchSize || nbytes+ch.bytes > maxBytes) {
			break
		}
		batch = append(batch, ch)
		n += len(ch.msgs)
		nbytes += ch.bytes
	}
	for _, ch := range l.queue[:k] {
		l.queued -= len(ch.msgs)
	}
	rest := copy(l.queue, l.queue[k:])
	clear(l.queue[rest:])
	l.queue = l.queue[:rest]
	if len(batch) == 0 {
		l.busy = false
	}
	return batch
}

// send runs while the lane has chunks queued: it takes a batch, produces it, answers its chunks, and
// goes on with what queued meanwhile.
func (s *Sink) send(l *lane) {
	defer s.running.Done()
	if s.linger > 0 {
		s.lingerFor(l)
	}
	for {
		batch := l.take(s.batchSize, s.maxBytes)
		if batch == nil {
			return
		}
		n, nbytes := 0, int64(0)
		parts := make([][]kafkago.Message, len(batch))
		for i, ch := range batch {
			parts[i] = ch.msgs
			n += len(ch.msgs)
			nbytes += ch.bytes
		}
		res := s.produce(l.key, parts, n, nbytes)
		first := 0 // the chunk's first record in the batch
		for _, ch := range batch {
			k := first
			ch.answer(l.key.partition, func(j int) (int64, error) {
				off, err := res.record(k + j)
				return off, s.classify(l.key.topic, err)
			})
			first += len(ch.msgs)
		}
	}
}

// lingerFor waits up to batch_timeout for batch_size messages to queue on a lane that was idle, or for
// Close.
func (s *Sink) lingerFor(l *lane) {
	select { // a signal left from a busy spell
	case <-l.full:
	default:
	}
	l.mu.Lock()
	full := l.queued >= s.batchSize
	l.mu.Unlock()
	if full {
		return
	}
	t := time.NewTimer(s.linger)
	defer t.Stop()
	select {
	case <-t.C:
	case <-l.full:
	case <-s.closing:
	}
}

// produced is what producing a batch came to: one error for all its records and the first one's offset,
// or, when the batch was split, an error and an offset per record.
type produced struct {
	err  error
	base int64   // the first record's offset (the others follow it); -1 when unknown (acks=none)
	errs []error // per record, when split
	offs []int64 // per record, when split; -1 when unknown
}

// record returns record k's offset (-1 when unknown or not written) and error.
func (p produced) record(k int) (int64, error) {
	switch {
	case p.errs != nil:
		return p.offs[k], p.errs[k]
	case p.err != nil || p.base < 0:
		return -1, p.err
	}
	return p.base + int64(k), nil
}

// produce sends the records of parts (n in all) to one partition in one request and returns either one
// outcome for all of them or, when the broker refused the batch for what some of its records are, one per
// record: the batch is split in halves until each refusal is pinned on its record.
func (s *Sink) produce(key laneKey, parts [][]kafkago.Message, n int, nbytes int64) produced {
	base, err := s.produceOnce(key, parts, n, nbytes)
	if err == nil || n == 1 || !recordLevel(err) {
		return produced{err: err, base: base}
	}
	var flat []kafkago.Message
	for _, p := range parts {
		flat = append(flat, p...)
	}
	res := produced{errs: make([]error, n), offs: make([]int64, n)}
	s.split(key, flat, res.errs, res.offs)
	return res
}

// split produces msgs in two halves, one after the other so that order holds, and recursively splits a
// half refused for a record-level reason, filling errs and offs (one per message).
func (s *Sink) split(key laneKey, msgs []kafkago.Message, errs []error, offs []int64) {
	half := len(msgs) / 2
	for _, r := range [][2]int{{0, half}, {half, len(msgs)}} {
		part := msgs[r[0]:r[1]]
		var nbytes int64
		for i := range part {
			nbytes += size(&part[i])
		}
		base, err := s.produceOnce(key, [][]kafkago.Message{part}, len(part), nbytes)
		if err != nil && len(part) > 1 && recordLevel(err) {
			s.split(key, part, errs[r[0]:r[1]], offs[r[0]:r[1]])
			continue
		}
		for i := r[0]; i < r[1]; i++ {
			errs[i], offs[i] = err, -1
			if err == nil && base >= 0 {
				offs[i] = base + int64(i-r[0])
			}
		}
	}
}

// produceOnce is one produce request: the records of parts (n, about nbytes), in order, to one
// partition.
func (s *Sink) produceOnce(key laneKey, parts [][]kafkago.Message, n int, nbytes int64) (int64, error) {
	start := time.Now()
	// Not the writers' contexts: the request carries other writes' messages too. The client's timeout
	// (write_timeout) bounds it.
	res, err := s.client.Produce(context.Background(), &kafkago.ProduceRequest{
		Topic:        key.topic,
		Partition:    key.partition,
		RequiredAcks: s.acks,
		Compression:  s.codec,
		Records:      &records{parts: parts},
	})
	if err == nil && res != nil {
		err = res.Error
	}
	s.stats.observe(n, nbytes, time.Since(start), err)
	if err != nil {
		s.log.Debug("kafka produce failed", "topic", key.topic, "partition", key.partition, "records", n, "error", err)
		s.refresh(err)
		return 0, err
	}
	if res == nil { // acks=none: nothing comes back
		return -1, nil
	}
	return res.BaseOffset, nil
}

// records reads the messages of parts, in order, as the records of a produce request.
type records struct {
	parts      [][]kafkago.Message
	p, i       int
	rec        kafkago.Record
	key, value bytesReadCloser
}

func (r *records) ReadRecord() (*kafkago.Record, error) {
	for r.p < len(r.parts) && r.i == len(r.parts[r.p]) {
		r.p, r.i = r.p+1, 0
	}
	if r.p == len(r.parts) {
		return nil, io.EOF
	}
	m := &r.parts[r.p][r.i]
	r.i++
	r.rec = kafkago.Record{Time: m.Time, Headers: m.Headers}
	if m.Key != nil {
		r.key.Reset(m.Key)
		r.rec.Key = &r.key
	}
	if m.Value != nil {
		r.value.Reset(m.Value)
		r.rec.Value = &r.value
	}
	return &r.rec, nil
}

type bytesReadCloser struct{ bytes.Reader }

func (*bytesReadCloser) Close() error { return nil }
