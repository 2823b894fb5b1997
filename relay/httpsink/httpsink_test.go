package httpsink_test

import (
	"context"
	"encoding/pem"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relaykit/twilio-relay/relay"
	"github.com/relaykit/twilio-relay/relay/httpsink"
)

func event(id string) *relay.Event {
	return &relay.Event{SpecVersion: "1.0", ID: id, Source: "/s", Type: "com.twilio.messaging.message.sent",
		DataContentType: "application/json", Data: []byte(`{"messageSid":"SM1"}`)}
}

func newSink(t *testing.T, cfg httpsink.Config) *httpsink.Sink {
	t.Helper()
	s, err := httpsink.New("test", cfg.Defaults())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

func write(t *testing.T, s relay.Sink, msgs ...relay.Message) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return s.Write(ctx, msgs)
}

// write1 writes one message and returns its own error, checking that a WriteErrors holds exactly one.
func write1(t *testing.T, s relay.Sink, msg relay.Message) error {
	t.Helper()
	err := write(t, s, msg)
	var we relay.WriteErrors
	if errors.As(err, &we) {
		if len(we) != 1 {
			t.Fatalf("WriteErrors of %d for one message", len(we))
		}
		return we[0]
	}
	return err
}

// TestSignKnownAnswer checks Sign against the example of the Standard Webhooks specification.
func TestSignKnownAnswer(t *testing.T) {
	key := []byte{0x31, 0xf2, 0x90, 0xf6, 0xbf, 0x06, 0x29, 0x8a, 0xab, 0x4f, 0x08, 0xd4, 0x3c, 0x3f, 0x08, 0x2c,
		0xf6, 0x48, 0xa3, 0x62, 0xda, 0x2d, 0xa4, 0xb0} // whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
	got := httpsink.Sign(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", time.Unix(1614265330, 0), []byte(`{"test": 2432232314}`))
	if want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; got != want {
		t.Fatalf("Sign = %s, want %s", got, want)
	}
}

// TestStatusClasses: 2xx acknowledges; 408, 429, 5xx and 3xx are transient; other 4xx permanent;
// Retry-After is carried in the error.
func TestStatusClasses(t *testing.T) {
	date := time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat)
	for _, tc := range []struct {
		status     int
		retryAfter string
		permanent  bool
		wantAfter  time.Duration // lower bound
	}{
		{status: 200}, {status: 201}, {status: 202}, {status: 204},
		{status: 400, permanent: true},
		{status: 401, permanent: true},
		{status: 403, permanent: true},
		{status: 404, permanent: true},
		{status: 413, permanent: true},
		{status: 422, permanent: true},
		{status: 408},
		{status: 429, retryAfter: "120", wantAfter: 120 * time.Second},
		{status: 429, retryAfter: date, wantAfter: 80 * time.Second},
		{status: 429, retryAfter: "soon"},
		{status: 500}, {status: 502}, {status: 503, retryAfter: "7", wantAfter: 7 * time.Second}, {status: 504},
		{status: 301}, {status: 307}, {status: 308},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if tc.retryAfter != "" {
				w.Header().Set("Retry-After", tc.retryAfter)
			}
			if tc.status >= 300 && tc.status < 400 {
				w.Header().Set("Location", "/elsewhere")
			}
			w.WriteHeader(tc.status)
			_, _ = w.Write([]byte("the reason"))
		}))
		s := newSink(t, httpsink.Config{URL: srv.URL})
		err := write1(t, s, relay.Message{Event: event("EZ1"), Topic: "t"})
		srv.Close()
		if tc.status < 300 {
			if err != nil {
				t.Errorf("%d: %v, want nil", tc.status, err)
			}
			continue
		}
		var se *httpsink.StatusError
		switch {
		case !errors.As(err, &se):
			t.Errorf("%d: %v (%T), want a StatusError", tc.status, err, err)
		case relay.IsPermanent(err) != tc.permanent:
			t.Errorf("%d: permanent %v, want %v (%v)", tc.status, relay.IsPermanent(err), tc.permanent, err)
		case se.RetryAfter < tc.wantAfter || (tc.wantAfter == 0 && se.RetryAfter != 0) || se.RetryAfter > tc.wantAfter+15*time.Second:
			t.Errorf("%d Retry-After %q: %v, want about %v", tc.status, tc.retryAfter, se.RetryAfter, tc.wantAfter)
		case !strings.Contains(err.Error(), "the reason"):
			t.Errorf("%d: %v lacks the body", tc.status, err)
		}
	}
}

