// Package config reads the relay's YAML configuration: strictly (an unknown key is an error), with
// ${ENV} expansion in values, defaults set in one place, and every problem reported at once with its
// path. Loading has no side effects: it reads no file other than the configuration and opens nothing.
package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"time"

	"github.com/relaykit/twilio-relay/relay"
	"github.com/relaykit/twilio-relay/relay/filesink"
	"github.com/relaykit/twilio-relay/relay/httpsink"
	"github.com/relaykit/twilio-relay/relay/inspector"
	"github.com/relaykit/twilio-relay/relay/kafka"
	"github.com/relaykit/twilio-relay/relay/nats"
	"github.com/relaykit/twilio-relay/relay/redis"
	"go.yaml.in/yaml/v3"
)

// Config is the whole configuration file.
type Config struct {
	// Listen is the address of the webhook listener.
	Listen string `yaml:"listen"`
	Admin  Admin  `yaml:"admin"`
	Log    Log    `yaml:"log"`
	Limits Limits `yaml:"limits"`
	Retry  Retry  `yaml:"retry"`
	Dedupe Dedupe `yaml:"dedupe"`

	Endpoints []Endpoint `yaml:"endpoints"`
	Sinks     []Sink     `yaml:"sinks"`
	Routes    []Route    `yaml:"routes"`
	// NoRoute is what happens to an event no route matches: "dead_letter" (default) or "drop".
	NoRoute    string     `yaml:"no_route"`
	DeadLetter DeadLetter `yaml:"dead_letter"`
	Spool      Spool      `yaml:"spool"`
	Inspector  Inspector  `yaml:"inspector"`
	Preflight  Preflight  `yaml:"preflight"`
}

// Preflight configures the checks of the sinks (relay.Checker) that serve runs when it starts and then
// periodically for /readyz; `relay check -connect` runs them once.
type Preflight struct {
	// Interval is the time between runs while no check fails; while one does, runs come every
	// min(interval, 5s), so that a fix is seen soon.
	Interval relay.Duration `yaml:"interval"`
	// Timeout bounds one run of every sink's checks.
	Timeout relay.Duration `yaml:"timeout"`
}

// Admin configures the admin listener: /healthz, /readyz, /metrics, /spool, the inspector and, when
// enabled, /debug/pprof.
type Admin struct {
	Listen string `yaml:"listen"`
	Pprof  bool   `yaml:"pprof"`
	// AllowedHosts are names (a Service's DNS name) the admin listener answers to besides IP addresses,
	// localhost, the machine's host name and listen's host: requests with another Host are refused
	// (DNS rebinding).
	AllowedHosts relay.List `yaml:"allowed_hosts"`
	// Auth, when it sets a token or a user name, is required for everything on the admin listener but
	// /healthz and /readyz (the kubelet's probes).
	Auth AdminAuth `yaml:"auth"`
}

// AdminAuth holds the admin listener's credentials: a bearer token, Basic credentials, or both. Either
// is accepted; a browser may send the token as the Basic password with any user name.
type AdminAuth struct {
	Token    string `yaml:"token"`
	Username string `yaml:"username"`
	Password string `yaml:"password"`
}

// On reports whether the admin listener requires credentials.
func (a AdminAuth) On() bool { return a.Token != "" || a.Username != "" }

// Inspector configures the record of recent events and refusals behind the admin listener's page and
// /api/ (docs/inspector.md).
type Inspector struct {
	// Enabled turns the record, the page and /api/ on (the default) or off.
	Enabled *bool `yaml:"enabled"`
	// MaxEvents and MaxBytes bound the record of events: the oldest go first.
	MaxEvents int            `yaml:"max_events"`
	MaxBytes  relay.ByteSize `yaml:"max_bytes"`
	// MaxRefusals bounds the record of refused requests.
	MaxRefusals int `yaml:"max_refusals"`
	// KeepData keeps each event's data, with the Redact paths replaced: off by default (personal data).
	KeepData bool     `yaml:"keep_data"`
	Redact   []string `yaml:"redact"`
	// AllowReplay lets the page replay the dead letters of a file dead-letter sink.
	AllowReplay bool `yaml:"allow_replay"`
}

