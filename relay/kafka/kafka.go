// Package kafka provides the relay's Kafka sink, built on segmentio/kafka-go: CloudEvents Kafka protocol
// binding (binary or structured), acks=all by default, keys from the routes hashed with Kafka's own
// murmur2 partitioner, TLS and SASL.
package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sync"
	"time"

	"github.com/relaykit/twilio-relay/relay"
	kafkago "github.com/segmentio/kafka-go"
)

// Sink writes relay messages to Kafka. It is safe for concurrent use.
type Sink struct {
	name       string
	w          *kafkago.Writer
	single     *kafkago.Writer // batches of one message: finds the one a refused batch was refused for
	transport  *kafkago.Transport
	client     *kafkago.Client
	brokers    []string
	structured bool
	maxBytes   int64
	autoCreate bool
	dial       dialConfig // for Check's own connections
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
	brokers := cfg.Brokers
	log := logger.With(slog.String("sink", name))
	newWriter := func(batchSize int) *kafkago.Writer {
		return &kafkago.Writer{
			Addr: kafkago.TCP(brokers...),
			// Kafka's default partitioner: the same key lands on the same partition as with Java clients.
			Balancer:     &kafkago.Murmur2Balancer{},
			RequiredAcks: acks,
			Compression:  codec,
			BatchTimeout: time.Duration(cfg.BatchTimeout),
			BatchSize:    batchSize,
			BatchBytes:   int64(cfg.MaxMessageBytes),
			WriteTimeout: time.Duration(cfg.WriteTimeout),
			ReadTimeout:  time.Duration(cfg.WriteTimeout),
			// One attempt per call: the pipeline retries with its own backoff inside the request deadline,
			// so a batch the caller gave up on is not retried behind its back for long.
			MaxAttempts:            1,
			AllowAutoTopicCreation: cfg.AllowAutoTopicCreation,
			Transport:              transport,
			// Each failed attempt: debug only, since the pipeline logs every request that fails for good.
			ErrorLogger: kafkago.LoggerFunc(func(msg string, args ...any) {
				log.Debug("kafka writer: " + fmt.Sprintf(msg, args...))
			}),
			Completion: landed,
		}
	}
	w := newWriter(cfg.BatchSize)

	return &Sink{
		name:       name,
		w:          w,
		single:     newWriter(1),
		transport:  transport,
		client:     &kafkago.Client{Addr: w.Addr, Transport: transport, Timeout: time.Duration(cfg.DialTimeout)},
		brokers:    brokers,
		structured: cfg.Mode == "structured",
		maxBytes:   int64(cfg.MaxMessageBytes),
		autoCreate: cfg.AllowAutoTopicCreation,
		dial: dialConfig{timeout: time.Duration(cfg.DialTimeout), clientID: cfg.ClientID, tls: tlsCfg, sasl: mech,
			mechanism: cfg.SASL.Mechanism, username: cfg.SASL.Username},
	}, nil
}

