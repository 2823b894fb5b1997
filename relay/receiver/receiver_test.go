package receiver_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relaykit/twilio-relay/relay"
	"github.com/relaykit/twilio-relay/relay/receiver"
	"github.com/relaykit/twilio-relay/relay/twilio"
)

const (
	token  = "receiver-test-token"
	public = "https://relay.example.com/hook"
)

// processor answers with a scripted error, or counts the events it was given.
type processor struct {
	mu      sync.Mutex
	err     error
	batches []*relay.Batch
	hold    chan struct{}
}

func (p *processor) Process(ctx context.Context, b *relay.Batch) (relay.Outcome, error) {
	if p.hold != nil {
		<-p.hold
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.batches = append(p.batches, b)
	if p.err != nil {
		return relay.Outcome{}, p.err
	}
	return relay.Outcome{Counts: relay.Counts{Delivered: len(b.Events)}}, nil
}

type observer struct {
	mu       sync.Mutex
	rejected []string
	unlogged []string
	statuses []int
}

func (o *observer) Request(_ string, status int, _ time.Duration) {
	o.mu.Lock()
	o.statuses = append(o.statuses, status)
	o.mu.Unlock()
}
func (o *observer) Rejected(_, reason string) {
	o.mu.Lock()
	o.rejected = append(o.rejected, reason)
	o.mu.Unlock()
}

func (o *observer) RejectedUnlogged(_, reason string) {
	o.mu.Lock()
	o.unlogged = append(o.unlogged, reason)
	o.mu.Unlock()
}

func newServer(t *testing.T, p *processor, mod func(*receiver.Endpoint)) (*receiver.Server, *observer) {
	t.Helper()
	ep := receiver.Endpoint{
		Name: "hook", Path: "/hook", SignedURLs: []string{public},
		Verifier: twilio.NewVerifier([]string{token}), MaxBody: 4096, RejectStatus: 503,
	}
	if mod != nil {
		mod(&ep)
	}
	o := &observer{}
	s := receiver.New(receiver.Config{Endpoints: []receiver.Endpoint{ep}, Deadline: time.Second, MaxInFlight: 2},
		p, o, slog.New(slog.DiscardHandler))
	return s, o
}

const oneEvent = `[{"specversion":"1.0","type":"com.twilio.messaging.message.sent","source":"/s","id":"EZ1","data":{}}]`

// signed builds a request signed like Twilio for the public URL, posted to the local path.
func signed(body string) *http.Request {
	u, sig := twilio.Sign(token, public, []byte(body))
	req := httptest.NewRequest(http.MethodPost, "/hook"+u[strings.IndexByte(u, '?'):], strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(twilio.SignatureHeader, sig)
	return req
}

type answer struct {
	status     int
	retryAfter string
	body       map[string]any
}

func do(t *testing.T, s *receiver.Server, req *http.Request) answer {
	t.Helper()
	resp, err := s.App().Test(req, 5000)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After")}
	_ = json.Unmarshal(b, &a.body)
	return a
}

func TestResponseTable(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		mod        func(*receiver.Endpoint)
		req        func() *http.Request
		status     int
		retryAfter bool
		reason     string
	}{
		{name: "delivered", req: func() *http.Request { return signed(oneEvent) }, status: 200},
		{name: "sink unavailable", err: &relay.Error{Code: relay.EUNAVAILABLE, Reason: "sink_unavailable", Message: "retry", RetryAfter: time.Second},
			req: func() *http.Request { return signed(oneEvent) }, status: 503, retryAfter: true},
		{name: "bug", err: io.ErrUnexpectedEOF, req: func() *http.Request { return signed(oneEvent) }, status: 500},
		{name: "no signature", req: func() *http.Request {
			r := signed(oneEvent)
			r.Header.Del(twilio.SignatureHeader)
			return r
		}, status: 503, reason: "no_signature"},
		{name: "strict reject status", mod: func(e *receiver.Endpoint) { e.RejectStatus = 401 }, req: func() *http.Request {
			r := signed(oneEvent)
			r.Header.Set(twilio.SignatureHeader, "AAAA")
			return r
		}, status: 401, reason: "signature_mismatch"},
		{name: "query tampered", req: func() *http.Request {
			r := signed(oneEvent)
			r.URL.RawQuery = "x=1&" + r.URL.RawQuery
			r.RequestURI = ""
			return r
		}, status: 503, reason: "signature_mismatch"},
		{name: "unknown path", req: func() *http.Request {
			return httptest.NewRequest(http.MethodPost, "/nope", strings.NewReader(oneEvent))
		}, status: 404},
		{name: "basic auth missing", mod: func(e *receiver.Endpoint) { e.BasicAuth = &receiver.BasicAuth{User: "u", Password: "p"} },
			req: func() *http.Request { return signed(oneEvent) }, status: 503, reason: "basic_auth"},
		{name: "basic auth right", mod: func(e *receiver.Endpoint) { e.BasicAuth = &receiver.BasicAuth{User: "u", Password: "p"} },
			req: func() *http.Request {
				r := signed(oneEvent)
				r.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("u:p")))
				return r
			}, status: 200},
		{name: "basic auth wrong password", mod: func(e *receiver.Endpoint) { e.BasicAuth = &receiver.BasicAuth{User: "u", Password: "p"} },
			req: func() *http.Request {
				r := signed(oneEvent)
				r.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("u:x")))
				return r
			}, status: 503, reason: "basic_auth"},
		{name: "source not in allowlist", mod: func(e *receiver.Endpoint) {
			e.AllowedCIDRs = []netip.Prefix{netip.MustParsePrefix("35.90.102.128/25")}
		}, req: func() *http.Request { return signed(oneEvent) }, status: 503, reason: "source_not_allowed"},
		{name: "proxy header ignored from an untrusted peer", mod: func(e *receiver.Endpoint) {
			e.AllowedCIDRs = []netip.Prefix{netip.MustParsePrefix("35.90.102.128/25")}
			e.ClientIPHeader = "X-Forwarded-For"
			e.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
		}, req: func() *http.Request {
			r := signed(oneEvent)
			r.Header.Set("X-Forwarded-For", "35.90.102.130")
			return r
		}, status: 503, reason: "source_not_allowed"},
		{name: "proxy header believed from a trusted peer", mod: func(e *receiver.Endpoint) {
			e.AllowedCIDRs = []netip.Prefix{netip.MustParsePrefix("35.90.102.128/25")}
			e.ClientIPHeader = "X-Forwarded-For"
			e.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")} // app.Test's peer is 0.0.0.0
		}, req: func() *http.Request {
			r := signed(oneEvent)
			r.Header.Set("X-Forwarded-For", "35.90.102.130")
			return r
		}, status: 503, reason: "source_not_allowed"}, // every hop is "trusted" with 0.0.0.0/0: none is the client
		{name: "malformed but authentic body reaches the pipeline", req: func() *http.Request { return signed(`{not json`) }, status: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &processor{err: tt.err}
			s, o := newServer(t, p, tt.mod)
			a := do(t, s, tt.req())
			if a.status != tt.status {
				t.Fatalf("status %d %v, want %d", a.status, a.body, tt.status)
			}
			if (a.retryAfter != "") != tt.retryAfter {
				t.Errorf("Retry-After %q, want present=%v", a.retryAfter, tt.retryAfter)
			}
			if tt.reason != "" {
				if len(o.rejected) != 1 || o.rejected[0] != tt.reason || a.body["reason"] != tt.reason {
					t.Errorf("rejected reasons %v, body %v; want %s", o.rejected, a.body, tt.reason)
				}
				if len(p.batches) != 0 {
					t.Errorf("a rejected request reached the pipeline")
				}
			}
			if len(o.statuses) != 1 || o.statuses[0] != tt.status {
				t.Errorf("observed statuses %v, want [%d]", o.statuses, tt.status)
			}
		})
	}
}