// On reports whether the inspector is enabled.
func (i Inspector) On() bool { return i.Enabled == nil || *i.Enabled }

// Log configures the structured log.
type Log struct {
	Level  string `yaml:"level"`  // debug, info (default), warn, error
	Format string `yaml:"format"` // json (default) or text
}

// Limits bound the work the relay accepts.
type Limits struct {
	RequestDeadline relay.Duration `yaml:"request_deadline"`
	MaxInFlight     int            `yaml:"max_in_flight"`
	ReadTimeout     relay.Duration `yaml:"read_timeout"`
	IdleTimeout     relay.Duration `yaml:"idle_timeout"`
	ShutdownTimeout relay.Duration `yaml:"shutdown_timeout"`
	// MaxConnections bounds the connections the webhook listener serves at once, idle keep-alive ones
	// included; one more is answered 503 and closed before its request is read.
	MaxConnections int `yaml:"max_connections"`
	// MaxEvents bounds the elements of one request body: a longer JSON array is dead-lettered whole.
	MaxEvents int `yaml:"max_events"`
	// AttemptTimeout bounds one write attempt to a sink. An attempt still in flight at the request
	// deadline goes on until it ends or this passes, so that its outcome counts (docs/dedupe.md).
	AttemptTimeout relay.Duration `yaml:"attempt_timeout"`
	// MaxLateWrites bounds the requests whose writes outlive their deadline at once; past it, new
	// requests are answered 503.
	MaxLateWrites int `yaml:"max_late_writes"`
}

// Retry is the backoff between attempts to write to a sink, inside the request deadline.
type Retry struct {
	Initial    relay.Duration `yaml:"initial"`
	Max        relay.Duration `yaml:"max"`
	Multiplier float64        `yaml:"multiplier"`
}

// Dedupe sizes the memory of delivered event ids.
type Dedupe struct {
	Window relay.Duration `yaml:"window"`
	MaxIDs int64          `yaml:"max_ids"`
	// Shared, when set, is a dedupe tier shared by the replicas, behind the in-process cache.
	Shared *SharedDedupe `yaml:"shared"`
	// Snapshot is the file the remembered ids are written to on graceful shutdown and read from at start;
	// by default dedupe.snapshot in spool.dir when the spool is on, else none.
	Snapshot string `yaml:"snapshot"`
}

// SharedDedupe configures the shared dedupe tier.
type SharedDedupe struct {
	Redis *redis.DedupeConfig `yaml:"redis"`
}

// Endpoint is one path Twilio posts to.
type Endpoint struct {
	Name      string `yaml:"name"`
	Path      string `yaml:"path"`
	PublicURL string `yaml:"public_url"`
	// AuthTokens is the keyring; an entry may hold several tokens, comma-separated.
	AuthTokens     relay.List     `yaml:"auth_tokens"`
	BasicAuth      *BasicAuth     `yaml:"basic_auth"`
	AllowedCIDRs   Prefixes       `yaml:"allowed_cidrs"`
	ClientIPHeader string         `yaml:"client_ip_header"`
	TrustedProxies Prefixes       `yaml:"trusted_proxies"`
	MaxBody        relay.ByteSize `yaml:"max_body"`
	// Data is "normalize" (default: data that arrives as a JSON-encoded string becomes JSON) or "keep".
	Data         string `yaml:"data"`
	RejectStatus int    `yaml:"reject_status"`
	// Kind is "event-streams" (default: an Event Streams webhook sink posts JSON CloudEvents) or
	// "classic" (form-encoded status callbacks and the Debugger webhook; see docs/twilio.md).
	Kind string `yaml:"kind"`
	// Twilio is what `relay twilio apply` creates at Twilio for an event-streams endpoint.
	Twilio EndpointTwilio `yaml:"twilio"`
}

