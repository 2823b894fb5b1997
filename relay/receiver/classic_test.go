package receiver_test

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relaykit/twilio-relay/relay"
	"github.com/relaykit/twilio-relay/relay/receiver"
	"github.com/relaykit/twilio-relay/relay/twilio"
)

// Vectors A1 and A2 of /work/shared/twilio/vectors.txt: token "12345", URL
// https://mycompany.com/myapp.php?foo=1&bar=2 (the endpoint's public URL + the query Twilio called).
const (
	classicToken  = "12345"
	classicPublic = "https://mycompany.com/myapp.php"
)

var (
	a1 = url.Values{"CallSid": {"CA1234567890ABCDE"}, "Caller": {"+14158675309"}, "Digits": {"1234"}, "From": {"+14158675309"}, "To": {"+18005551212"}}
	a2 = url.Values{"Digits": {"1234"}, "CallSid": {"CA1234567890ABCDE"}, "To": {"+18005551212"}, "Caller": {"+14158675309"},
		"From": {"+14158675309"}, "ReasonConferenceEnded": {"test"}, "Reason": {"Participant"}}
)

type rejection struct {
	endpoint, reason, url, remote string
	bodySHA256                    bool
}

type recordingMonitor struct {
	mu        sync.Mutex
	rejected  []rejection
	processed []*relay.Batch
}

func (m *recordingMonitor) Rejected(f relay.Refusal) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.rejected = append(m.rejected, rejection{f.Endpoint, f.Reason, f.URL, f.Remote, f.BodySHA256})
}

func (m *recordingMonitor) Processed(b *relay.Batch, _ relay.Outcome, _ error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.processed = append(m.processed, b)
}

func classicServer(t *testing.T, p *processor, rejectStatus int) (*receiver.Server, *recordingMonitor) {
	t.Helper()
	mon := &recordingMonitor{}
	ep := receiver.Endpoint{Name: "callbacks", Path: "/myapp.php", SignedURLs: []string{classicPublic}, Classic: true,
		Verifier: twilio.NewVerifier([]string{"another-token", classicToken}), MaxBody: 4096, RejectStatus: rejectStatus}
	s := receiver.New(receiver.Config{Endpoints: []receiver.Endpoint{ep}, Deadline: time.Second, MaxInFlight: 4, Monitor: mon},
		p, &observer{}, slog.New(slog.DiscardHandler))
	return s, mon
}

