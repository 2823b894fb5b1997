package twilio

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strings"
)

//go:embed samples/*.json
var samples embed.FS

// Samples returns the built-in sample events by name (the file name without .json): realistic payloads
// of the main event types, including data as a JSON-encoded string and a sink test event.
func Samples() (map[string]json.RawMessage, error) {
	entries, err := samples.ReadDir("samples")
	if err != nil {
		return nil, err
	}
	out := make(map[string]json.RawMessage, len(entries))
	for _, e := range entries {
		b, err := samples.ReadFile("samples/" + e.Name())
		if err != nil {
			return nil, err
		}
		out[strings.TrimSuffix(e.Name(), path.Ext(e.Name()))] = b
	}
	return out, nil
}

// SampleNames lists the built-in samples, sorted.
func SampleNames() []string {
	s, _ := Samples()
	names := make([]string, 0, len(s))
	for n := range s {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

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
	target, err := url.Parse(s.URL)
	if err != nil {
		return Response{}, fmt.Errorf("url: %w", err)
	}
	user := target.User
	target.User = nil
	signBase := target.String()
	if s.PublicURL != "" {
		signBase = s.PublicURL
	}
	signed, sig := Sign(s.Token, signBase, body)
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

// do sends a signed request as Twilio does (its User-Agent, Basic credentials when the URL has them)
// and reads the answer, 64 KiB of its body at most.
func (s *Sender) do(req *http.Request, contentType, sig string, user *url.Userinfo) (Response, error) {
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("User-Agent", "TwilioProxy/1.1")
	req.Header.Set(SignatureHeader, sig)
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
