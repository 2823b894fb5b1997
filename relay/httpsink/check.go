package httpsink

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/relaykit/twilio-relay/relay"
)

var _ relay.Checker = (*Sink)(nil)

// Check asks the endpoint whether it answers, without posting anything: GET health_url when one is set
// (a 2xx passes), else OPTIONS on the sink's URL (any answer but a 5xx shows the endpoint is there; a
// 401 or 403 leaves open whether a POST with the configured headers would be accepted). Topics travel
// in a header and are not checked.
func (s *Sink) Check(ctx context.Context, _ []string) []relay.Check {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	method, target := http.MethodOptions, s.url
	if s.healthURL != "" {
		method, target = http.MethodGet, s.healthURL
	}
	c := relay.Check{Name: "connect"}
	req, err := http.NewRequestWithContext(ctx, method, target, nil)
	if err != nil {
		c.Status, c.Detail = relay.CheckFailed, err.Error()
		return []relay.Check{c}
	}
	for k, v := range s.headers {
		req.Header[k] = v
	}
	resp, err := s.client.Do(req)
	if err != nil {
		c.Status, c.Detail, c.Fix = relay.CheckDown, err.Error(), "check url and that the endpoint is reachable from here"
		if untrusted(err) {
			c.Status, c.Fix = relay.CheckFailed, "set tls.ca_file to the CA that signed the endpoint's certificate"
		}
		return []relay.Check{c}
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	shown := method + " " + resp.Request.URL.Redacted()
	switch code := resp.StatusCode; {
	case s.healthURL != "" && (code < 200 || code > 299):
		c.Status, c.Detail = relay.CheckDown, fmt.Sprintf("%s answered %d", shown, code)
		c.Fix = "the endpoint says it is not healthy"
	case code >= 500:
		c.Status, c.Detail = relay.CheckDown, fmt.Sprintf("%s answered %d", shown, code)
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		c.Status = relay.CheckUnknown
		c.Detail = fmt.Sprintf("%s answered %d: cannot tell whether a POST with the configured headers is accepted", shown, code)
		c.Fix = "check headers (Authorization), or set health_url"
	default:
		c.Status, c.Detail = relay.CheckPassed, fmt.Sprintf("%s answered %d", shown, code)
	}
	return []relay.Check{c}
}

// untrusted reports whether err is a certificate the client does not trust.
func untrusted(err error) bool {
	var unknownCA x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var invalid x509.CertificateInvalidError
	return errors.As(err, &unknownCA) || errors.As(err, &hostname) || errors.As(err, &invalid)
}
