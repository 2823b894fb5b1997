// Package twiliotest plays Twilio's side of a webhook sink, as a client of the protocol package twilio: it
// signs and posts events and classic callbacks the way Twilio does, follows Twilio's retry rule, and makes
// fresh test events and callbacks. `relay send`, the load generator's ledger and the tests use it.
package twiliotest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/relaykit/twilio-relay/relay/twilio"
)

// Sender posts events the way Twilio posts them to a webhook sink: a JSON array body, the bodySHA256
// query parameter, X-Twilio-Signature over the public URL, and Basic credentials when the URL has them.
type Sender struct {
	// URL is where the requests go.
	URL string
	// PublicURL, when set, is the URL signed instead of URL: the relay's public address when URL reaches
	// it another way (a port-forward, a proxy).
	PublicURL string
	Token     string
	Client    *http.Client
}

// Response is what the relay answered.
type Response struct {
	Status     int
	RetryAfter string
	Body       []byte
}

// Post signs and posts one body holding events.
func (s *Sender) Post(ctx context.Context, events []json.RawMessage) (Response, error) {
	body, err := json.Marshal(events)
	if err != nil {
		return Response{}, fmt.Errorf("encode events: %w", err)
	}
	return s.PostBody(ctx, body)
}

// PostBody signs and posts body as it is.
func (s *Sender) PostBody(ctx context.Context, body []byte) (Response, error) {
	target, user, signBase, err := s.addresses()
	if err != nil {
		return Response{}, err
	}
	signed, sig := twilio.Sign(s.Token, signBase, body)
	// Post to the real address with the signed URL's query.
	su, err := url.Parse(signed)
	if err != nil {
		return Response{}, err
	}
	target.RawQuery = su.RawQuery
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target.String(), bytes.NewReader(body))
	if err != nil {
		return Response{}, err
	}
	return s.do(req, "application/json", sig, user)
}

// addresses returns where a request goes (URL without its credentials), the credentials, and the URL
// whose signature it carries (PublicURL when set).
func (s *Sender) addresses() (target *url.URL, user *url.Userinfo, signed string, err error) {
	target, err = url.Parse(s.URL)
	if err != nil {
		return nil, nil, "", fmt.Errorf("url: %w", err)
	}
	user, target.User = target.User, nil
	signed = target.String()
	if s.PublicURL != "" {
		signed = s.PublicURL
	}
	return target, user, signed, nil
}

// do sends a signed request as Twilio does (its User-Agent, Basic credentials when the URL has them)
// and reads the answer, 64 KiB of its body at most.
func (s *Sender) do(req *http.Request, contentType, sig string, user *url.Userinfo) (Response, error) {
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("User-Agent", "TwilioProxy/1.1")
	req.Header.Set(twilio.SignatureHeader, sig)
	if user != nil {
		pass, _ := user.Password()
		req.SetBasicAuth(user.Username(), pass)
	}
	client := s.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return Response{}, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return Response{Status: resp.StatusCode, RetryAfter: resp.Header.Get("Retry-After"), Body: b}, nil
}