// TestRedirectNotFollowed: a 3xx is answered as it is, not followed (a 303 would turn the POST into a GET).
func TestRedirectNotFollowed(t *testing.T) {
	rc := newReceiver(t, "")
	srv := httptest.NewServer(http.RedirectHandler(rc.srv.URL, http.StatusSeeOther))
	defer srv.Close()
	err := write(t, newSink(t, httpsink.Config{URL: srv.URL}), relay.Message{Event: event("EZ1"), Topic: "t"})
	if err == nil || relay.IsPermanent(err) {
		t.Fatalf("303: %v, want a transient error", err)
	}
	if n, _ := rc.stats(); n != 0 {
		t.Fatalf("the redirect was followed (%d requests)", n)
	}
}

// TestConnectionErrorsTransient: nothing listening, and a server that hangs up, are transient.
func TestConnectionErrorsTransient(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	err = write(t, newSink(t, httpsink.Config{URL: "http://" + addr}), relay.Message{Event: event("EZ1"), Topic: "t"})
	if err == nil || relay.IsPermanent(err) {
		t.Fatalf("connection refused: %v, want a transient error", err)
	}

	hangup := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, _, _ := w.(http.Hijacker).Hijack()
		conn.Close()
	}))
	defer hangup.Close()
	err = write(t, newSink(t, httpsink.Config{URL: hangup.URL}), relay.Message{Event: event("EZ1"), Topic: "t"})
	if err == nil || relay.IsPermanent(err) {
		t.Fatalf("hang-up: %v, want a transient error", err)
	}
}

// TestTimeout: a request over timeout fails transiently, well inside the caller's deadline.
func TestTimeout(t *testing.T) {
	rc := newReceiver(t, "")
	release, _ := rc.Stall(t, "slow")
	defer release()
	s := newSink(t, httpsink.Config{URL: rc.srv.URL, Timeout: relay.Duration(200 * time.Millisecond)})
	start := time.Now()
	err := write1(t, s, relay.Message{Event: event("EZ1"), Topic: "slow"})
	if err == nil || relay.IsPermanent(err) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("%v, want a transient deadline error", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("took %v with a 200ms timeout", took)
	}
}

// TestMaxConcurrency: no more than max_concurrency requests at once, across concurrent writes.
func TestMaxConcurrency(t *testing.T) {
	rc := newReceiver(t, "")
	rc.answer = func(*http.Request) (int, http.Header) {
		time.Sleep(20 * time.Millisecond)
		return http.StatusOK, nil
	}
	s := newSink(t, httpsink.Config{URL: rc.srv.URL, MaxConcurrency: 3})
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			msgs := make([]relay.Message, 10)
			for i := range msgs {
				msgs[i] = relay.Message{Event: event("EZ1"), Topic: "t"} // no key: all independent
			}
			if err := write(t, s, msgs...); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	n, most := rc.stats()
	if n != 30 || most > 3 || most < 2 {
		t.Fatalf("%d requests, at most %d at once; want 30, at most 3 (and more than 1)", n, most)
	}
}

