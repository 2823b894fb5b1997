// Package nats provides the relay's NATS JetStream sink, built on nats-io/nats.go: each message is
// published to the subject the route names (CloudEvents NATS binding, binary or structured mode) with
// a Nats-Msg-Id for JetStream's duplicate window, and acknowledged when JetStream has stored it.
// The publishes of one write go out at once and their acknowledgements are gathered afterwards.
package nats

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/relaykit/twilio-relay/relay"

	natsgo "github.com/nats-io/nats.go"
)

// ErrClosed is the error of a Write after Close.
var ErrClosed = errors.New("nats: sink is closed")

// Sink publishes relay messages to NATS JetStream. It is safe for concurrent use.
type Sink struct {
	name       string
	probe      func() error // connects anew, once, and tells why that fails
	nc         *natsgo.Conn
	js         jetstream.JetStream
	stream     string
	structured bool
	timeout    time.Duration
}

var (
	_ relay.Sink   = (*Sink)(nil)
	_ relay.Pinger = (*Sink)(nil)
)

// New returns a sink for cfg, which has its Defaults and passed Validate (package config does both). It
// starts connecting but does not wait for a server: while none answers, writes fail (transient) and Ping
// reports it, and the connection keeps trying in the background.
func New(name string, cfg Config, logger *slog.Logger) (*Sink, error) {
	log := logger.With(slog.String("sink", name))
	opts := []natsgo.Option{
		natsgo.Name("twilio-relay/" + name),
		natsgo.Timeout(time.Duration(cfg.ConnectTimeout)),
		natsgo.RetryOnFailedConnect(true), // start without a server, like the other sinks
		natsgo.MaxReconnects(-1),
		// No reconnect buffer: a publish while disconnected fails at once (transient) instead of
		// waiting in memory for a server the request deadline will not outlive.
		natsgo.ReconnectBufSize(-1),
		natsgo.DisconnectErrHandler(func(_ *natsgo.Conn, err error) {
			if err != nil {
				log.Warn("nats: disconnected", slog.Any("error", err))
			}
		}),
		natsgo.ReconnectHandler(func(nc *natsgo.Conn) {
			log.Info("nats: connected", slog.String("server", nc.ConnectedUrlRedacted()))
		}),
		natsgo.ErrorHandler(func(_ *natsgo.Conn, _ *natsgo.Subscription, err error) {
			log.Warn("nats: asynchronous error", slog.Any("error", err))
		}),
	}
	auth := cfg.auth()
	nc, err := natsgo.Connect(strings.Join(cfg.URLs, ","), append(opts, auth...)...)
	if err != nil {
		return nil, fmt.Errorf("nats sink %s: connect: %w", name, err)
	}
	js, err := jetstream.New(nc,
		jetstream.WithPublishAsyncMaxPending(cfg.MaxPending),
		// An acknowledgement that never comes fails its publish after timeout, so that the
		// publishes a write gave up on do not pile up.
		jetstream.WithPublishAsyncTimeout(time.Duration(cfg.Timeout)),
	)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("nats sink %s: jetstream: %w", name, err)
	}
	return &Sink{
		name:       name,
		probe:      probe(name, cfg, auth),
		nc:         nc,
		js:         js,
		stream:     cfg.Stream,
		structured: cfg.Mode == "structured",
		timeout:    time.Duration(cfg.Timeout),
	}, nil
}

// Write publishes every message at once, then waits for each acknowledgement until ctx ends, and gives
// each message acknowledged the stream and sequence JetStream stored it at as its Position. Messages
// to one subject are published in order, and JetStream stores them in that order. See classify for
// what fails permanently.
func (s *Sink) Write(ctx context.Context, msgs []relay.Message) error {
	if s.nc.IsClosed() {
		return ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("nats: publish: %w", err)
	}
	errs := make(relay.WriteErrors, len(msgs))
	futures := make([]jetstream.PubAckFuture, len(msgs))
	for i, m := range msgs {
		nm, err := Encode(m, s.structured)
		if err != nil {
			errs[i] = relay.Permanent(fmt.Errorf("publish %s: %w", m.Topic, err))
			continue
		}
		// No retry on "no responders": the pipeline retries with its own backoff.
		f, err := s.js.PublishMsgAsync(nm, jetstream.WithRetryAttempts(0))
		if err != nil {
			errs[i] = classify(m.Topic, err)
			continue
		}
		futures[i] = f
	}
	for i, f := range futures {
		if f == nil {
			continue
		}
		select {
		case ack := <-f.Ok():
			msgs[i].Position = relay.Position{Set: true, Partition: relay.NoPartition, Stream: ack.Stream, Offset: int64(ack.Sequence)}
		case err := <-f.Err():
			errs[i] = classify(msgs[i].Topic, err)
		case <-ctx.Done():
			// Not waiting any longer; the acknowledgement may still come (then a retry is dropped
			// as a duplicate by Nats-Msg-Id) or time out.
			errs[i] = fmt.Errorf("publish %s: waiting for the acknowledgement: %w", msgs[i].Topic, ctx.Err())
		}
	}
	if errs.Count() == 0 {
		return nil
	}
	return errs
}

// classify wraps err with the operation and marks what no retry can mend as permanent: a subject no
// server accepts, a message over the server's max_payload, and a message over the stream's
// max_msg_size. Everything else is transient: no connection, no acknowledgement in time, too many
// publishes pending, and "no responders" (no stream captures the subject: a configuration mistake a
// retry outlives once the stream exists, so Twilio keeps the events meanwhile).
func classify(subject string, err error) error {
	wrapped := fmt.Errorf("publish %s: %w", subject, err)
	var apiErr *jetstream.APIError
	switch {
	case errors.Is(err, natsgo.ErrBadSubject), errors.Is(err, errBadSubject), errors.Is(err, natsgo.ErrMaxPayload):
		return relay.Permanent(wrapped)
	case errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamMessageExceedsMaximum:
		return relay.Permanent(wrapped)
	}
	return wrapped
}

// Ping checks that the connection is up, that JetStream answers for the account and, when a stream
// is configured, that it exists.
func (s *Sink) Ping(ctx context.Context) error {
	if st := s.nc.Status(); st != natsgo.CONNECTED {
		return fmt.Errorf("nats %s: connection is %s", s.name, st)
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if _, err := s.js.AccountInfo(ctx); err != nil {
		return fmt.Errorf("nats %s: jetstream account info: %w", s.name, err)
	}
	if s.stream != "" {
		if _, err := s.js.Stream(ctx, s.stream); err != nil {
			return fmt.Errorf("nats %s: stream %s: %w", s.name, s.stream, err)
		}
	}
	return nil
}

// Close flushes what is buffered (ctx bounds the wait) and closes the connection. Closing twice is
// harmless.
func (s *Sink) Close(ctx context.Context) error {
	if s.nc.IsClosed() {
		return nil
	}
	var err error
	if s.nc.IsConnected() {
		ctx, cancel := context.WithTimeout(ctx, s.timeout) // FlushWithContext wants a deadline
		defer cancel()
		if err = s.nc.FlushWithContext(ctx); err != nil {
			err = fmt.Errorf("nats %s: close: flush: %w", s.name, err)
		}
	}
	s.nc.Close()
	return err
}
