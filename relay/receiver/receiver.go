// Package receiver is the relay's HTTP edge, and the only package that imports Fiber: it accepts Twilio's
// webhook-sink POSTs, authenticates and verifies them, hands the decoded batch to the pipeline under a
// deadline shorter than Twilio's five-second timeout, and maps the outcome to a status code with one table.
package receiver

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/relaykit/twilio-relay/relay"
	"github.com/relaykit/twilio-relay/relay/twilio"
)

// Processor delivers a batch; *relay.Pipeline is one.
type Processor interface {
	Process(ctx context.Context, b *relay.Batch) (relay.Outcome, error)
}

// Observer is told about every request, for metrics.
type Observer interface {
	Request(endpoint string, status int, took time.Duration)
	// Rejected is called for every request refused: not verified, over the size limit, or framed
	// ambiguously.
	Rejected(endpoint, reason string)
	// RejectedUnlogged is called for every refusal the sampled log did not write one by one.
	RejectedUnlogged(endpoint, reason string)
}

// Config configures the server.
type Config struct {
	Endpoints []Endpoint
	// Deadline bounds the work on one request, from its arrival to the answer; it must end before
	// Twilio's five-second timeout.
	Deadline time.Duration
	// MaxInFlight is how many requests may be processed at once; more are answered 429.
	MaxInFlight int
	// MaxConnections bounds the connections served at once, idle keep-alive ones included; fasthttp
	// answers a connection over it with a plain-text 503 and closes it before reading a request. 0 is
	// fasthttp's default (262144).
	MaxConnections int
	// ReadTimeout bounds the reading of one request, headers and body, from its first byte (from the
	// connection's opening for the first request): a client that trickles bytes is answered 503 and
	// disconnected when it passes; a connection that has sent nothing by then is closed without an
	// answer (conn.go). It is also the write timeout.
	ReadTimeout time.Duration
	IdleTimeout time.Duration
	// Monitor, when set, is told about refused requests and processed batches.
	Monitor Monitor
	// RejectLogBurst refusals per endpoint and reason are logged one by one in each RejectLogInterval;
	// the rest are counted and summarised in one line when the interval ends (refusallog.go). Zero:
	// DefaultRejectLogBurst and DefaultRejectLogInterval.
	RejectLogBurst    int
	RejectLogInterval time.Duration
}

// Server is the webhook receiver.
type Server struct {
	app      *fiber.App
	cfg      Config
	proc     Processor
	obs      Observer
	log      *slog.Logger
	refusals *refusalLog
	byPath   map[string]*Endpoint
	inflight atomic.Int64
}

const endpointKey = "relay.endpoint"

// New builds the server; it listens when Serve is called.
func New(cfg Config, proc Processor, obs Observer, log *slog.Logger) *Server {
	if cfg.Monitor == nil {
		cfg.Monitor = nopMonitor{}
	}
	s := &Server{cfg: cfg, proc: proc, obs: obs, log: log, byPath: map[string]*Endpoint{},
		refusals: newRefusalLog(log, obs, cfg.RejectLogBurst, cfg.RejectLogInterval)}
	maxBody := 0
	for i := range cfg.Endpoints {
		maxBody = max(maxBody, cfg.Endpoints[i].MaxBody)
		s.byPath[cfg.Endpoints[i].Path] = &cfg.Endpoints[i]
	}
	s.app = fiber.New(fiber.Config{
		AppName:               "twilio-relay",
		BodyLimit:             maxBody,
		Concurrency:           cfg.MaxConnections,
		ReadTimeout:           cfg.ReadTimeout,
		WriteTimeout:          cfg.ReadTimeout,
		IdleTimeout:           cfg.IdleTimeout,
		DisableStartupMessage: true,
		ErrorHandler:          s.errorHandler,
		// The body is verified and decoded as the raw bytes whatever its Content-Type: fasthttp must not
		// parse a multipart body before the signature is checked (it would answer an authentic body sent
		// with an odd Content-Type 400, and replace the bytes the signature covers).
		DisablePreParseMultipartForm: true,
	})
	s.app.Use(s.observe, s.guardFraming)
	for i := range cfg.Endpoints {
		ep := &cfg.Endpoints[i]
		s.app.Post(ep.Path, s.handle(ep))
		if ep.Classic { // a statusCallbackMethod may be GET
			s.app.Get(ep.Path, s.handle(ep))
		}
	}
	return s
}

// Serve accepts connections on ln until Close.
func (s *Server) Serve(ln net.Listener) error { return s.app.Listener(quietListener{ln}) }

// Close stops accepting connections and waits for the requests in flight, up to ctx's deadline; then it
// writes the refusal summaries still due.
func (s *Server) Close(ctx context.Context) error {
	err := s.app.ShutdownWithContext(ctx)
	s.refusals.flush()
	return err
}

// App returns the Fiber app, for tests (app.Test).
func (s *Server) App() *fiber.App { return s.app }