// TestKeyOrderStopsAtFailure: after a transient failure the rest of the key's messages are not sent,
// so that the retry cannot deliver them before the failed one; other keys go on.
func TestKeyOrderStopsAtFailure(t *testing.T) {
	rc := newReceiver(t, "")
	rc.answer = func(r *http.Request) (int, http.Header) {
		if r.Header.Get("ce-id") == "EZa2" {
			return http.StatusServiceUnavailable, nil
		}
		return 0, nil
	}
	s := newSink(t, httpsink.Config{URL: rc.srv.URL})
	msg := func(id, key string) relay.Message {
		return relay.Message{Event: event(id), Topic: "t", Key: []byte(key)}
	}
	err := write(t, s, msg("EZa1", "a"), msg("EZb1", "b"), msg("EZa2", "a"), msg("EZb2", "b"), msg("EZa3", "a"))
	var we relay.WriteErrors
	if !errors.As(err, &we) || len(we) != 5 {
		t.Fatalf("%v, want a WriteErrors of 5", err)
	}
	for i, wantErr := range []bool{false, false, true, false, true} {
		if (we[i] != nil) != wantErr || relay.IsPermanent(we[i]) {
			t.Errorf("message %d: %v, want error %v (transient)", i, we[i], wantErr)
		}
	}
	var got []string
	for _, r := range rc.Read(t, "t") {
		got = append(got, r.Attributes["id"])
	}
	if strings.Join(got, ",") != "EZa1,EZb1,EZb2" && strings.Join(got, ",") != "EZb1,EZa1,EZb2" && strings.Join(got, ",") != "EZb1,EZb2,EZa1" {
		t.Errorf("received %v, want EZa1, EZb1, EZb2 and not EZa3", got)
	}
}

// TestHeaders: static headers, the topic and key percent-encoded, the signature, and no redirect of
// the sink's own headers.
func TestHeaders(t *testing.T) {
	var got http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = r.Header.Clone() }))
	defer srv.Close()
	s := newSink(t, httpsink.Config{URL: srv.URL, Secret: testSecret,
		Headers: map[string]string{"Authorization": "Bearer t0ken", "x-tenant": "acme"}})
	e := event("EZ1")
	e.Subject = "a b/c"
	if err := write(t, s, relay.Message{Event: e, Topic: "twilio events/1", Key: []byte("SM 1")}); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{
		"Authorization": "Bearer t0ken", "X-Tenant": "acme",
		"X-Relay-Topic": "twilio%20events%2F1", "X-Relay-Key": "SM%201",
		"Ce-Id": "EZ1", "Ce-Subject": "a%20b/c", "Ce-Specversion": "1.0", "Content-Type": "application/json",
		"Webhook-Id": "EZ1",
	} {
		if v := got.Get(k); v != want {
			t.Errorf("%s: %q, want %q", k, v, want)
		}
	}
	if !strings.HasPrefix(got.Get("Webhook-Signature"), "v1,") || got.Get("Webhook-Timestamp") == "" {
		t.Errorf("signature headers: %v", got)
	}
}

// TestUnsigned: without a secret no webhook-* header is sent.
func TestUnsigned(t *testing.T) {
	var got http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = r.Header.Clone() }))
	defer srv.Close()
	if err := write(t, newSink(t, httpsink.Config{URL: srv.URL}), relay.Message{Event: event("EZ1"), Topic: "t"}); err != nil {
		t.Fatal(err)
	}
	for k := range got {
		if strings.HasPrefix(strings.ToLower(k), "webhook-") {
			t.Errorf("unsigned sink sent %s", k)
		}
	}
}

// TestBadExtensionPermanent: an extension name no header can carry fails permanently in binary mode
// and is carried in structured mode.
func TestBadExtensionPermanent(t *testing.T) {
	rc := newReceiver(t, "")
	e := event("EZ1")
	e.Extensions = map[string]string{"Bad Name": "v"}
	err := write1(t, newSink(t, httpsink.Config{URL: rc.srv.URL}), relay.Message{Event: e, Topic: "t"})
	if !relay.IsPermanent(err) {
		t.Fatalf("binary: %v, want a permanent error", err)
	}
	if err := write(t, newSink(t, httpsink.Config{URL: rc.srv.URL, Mode: "structured"}), relay.Message{Event: e, Topic: "t"}); err != nil {
		t.Fatalf("structured: %v", err)
	}
}

