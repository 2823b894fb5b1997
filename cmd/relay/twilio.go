package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/relaykit/twilio-relay/relay"
	"github.com/relaykit/twilio-relay/relay/config"
	"github.com/relaykit/twilio-relay/relay/twilioapi"
)

const twilioUsage = `relay twilio: Twilio's side as code (Events API v1). Credentials from the environment:
TWILIO_API_KEY + TWILIO_API_SECRET, or TWILIO_ACCOUNT_SID + TWILIO_AUTH_TOKEN (for a subaccount, its
own SID and token or an API key created in it). See docs/twilio.md.

  relay twilio apply [-config F] [-endpoint A,B] [-dry-run] [-prune] [-upgrade-schemas]
        create or update each event-streams endpoint's sink and subscription; -dry-run prints the diff;
        subscribed types keep their schema version unless -upgrade-schemas (or a route's schema_versions)
  relay twilio test  [-config F] [-endpoint A] [-sink DG…] [-admin URL] [-wait 30s] [-validate auto|always|never]
        trigger the sink test, wait for the relay to receive it, validate, say which hop failed
  relay twilio types [-config F] [-endpoint A,B]
        the account's event types and schema versions against the routes and the subscriptions
`

func runTwilio(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, twilioUsage)
		return flag.ErrHelp
	}
	switch args[0] {
	case "apply":
		return runTwilioApply(args[1:], stdout, stderr)
	case "test":
		return runTwilioTest(ctx, args[1:], stdout, stderr)
	case "types":
		return runTwilioTypes(args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, twilioUsage)
		return nil
	}
	fmt.Fprint(stderr, twilioUsage)
	return fmt.Errorf("twilio: unknown command %q", args[0])
}

// twilioSetup is what every twilio command reads: the configuration, the selected event-streams
// endpoints, and a client of the Events API.
type twilioSetup struct {
	cfg    *config.Config
	eps    []twilioapi.Endpoint
	all    []string // every event-streams endpoint of the configuration
	client *twilioapi.Client
	creds  twilioapi.Credentials
}

