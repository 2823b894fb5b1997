package config

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/relaykit/twilio-relay/relay"
)

var nameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$`)

// validate checks everything and compiles the routes; it returns every problem found.
func (c *Config) validate() []error {
	var errs []error
	bad := func(path, format string, args ...any) {
		errs = append(errs, &ruleError{path: path, msg: fmt.Sprintf(format, args...)})
	}
	hostPort := func(path, v string) {
		_, port, err := net.SplitHostPort(v)
		if n, perr := strconv.Atoi(port); err != nil || perr != nil || n < 0 || n > 65535 {
			bad(path, "%q is not host:port (write :8080 for every interface)", v)
		}
	}
	hostPort("listen", c.Listen)
	hostPort("admin.listen", c.Admin.Listen)
	if c.Listen == c.Admin.Listen && !strings.HasSuffix(c.Listen, ":0") {
		bad("admin.listen", "must differ from listen")
	}
	for i, h := range c.Admin.AllowedHosts {
		if strings.ContainsAny(h, "/@ ") {
			bad(fmt.Sprintf("admin.allowed_hosts[%d]", i), "%q is not a host name (no scheme, path or user)", h)
		}
	}
	if a := c.Admin.Auth; a.Username != "" && a.Password == "" || a.Username == "" && a.Password != "" {
		bad("admin.auth", "set both username and password, or neither")
	}
	if t := c.Admin.Auth.Token; t != "" && len(t) < 16 {
		bad("admin.auth.token", "must be at least 16 characters (openssl rand -hex 32 makes one)")
	}
	for _, e := range c.InspectorConfig().Validate() {
		bad("inspector", "%v", e)
	}
	oneOf(bad, "log.level", c.Log.Level, "debug", "info", "warn", "error")
	oneOf(bad, "log.format", c.Log.Format, "json", "text")
	oneOf(bad, "no_route", c.NoRoute, "dead_letter", "drop")

	if d := time.Duration(c.Limits.RequestDeadline); d <= 0 || d >= 5*time.Second {
		bad("limits.request_deadline", "%s must be above 0 and below Twilio's 5s timeout", d)
	} else if c.Limits.AttemptTimeout < c.Limits.RequestDeadline {
		bad("limits.attempt_timeout", "%s must be at least limits.request_deadline (%s): an attempt cut short may still land, unknown to the relay",
			time.Duration(c.Limits.AttemptTimeout), d)
	}
	for path, d := range map[string]relay.Duration{"limits.read_timeout": c.Limits.ReadTimeout,
		"limits.idle_timeout": c.Limits.IdleTimeout, "limits.shutdown_timeout": c.Limits.ShutdownTimeout} {
		if d < 0 {
			bad(path, "must not be negative")
		}
	}
	if c.Limits.MaxInFlight < 1 {
		bad("limits.max_in_flight", "must be at least 1")
	}
	if c.Limits.MaxConnections < 1 {
		bad("limits.max_connections", "must be at least 1")
	}
	if c.Limits.MaxEvents < 1 {
		bad("limits.max_events", "must be at least 1")
	}
	if c.Limits.MaxLateWrites < 1 {
		bad("limits.max_late_writes", "must be at least 1")
	}
	if c.Retry.Initial <= 0 || c.Retry.Max < c.Retry.Initial {
		bad("retry", "initial must be above 0 and max at least initial")
	}
	if c.Retry.Multiplier < 1 {
		bad("retry.multiplier", "must be at least 1")
	}
	if c.Preflight.Interval < relay.Duration(time.Second) {
		bad("preflight.interval", "must be at least 1s")
	}
	if c.Preflight.Timeout <= 0 {
		bad("preflight.timeout", "must be above 0")
	}
	if c.Dedupe.Window <= 0 {
		bad("dedupe.window", "must be above 0")
	}
	if c.Dedupe.MaxIDs < 1 {
		bad("dedupe.max_ids", "must be at least 1")
	}
	if sh := c.Dedupe.Shared; sh != nil {
		if sh.Redis == nil {
			bad("dedupe.shared", "set redis")
		} else {
			for _, e := range sh.Redis.Validate() {
				bad("dedupe.shared.redis", "%v", e)
			}
		}
	}

	errs = append(errs, c.validateEndpoints()...)
	if len(c.Sinks) == 0 {
		bad("sinks", "at least one sink is required")
	}
	names := map[string]bool{}
	for i, s := range c.Sinks {
		p := fmt.Sprintf("sinks[%d]", i)
		checkName(bad, p+".name", s.Name, names)
		set := s.kinds()
		for _, k := range set {
			for _, e := range k.validate(&s) {
				bad(p+"."+k.name, "%v", e)
			}
		}
		if len(set) != 1 {
			bad(p, "set exactly one sink kind (%s); %d are set", strings.Join(SinkKinds(), ", "), len(set))
		}
	}
	sinks := c.sinkNames()
	if !sinks[c.DeadLetter.Sink] {
		bad("dead_letter.sink", "%q names no sink", c.DeadLetter.Sink)
	}
	if c.DeadLetter.Topic == "" || strings.ContainsAny(c.DeadLetter.Topic, "{}") {
		bad("dead_letter.topic", "a literal topic is required")
	}
	_, routeErrs := c.compileRoutes(sinks)
	errs = append(errs, routeErrs...)
	spooled := c.Spool.Sinks
	for _, n := range spooled {
		if n != "*" && !sinks[n] {
			bad("spool.sinks", "%q names no sink", n)
		}
	}
	if len(spooled) > 0 && c.Spool.Dir == "" {
		bad("spool.dir", "required when spool.sinks is set")
	}
	if len(spooled) > 0 && c.Spool.MaxBytes < 1<<20 {
		bad("spool.max_bytes", "must be at least 1MiB")
	}
	if len(spooled) > 0 && (c.Spool.Reserve <= 0 || c.Spool.Reserve >= c.Limits.RequestDeadline) {
		bad("spool.reserve", "%s must be above 0 and below limits.request_deadline", time.Duration(c.Spool.Reserve))
	}
	return errs
}

func (c *Config) validateEndpoints() []error {
	var errs []error
	bad := func(path, format string, args ...any) {
		errs = append(errs, &ruleError{path: path, msg: fmt.Sprintf(format, args...)})
	}
	if len(c.Endpoints) == 0 {
		bad("endpoints", "at least one endpoint is required")
	}
	names, paths := map[string]bool{}, map[string]bool{}
	for i, ep := range c.Endpoints {
		p := fmt.Sprintf("endpoints[%d]", i)
		checkName(bad, p+".name", ep.Name, names)
		switch {
		case len(ep.Path) == 0 || ep.Path[0] != '/':
			bad(p+".path", "%q must start with /", ep.Path)
		case paths[ep.Path]:
			bad(p+".path", "%q is used by another endpoint", ep.Path)
		}
		paths[ep.Path] = true
		if u, err := url.Parse(ep.PublicURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			bad(p+".public_url", "%q is not an absolute http(s) URL: set it to the sink destination Twilio calls", ep.PublicURL)
		} else if u.RawQuery != "" || u.ForceQuery || strings.ContainsAny(ep.PublicURL, "?#") || u.User != nil {
			bad(p+".public_url", "must have no query, fragment or user:pass@ (the relay verifies the query it receives; credentials go in basic_auth)")
		}
		if len(ep.AuthTokens) == 0 {
			bad(p+".auth_tokens", "at least one auth token is required to verify X-Twilio-Signature")
		}
		if ep.BasicAuth != nil && (ep.BasicAuth.Username == "" || ep.BasicAuth.Password == "") {
			bad(p+".basic_auth", "username and password are both required")
		}
		if s, ok := ep.AllowedCIDRs.invalid(); ok {
			bad(p+".allowed_cidrs", "%q is not a CIDR prefix or an address", s)
		}
		if s, ok := ep.TrustedProxies.invalid(); ok {
			bad(p+".trusted_proxies", "%q is not a CIDR prefix or an address", s)
		}
		if ep.ClientIPHeader != "" && len(ep.TrustedProxies) == 0 {
			bad(p+".client_ip_header", "is believed only from trusted_proxies: list them")
		}
		if ep.MaxBody < 1<<10 || ep.MaxBody > 64<<20 {
			bad(p+".max_body", "%d is outside 1KiB..64MiB", ep.MaxBody)
		}
		oneOf(bad, p+".data", ep.Data, "normalize", "keep")
		oneOf(bad, p+".kind", ep.Kind, KindEventStreams, KindClassic)
		if ep.Kind == KindClassic && (ep.Twilio.BatchEvents != nil || len(ep.Twilio.Types) > 0) {
			bad(p+".twilio", "a classic endpoint has no Event Streams sink: set its URL as the statusCallback (or Debugger webhook) at Twilio instead")
		}
		if ep.RejectStatus < 400 || ep.RejectStatus > 599 {
			bad(p+".reject_status", "%d is not a 4xx or 5xx status", ep.RejectStatus)
		}
	}
	return errs
}

// compileRoutes compiles the routes into a router, and checks them against the sinks there are. It
// writes nothing: validation keeps the errors, Router the router.
func (c *Config) compileRoutes(sinks map[string]bool) (relay.Router, []error) {
	var errs []error
	bad := func(path, format string, args ...any) {
		errs = append(errs, &ruleError{path: path, msg: fmt.Sprintf(format, args...)})
	}
	names := map[string]bool{}
	var router relay.Router
	for i, r := range c.Routes {
		p := fmt.Sprintf("routes[%d]", i)
		checkName(bad, p+".name", r.Name, names)
		rt := relay.Route{Name: r.Name, Continue: r.Continue, Match: relay.Match{
			Types: globs(r.Match.Types), Sources: globs(r.Match.Sources), DataSchemas: globs(r.Match.DataSchemas),
			Endpoints: globs(r.Match.Endpoints), SchemaVersions: r.Match.SchemaVersions,
		}}
		for j, w := range r.Match.When {
			wp := fmt.Sprintf("%s.match.when[%d]", p, j)
			if err := relay.CheckFieldName(w.Field); err != nil {
				bad(wp+".field", "%q is not a field name such as data.status or subject", w.Field)
			}
			set := 0
			for _, ok := range []bool{w.Equals != nil, len(w.In) > 0, w.Glob != "", w.Exists != nil} {
				if ok {
					set++
				}
			}
			if set != 1 {
				bad(wp, "set exactly one of equals, in, glob, exists")
			}
			cond := relay.Condition{Field: w.Field, In: w.In, Glob: relay.Glob(w.Glob), Exists: w.Exists}
			if w.Equals != nil {
				cond.Equals = *w.Equals
			}
			rt.Match.Conditions = append(rt.Match.Conditions, cond)
		}
		if len(r.To) == 0 {
			bad(p+".to", "at least one target is required")
		}
		for j, t := range r.To {
			tp := fmt.Sprintf("%s.to[%d]", p, j)
			if !sinks[t.Sink] {
				bad(tp+".sink", "%q names no sink", t.Sink)
			}
			topic, err := relay.ParseTemplate(t.Topic)
			switch {
			case t.Topic == "":
				bad(tp+".topic", "a topic template is required")
			case err != nil:
				bad(tp+".topic", "%v", err)
			}
			var key relay.Template
			if t.Key != "" {
				if key, err = relay.ParseTemplate(t.Key); err != nil {
					bad(tp+".key", "%v", err)
				}
			}
			rt.Targets = append(rt.Targets, relay.Target{Sink: t.Sink, Topic: topic, Key: key})
		}
		router.Routes = append(router.Routes, rt)
	}
	return router, errs
}

// sinkNames is the set of the sinks' names.
func (c *Config) sinkNames() map[string]bool {
	names := make(map[string]bool, len(c.Sinks))
	for _, s := range c.Sinks {
		names[s.Name] = true
	}
	return names
}

func globs(in []string) []relay.Glob {
	out := make([]relay.Glob, len(in))
	for i, s := range in {
		out[i] = relay.Glob(s)
	}
	return out
}

func checkName(bad func(string, string, ...any), path, name string, seen map[string]bool) {
	switch {
	case !nameRE.MatchString(name):
		bad(path, "%q must be 1-63 letters, digits, '_', '-' or '.'", name)
	case seen[name]:
		bad(path, "%q is used twice", name)
	}
	seen[name] = true
}

func oneOf(bad func(string, string, ...any), path, v string, allowed ...string) {
	for _, a := range allowed {
		if v == a {
			return
		}
	}
	bad(path, "%q is not one of %v", v, allowed)
}
