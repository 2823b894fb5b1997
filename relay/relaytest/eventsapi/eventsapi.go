// Package eventsapi is a fake of Twilio's Events API v1 (events.twilio.com) for tests, since the real one
// cannot be reached from them. It follows Twilio's documented shapes: form-encoded POST bodies, HTTP
// Basic authentication with an account SID and auth token or an API key and secret, Subscription Types
// as repeated form fields each holding a JSON object, SinkConfiguration as a JSON string field, JSON
// resources with DG (sink) and DF (subscription) SIDs, list pages with meta and page sizes, and errors as
// {"code", "message", "more_info", "status"}. Event types carry their lifecycle status (available,
// deprecated, restricted, discontinued) and documentation URL, and restricted and discontinued types are
// refused in new subscriptions and additions, as Twilio documents. CreateSinkTest really posts a signed
// test event to the sink's destination, as Twilio does.
//
// Where Twilio's behaviour is not documented the fake picks one and says so: deleting a sink that a
// subscription uses is refused; a test event is posted once, without retries; a sink's GET masks the
// Basic password of its destination (Options.EchoPassword turns that off) and may leave batch_events out
// (Options.OmitBatchEvents); the refusal of a restricted or discontinued type is error 91101.
package eventsapi

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relaykit/twilio-relay/relay/twilio"
	"github.com/relaykit/twilio-relay/relay/twilio/twiliotest"
)

// Host is the host the fake puts in the URLs it returns, like Twilio's.
const Host = "https://events.twilio.com"

// Options configure the fake.
type Options struct {
	// Accounts maps account SIDs to auth tokens.
	Accounts map[string]string
	// APIKeys maps API key SIDs to their secret and account.
	APIKeys map[string]APIKey
	// Types is the catalog (default DefaultTypes).
	Types []Type
	// Deliver carries test events to sink destinations (default: a client with a 5s timeout, Twilio's).
	Deliver *http.Client
	// NewSinkStatus is the status of a new sink: "active" (default; what Twilio documents now) or
	// "initialized" (a sink that needs CreateSinkValidate).
	NewSinkStatus string
	// EchoPassword makes the sinks' GET return the destination's Basic password. By default the fake
	// masks it ("****"): whether Twilio echoes it is not documented, and a caller must not depend on it.
	EchoPassword bool
	// OmitBatchEvents makes the sinks' GET leave batch_events out of sink_configuration (Twilio echoes it
	// on live accounts; a caller must still converge without it).
	OmitBatchEvents bool
}

// APIKey is an API key's secret and the account it belongs to.
type APIKey struct{ Secret, Account string }

// Type is an event type of the catalog; its schema has versions 1..Versions. Status is its lifecycle
// status ("" is available); DocumentationURL, when set, replaces the generic documentation link.
type Type struct {
	Type, SchemaID, Description string
	Versions                    int
	Status, DocumentationURL    string
}

// DefaultTypes is a representative catalog (FACTS.md) with a type in each lifecycle status Twilio
// documents. The deprecated and discontinued ones were seen with those statuses on a live account
// (2026-03); the restricted one's status is the fake's choice.
var DefaultTypes = []Type{
	{Type: "com.twilio.messaging.message.queued", SchemaID: "Messaging.MessageStatus", Description: "Message queued", Versions: 7},
	{Type: "com.twilio.messaging.message.sent", SchemaID: "Messaging.MessageStatus", Description: "Message sent", Versions: 7},
	{Type: "com.twilio.messaging.message.delivered", SchemaID: "Messaging.MessageStatus", Description: "Message delivered", Versions: 7},
	{Type: "com.twilio.messaging.message.undelivered", SchemaID: "Messaging.MessageStatus", Description: "Message undelivered", Versions: 7},
	{Type: "com.twilio.messaging.message.failed", SchemaID: "Messaging.MessageStatus", Description: "Message failed", Versions: 7},
	{Type: "com.twilio.messaging.message.read", SchemaID: "Messaging.MessageStatus", Description: "Message read", Versions: 7},
	{Type: "com.twilio.messaging.inbound-message.received", SchemaID: "Messaging.InboundMessageV1", Description: "Inbound message", Versions: 6},
	{Type: "com.twilio.voice.insights.call-summary.complete", SchemaID: "VoiceInsights.CallSummary", Description: "Call summary complete", Versions: 2},
	{Type: "com.twilio.voice.insights.call-summary.partial", SchemaID: "VoiceInsights.CallSummary", Description: "Call summary partial", Versions: 2},
	{Type: "com.twilio.voice.status-callback.call.completed", SchemaID: "Voice.StatusCallback", Description: "Call completed", Versions: 1},
	{Type: "com.twilio.taskrouter.task.created", SchemaID: "TaskRouter.WDSEvent", Description: "Task created", Versions: 4},
	{Type: "com.twilio.conversations.message.added", SchemaID: "Conversations.MessageAdded", Description: "Conversation message added", Versions: 3},
	{Type: "com.twilio.error-logs.error.logged", SchemaID: "ErrorLogs.Error", Description: "Error logged", Versions: 2},
	{Type: "com.twilio.voice.webhook.status-callback.call.completed", SchemaID: "Voice.WebhookEvent", Description: "Call completed (webhook)",
		Versions: 2, Status: "deprecated", DocumentationURL: "https://www.twilio.com/en-us/changelog"},
	{Type: "com.twilio.voice.insights.call-summary.predicted-complete", SchemaID: "VoiceInsights.CallSummary", Description: "Call summary predicted complete",
		Versions: 2, Status: "restricted"},
	{Type: "com.twilio.conversations.delivery.updated", SchemaID: "Conversations.DeliveryUpdated", Description: "Delivery updated",
		Versions: 1, Status: "discontinued"},
}

