// Package redis provides the relay's Redis integrations, built on redis/go-redis: the Redis Streams
// sink, where each message is appended to the stream the route names with XADD … MAXLEN ~ N, its
// CloudEvents attributes and data as fields, the XADDs of one write in one pipelined round trip; and
// the dedupe tier shared by replicas (Deduper).
package redis

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/relaykit/twilio-relay/relay"
	"github.com/relaykit/twilio-relay/relay/ce"
)

// Field names of a stream entry besides the ce_<attribute> fields.
const (
	FieldContentType = "content-type"
	FieldKey         = "key"
	FieldData        = "data"
)

// ErrClosed is the error of a Write after Close.
var ErrClosed = errors.New("redis: sink is closed")

// Sink appends relay messages to Redis streams. It is safe for concurrent use.
type Sink struct {
	name    string
	client  *goredis.Client
	maxLen  int64
	timeout time.Duration
	closed  atomic.Bool
}

var (
	_ relay.Sink   = (*Sink)(nil)
	_ relay.Pinger = (*Sink)(nil)
)

// New returns a sink for cfg, which has its Defaults and passed Validate (package config does both). It
// reads the CA file but does not connect: the first write or Ping does.
func New(name string, cfg Config) (*Sink, error) {
	tc, err := cfg.TLS.tlsConfig()
	if err != nil {
		return nil, fmt.Errorf("redis sink %s: %w", name, err)
	}
	timeout := time.Duration(cfg.Timeout)
	client := goredis.NewClient(&goredis.Options{
		Addr:         cfg.Addr,
		Username:     cfg.Username,
		Password:     cfg.Password,
		DB:           cfg.DB,
		TLSConfig:    tc,
		DialTimeout:  timeout,
		ReadTimeout:  timeout,
		WriteTimeout: timeout,
		// The deadline of the caller's context applies to the socket too.
		ContextTimeoutEnabled: true,
		// One attempt per call: XADD is not idempotent, and the pipeline retries with its own backoff.
		MaxRetries:    -1,
		DialerRetries: 1,
		ClientName:    "twilio-relay/" + name,
	})
	return &Sink{name: name, client: client, maxLen: cfg.MaxLen, timeout: timeout}, nil
}

// Fields returns the fields of the stream entry for m, in order: ce_<name> for every attribute
// (specversion, id, source, type, subject, time, dataschema, extensions), content-type (datacontenttype,
// or application/json for JSON data without one), key (when the route set one) and data (the bytes as
// received).
func Fields(m relay.Message) []any {
	attrs := ce.Attributes(m.Event)
	f := make([]any, 0, 2*len(attrs)+6)
	for _, a := range attrs {
		f = append(f, "ce_"+a.Name, a.Value)
	}
	if ct := ce.ContentType(m.Event); ct != "" {
		f = append(f, FieldContentType, ct)
	}
	if len(m.Key) > 0 {
		f = append(f, FieldKey, m.Key)
	}
	return append(f, FieldData, m.Event.Data)
}

// Write appends every message with one pipelined round trip and reports each XADD's outcome, and the
// entry id of each message appended as its Position. Every failure is transient (see classify).
func (s *Sink) Write(ctx context.Context, msgs []relay.Message) error {
	if s.closed.Load() {
		return ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("redis: xadd: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	pipe := s.client.Pipeline()
	cmds := make([]*goredis.StringCmd, len(msgs))
	for i, m := range msgs {
		cmds[i] = pipe.XAdd(ctx, &goredis.XAddArgs{Stream: m.Topic, MaxLen: s.maxLen, Approx: true, Values: Fields(m)})
	}
	// go-redis applies a context's deadline to the socket but not its cancellation: wait for either.
	// A round trip left behind ends by the deadline above; its XADDs may still land (at-least-once).
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = pipe.Exec(ctx) // each command holds its own error
	}()
	select {
	case <-done:
	case <-ctx.Done():
		return fmt.Errorf("redis: xadd %d messages: %w", len(msgs), ctx.Err())
	}
	errs := make(relay.WriteErrors, len(msgs))
	for i, c := range cmds {
		if err := c.Err(); err != nil {
			errs[i] = classify(msgs[i].Topic, err)
			continue
		}
		msgs[i].Position = relay.Position{Set: true, Partition: relay.NoPartition, ID: c.Val()} // the entry id
	}
	if errs.Count() == 0 {
		return nil
	}
	return errs
}

// classify wraps err with the operation. Every Redis failure is transient: a network error or timeout,
// LOADING (a restart reading its data set), READONLY (a replica after a failover), OOM (maxmemory),
// NOPERM (ACL) and WRONGTYPE (the key holds something other than a stream). WRONGTYPE is a
// configuration mistake no retry of the same message mends by itself, but a permanent error would
// dead-letter every event routed to that key until someone noticed; transient keeps them with Twilio
// (503, retried) while the key is renamed or the route fixed, as a missing Kafka topic does. No XADD of
// a valid message is refused for the message itself, so this sink has no permanent error.
func classify(stream string, err error) error {
	return fmt.Errorf("xadd %s: %w", stream, err)
}

// Ping sends PING.
func (s *Sink) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if err := s.client.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis %s: ping: %w", s.name, err)
	}
	return nil
}

// Close closes the connections. Closing twice is harmless.
func (s *Sink) Close(context.Context) error {
	if !s.closed.CompareAndSwap(false, true) {
		return nil
	}
	if err := s.client.Close(); err != nil {
		return fmt.Errorf("redis %s: close: %w", s.name, err)
	}
	return nil
}