func TestPing(t *testing.T) {
	var healthy atomic.Bool
	healthy.Store(true)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || !healthy.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	ctx := context.Background()
	if err := newSink(t, httpsink.Config{URL: srv.URL}).Ping(ctx); err != nil {
		t.Errorf("without health_url: %v", err)
	}
	s := newSink(t, httpsink.Config{URL: srv.URL, HealthURL: srv.URL + "/health"})
	if err := s.Ping(ctx); err != nil {
		t.Errorf("healthy: %v", err)
	}
	healthy.Store(false)
	if err := s.Ping(ctx); err == nil {
		t.Error("503 health answer: nil")
	}
	srv.Close()
	if err := s.Ping(ctx); err == nil {
		t.Error("server down: nil")
	}
}

func TestTLS(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	msg := relay.Message{Event: event("EZ1"), Topic: "t"}
	if err := write(t, newSink(t, httpsink.Config{URL: srv.URL}), msg); err == nil || relay.IsPermanent(err) {
		t.Errorf("unknown CA: %v, want a transient error", err)
	}
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := write(t, newSink(t, httpsink.Config{URL: srv.URL, TLS: httpsink.TLSConfig{CAFile: ca}}), msg); err != nil {
		t.Errorf("ca_file: %v", err)
	}
	if err := write(t, newSink(t, httpsink.Config{URL: srv.URL, TLS: httpsink.TLSConfig{InsecureSkipVerify: true}}), msg); err != nil {
		t.Errorf("insecure_skip_verify: %v", err)
	}
	if _, err := httpsink.New("x", httpsink.Config{URL: srv.URL, TLS: httpsink.TLSConfig{CAFile: filepath.Join(t.TempDir(), "missing.pem")}}.Defaults()); err == nil {
		t.Error("missing ca_file accepted")
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  httpsink.Config
		want string // in the first error; "" for valid
	}{
		{"minimal", httpsink.Config{URL: "https://example.com/hook"}, ""},
		{"full", httpsink.Config{URL: "http://h:8080/p?q=1", Mode: "structured", Secret: testSecret, Headers: map[string]string{"Authorization": "x"}, HealthURL: "http://h/health"}, ""},
		{"no url", httpsink.Config{}, "url"},
		{"relative url", httpsink.Config{URL: "/hook"}, "url"},
		{"ftp url", httpsink.Config{URL: "ftp://h/x"}, "url"},
		{"fragment", httpsink.Config{URL: "http://h/x#f"}, "fragment"},
		{"mode", httpsink.Config{URL: "http://h", Mode: "batch"}, "mode"},
		{"secret prefix", httpsink.Config{URL: "http://h", Secret: "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}, "whsec_"},
		{"secret base64", httpsink.Config{URL: "http://h", Secret: "whsec_!!"}, "base64"},
		{"secret short", httpsink.Config{URL: "http://h", Secret: "whsec_c2hvcnQ="}, "at least 16"},
		{"timeout", httpsink.Config{URL: "http://h", Timeout: -1}, "timeout"},
		{"concurrency", httpsink.Config{URL: "http://h", MaxConcurrency: -1}, "max_concurrency"},
		{"reserved header", httpsink.Config{URL: "http://h", Headers: map[string]string{"content-type": "x"}}, "set by the sink"},
		{"ce header", httpsink.Config{URL: "http://h", Headers: map[string]string{"Ce-Id": "x"}}, "set by the sink"},
		{"webhook header", httpsink.Config{URL: "http://h", Headers: map[string]string{"webhook-id": "x"}}, "set by the sink"},
		{"header name", httpsink.Config{URL: "http://h", Headers: map[string]string{"bad name": "x"}}, "header name"},
		{"header value", httpsink.Config{URL: "http://h", Headers: map[string]string{"X-A": "a\r\nb"}}, "line break"},
		{"health url", httpsink.Config{URL: "http://h", HealthURL: "nope"}, "health_url"},
	} {
		errs := tc.cfg.Defaults().Validate()
		switch {
		case tc.want == "" && len(errs) > 0:
			t.Errorf("%s: %v", tc.name, errs)
		case tc.want != "" && (len(errs) == 0 || !strings.Contains(errs[0].Error(), tc.want)):
			t.Errorf("%s: %v, want an error with %q", tc.name, errs, tc.want)
		}
	}
}
