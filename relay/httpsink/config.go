package httpsink

import (
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
	"time"

	"github.com/relaykit/twilio-relay/relay"
	"github.com/relaykit/twilio-relay/relay/tlsconfig"
)

// SecretPrefix starts a Standard Webhooks signing secret: "whsec_" and the base64 of the key.
const SecretPrefix = "whsec_"

// Config configures an HTTP sink. The zero values of optional fields take the defaults in Defaults.
type Config struct {
	// URL receives every message as a POST.
	URL string `yaml:"url"`
	// Mode is the CloudEvents HTTP binding mode: "binary" (default; attributes in ce-* headers, data as
	// the body) or "structured" (the whole event as application/cloudevents+json).
	Mode string `yaml:"mode"`
	// Secret signs each request per Standard Webhooks (webhook-id, webhook-timestamp,
	// webhook-signature): "whsec_" and the base64 of the key. Empty: requests are not signed.
	Secret string `yaml:"secret"`
	// Timeout bounds one request, inside the pipeline's deadline.
	Timeout relay.Duration `yaml:"timeout"`
	// Headers are sent with every request (for example Authorization). They may not replace the
	// headers the sink sets itself.
	Headers map[string]string `yaml:"headers"`
	// MaxConcurrency bounds the requests in flight at once, across all writes.
	MaxConcurrency int `yaml:"max_concurrency"`
	// HealthURL, when set, is what Ping (and so /readyz) GETs; any 2xx is healthy.
	HealthURL string    `yaml:"health_url"`
	TLS       TLSConfig `yaml:"tls"`
}

// TLSConfig configures TLS to https URLs.
type TLSConfig struct {
	// CAFile holds PEM certificates to trust instead of the system's.
	CAFile string `yaml:"ca_file"`
	// InsecureSkipVerify turns certificate verification off: opt-in, for tests only.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

// Defaults returns c with defaults filled in.
func (c Config) Defaults() Config {
	if c.Mode == "" {
		c.Mode = "binary"
	}
	if c.Timeout == 0 {
		c.Timeout = relay.Duration(5 * time.Second)
	}
	if c.MaxConcurrency == 0 {
		c.MaxConcurrency = 16
	}
	return c
}

// reserved are the headers the sink sets itself; Headers may not name them (nor ce-*, webhook-*).
var reserved = map[string]bool{
	"Content-Type": true, "Content-Length": true, "Host": true, "Transfer-Encoding": true,
	"X-Relay-Topic": true, "X-Relay-Key": true,
}

// Validate reports every problem with c (after Defaults), each naming its field. It touches no file
// and no network.
func (c Config) Validate() []error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	checkURL := func(field, v string) {
		u, err := url.Parse(v)
		switch {
		case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
			bad(field, "%q is not an absolute http(s) URL", v)
		case u.Fragment != "":
			bad(field, "must have no #fragment")
		}
	}
	checkURL("url", c.URL)
	if c.HealthURL != "" {
		checkURL("health_url", c.HealthURL)
	}
	if c.Mode != "binary" && c.Mode != "structured" {
		bad("mode", "%q is not binary or structured", c.Mode)
	}
	if c.Secret != "" {
		if _, err := decodeSecret(c.Secret); err != nil {
			bad("secret", "%v", err)
		}
	}
	if c.Timeout <= 0 {
		bad("timeout", "must be above 0")
	}
	if c.MaxConcurrency < 1 {
		bad("max_concurrency", "must be at least 1")
	}
	for name, v := range c.Headers {
		canon := textproto.CanonicalMIMEHeaderKey(name)
		lower := strings.ToLower(name)
		switch {
		case !validHeaderName(name):
			bad("headers", "%q is not a valid header name", name)
		case reserved[canon] || strings.HasPrefix(lower, "ce-") || strings.HasPrefix(lower, "webhook-"):
			bad("headers", "%q is set by the sink itself", name)
		case strings.ContainsAny(v, "\r\n\x00"):
			bad("headers."+name, "holds a line break or NUL")
		}
	}
	return errs
}

// decodeSecret returns the key of a Standard Webhooks secret.
func decodeSecret(s string) ([]byte, error) {
	b64, ok := strings.CutPrefix(s, SecretPrefix)
	if !ok {
		return nil, errors.New("must start with whsec_ and hold the base64 of the key")
	}
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, fmt.Errorf("the part after whsec_ is not base64: %w", err)
	}
	if len(key) < 16 {
		return nil, fmt.Errorf("the key is %d bytes; use at least 16 (Standard Webhooks uses 24 to 64)", len(key))
	}
	return key, nil
}

// validHeaderName reports whether s is an HTTP token (RFC 9110 5.1).
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0 {
			continue
		}
		return false
	}
	return true
}

// tlsConfig reads the CA file; nil when nothing is configured.
func (c TLSConfig) tlsConfig() (*tls.Config, error) {
	if c.CAFile == "" && !c.InsecureSkipVerify {
		return nil, nil
	}
	return tlsconfig.Files{CAFile: c.CAFile, InsecureSkipVerify: c.InsecureSkipVerify}.Client()
}

// newTransport returns the HTTP transport for c: the default one's settings, enough idle connections
// per host for max_concurrency, and c's TLS.
func (c Config) newTransport() (*http.Transport, error) {
	tc, err := c.TLS.tlsConfig()
	if err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = c.MaxConcurrency
	if tc != nil {
		tr.TLSClientConfig = tc
	}
	return tr, nil
}
