// Package twilioapi keeps Twilio's side of the relay as code, through the Events API v1 (twilio-go
// rest/events/v1): it plans and applies the webhook Sink and the Subscription of each endpoint, lists the
// event types an account offers against the routes, and runs the end-to-end sink self-test.
//
// Everything it creates carries a description starting "twilio-relay:<endpoint>" (Marker; a sink's adds
// a record of what Twilio may not echo, sink.go); it never deletes a resource without that mark unless
// told to prune. It subscribes only what an event type's lifecycle status allows (lifecycle.go), and keeps
// the schema versions its subscriptions hold unless told to move them (desired.go).
package twilioapi

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/twilio/twilio-go/client"
	events "github.com/twilio/twilio-go/rest/events/v1"
)

// Environment variables read by CredentialsFromEnv and BaseURLFromEnv.
const (
	EnvAccountSID = "TWILIO_ACCOUNT_SID"
	EnvAuthToken  = "TWILIO_AUTH_TOKEN"
	EnvAPIKey     = "TWILIO_API_KEY"
	EnvAPISecret  = "TWILIO_API_SECRET"
	// EnvBaseURL sends every Events API request to another scheme and host (a local fake, a proxy).
	EnvBaseURL = "RELAY_TWILIO_API_URL"
)

// ErrNoCredentials is returned when the environment holds neither an API key and secret nor an account
// SID and auth token.
var ErrNoCredentials = errors.New("twilioapi: no credentials: set TWILIO_API_KEY and TWILIO_API_SECRET, or TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN")

// Credentials authenticate to the Events API. The Events API has no account in its URLs: it acts on the
// account the credentials belong to. For a subaccount, use the subaccount's SID and auth token, or an
// API key created in that subaccount.
type Credentials struct {
	AccountSID string
	AuthToken  string
	APIKey     string
	APISecret  string
}

// CredentialsFromEnv reads the credentials from the environment: an API key and secret when both are
// set (preferred: they can be revoked alone), else the account SID and auth token.
func CredentialsFromEnv(getenv func(string) string) (Credentials, error) {
	c := Credentials{AccountSID: getenv(EnvAccountSID), AuthToken: getenv(EnvAuthToken),
		APIKey: getenv(EnvAPIKey), APISecret: getenv(EnvAPISecret)}
	if (c.APIKey != "" && c.APISecret != "") || (c.AccountSID != "" && c.AuthToken != "") {
		return c, nil
	}
	return c, ErrNoCredentials
}

func (c Credentials) basic() (user, pass string) {
	if c.APIKey != "" && c.APISecret != "" {
		return c.APIKey, c.APISecret
	}
	return c.AccountSID, c.AuthToken
}

// Config configures a Client.
type Config struct {
	Credentials Credentials
	// BaseURL, when set, replaces the scheme and host of every request (twilio-go's base URL is fixed),
	// and TWILIO_EDGE / TWILIO_REGION are ignored.
	BaseURL string
	// PageSize is the page size of list requests (default 100; Twilio allows up to 1000).
	PageSize int
	// Timeout bounds each request (default 30s).
	Timeout time.Duration
	// Transport, when set, carries the requests (default http.DefaultTransport).
	Transport http.RoundTripper
}

// Client talks to the Events API.
type Client struct {
	api      *events.ApiService
	creds    Credentials
	pageSize int
}

// New returns a Client. It sends nothing yet.
func New(cfg Config) (*Client, error) {
	user, pass := cfg.Credentials.basic()
	if user == "" || pass == "" {
		return nil, ErrNoCredentials
	}
	if cfg.PageSize <= 0 {
		cfg.PageSize = 100
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	transport := cfg.Transport
	if transport == nil {
		transport = http.DefaultTransport
	}
	if cfg.BaseURL != "" {
		base, err := url.Parse(cfg.BaseURL)
		if err != nil || base.Host == "" || (base.Scheme != "http" && base.Scheme != "https") {
			return nil, fmt.Errorf("twilioapi: base URL %q is not an http(s) URL", cfg.BaseURL)
		}
		transport = &RewriteTransport{Scheme: base.Scheme, Host: base.Host, Next: transport}
	}
	tc := &client.Client{
		Credentials: client.NewCredentials(user, pass),
		HTTPClient: &http.Client{Transport: transport, Timeout: cfg.Timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
	}
	tc.SetAccountSid(cfg.Credentials.AccountSID)
	tc.UserAgentExtensions = []string{"twilio-relay"}
	handler := client.NewRequestHandler(tc)
	if cfg.BaseURL != "" {
		handler.Edge, handler.Region = "", "" // they would rewrite the host the transport expects
	}
	return &Client{api: events.NewApiService(handler), creds: cfg.Credentials, pageSize: cfg.PageSize}, nil
}

// RewriteTransport sends every request to Scheme://Host instead of the URL's own scheme and host,
// keeping the path and query: the way to reach a local fake of a Twilio API with twilio-go, whose base
// URLs are fixed, or to deliver to a relay whose public URL is not reachable from a test.
type RewriteTransport struct {
	Scheme, Host string
	Next         http.RoundTripper
}

// RoundTrip implements http.RoundTripper.
func (t *RewriteTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r2 := r.Clone(r.Context())
	r2.URL.Scheme, r2.URL.Host, r2.Host = t.Scheme, t.Host, t.Host
	next := t.Next
	if next == nil {
		next = http.DefaultTransport
	}
	return next.RoundTrip(r2)
}

// APIError returns the Twilio error in err's chain, if any: its HTTP status, Twilio error code and
// message.
func APIError(err error) (*client.TwilioRestError, bool) {
	var te *client.TwilioRestError
	ok := errors.As(err, &te)
	return te, ok
}