// handle is the handler for one endpoint.
func (s *Server) handle(ep *Endpoint) fiber.Handler {
	return func(c *fiber.Ctx) error {
		arrived := time.Now()
		c.Locals(endpointKey, ep)
		if n := s.inflight.Add(1); s.cfg.MaxInFlight > 0 && n > int64(s.cfg.MaxInFlight) {
			s.inflight.Add(-1)
			return &relay.Error{Code: relay.EOVERLOADED, Reason: "overloaded",
				Message: "too many requests in flight; retry", RetryAfter: time.Second}
		}
		defer s.inflight.Add(-1)

		if err := ep.authenticate(c); err != nil {
			return err
		}
		raw := c.Request().Body() // as received: never decompressed
		if len(raw) > ep.MaxBody {
			return relay.Errorf(relay.ETOOLARGE, "body_too_large", "body of %d bytes is over the limit of %d", len(raw), ep.MaxBody)
		}
		var batch *relay.Batch
		if ep.Classic { // form-encoded callbacks: classic signature, one event per request
			var err error
			if batch, err = ep.classic(c, raw, arrived); err != nil {
				return err
			}
		} else {
			if err := ep.Verifier.Verify(ep.SignedURLs, rawQuery(c), raw, c.Get(twilio.SignatureHeader)); err != nil {
				return &relay.Error{Code: relay.EUNAUTHORIZED, Reason: twilio.Reason(err), Message: "request not verified: " + err.Error()}
			}
			// fasthttp reuses the body's buffer after the handler returns, and a sink may still hold the
			// bytes (a write the deadline gave up on): the batch gets its own copy.
			batch = twilio.Decode(ep.Name, bytes.Clone(raw), arrived, ep.Decode)
		}
		ctx, cancel := context.WithDeadline(context.Background(), arrived.Add(s.cfg.Deadline))
		defer cancel()
		out, err := s.proc.Process(ctx, batch)
		s.cfg.Monitor.Processed(batch, out, err)
		if err != nil {
			return err
		}
		return c.Status(fiber.StatusOK).JSON(out)
	}
}

// observe reports every request's final status and duration.
func (s *Server) observe(c *fiber.Ctx) error {
	start := time.Now()
	err := c.Next()
	if err != nil {
		if herr := s.errorHandler(c, err); herr != nil {
			_ = c.SendStatus(fiber.StatusInternalServerError)
		}
	}
	name := "unknown"
	if ep, ok := c.Locals(endpointKey).(*Endpoint); ok {
		name = ep.Name
	}
	s.obs.Request(name, c.Response().StatusCode(), time.Since(start))
	return nil
}

// errorHandler is the one table from errors to status codes (docs/responses.md). A refused request (not
// verified, too large, ambiguous framing, no such endpoint or method) also closes its connection:
// whoever sent it gets no keep-alive slot to hold (issue #17).
func (s *Server) errorHandler(c *fiber.Ctx, err error) error {
	ep, _ := c.Locals(endpointKey).(*Endpoint)
	rejectStatus := fiber.StatusServiceUnavailable
	name := "unknown"
	if ep != nil {
		rejectStatus, name = ep.RejectStatus, ep.Name
	}
	var ferr *fiber.Error
	if errors.As(err, &ferr) {
		switch ferr.Code {
		case fiber.StatusRequestEntityTooLarge: // over every endpoint's limit: fasthttp refused to read it
			err = relay.Errorf(relay.ETOOLARGE, "body_too_large", "body over the limit")
		case fiber.StatusRequestTimeout: // not read within ReadTimeout: a 408 would make Twilio drop the events
			err = &relay.Error{Code: relay.EUNAVAILABLE, Reason: "read_timeout",
				Message: "request not read within the read timeout", RetryAfter: time.Second}
		default: // no such route or method (Fiber), a request fasthttp could not parse
			c.Context().SetConnectionClose()
			return c.Status(ferr.Code).JSON(errorBody{Code: strconv.Itoa(ferr.Code), Message: ferr.Message})
		}
	}
	var rerr *relay.Error
	if !errors.As(err, &rerr) {
		s.log.Error("request failed", slog.String("endpoint", name), slog.Any("error", err))
		rerr = &relay.Error{Code: relay.EINTERNAL, Reason: "internal", Message: "internal error"}
	}
	status, refused := fiber.StatusInternalServerError, true
	switch rerr.Code {
	case relay.EUNAUTHORIZED, relay.ETOOLARGE:
		status = rejectStatus
	case relay.EINVALID:
		status = fiber.StatusBadRequest
	case relay.ENOTFOUND:
		status = fiber.StatusNotFound
	case relay.EUNAVAILABLE:
		status, refused = fiber.StatusServiceUnavailable, false
	case relay.EOVERLOADED:
		status, refused = fiber.StatusTooManyRequests, false
	default:
		refused = false
	}
	if refused {
		s.refuse(c, ep, name, rerr.Reason, status)
	}
	if rerr.RetryAfter > 0 {
		c.Set(fiber.HeaderRetryAfter, strconv.Itoa(int((rerr.RetryAfter+time.Second-1)/time.Second)))
	}
	return c.Status(status).JSON(errorBody{Code: rerr.Code, Reason: rerr.Reason, Message: rerr.Message})
}

// refuse counts, records and logs (sampled) a refused request, and closes its connection after the
// answer.
func (s *Server) refuse(c *fiber.Ctx, ep *Endpoint, name, reason string, status int) {
	c.Context().SetConnectionClose()
	s.obs.Rejected(name, reason)
	if ep != nil {
		s.cfg.Monitor.Rejected(ep.refusal(c, reason))
	}
	s.refusals.refused(name, reason, slog.String("remote", c.IP()), slog.Int("status", status))
}

type errorBody struct {
	Code    string `json:"code"`
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message"`
}