// Subscribable returns the types of the catalog that Twilio takes in a new subscription: the available
// and deprecated ones.
func Subscribable(types []Type) []Type {
	var out []Type
	for _, t := range types {
		if t.Status == "" || t.Status == "available" || t.Status == "deprecated" {
			out = append(out, t)
		}
	}
	return out
}

// Request is one request the fake received.
type Request struct {
	Method, Path string
	User         string
	Query, Form  url.Values
}

// Delivery is one test event the fake posted to a sink destination.
type Delivery struct {
	SinkSID, TestID, URL string
	Status               int // 0 when the request failed
	Err                  string
}

type sink struct {
	SID, Description, SinkType, Status string
	Config                             map[string]any
	Created, Updated                   time.Time
	tests                              []string
}

type subscription struct {
	SID, Description, SinkSID string
	Created, Updated          time.Time
	Types                     []subscribedType
}

type subscribedType struct {
	Type    string
	Version int
}

type account struct {
	sid, token, signing string
	sinks               []*sink
	subs                []*subscription
}

type failure struct {
	method, path            string
	status, code, remaining int
	message                 string
}

// Server is the running fake.
type Server struct {
	// URL is where the fake listens; give it to twilioapi.Config.BaseURL.
	URL string

	srv  *httptest.Server
	opts Options

	mu         sync.Mutex
	accounts   map[string]*account
	types      map[string]Type
	seq        int
	fails      []*failure
	requests   []Request
	deliveries []Delivery
	sending    sync.WaitGroup
}

// Start starts the fake until the test ends.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	if opts.Types == nil {
		opts.Types = DefaultTypes
	}
	if opts.Deliver == nil {
		opts.Deliver = &http.Client{Timeout: 5 * time.Second}
	}
	if opts.NewSinkStatus == "" {
		opts.NewSinkStatus = "active"
	}
	s := &Server{opts: opts, accounts: map[string]*account{}, types: map[string]Type{}}
	for sid, tok := range opts.Accounts {
		s.accounts[sid] = &account{sid: sid, token: tok}
	}
	for _, ty := range opts.Types {
		s.types[ty.Type] = ty
	}
	s.srv = httptest.NewServer(s.routes())
	s.URL = s.srv.URL
	t.Cleanup(func() {
		s.sending.Wait()
		s.srv.Close()
	})
	return s
}

// Fail makes the next times requests to method and path (exact, or "*" for any) fail with the status
// and Twilio error code.
func (s *Server) Fail(method, path string, status, code, times int, message string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fails = append(s.fails, &failure{method: method, path: path, status: status, code: code, remaining: times, message: message})
}

// SetSigningToken makes the account sign test events with token from now on (a token rotated at Twilio
// but not in the relay's keyring, say).
func (s *Server) SetSigningToken(accountSID, token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.accounts[accountSID].signing = token
}

// SetType adds t to the catalog or replaces the type of that name: a type whose lifecycle status changes
// (deprecated, then restricted …) or whose schema gets a new version.
func (s *Server) SetType(t Type) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.types[t.Type] = t
	i := slices.IndexFunc(s.opts.Types, func(x Type) bool { return x.Type == t.Type })
	if i < 0 {
		s.opts.Types = append(slices.Clone(s.opts.Types), t)
		return
	}
	s.opts.Types = slices.Clone(s.opts.Types)
	s.opts.Types[i] = t
}