// EndpointTwilio describes the Event Streams sink and subscription `relay twilio apply` keeps for an
// endpoint.
type EndpointTwilio struct {
	// BatchEvents is the sink's batch_events: several events per request (true, the default) or one.
	BatchEvents *bool `yaml:"batch_events"`
	// Types, when set, narrows the subscription to the event types matching one of these globs (and a
	// route); by default the subscription holds every type a route matches.
	Types []string `yaml:"types"`
}

// Endpoint kinds.
const (
	KindEventStreams = "event-streams"
	KindClassic      = "classic"
)

// BasicAuth holds the credentials Twilio sends when the sink URL carries user:pass@.
type BasicAuth struct {
	Username string `yaml:"username"`
	Password string `yaml:"password"`
}

// Sink is one named destination; exactly one kind is set (see Kind).
type Sink struct {
	Name  string           `yaml:"name"`
	Kafka *kafka.Config    `yaml:"kafka"`
	File  *filesink.Config `yaml:"file"`
	HTTP  *httpsink.Config `yaml:"http"`
	NATS  *nats.Config     `yaml:"nats"`
	Redis *redis.Config    `yaml:"redis"`
}

// sinkKinds are the kinds of sink, in the order messages name them. Adding a kind is a field in Sink, a
// line here, and its constructor in cmd/relay's table.
var sinkKinds = []sinkKind{
	kind("kafka", func(s *Sink) **kafka.Config { return &s.Kafka }),
	kind("file", func(s *Sink) **filesink.Config { return &s.File }),
	kind("http", func(s *Sink) **httpsink.Config { return &s.HTTP }),
	kind("nats", func(s *Sink) **nats.Config { return &s.NATS }),
	kind("redis", func(s *Sink) **redis.Config { return &s.Redis }),
}

// sinkKind is what the configuration does with one kind: tell whether a Sink sets it, fill in its
// defaults, check it.
type sinkKind struct {
	name     string
	set      func(*Sink) bool
	defaults func(*Sink)
	validate func(*Sink) []error
}

// kind describes the kind whose configuration, of type C, is the field of a Sink that field returns. C
// keeps its own defaults and checks next to its type.
func kind[C interface {
	Defaults() C
	Validate() []error
}](name string, field func(*Sink) **C) sinkKind {
	return sinkKind{
		name:     name,
		set:      func(s *Sink) bool { return *field(s) != nil },
		defaults: func(s *Sink) { c := *field(s); *c = (*c).Defaults() },
		validate: func(s *Sink) []error { return (**field(s)).Validate() },
	}
}

// SinkKinds returns the names of the kinds of sink ("kafka", "file" …).
func SinkKinds() []string {
	names := make([]string, len(sinkKinds))
	for i, k := range sinkKinds {
		names[i] = k.name
	}
	return names
}

// kinds returns the kinds s sets: one in a valid configuration.
func (s *Sink) kinds() []sinkKind {
	var set []sinkKind
	for _, k := range sinkKinds {
		if k.set(s) {
			set = append(set, k)
		}
	}
	return set
}

// Kind returns the name of the one kind s sets, or "" when it sets none or several (which Parse refuses).
func (s *Sink) Kind() string {
	if set := s.kinds(); len(set) == 1 {
		return set[0].name
	}
	return ""
}

// Route is one routing rule.
type Route struct {
	Name     string   `yaml:"name"`
	Match    Match    `yaml:"match"`
	To       []Target `yaml:"to"`
	Continue bool     `yaml:"continue"`
}

// Match selects events; see relay.Match.
type Match struct {
	Types          []string    `yaml:"types"`
	Sources        []string    `yaml:"sources"`
	DataSchemas    []string    `yaml:"dataschemas"`
	Endpoints      []string    `yaml:"endpoints"`
	SchemaVersions []int       `yaml:"schema_versions"`
	When           []Condition `yaml:"when"`
}

// Condition tests one field; set exactly one of equals, in, glob, exists.
type Condition struct {
	Field  string   `yaml:"field"`
	Equals *string  `yaml:"equals"`
	In     []string `yaml:"in"`
	Glob   string   `yaml:"glob"`
	Exists *bool    `yaml:"exists"`
}

