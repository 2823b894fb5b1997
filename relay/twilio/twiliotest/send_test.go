package twiliotest_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relaykit/twilio-relay/relay/twilio"
	"github.com/relaykit/twilio-relay/relay/twilio/twiliotest"
)

// hmacSig and sha256Hex compute what Twilio's scheme says, independently of package twilio.
func hmacSig(token, msg string) string {
	m := hmac.New(sha1.New, []byte(token))
	m.Write([]byte(msg))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// captured is one request as the fake relay saw it.
type captured struct {
	method, path, rawQuery, contentType, sig, userAgent string
	user, pass                                          string
	hasBasic                                            bool
	body                                                []byte
}

// fakeRelay records every request and answers with status, Retry-After and body.
func fakeRelay(t *testing.T, status int, retryAfter, respBody string) (*httptest.Server, func() []captured) {
	t.Helper()
	var mu sync.Mutex
	var got []captured
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("read body: %v", err)
		}
		c := captured{method: r.Method, path: r.URL.Path, rawQuery: r.URL.RawQuery, contentType: r.Header.Get("Content-Type"),
			sig: r.Header.Get(twilio.SignatureHeader), userAgent: r.Header.Get("User-Agent"), body: body}
		c.user, c.pass, c.hasBasic = r.BasicAuth()
		mu.Lock()
		got = append(got, c)
		mu.Unlock()
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, respBody)
	}))
	t.Cleanup(srv.Close)
	return srv, func() []captured {
		mu.Lock()
		defer mu.Unlock()
		return append([]captured(nil), got...)
	}
}

func TestSenderPost(t *testing.T) {
	samples, err := twilio.Samples()
	if err != nil {
		t.Fatal(err)
	}
	events := []json.RawMessage{samples["message-delivered"], samples["test-event"]}
	srv, requests := fakeRelay(t, http.StatusOK, "", `{"delivered":2}`)

	s := &twiliotest.Sender{URL: srv.URL + "/twilio/events", Token: "tok"}
	resp, err := s.Post(context.Background(), events)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != http.StatusOK || string(resp.Body) != `{"delivered":2}` || resp.RetryAfter != "" {
		t.Errorf("response = %+v", resp)
	}
	reqs := requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(reqs))
	}
	r := reqs[0]
	if r.method != http.MethodPost {
		t.Errorf("method = %s, want POST", r.method)
	}
	if r.path != "/twilio/events" {
		t.Errorf("path = %s", r.path)
	}
	if r.contentType != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", r.contentType)
	}
	if r.hasBasic {
		t.Errorf("unexpected Basic auth %s:%s", r.user, r.pass)
	}
	if r.rawQuery != "bodySHA256="+sha256Hex(r.body) {
		t.Errorf("query = %q, want bodySHA256 of the body (%s)", r.rawQuery, sha256Hex(r.body))
	}
	if want := hmacSig("tok", srv.URL+"/twilio/events?"+r.rawQuery); r.sig != want {
		t.Errorf("signature = %q, want %q", r.sig, want)
	}
	if err := twilio.NewVerifier([]string{"tok"}).Verify([]string{srv.URL + "/twilio/events"}, r.rawQuery, r.body, r.sig); err != nil {
		t.Errorf("the relay's Verifier rejects the Sender's request: %v", err)
	}
	// The body is a JSON array of the events, which decodes back to them.
	b := twilio.Decode("events", r.body, time.Now(), twilio.DecodeOptions{})
	if len(b.Rejects) != 0 || len(b.Events) != 2 || b.Events[0].ID != "EZ11111111111111111111111111111111" || b.Events[1].Type != "com.twilio.eventstreams.test-event" {
		t.Errorf("body %s decodes to %d events, rejects %+v", r.body, len(b.Events), b.Rejects)
	}
	if r.body[0] != '[' {
		t.Errorf("body is not an array: %s", r.body)
	}
}