func twilioFlags(name string, stderr io.Writer) (*flag.FlagSet, *string, *string) {
	fs := flag.NewFlagSet("twilio "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := configFlag(fs)
	only := fs.String("endpoint", "", "only these endpoints (comma-separated names); default every event-streams endpoint")
	return fs, path, only
}

func setupTwilio(path, only string) (*twilioSetup, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	s := &twilioSetup{cfg: cfg}
	want := relay.ParseList(only)
	for _, ec := range cfg.Endpoints {
		if ec.Kind == config.KindClassic {
			if slices.Contains(want, ec.Name) {
				return nil, fmt.Errorf("endpoint %s is classic: it has no Event Streams sink (set its URL as the statusCallback at Twilio)", ec.Name)
			}
			continue
		}
		s.all = append(s.all, ec.Name)
		if len(want) == 0 || slices.Contains(want, ec.Name) {
			s.eps = append(s.eps, twilioEndpoint(ec))
		}
	}
	for _, n := range want {
		if !slices.Contains(s.all, n) && !slices.ContainsFunc(cfg.Endpoints, func(e config.Endpoint) bool { return e.Name == n }) {
			return nil, fmt.Errorf("no endpoint named %q in %s", n, path)
		}
	}
	if len(s.eps) == 0 {
		return nil, errors.New("no event-streams endpoint to work on")
	}
	if s.creds, err = twilioapi.CredentialsFromEnv(os.Getenv); err != nil {
		return nil, err
	}
	s.client, err = twilioapi.New(twilioapi.Config{Credentials: s.creds, BaseURL: os.Getenv(twilioapi.EnvBaseURL)})
	return s, err
}

// twilioEndpoint turns an endpoint's configuration into what the Twilio side needs: the sink destination
// is the public URL, with user:pass@ when the endpoint takes Basic credentials (Twilio then sends them).
func twilioEndpoint(ec config.Endpoint) twilioapi.Endpoint {
	dest := ec.PublicURL
	if b := ec.BasicAuth; b != nil {
		if u, err := url.Parse(dest); err == nil {
			u.User = url.UserPassword(b.Username, b.Password)
			dest = u.String()
		}
	}
	ep := twilioapi.Endpoint{Name: ec.Name, Destination: dest, BatchEvents: true}
	if ec.Twilio.BatchEvents != nil {
		ep.BatchEvents = *ec.Twilio.BatchEvents
	}
	for _, g := range ec.Twilio.Types {
		ep.Types = append(ep.Types, relay.Glob(g))
	}
	return ep
}

// relevant selects the sinks whose subscriptions matter: the relay's own and those delivering to an
// endpoint.
func (s *twilioSetup) relevant(sink twilioapi.Sink) bool {
	if strings.HasPrefix(sink.Description, twilioapi.Marker) {
		return true
	}
	for _, ep := range s.eps {
		if twilioapi.SameDestination(sink.Destination, ep.Destination) {
			return true
		}
	}
	return false
}

// tokenWarnings says when the account's auth token, which signs the sink's requests, is missing from an
// endpoint's keyring: the relay would refuse every event.
func (s *twilioSetup) tokenWarnings(w io.Writer) {
	if s.creds.AuthToken == "" {
		return
	}
	for i, ec := range s.cfg.Endpoints {
		if ec.Kind == config.KindClassic || !slices.ContainsFunc(s.eps, func(e twilioapi.Endpoint) bool { return e.Name == ec.Name }) {
			continue
		}
		if !slices.Contains(ec.AuthTokens, s.creds.AuthToken) {
			fmt.Fprintf(w, "! endpoints[%d] (%s): TWILIO_AUTH_TOKEN is not in auth_tokens; the account's primary token signs the sink's requests, so the relay would refuse them\n", i, ec.Name)
		}
	}
}

func runTwilioApply(args []string, stdout, stderr io.Writer) error {
	fs, path, only := twilioFlags("apply", stderr)
	dry := fs.Bool("dry-run", false, "print the diff (missing +, changed ~, extra -) and change nothing")
	prune := fs.Bool("prune", false, "also delete sinks and subscriptions the relay did not create that deliver to its endpoints")
	upgrade := fs.Bool("upgrade-schemas", false, "move subscribed types that no route pins with schema_versions to the latest version of their schema")
	if err := fs.Parse(args); err != nil {
		return err
	}
	s, err := setupTwilio(*path, *only)
	if err != nil {
		return fmt.Errorf("twilio apply: %w", err)
	}
	catalog, err := s.client.Catalog()
	if err != nil {
		return fmt.Errorf("twilio apply: %w", err)
	}
	st, err := s.client.State(s.relevant)
	if err != nil {
		return fmt.Errorf("twilio apply: %w", err)
	}
	desired, err := twilioapi.Desired(s.eps, s.cfg.Router(), catalog, st, twilioapi.DesireOptions{UpgradeSchemas: *upgrade})
	if err != nil {
		return fmt.Errorf("twilio apply: the configuration names event types Twilio refuses:\n%w", err)
	}
	plan := twilioapi.MakePlan(desired, st, twilioapi.PlanOptions{Prune: *prune, Known: s.all})
	s.tokenWarnings(stdout)
	plan.Print(stdout)
	if *dry {
		fmt.Fprintf(stdout, "plan: %s (dry run: nothing changed)\n", plan.Summary())
		return nil
	}
	if !plan.Empty() {
		fmt.Fprintln(stdout, "applying:")
	}
	switch err := s.client.Apply(plan, stdout); {
	case errors.Is(err, twilioapi.ErrSinkNotActive):
		return fmt.Errorf("twilio apply: %w", err)
	case err != nil:
		return fmt.Errorf("twilio apply: %w (run it again: it picks up where it stopped)", err)
	case plan.Empty():
		fmt.Fprintf(stdout, "plan: %s\n", plan.Summary())
	default:
		fmt.Fprintf(stdout, "applied: %s\n", plan.Summary())
	}
	return nil
}

func runTwilioTypes(args []string, stdout, stderr io.Writer) error {
	fs, path, only := twilioFlags("types", stderr)
	if err := fs.Parse(args); err != nil {
		return err
	}
	s, err := setupTwilio(*path, *only)
	if err != nil {
		return fmt.Errorf("twilio types: %w", err)
	}
	catalog, err := s.client.Catalog()
	if err != nil {
		return fmt.Errorf("twilio types: %w", err)
	}
	st, err := s.client.State(s.relevant)
	if err != nil {
		return fmt.Errorf("twilio types: %w", err)
	}
	twilioapi.Types(catalog, s.eps, s.cfg.Router(), st).Print(stdout)
	return nil
}

func runTwilioTest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, path, only := twilioFlags("test", stderr)
	sink := fs.String("sink", "", "test this sink (DG…) instead of the relay's sink for the endpoint")
	admins := fs.String("admin", "", "the relay's admin listener; comma-separated for every replica behind the sink's URL "+
		"(default: admin.listen of the configuration, on 127.0.0.1 when it binds every interface)")
	wait := fs.Duration("wait", 30*time.Second, "how long to wait for the test event")
	validate := fs.String("validate", "auto", "call CreateSinkValidate: auto (when the sink is not active), always, never")
	if err := fs.Parse(args); err != nil {
		return err
	}
	s, err := setupTwilio(*path, *only)
	if err != nil {
		return fmt.Errorf("twilio test: %w", err)
	}
	if len(s.eps) != 1 {
		return fmt.Errorf("twilio test: the configuration has %d event-streams endpoints: pick one with -endpoint", len(s.eps))
	}
	bases := adminURLs(*admins)
	if len(bases) == 0 {
		bases = []string{adminBase(s.cfg.Admin.Listen)}
	}
	client := &http.Client{Timeout: 5 * time.Second}
	read := func(ctx context.Context) (*twilioapi.MonitorState, error) { return readReplicas(ctx, client, bases) }
	rep, err := s.client.SelfTest(ctx, twilioapi.SelfTestConfig{Endpoint: s.eps[0], SinkSID: *sink, Relay: read, Wait: *wait, Validate: *validate})
	if err != nil {
		return fmt.Errorf("twilio test: %w", err)
	}
	printSelfTest(stdout, rep)
	if !rep.OK {
		return fmt.Errorf("twilio test: failed at %s", rep.Hop)
	}
	return nil
}