func formRequest(query string, params url.Values, sig string) *http.Request {
	req := httptest.NewRequest(http.MethodPost, "/myapp.php?"+query, strings.NewReader(params.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if sig != "" {
		req.Header.Set(twilio.SignatureHeader, sig)
	}
	return req
}

func TestClassicEndpoint(t *testing.T) {
	const acct = "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	status := url.Values{"AccountSid": {acct}, "MessageSid": {"SM11111111111111111111111111111111"}, "MessageStatus": {"delivered"}}
	tests := []struct {
		name    string
		req     func() *http.Request
		status  int
		reason  string
		evType  string // the event the pipeline got, when one
		rejects int
	}{
		{name: "A1", req: func() *http.Request { return formRequest("foo=1&bar=2", a1, "RSOYDt4T1cUTdK1PDd93/VVr8B8=") }, status: 200, rejects: 1},
		{name: "A1 signed with :443", req: func() *http.Request { return formRequest("foo=1&bar=2", a1, "kvajT1Ptam85bY51eRf/AJRuM3w=") }, status: 200, rejects: 1},
		{name: "A2", req: func() *http.Request { return formRequest("foo=1&bar=2", a2, "vOEb5UThFn24KEfnOFLQY2AE5FY=") }, status: 200, rejects: 1},
		{name: "A2 wrong-order signature", req: func() *http.Request { return formRequest("foo=1&bar=2", a2, "95+Bu0JVPi0r/SsESZCVf0dWAjw=") },
			status: 503, reason: "signature_mismatch"},
		{name: "A1 query reordered", req: func() *http.Request { return formRequest("bar=2&foo=1", a1, "RSOYDt4T1cUTdK1PDd93/VVr8B8=") },
			status: 503, reason: "signature_mismatch"},
		{name: "no signature", req: func() *http.Request { return formRequest("foo=1&bar=2", a1, "") }, status: 503, reason: "no_signature"},
		{name: "a messaging status callback becomes an event", status: 200,
			req: func() *http.Request {
				return formRequest("foo=1&bar=2", status, twilio.SignForm(classicToken, classicPublic+"?foo=1&bar=2", status))
			}, evType: "com.twilio.classic.messaging.message.delivered"},
		{name: "a callback without query", status: 200,
			req: func() *http.Request {
				r := formRequest("", status, twilio.SignForm(classicToken, classicPublic, status))
				r.URL.RawQuery, r.RequestURI = "", ""
				return r
			}, evType: "com.twilio.classic.messaging.message.delivered"},
		{name: "an Event Streams request sent to a classic endpoint", status: 503, reason: "event_streams_on_classic",
			req: func() *http.Request {
				u, sig := twilio.Sign(classicToken, classicPublic, []byte(oneEvent))
				r := httptest.NewRequest(http.MethodPost, "/myapp.php"+u[strings.IndexByte(u, '?'):], strings.NewReader(oneEvent))
				r.Header.Set(twilio.SignatureHeader, sig)
				return r
			}},
		{name: "a body that is no form", status: 503, reason: "bad_form",
			req: func() *http.Request {
				r := httptest.NewRequest(http.MethodPost, "/myapp.php?foo=1&bar=2", strings.NewReader("a=%zz"))
				r.Header.Set(twilio.SignatureHeader, "AAAA")
				return r
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &processor{}
			s, mon := classicServer(t, p, 503)
			a := do(t, s, tt.req())
			if a.status != tt.status {
				t.Fatalf("status %d %v, want %d", a.status, a.body, tt.status)
			}
			if tt.reason != "" {
				if a.body["reason"] != tt.reason {
					t.Errorf("reason %v, want %s", a.body["reason"], tt.reason)
				}
				if len(mon.rejected) != 1 || mon.rejected[0].reason != tt.reason || !strings.HasPrefix(mon.rejected[0].url, classicPublic) || mon.rejected[0].remote != "0.0.0.0" {
					t.Errorf("monitor told %+v", mon.rejected)
				}
				if len(p.batches) != 0 {
					t.Errorf("a refused request reached the pipeline")
				}
				return
			}
			if len(p.batches) != 1 || len(mon.processed) != 1 {
				t.Fatalf("%d batches processed, monitor saw %d", len(p.batches), len(mon.processed))
			}
			b := p.batches[0]
			if len(b.Rejects) != tt.rejects {
				t.Errorf("rejects %+v, want %d", b.Rejects, tt.rejects)
			}
			if tt.evType != "" && (len(b.Events) != 1 || b.Events[0].Type != tt.evType || b.Events[0].Endpoint != "callbacks") {
				t.Errorf("events %+v, want one %s", b.Events, tt.evType)
			}
		})
	}
}

func TestClassicEndpointFollowsTheResponseContract(t *testing.T) {
	p := &processor{err: &relay.Error{Code: relay.EUNAVAILABLE, Reason: "sink_unavailable", Message: "retry", RetryAfter: time.Second}}
	s, _ := classicServer(t, p, 403)
	if a := do(t, s, formRequest("foo=1&bar=2", a1, "RSOYDt4T1cUTdK1PDd93/VVr8B8=")); a.status != 503 || a.retryAfter != "1" {
		t.Fatalf("sink unavailable: %d (Retry-After %q), want 503 with Retry-After", a.status, a.retryAfter)
	}
	if a := do(t, s, formRequest("foo=1&bar=2", a1, "AAAA")); a.status != 403 {
		t.Fatalf("reject_status 403: %d", a.status)
	}
}

// TestClassicGET: a callback sent with GET (statusCallbackMethod GET) carries its parameters in the query
// and is signed over the URL alone; Twilio's idempotency token becomes part of the event's id. An Event
// Streams endpoint still answers GET 405.
func TestClassicGET(t *testing.T) {
	const acct = "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	const token = "4f2e8fd5-6bb0-4e8e-840e-0bc9d828a22e"
	q := url.Values{"AccountSid": {acct}, "CallSid": {"CA33333333333333333333333333333333"}, "CallStatus": {"completed"}}.Encode()
	get := func(sig string) *http.Request {
		r := httptest.NewRequest(http.MethodGet, "/myapp.php?"+q, nil)
		r.Header.Set(twilio.SignatureHeader, sig)
		r.Header.Set(twilio.IdempotencyHeader, token)
		return r
	}
	p := &processor{}
	s, mon := classicServer(t, p, 503)
	if a := do(t, s, get(twilio.SignURL(classicToken, classicPublic+"?"+q))); a.status != 200 {
		t.Fatalf("GET signed over the URL: %d %v", a.status, a.body)
	}
	if len(p.batches) != 1 || len(p.batches[0].Events) != 1 {
		t.Fatalf("batches %+v", p.batches)
	}
	if ev := p.batches[0].Events[0]; ev.Type != "com.twilio.classic.voice.call.completed" || ev.ID != "CA33333333333333333333333333333333:completed:"+token {
		t.Errorf("event %s %s", ev.Type, ev.ID)
	}
	// A POST-style signature (URL + sorted parameters) does not verify a GET.
	params, _ := url.ParseQuery(q)
	if a := do(t, s, get(twilio.SignForm(classicToken, classicPublic+"?"+q, params))); a.status != 503 || a.body["reason"] != "signature_mismatch" {
		t.Fatalf("GET with a form signature: %d %v", a.status, a.body)
	}
	if len(mon.rejected) != 1 || mon.rejected[0].url != classicPublic || mon.rejected[0].bodySHA256 { // the query is not kept
		t.Errorf("monitor told %+v", mon.rejected)
	}

	put, err := s.App().Test(httptest.NewRequest(http.MethodPut, "/myapp.php", nil), 5000)
	if err != nil {
		t.Fatal(err)
	}
	put.Body.Close()
	if put.StatusCode != http.StatusMethodNotAllowed || put.Header.Get("Allow") != "GET, HEAD, POST" {
		t.Errorf("PUT on a classic endpoint: %d, Allow %q", put.StatusCode, put.Header.Get("Allow"))
	}

	events, _ := newServer(t, &processor{}, nil)
	r := httptest.NewRequest(http.MethodGet, "/hook?"+q, nil)
	if a := do(t, events, r); a.status != http.StatusMethodNotAllowed {
		t.Errorf("GET on an Event Streams endpoint: %d, want 405", a.status)
	}
}