// Requests returns the requests received so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// Deliveries waits for the test events in flight and returns every delivery so far.
func (s *Server) Deliveries() []Delivery {
	s.sending.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.deliveries)
}

// AddSink creates a sink directly (a resource made by someone else, in the console say) and returns its SID.
func (s *Server) AddSink(accountSID, description, destination string, batch bool) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.accounts[accountSID]
	sk := &sink{SID: s.sid("DG"), Description: description, SinkType: "webhook", Status: "active",
		Config:  map[string]any{"destination": destination, "method": "POST", "batch_events": batch},
		Created: now(), Updated: now()}
	a.sinks = append(a.sinks, sk)
	return sk.SID
}

// AddSubscription creates a subscription directly and returns its SID.
func (s *Server) AddSubscription(accountSID, description, sinkSID string, types map[string]int) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.accounts[accountSID]
	sub := &subscription{SID: s.sid("DF"), Description: description, SinkSID: sinkSID, Created: now(), Updated: now()}
	for ty, v := range types {
		sub.Types = append(sub.Types, subscribedType{ty, v})
	}
	slices.SortFunc(sub.Types, func(a, b subscribedType) int { return strings.Compare(a.Type, b.Type) })
	a.subs = append(a.subs, sub)
	return sub.SID
}

// Snapshot is an account's resources, for assertions.
type Snapshot struct {
	Sinks         []SinkView
	Subscriptions []SubscriptionView
}

// SinkView is a sink as the fake holds it.
type SinkView struct {
	SID, Description, Status, Destination string
	BatchEvents                           any
}

// SubscriptionView is a subscription as the fake holds it; Types maps type to schema version.
type SubscriptionView struct {
	SID, Description, SinkSID string
	Types                     map[string]int
}

// Snapshot returns the account's sinks and subscriptions.
func (s *Server) Snapshot(accountSID string) Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out Snapshot
	a := s.accounts[accountSID]
	for _, sk := range a.sinks {
		dest, _ := sk.Config["destination"].(string)
		out.Sinks = append(out.Sinks, SinkView{SID: sk.SID, Description: sk.Description, Status: sk.Status,
			Destination: dest, BatchEvents: sk.Config["batch_events"]})
	}
	for _, sub := range a.subs {
		v := SubscriptionView{SID: sub.SID, Description: sub.Description, SinkSID: sub.SinkSID, Types: map[string]int{}}
		for _, t := range sub.Types {
			v.Types[t.Type] = t.Version
		}
		out.Subscriptions = append(out.Subscriptions, v)
	}
	return out
}

func (s *Server) sid(prefix string) string {
	s.seq++
	return fmt.Sprintf("%s%032x", prefix, s.seq)
}

func now() time.Time { return time.Now().UTC().Truncate(time.Second) }

// deliverTest posts the sink test event to the sink's destination, signed like Twilio signs it.
func (s *Server) deliverTest(sinkSID, accountSID, token, destination string, batch bool, testID string) {
	defer s.sending.Done()
	body := twiliotest.TestEvent(accountSID, testID, time.Now())
	if batch {
		body = append(append([]byte{'['}, body...), ']')
	} // else one event per request, sent bare (how Twilio shapes it is not documented; the relay takes both)
	d := Delivery{SinkSID: sinkSID, TestID: testID}
	defer func() {
		s.mu.Lock()
		s.deliveries = append(s.deliveries, d)
		s.mu.Unlock()
	}()
	dest, err := url.Parse(destination)
	if err != nil {
		d.Err = err.Error()
		return
	}
	user := dest.User
	dest.User = nil
	signed, sig := twilio.Sign(token, dest.String(), body)
	d.URL = signed
	req, err := http.NewRequest(http.MethodPost, signed, strings.NewReader(string(body)))
	if err != nil {
		d.Err = err.Error()
		return
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Twilio-Event-Streams")
	req.Header.Set(twilio.SignatureHeader, sig)
	if user != nil {
		pass, _ := user.Password()
		req.SetBasicAuth(user.Username(), pass)
	}
	resp, err := s.opts.Deliver.Do(req)
	if err != nil {
		d.Err = err.Error()
		return
	}
	resp.Body.Close()
	d.Status = resp.StatusCode
}

func newTestID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func parseInt(s string, def int) (int, error) {
	if s == "" {
		return def, nil
	}
	return strconv.Atoi(s)
}