// Target is a destination of a route.
type Target struct {
	Sink  string `yaml:"sink"`
	Topic string `yaml:"topic"`
	Key   string `yaml:"key"`
}

// DeadLetter is where events that can never be delivered go.
type DeadLetter struct {
	Sink  string `yaml:"sink"`
	Topic string `yaml:"topic"`
}

// Spool configures the durable spool: where it lives, how much it may hold, and which sinks use it.
type Spool struct {
	// Dir holds the spool file; required when any sink spools.
	Dir string `yaml:"dir"`
	// MaxBytes bounds the spool; when full the relay answers 503 and Twilio keeps the events.
	MaxBytes relay.ByteSize `yaml:"max_bytes"`
	// Reserve is the end part of each request's deadline kept for writing to the spool.
	Reserve relay.Duration `yaml:"reserve"`
	// Sinks lists the sinks that spool, by name (entries may be comma-separated); "*" stands for every
	// sink. Empty: no spool.
	Sinks relay.List `yaml:"sinks"`
}

// SpoolSinks returns the set of sinks that spool.
func (c *Config) SpoolSinks() map[string]bool {
	out := map[string]bool{}
	for _, n := range c.Spool.Sinks {
		if n == "*" {
			for _, s := range c.Sinks {
				out[s.Name] = true
			}
			continue
		}
		out[n] = true
	}
	return out
}

// Errors is every problem found in a configuration.
type Errors []error

func (es Errors) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d problem(s) in the configuration:", len(es))
	for _, e := range es {
		b.WriteString("\n  - ")
		b.WriteString(e.Error())
	}
	return b.String()
}

// Load reads and parses the file at path with the process environment.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(data, os.LookupEnv)
}

// Parse parses a configuration, expanding ${ENV} with env. On failure the error is an Errors.
func Parse(data []byte, env func(string) (string, bool)) (*Config, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, Errors{fmt.Errorf("not valid YAML: %w", err)}
	}
	if root.Kind == 0 {
		return nil, Errors{errors.New("the file is empty")}
	}
	var errs []error
	checkKnown(&root, reflect.TypeFor[Config](), "", &errs)
	expandEnv(&root, "", env, &errs)
	checkText(&root, reflect.TypeFor[Config](), "", &errs)
	checkTypes(&root, reflect.TypeFor[Config](), "", &errs)
	var c Config
	if err := root.Decode(&c); err != nil {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			for _, e := range te.Errors {
				errs = append(errs, errors.New(e))
			}
		} else {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return nil, Errors(errs)
	}
	c.setDefaults()
	if errs := c.validate(); len(errs) > 0 {
		for _, e := range errs {
			if re, ok := e.(*ruleError); ok {
				re.line = lineAt(&root, re.path)
			}
		}
		return nil, Errors(errs)
	}
	return &c, nil
}