func TestProxyHeaderFromTrustedProxy(t *testing.T) {
	p := &processor{}
	s, _ := newServer(t, p, func(e *receiver.Endpoint) {
		e.AllowedCIDRs = []netip.Prefix{netip.MustParsePrefix("35.90.102.128/25")}
		e.ClientIPHeader = "X-Forwarded-For"
		e.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("0.0.0.0/32"), netip.MustParsePrefix("10.0.0.0/8")}
	})
	r := signed(oneEvent)
	r.Header.Set("X-Forwarded-For", "203.0.113.9, 35.90.102.130, 10.1.2.3")
	if a := do(t, s, r); a.status != 200 {
		t.Fatalf("status %d %v: the right-most untrusted hop 35.90.102.130 is allowed", a.status, a.body)
	}
	r = signed(oneEvent)
	r.Header.Set("X-Forwarded-For", "35.90.102.130, 203.0.113.9")
	if a := do(t, s, r); a.status != 503 {
		t.Fatalf("status %d: a client-supplied left-most hop must not be believed", a.status)
	}
}

func TestOverloadAnswers429(t *testing.T) {
	p := &processor{hold: make(chan struct{})}
	s, _ := newServer(t, p, nil) // MaxInFlight 2
	var wg sync.WaitGroup
	statuses := make(chan int, 3)
	for range 3 {
		wg.Add(1)
		go func() { defer wg.Done(); statuses <- do(t, s, signed(oneEvent)).status }()
	}
	first := <-statuses // the third request cannot enter while two are held
	close(p.hold)
	wg.Wait()
	close(statuses)
	if first != http.StatusTooManyRequests {
		t.Fatalf("first answer %d, want 429 while two requests are in flight", first)
	}
	n200 := 0
	for st := range statuses {
		if st == 200 {
			n200++
		}
	}
	if n200 != 2 {
		t.Fatalf("%d requests answered 200, want 2", n200)
	}
}

