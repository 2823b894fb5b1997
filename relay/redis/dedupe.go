package redis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/relaykit/twilio-relay/relay"
)

// DedupeConfig configures the dedupe tier shared by replicas.
type DedupeConfig struct {
	Addr     string    `yaml:"addr"`
	Username string    `yaml:"username"`
	Password string    `yaml:"password"`
	DB       int       `yaml:"db"`
	TLS      TLSConfig `yaml:"tls"`
	// Timeout bounds each Redis call; a slower Redis counts as down for that event (local dedupe only).
	Timeout relay.Duration `yaml:"timeout"`
	// KeyPrefix starts every key the relay writes.
	KeyPrefix string `yaml:"key_prefix"`
}

// Defaults returns c with defaults filled in.
func (c DedupeConfig) Defaults() DedupeConfig {
	if c.Timeout == 0 {
		c.Timeout = relay.Duration(250 * time.Millisecond)
	}
	if c.KeyPrefix == "" {
		c.KeyPrefix = "twilio-relay:dedupe:"
	}
	return c
}

// Validate reports every problem with c.
func (c DedupeConfig) Validate() []error {
	var errs []error
	if host, port, err := net.SplitHostPort(c.Addr); err != nil || host == "" || port == "" {
		errs = append(errs, fmt.Errorf("addr: %q is not host:port", c.Addr))
	}
	if c.Timeout <= 0 || time.Duration(c.Timeout) > 2*time.Second {
		errs = append(errs, fmt.Errorf("timeout: %s is outside 0..2s (it is spent inside every request)", time.Duration(c.Timeout)))
	}
	if c.DB < 0 {
		errs = append(errs, errors.New("db: must be 0 or more"))
	}
	return errs
}

// Deduper is a relay.SharedDeduper on Redis. A claim is SET key "inflight:<replica>" NX PX <claim TTL>
// with GET, one round trip that both takes a free key and reads an existing one; a commit is SET key
// "done" PX <window>; a release deletes the key only if it still holds this replica's claim. Keys are the
// prefix and a SHA-256 of the dedupe key, so their size does not depend on the event's source.
type Deduper struct {
	client   *goredis.Client
	prefix   string
	claimTTL time.Duration
	window   time.Duration
	mine     string
	log      *slog.Logger
	lastLog  atomic.Int64
}

var _ relay.SharedDeduper = (*Deduper)(nil)

// release deletes a key only while it holds the caller's claim.
var release = goredis.NewScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end return 0`)

// NewDeduper returns the shared tier for cfg, which has its Defaults and passed Validate (package config
// does both). claimTTL bounds how long a claim of a replica that died stays; window is how long a
// delivered event is remembered.
func NewDeduper(cfg DedupeConfig, claimTTL, window time.Duration, log *slog.Logger) (*Deduper, error) {
	tc, err := cfg.TLS.tlsConfig()
	if err != nil {
		return nil, fmt.Errorf("shared dedupe: %w", err)
	}
	t := time.Duration(cfg.Timeout)
	id := make([]byte, 8)
	_, _ = rand.Read(id)
	return &Deduper{
		client: goredis.NewClient(&goredis.Options{
			Addr: cfg.Addr, Username: cfg.Username, Password: cfg.Password, DB: cfg.DB, TLSConfig: tc,
			DialTimeout: t, ReadTimeout: t, WriteTimeout: t, MaxRetries: -1, ContextTimeoutEnabled: true,
			ClientName: "twilio-relay-dedupe",
		}),
		prefix: cfg.KeyPrefix, claimTTL: claimTTL, window: window, mine: "inflight:" + hex.EncodeToString(id),
		log: log.With(slog.String("component", "shared-dedupe")),
	}, nil
}

// key is the Redis key of an event: the prefix and the hex of its 128-bit hash.
func (d *Deduper) key(k relay.Key) string { return d.prefix + hex.EncodeToString(k.Sum[:]) }

// Claim implements relay.SharedDeduper.
func (d *Deduper) Claim(ctx context.Context, key relay.Key) (relay.ClaimResult, error) {
	prev, err := d.client.SetArgs(ctx, d.key(key), d.mine, goredis.SetArgs{Mode: "NX", Get: true, TTL: d.claimTTL}).Result()
	switch {
	case errors.Is(err, goredis.Nil):
		return relay.ClaimOwned, nil
	case err != nil:
		d.warn("claim", err)
		return relay.ClaimOwned, err
	case prev == "done":
		return relay.ClaimDuplicate, nil
	}
	return relay.ClaimBusy, nil
}

// Commit implements relay.SharedDeduper.
func (d *Deduper) Commit(ctx context.Context, key relay.Key) error {
	if err := d.client.Set(ctx, d.key(key), "done", d.window).Err(); err != nil {
		d.warn("commit", err)
		return err
	}
	return nil
}

// Release implements relay.SharedDeduper.
func (d *Deduper) Release(ctx context.Context, key relay.Key) error {
	if err := release.Run(ctx, d.client, []string{d.key(key)}, d.mine).Err(); err != nil {
		d.warn("release", err)
		return err
	}
	return nil
}

// Ping checks that Redis answers.
func (d *Deduper) Ping(ctx context.Context) error { return d.client.Ping(ctx).Err() }

// Close closes the connections.
func (d *Deduper) Close(context.Context) error { return d.client.Close() }

// warn logs a failure at most once every ten seconds: a Redis outage must not flood the log.
func (d *Deduper) warn(op string, err error) {
	now := time.Now().UnixNano()
	last := d.lastLog.Load()
	if now-last < int64(10*time.Second) || !d.lastLog.CompareAndSwap(last, now) {
		return
	}
	d.log.Warn("shared dedupe unavailable: deduplicating locally only", slog.String("op", op), slog.Any("error", err))
}