// setDefaults fills in every default; this is the one place they live.
func (c *Config) setDefaults() {
	str := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	dur := func(d *relay.Duration, v time.Duration) {
		if *d == 0 {
			*d = relay.Duration(v)
		}
	}
	str(&c.Listen, ":8080")
	str(&c.Admin.Listen, ":9090")
	str(&c.Log.Level, "info")
	str(&c.Log.Format, "json")
	dur(&c.Limits.RequestDeadline, 4*time.Second)
	dur(&c.Limits.ReadTimeout, 10*time.Second)
	dur(&c.Limits.IdleTimeout, 60*time.Second)
	dur(&c.Limits.ShutdownTimeout, 20*time.Second)
	if c.Limits.MaxInFlight == 0 {
		c.Limits.MaxInFlight = 4096
	}
	if c.Limits.MaxConnections == 0 {
		c.Limits.MaxConnections = 10_000
	}
	if c.Limits.MaxEvents == 0 {
		c.Limits.MaxEvents = 10_000
	}
	dur(&c.Limits.AttemptTimeout, relay.DefaultAttemptTimeout)
	if c.Limits.MaxLateWrites == 0 {
		c.Limits.MaxLateWrites = relay.DefaultMaxLateWrites
	}
	dur(&c.Retry.Initial, time.Duration(relay.DefaultBackoff.Initial))
	dur(&c.Retry.Max, time.Duration(relay.DefaultBackoff.Max))
	if c.Retry.Multiplier == 0 {
		c.Retry.Multiplier = relay.DefaultBackoff.Multiplier
	}
	dur(&c.Dedupe.Window, 4*time.Hour)
	if c.Dedupe.MaxIDs == 0 {
		c.Dedupe.MaxIDs = 1_500_000
	}
	str(&c.NoRoute, "dead_letter")
	if c.Spool.MaxBytes == 0 {
		c.Spool.MaxBytes = 1 << 30
	}
	dur(&c.Spool.Reserve, 500*time.Millisecond)
	if c.Dedupe.Snapshot == "" && len(c.Spool.Sinks) > 0 && c.Spool.Dir != "" {
		c.Dedupe.Snapshot = filepath.Join(c.Spool.Dir, DedupeSnapshotFile)
	}
	dur(&c.Preflight.Interval, 30*time.Second)
	dur(&c.Preflight.Timeout, 10*time.Second)
	ic := inspector.Config{MaxEvents: c.Inspector.MaxEvents, MaxBytes: int64(c.Inspector.MaxBytes),
		MaxRefusals: c.Inspector.MaxRefusals, Redact: c.Inspector.Redact}.Defaults()
	c.Inspector.MaxEvents, c.Inspector.MaxBytes, c.Inspector.MaxRefusals, c.Inspector.Redact =
		ic.MaxEvents, relay.ByteSize(ic.MaxBytes), ic.MaxRefusals, ic.Redact
	for i := range c.Endpoints {
		ep := &c.Endpoints[i]
		str(&ep.Data, "normalize")
		str(&ep.Kind, KindEventStreams)
		if ep.Kind == KindEventStreams && ep.Twilio.BatchEvents == nil {
			batch := true
			ep.Twilio.BatchEvents = &batch
		}
		if ep.MaxBody == 0 {
			ep.MaxBody = 1 << 20
		}
		if ep.RejectStatus == 0 {
			ep.RejectStatus = 503
		}
	}
	for i := range c.Sinks { // each kind keeps its own defaults next to its configuration type
		for _, k := range c.Sinks[i].kinds() {
			k.defaults(&c.Sinks[i])
		}
	}
	if sh := c.Dedupe.Shared; sh != nil && sh.Redis != nil {
		*sh.Redis = sh.Redis.Defaults()
	}
}

// DedupeSnapshotFile is the dedupe snapshot's name in the spool directory.
const DedupeSnapshotFile = "dedupe.snapshot"

// InspectorConfig returns the inspector's record configuration.
func (c *Config) InspectorConfig() inspector.Config {
	i := c.Inspector
	return inspector.Config{MaxEvents: i.MaxEvents, MaxBytes: int64(i.MaxBytes), MaxRefusals: i.MaxRefusals,
		KeepData: i.KeepData, Redact: i.Redact, DeadLetterSink: c.DeadLetter.Sink}
}

// Backoff returns the retry policy.
func (c *Config) Backoff() relay.Backoff {
	return relay.Backoff{Initial: time.Duration(c.Retry.Initial), Max: time.Duration(c.Retry.Max), Multiplier: c.Retry.Multiplier}
}

// Router returns the routes compiled: the relay's router. Parse has checked them, so on a Config it
// returned nothing is left out.
func (c *Config) Router() *relay.Router {
	r, _ := c.compileRoutes(c.sinkNames())
	return &r
}

// NoRoutePolicy returns the policy for events no route matches.
func (c *Config) NoRoutePolicy() relay.NoRoutePolicy {
	if c.NoRoute == "drop" {
		return relay.NoRouteDrop
	}
	return relay.NoRouteDeadLetter
}