// topicName is what Kafka accepts as a topic name.
var topicName = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,249}$`)

// Write writes msgs and waits for the acknowledgements. Messages to different topics are written
// concurrently and fail independently, so that a missing topic holds up only its own messages. A message
// that can never be written (invalid topic name, over max_message_bytes, refused by the broker as too
// large or invalid) fails with a permanent error.
func (s *Sink) Write(ctx context.Context, msgs []relay.Message) error {
	errs := make(relay.WriteErrors, len(msgs))
	byTopic := make(map[string][]int, 1)
	kms := make([]kafkago.Message, len(msgs))
	for i, m := range msgs {
		if !topicName.MatchString(m.Topic) || m.Topic == "." || m.Topic == ".." {
			errs[i] = relay.Permanent(fmt.Errorf("invalid Kafka topic name %q", m.Topic))
			continue
		}
		km, err := Encode(m, s.structured)
		if err != nil {
			errs[i] = relay.Permanent(fmt.Errorf("encode: %w", err))
			continue
		}
		if n := size(&km); n > s.maxBytes {
			errs[i] = relay.Permanent(fmt.Errorf("message of about %d bytes is over max_message_bytes %d", n, s.maxBytes))
			continue
		}
		kms[i] = km
		byTopic[m.Topic] = append(byTopic[m.Topic], i)
	}
	if len(byTopic) == 1 {
		for _, idx := range byTopic {
			s.writeTopic(ctx, msgs, kms, idx, errs)
		}
	} else {
		var wg sync.WaitGroup
		for _, idx := range byTopic {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s.writeTopic(ctx, msgs, kms, idx, errs) // each goroutine writes only its own indexes
			}()
		}
		wg.Wait()
	}
	if errs.Count() == 0 {
		return nil
	}
	return errs
}

// writeTopic writes the messages at idx (all to one topic), records each one's outcome in errs and, for
// those acknowledged, its partition and offset in msgs.
func (s *Sink) writeTopic(ctx context.Context, msgs []relay.Message, kms []kafkago.Message, idx []int, errs relay.WriteErrors) {
	batch := make([]kafkago.Message, len(idx))
	at := make([]relay.Position, len(idx)) // filled in by landed
	for j, i := range idx {
		batch[j] = kms[i]
		batch[j].WriterData = &at[j]
	}
	err := s.w.WriteMessages(ctx, batch...)
	if ctx.Err() == nil { // WriteMessages waited for every batch, so landed has run for each
		defer func() {
			for j, i := range idx {
				if errs[i] == nil {
					msgs[i].Position = at[j]
				}
			}
		}()
	}
	if err == nil {
		return
	}
	var we kafkago.WriteErrors
	perMessage := errors.As(err, &we) && len(we) == len(batch)
	for j, i := range idx {
		e := err
		if perMessage {
			e = we[j]
		}
		if tooLarge(e) {
			// kafka-go puts the messages of one partition in one record batch, across concurrent
			// calls, and the broker refuses the whole batch: write this one alone to learn whether it
			// is the one that does not fit.
			e = s.single.WriteMessages(ctx, batch[j])
			if one, ok := e.(kafkago.WriteErrors); ok && len(one) == 1 {
				e = one[0]
			}
		}
		errs[i] = s.classify(kms[i].Topic, e)
	}
}

// landed is the writers' Completion: kafka-go calls it once per produce request, before WriteMessages
// returns (unless ctx ended first), with the partition and offset the broker gave each message. The
// messages of one request may come from several Writes; each carries its own *relay.Position.
func landed(msgs []kafkago.Message, err error) {
	if err != nil {
		return
	}
	for i := range msgs {
		if at, ok := msgs[i].WriterData.(*relay.Position); ok {
			*at = relay.Position{Set: true, Partition: int32(msgs[i].Partition), Offset: msgs[i].Offset}
		}
	}
}

func tooLarge(err error) bool {
	var kerr kafkago.Error
	return errors.As(err, &kerr) && kerr == kafkago.MessageSizeTooLarge
}

// classify wraps err with the operation, by the Kafka error code it carries: permanent for what no
// retry can mend (the message is at fault: dead-lettered), misconfigured for a refusal that lasts until
// someone acts (no retry within the request, no dead letter: the request is answered 503 at once and
// Twilio keeps the event), else transient. A missing topic is a misconfiguration unless the sink may
// create topics: then the first writes see it missing until the broker has created it, and retry.
func (s *Sink) classify(topic string, err error) error {
	if err == nil {
		return nil
	}
	wrapped := fmt.Errorf("write %s: %w", topic, err) // the pipeline adds the sink's name
	var kerr kafkago.Error
	if errors.As(err, &kerr) {
		switch kerr {
		case kafkago.MessageSizeTooLarge, kafkago.InvalidTopic, kafkago.InvalidRecord:
			return relay.Permanent(wrapped)
		case kafkago.TopicAuthorizationFailed, kafkago.ClusterAuthorizationFailed,
			kafkago.SASLAuthenticationFailed, kafkago.UnsupportedSASLMechanism, kafkago.IllegalSASLState:
			return relay.Misconfigured(wrapped)
		case kafkago.UnknownTopicOrPartition:
			if !s.autoCreate {
				return relay.Misconfigured(wrapped)
			}
		}
	}
	if relay.IsPermanent(err) {
		return relay.Permanent(wrapped)
	}
	return wrapped
}

// Ping asks a broker for its API versions: a cheap proof that the cluster answers.
func (s *Sink) Ping(ctx context.Context) error {
	var last error
	for _, b := range s.brokers {
		_, err := s.client.ApiVersions(ctx, &kafkago.ApiVersionsRequest{Addr: kafkago.TCP(b)})
		if err == nil {
			return nil
		}
		last = err
	}
	return fmt.Errorf("kafka %s: no broker answered: %w", s.name, last)
}

// Stats returns the writer's statistics since the last call.
func (s *Sink) Stats() kafkago.WriterStats { return s.w.Stats() }

// Close flushes pending writes and closes the writer. ctx bounds the wait.
func (s *Sink) Close(ctx context.Context) error {
	done := make(chan error, 1)
	go func() {
		err := errors.Join(s.w.Close(), s.single.Close())
		// The writers close only transports they made; this one is the sink's.
		s.transport.CloseIdleConnections()
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("kafka %s: close: %w", s.name, ctx.Err())
	}
}
