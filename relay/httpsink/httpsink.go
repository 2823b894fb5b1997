// Package httpsink provides the relay's HTTP sink: each message is POSTed to one URL as a CloudEvent
// (HTTP protocol binding, binary or structured mode), signed per Standard Webhooks, one request per
// message, concurrently up to a limit, in order per route key.
package httpsink

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/relaykit/twilio-relay/relay"
)

// ErrClosed is the error of a Write after Close.
var ErrClosed = errors.New("httpsink: sink is closed")

// Sink posts relay messages to an HTTP endpoint. It is safe for concurrent use.
type Sink struct {
	name       string
	url        string // as configured, for requests
	shownURL   string // without a password, for errors
	healthURL  string
	structured bool
	key        []byte // nil: requests are not signed
	headers    http.Header
	timeout    time.Duration
	client     *http.Client
	transport  *http.Transport
	slots      chan struct{} // one per request in flight
	now        func() time.Time
	closed     atomic.Bool
}

var (
	_ relay.Sink   = (*Sink)(nil)
	_ relay.Pinger = (*Sink)(nil)
)

// New returns a sink for cfg, which has its Defaults and passed Validate (package config does both). It
// reads the CA file but does not connect.
func New(name string, cfg Config) (*Sink, error) {
	tr, err := cfg.newTransport()
	if err != nil {
		return nil, fmt.Errorf("http sink %s: %w", name, err)
	}
	var key []byte
	if cfg.Secret != "" {
		if key, err = decodeSecret(cfg.Secret); err != nil {
			return nil, fmt.Errorf("http sink %s: secret: %w", name, err)
		}
	}
	headers := make(http.Header, len(cfg.Headers))
	for k, v := range cfg.Headers {
		headers.Set(k, v)
	}
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("http sink %s: url: %w", name, err)
	}
	return &Sink{
		name:       name,
		url:        cfg.URL,
		shownURL:   u.Redacted(),
		healthURL:  cfg.HealthURL,
		structured: cfg.Mode == "structured",
		key:        key,
		headers:    headers,
		timeout:    time.Duration(cfg.Timeout),
		client: &http.Client{
			Transport: tr,
			// A redirect is answered as it is: following one would turn a POST into a GET (303) or
			// resend the body somewhere the configuration does not name.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		transport: tr,
		slots:     make(chan struct{}, cfg.MaxConcurrency),
		now:       time.Now,
	}, nil
}

// Write posts each message in its own request and waits for the answers. Messages with the same topic
// and key are sent one after another, in order, and a transient failure stops the rest of them (they
// fail too, so that a retry cannot reorder them); the others are sent concurrently, at most
// max_concurrency requests at once across all writes. A 2xx answer acknowledges a message; see
// classify for the rest.
func (s *Sink) Write(ctx context.Context, msgs []relay.Message) error {
	if s.closed.Load() {
		return ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("http %s: %w", s.shownURL, err)
	}
	errs := make(relay.WriteErrors, len(msgs))
	groups := groupByKey(msgs)
	if len(groups) == 1 {
		s.sendGroup(ctx, msgs, groups[0], errs)
	} else {
		var wg sync.WaitGroup
		for _, idx := range groups {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s.sendGroup(ctx, msgs, idx, errs) // each goroutine writes only its own indexes
			}()
		}
		wg.Wait()
	}
	if errs.Count() == 0 {
		return nil
	}
	return errs
}

// groupByKey returns the indexes of msgs grouped by topic and key, each group in order; a message
// without a key is a group of its own.
func groupByKey(msgs []relay.Message) [][]int {
	var groups [][]int
	at := make(map[string]int, len(msgs))
	for i, m := range msgs {
		if len(m.Key) == 0 {
			groups = append(groups, []int{i})
			continue
		}
		k := m.Topic + "\x00" + string(m.Key)
		g, ok := at[k]
		if !ok {
			g = len(groups)
			at[k] = g
			groups = append(groups, nil)
		}
		groups[g] = append(groups[g], i)
	}
	return groups
}

// sendGroup sends the messages at idx in order, and stops at the first transient failure.
func (s *Sink) sendGroup(ctx context.Context, msgs []relay.Message, idx []int, errs relay.WriteErrors) {
	var stop error
	for _, i := range idx {
		if stop != nil {
			errs[i] = fmt.Errorf("not sent, to keep the order of key %q: an earlier message failed: %w", msgs[i].Key, stop)
			continue
		}
		errs[i] = s.send(ctx, msgs[i])
		if errs[i] != nil && !relay.IsPermanent(errs[i]) {
			stop = errs[i]
		}
	}
}

// send posts one message.
func (s *Sink) send(ctx context.Context, m relay.Message) error {
	h, body, err := Encode(m, s.structured)
	if err != nil {
		return relay.Permanent(err)
	}
	select {
	case s.slots <- struct{}{}:
		defer func() { <-s.slots }()
	case <-ctx.Done():
		return fmt.Errorf("http %s: waiting for a free request slot: %w", s.shownURL, ctx.Err())
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("http %s: %w", s.shownURL, err)
	}
	for k, v := range s.headers {
		req.Header[k] = v
	}
	for k, v := range h {
		req.Header[k] = v
	}
	if s.key != nil {
		sign(req.Header, s.key, m.Event.ID, s.now(), body)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return err // a *url.Error: "Post <url without password>: <cause>"; transient
	}
	defer func() {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // so the connection can be reused
		resp.Body.Close()
	}()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	return classify(&StatusError{
		URL:        s.shownURL,
		Status:     resp.StatusCode,
		RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), s.now()),
		Body:       string(bytes.TrimSpace(snippet)),
	})
}

// Ping GETs health_url and wants a 2xx. Without health_url it reports nothing: an endpoint that only
// takes POSTs has no cheap, side-effect-free probe.
func (s *Sink) Ping(ctx context.Context) error {
	if s.healthURL == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.healthURL, nil)
	if err != nil {
		return fmt.Errorf("http sink %s: health: %w", s.name, err)
	}
	for k, v := range s.headers {
		req.Header[k] = v
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("http sink %s: health: %w", s.name, err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("http sink %s: health: GET %s: status %d", s.name, resp.Request.URL.Redacted(), resp.StatusCode)
	}
	return nil
}

// Close makes later writes fail and closes idle connections. Requests in flight are not waited for:
// the owner closes the sink after the last Write has returned. Closing twice is harmless.
func (s *Sink) Close(context.Context) error {
	s.closed.Store(true)
	s.transport.CloseIdleConnections()
	return nil
}
