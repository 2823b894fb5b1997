package kafka

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol"
	"github.com/segmentio/kafka-go/protocol/apiversions"
	"github.com/segmentio/kafka-go/protocol/saslauthenticate"
	"github.com/segmentio/kafka-go/protocol/saslhandshake"
	"github.com/segmentio/kafka-go/sasl"
)

// dialConfig is how Check connects: as the writers do, with the sink's TLS and SASL.
type dialConfig struct {
	timeout   time.Duration
	clientID  string
	tls       *tls.Config // nil: no TLS
	sasl      sasl.Mechanism
	mechanism string // as configured, for messages
	username  string
}

// dialBroker opens one connection to the broker at addr, over TLS when configured, negotiates the API
// versions and authenticates with SASL when configured: the steps kafka-go's Transport takes for its
// writers' connections. Check uses its own connection because the Transport answers Metadata requests
// from its cache, which does not hold what Check asks the broker (a topic's authorized operations, and
// whether a missing topic is missing or hidden from this principal).
func (d dialConfig) dialBroker(ctx context.Context, addr string) (*protocol.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	nc, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if d.tls != nil {
		cfg := d.tls
		if cfg.ServerName == "" {
			host, _, _ := net.SplitHostPort(addr)
			cfg = cfg.Clone()
			cfg.ServerName = host
		}
		tc := tls.Client(nc, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, fmt.Errorf("TLS handshake: %w", err)
		}
		nc = tc
	}
	pc := protocol.NewConn(nc, d.clientID)
	if err := d.open(ctx, pc, addr); err != nil {
		pc.Close()
		return nil, err
	}
	return pc, nil
}

func (d dialConfig) open(ctx context.Context, pc *protocol.Conn, addr string) error {
	dl, _ := ctx.Deadline()
	_ = pc.SetDeadline(dl)
	defer pc.SetDeadline(time.Time{})
	r, err := pc.RoundTrip(new(apiversions.Request))
	if err != nil {
		return fmt.Errorf("api versions: %w", eofMeansClosed(err))
	}
	res := r.(*apiversions.Response)
	if res.ErrorCode != 0 {
		return fmt.Errorf("api versions: %w", kafkago.Error(res.ErrorCode))
	}
	versions := make(map[protocol.ApiKey]int16, len(res.ApiKeys))
	for _, k := range res.ApiKeys {
		key := protocol.ApiKey(k.ApiKey)
		versions[key] = key.SelectVersion(k.MinVersion, k.MaxVersion)
	}
	pc.SetVersions(versions)
	if d.sasl == nil {
		return nil
	}
	host, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	return d.authenticate(sasl.WithMetadata(ctx, &sasl.Metadata{Host: host, Port: p}), pc)
}

// authenticate runs the SASL exchange: a handshake naming the mechanism, then authenticate requests
// until the mechanism is done.
func (d dialConfig) authenticate(ctx context.Context, pc *protocol.Conn) error {
	r, err := pc.RoundTrip(&saslhandshake.Request{Mechanism: d.sasl.Name()})
	if err != nil {
		return fmt.Errorf("SASL handshake: %w", eofMeansClosed(err))
	}
	if code := r.(*saslhandshake.Response).ErrorCode; code != 0 {
		return fmt.Errorf("SASL handshake: %w", kafkago.Error(code))
	}
	sess, state, err := d.sasl.Start(ctx)
	if err != nil {
		return err
	}
	for done := false; !done; {
		r, err := pc.RoundTrip(&saslauthenticate.Request{AuthBytes: state})
		if errors.Is(err, io.EOF) {
			// A broker may refuse an exchange by closing the connection.
			return fmt.Errorf("SASL authenticate: %w", kafkago.SASLAuthenticationFailed)
		}
		if err != nil {
			return fmt.Errorf("SASL authenticate: %w", err)
		}
		res := r.(*saslauthenticate.Response)
		if res.ErrorCode != 0 {
			return fmt.Errorf("SASL authenticate: %w: %s", kafkago.Error(res.ErrorCode), res.ErrorMessage)
		}
		if done, state, err = sess.Next(ctx, res.AuthBytes); err != nil {
			return err
		}
	}
	return nil
}

// errClosedByBroker is a connection the broker closed instead of answering.
var errClosedByBroker = errors.New("the broker closed the connection")

func eofMeansClosed(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w (%w)", errClosedByBroker, err)
	}
	return err
}