func TestBatchCarriesEndpointAndOwnBytes(t *testing.T) {
	p := &processor{}
	s, _ := newServer(t, p, nil)
	if a := do(t, s, signed(oneEvent)); a.status != 200 {
		t.Fatalf("status %d", a.status)
	}
	b := p.batches[0]
	if b.Endpoint != "hook" || len(b.Events) != 1 || b.Events[0].Endpoint != "hook" || b.Events[0].ID != "EZ1" {
		t.Fatalf("batch %+v", b)
	}
	if string(b.Events[0].Raw) != oneEvent[1:len(oneEvent)-1] {
		t.Fatalf("raw event %s", b.Events[0].Raw)
	}
}

// TestBodyLimits runs a real listener: a body over its endpoint's limit, and one over every endpoint's
// limit (refused by fasthttp before the handler), both answer the reject status.
func TestBodyLimits(t *testing.T) {
	p := &processor{}
	eps := []receiver.Endpoint{
		{Name: "small", Path: "/small", SignedURLs: []string{"https://x/small"}, Verifier: twilio.NewVerifier([]string{token}), MaxBody: 64, RejectStatus: 503},
		{Name: "big", Path: "/big", SignedURLs: []string{"https://x/big"}, Verifier: twilio.NewVerifier([]string{token}), MaxBody: 1024, RejectStatus: 503},
	}
	o := &observer{}
	s := receiver.New(receiver.Config{Endpoints: eps, Deadline: time.Second, MaxInFlight: 10}, p, o, slog.New(slog.DiscardHandler))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	post := func(path string, n int) int {
		body := "[" + strings.Repeat(" ", n) + "]"
		u, sig := twilio.Sign(token, "https://x"+path, []byte(body))
		req, _ := http.NewRequest(http.MethodPost, "http://"+ln.Addr().String()+path+u[strings.IndexByte(u, '?'):], strings.NewReader(body))
		req.Header.Set(twilio.SignatureHeader, sig)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if st := post("/small", 10); st != 200 {
		t.Errorf("small body: %d, want 200", st)
	}
	if st := post("/small", 200); st != 503 {
		t.Errorf("over the endpoint's limit: %d, want 503", st)
	}
	if st := post("/big", 200); st != 200 {
		t.Errorf("the same body on the bigger endpoint: %d, want 200", st)
	}
	if st := post("/big", 5000); st != 503 {
		t.Errorf("over every limit: %d, want 503", st)
	}
}

func TestWrongMethod(t *testing.T) {
	s, _ := newServer(t, &processor{}, nil)
	req := httptest.NewRequest(http.MethodGet, "/hook", nil)
	if a := do(t, s, req); a.status != http.StatusMethodNotAllowed {
		t.Fatalf("GET on an endpoint: %d, want 405", a.status)
	}
}

// TestShutdownFinishesInFlight: Shutdown stops intake but lets a request in progress finish and be
// answered 200; new connections are refused.
func TestShutdownFinishesInFlight(t *testing.T) {
	p := &processor{hold: make(chan struct{})}
	s, _ := newServer(t, p, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Serve(ln) }()
	req := signed(oneEvent)
	u := "http://" + ln.Addr().String() + req.URL.RequestURI()
	status := make(chan int, 1)
	go func() {
		r, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(oneEvent))
		r.Header = req.Header
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			status <- 0
			return
		}
		resp.Body.Close()
		status <- resp.StatusCode
	}()
	for {
		p.mu.Lock()
		n := len(p.batches)
		p.mu.Unlock()
		// The handler is inside Process (held) once the request has been read; wait a little for it.
		if n == 0 {
			time.Sleep(50 * time.Millisecond)
			break
		}
	}
	shut := make(chan error, 1)
	go func() { shut <- s.Close(context.Background()) }()
	time.Sleep(100 * time.Millisecond)
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned (%v) while a request was in flight", err)
	default:
	}
	close(p.hold)
	if st := <-status; st != 200 {
		t.Fatalf("the in-flight request was answered %d, want 200", st)
	}
	if err := <-shut; err != nil {
		t.Fatal(err)
	}
	if _, err := http.Post("http://"+ln.Addr().String()+"/hook", "application/json", strings.NewReader(oneEvent)); err == nil {
		t.Fatal("a new request was accepted after Shutdown")
	}
}