// printSelfTest writes a self-test's steps and verdict (`relay twilio test`, the inspector's button).
func printSelfTest(w io.Writer, rep *twilioapi.SelfTestReport) {
	for _, step := range rep.Steps {
		fmt.Fprintln(w, "  "+step)
	}
	if !rep.OK {
		fmt.Fprintf(w, "FAILED at %s: %s\n", rep.Hop, rep.Problem)
		return
	}
	fmt.Fprintf(w, "OK: Twilio → sink %s → relay endpoint %s → %s (test id %s)\n", rep.SinkSID, rep.Event.Endpoint,
		strings.Join(rep.Event.Routes, ", "), rep.TestID)
}

// adminBase turns admin.listen into a URL to reach it from this machine.
func adminBase(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "http://" + listen
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// adminURL is an admin listener named on the command line: a URL as given, else a host:port read as
// adminBase reads admin.listen (":9090" is this machine's).
func adminURL(addr string) string {
	if strings.Contains(addr, "://") {
		return addr
	}
	return adminBase(addr)
}

// adminURLs is adminURL of each of a comma-separated list.
func adminURLs(list string) []string {
	bases := relay.ParseList(list)
	for i, b := range bases {
		bases[i] = adminURL(b)
	}
	return bases
}

// readReplicas reads every replica's test events and refusals and merges them: the test event reaches
// whichever replica the load balancer picks.
func readReplicas(ctx context.Context, c *http.Client, bases []string) (*twilioapi.MonitorState, error) {
	merged := &twilioapi.MonitorState{}
	for _, base := range bases {
		st, err := readTestEvents(ctx, c, base)
		if err != nil {
			return nil, err
		}
		merged.Merge(st)
	}
	return merged, nil
}

func readTestEvents(ctx context.Context, c *http.Client, base string) (*twilioapi.MonitorState, error) {
	var st twilioapi.MonitorState
	if err := adminGet(ctx, c, base, "/twilio/test-events", &st); err != nil {
		return nil, fmt.Errorf("%w (is it the relay's admin listener, of a version with /twilio/test-events?)", err)
	}
	return &st, nil
}