func TestSenderPostBody(t *testing.T) {
	body := []byte(`[{"specversion":"1.0","id":"EZ1","source":"s","type":"t"}]` + "\n")
	tests := []struct {
		name       string
		url        string // relative to the server; "{srv}" is replaced by the server's URL
		public     string
		token      string
		wantPath   string
		wantQuery  string // before &bodySHA256= (or "" when bodySHA256 is alone)
		wantUser   string
		wantPass   string
		verifyWith string // the URL (without query) that must verify; "{srv}" as above
	}{
		{name: "plain", url: "{srv}/e", token: "tok", wantPath: "/e", verifyWith: "{srv}/e"},
		{name: "URL with a query appends with &", url: "{srv}/e?sink=a&x=1", token: "tok", wantPath: "/e", wantQuery: "sink=a&x=1", verifyWith: "{srv}/e"},
		{name: "Basic auth from user:pass@", url: "http://user:s3cr%3At@{host}/e", token: "tok", wantPath: "/e", wantUser: "user", wantPass: "s3cr:t", verifyWith: "{srv}/e"},
		{name: "Basic auth with a user only", url: "http://user@{host}/e", token: "tok", wantPath: "/e", wantUser: "user", wantPass: "", verifyWith: "{srv}/e"},
		{name: "PublicURL is signed", url: "{srv}/e", public: "https://relay.example.com/twilio/events", token: "tok", wantPath: "/e", verifyWith: "https://relay.example.com/twilio/events"},
		{name: "PublicURL query is posted", url: "{srv}/e?ignored=1", public: "https://relay.example.com/twilio/events?k=v", token: "tok", wantPath: "/e", wantQuery: "k=v", verifyWith: "https://relay.example.com/twilio/events"},
		{name: "empty token", url: "{srv}/e", token: "", wantPath: "/e", verifyWith: "{srv}/e"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, requests := fakeRelay(t, http.StatusServiceUnavailable, "7", "busy")
			host := strings.TrimPrefix(srv.URL, "http://")
			sub := func(s string) string {
				return strings.NewReplacer("{srv}", srv.URL, "{host}", host).Replace(s)
			}
			s := &twiliotest.Sender{URL: sub(tt.url), PublicURL: tt.public, Token: tt.token, Client: srv.Client()}
			resp, err := s.PostBody(context.Background(), body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.Status != http.StatusServiceUnavailable || resp.RetryAfter != "7" || string(resp.Body) != "busy" {
				t.Errorf("response = %+v, want 503, Retry-After 7, body busy", resp)
			}
			reqs := requests()
			if len(reqs) != 1 {
				t.Fatalf("%d requests", len(reqs))
			}
			r := reqs[0]
			if r.method != http.MethodPost || r.contentType != "application/json" || r.path != tt.wantPath {
				t.Errorf("request %s %s Content-Type %q", r.method, r.path, r.contentType)
			}
			if !bytes.Equal(r.body, body) {
				t.Errorf("body = %q, want it unchanged %q", r.body, body)
			}
			wantQuery := "bodySHA256=" + sha256Hex(body)
			if tt.wantQuery != "" {
				wantQuery = tt.wantQuery + "&" + wantQuery
			}
			if r.rawQuery != wantQuery {
				t.Errorf("query = %q, want %q", r.rawQuery, wantQuery)
			}
			if tt.wantUser != "" {
				if !r.hasBasic || r.user != tt.wantUser || r.pass != tt.wantPass {
					t.Errorf("Basic auth = %v %q:%q, want %q:%q", r.hasBasic, r.user, r.pass, tt.wantUser, tt.wantPass)
				}
			} else if r.hasBasic {
				t.Errorf("unexpected Basic auth %q:%q", r.user, r.pass)
			}
			verifyURL := sub(tt.verifyWith)
			// Independent check of the signature, then the relay's own Verifier.
			if want := hmacSig(tt.token, verifyURL+"?"+r.rawQuery); r.sig != want {
				t.Errorf("signature = %q, want HMAC over %s?%s = %q", r.sig, verifyURL, r.rawQuery, want)
			}
			v := twilio.NewVerifier([]string{tt.token})
			if err := v.Verify([]string{verifyURL}, r.rawQuery, r.body, r.sig); err != nil {
				t.Errorf("Verify(%s) = %v", verifyURL, err)
			}
			// The userinfo is never part of what is signed.
			if strings.Contains(tt.url, "@") {
				withUser := sub(tt.url)
				if err := v.Verify([]string{withUser}, r.rawQuery, r.body, r.sig); !errors.Is(err, twilio.ErrSignatureMismatch) {
					t.Errorf("Verify against the URL with userinfo = %v, want ErrSignatureMismatch", err)
				}
			}
			// With PublicURL set, the address actually called is not what was signed.
			if tt.public != "" {
				if err := v.Verify([]string{srv.URL + tt.wantPath}, r.rawQuery, r.body, r.sig); !errors.Is(err, twilio.ErrSignatureMismatch) {
					t.Errorf("Verify against the real address = %v, want ErrSignatureMismatch", err)
				}
			}
		})
	}
}

func TestSenderErrors(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	closedURL := srv.URL + "/e"
	srv.Close()
	tests := []struct {
		name string
		s    *twiliotest.Sender
	}{
		{"unparseable URL", &twiliotest.Sender{URL: "http://[::1/e", Token: "t"}},
		{"connection refused", &twiliotest.Sender{URL: closedURL, Token: "t"}},
		{"no scheme", &twiliotest.Sender{URL: "relay.example.com/e", Token: "t"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tt.s.PostBody(context.Background(), []byte(`[]`)); err == nil {
				t.Fatal("PostBody succeeded")
			}
		})
	}

	// A cancelled context stops the request.
	srv2, requests := fakeRelay(t, http.StatusOK, "", "")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := (&twiliotest.Sender{URL: srv2.URL, Token: "t"}).PostBody(ctx, []byte(`[]`)); !errors.Is(err, context.Canceled) {
		t.Errorf("PostBody with a cancelled context = %v, want context.Canceled", err)
	}
	if n := len(requests()); n != 0 {
		t.Errorf("%d requests reached the server", n)
	}

	// Post refuses events that are not JSON.
	if _, err := (&twiliotest.Sender{URL: srv2.URL, Token: "t"}).Post(context.Background(), []json.RawMessage{json.RawMessage(`{`)}); err == nil {
		t.Error("Post with invalid JSON succeeded")
	}
}

// TestSenderResponseBodyLimit: the response body kept is bounded (64 KiB).
func TestSenderResponseBodyLimit(t *testing.T) {
	big := strings.Repeat("x", 100<<10)
	srv, _ := fakeRelay(t, http.StatusOK, "", big)
	resp, err := (&twiliotest.Sender{URL: srv.URL, Token: "t"}).PostBody(context.Background(), []byte(`[]`))
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Body) != 64<<10 {
		t.Errorf("kept %d bytes of the response, want %d", len(resp.Body), 64<<10)
	}
}
