package httpsink_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relaykit/twilio-relay/relay"
	"github.com/relaykit/twilio-relay/relay/relaytest/conformance"
)

// refuseSubject marks the events the receiver refuses with 422.
const refuseSubject = "refuse me"

// receiver is a real HTTP server that takes CloudEvents the way a user's endpoint would: it verifies
// the Standard Webhooks signature (with its own code, written from the specification), decodes binary
// or structured mode and keeps the records per X-Relay-Topic.
type receiver struct {
	t   *testing.T
	srv *httptest.Server
	key []byte // nil: signatures are not expected

	mu      sync.Mutex
	records map[string][]conformance.Record
	stalled map[string]chan struct{}
	// answer, when set, answers a request instead of recording it; 0 records it as usual.
	answer func(r *http.Request) (status int, header http.Header)

	inFlight, maxInFlight, requests int
}

func newReceiver(t *testing.T, secret string) *receiver {
	rc := &receiver{t: t, records: map[string][]conformance.Record{}, stalled: map[string]chan struct{}{}}
	if secret != "" {
		key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
		if err != nil {
			t.Fatal(err)
		}
		rc.key = key
	}
	rc.srv = httptest.NewServer(http.HandlerFunc(rc.serve))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) serve(w http.ResponseWriter, r *http.Request) {
	rc.mu.Lock()
	rc.requests++
	rc.inFlight++
	rc.maxInFlight = max(rc.maxInFlight, rc.inFlight)
	answer := rc.answer
	rc.mu.Unlock()
	defer func() {
		rc.mu.Lock()
		rc.inFlight--
		rc.mu.Unlock()
	}()

	if r.URL.Path == "/health" {
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if answer != nil {
		if status, h := answer(r); status != 0 {
			for k, v := range h {
				w.Header()[k] = v
			}
			w.WriteHeader(status)
			return
		}
	}
	if r.Method != http.MethodPost {
		rc.t.Errorf("receiver: method %s", r.Method)
	}
	if rc.key != nil {
		if err := verify(rc.key, r.Header, body, time.Now()); err != nil {
			rc.t.Errorf("receiver: signature: %v", err)
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
	}
	topic, err := url.PathUnescape(r.Header.Get("X-Relay-Topic"))
	if err != nil || topic == "" {
		rc.t.Errorf("receiver: X-Relay-Topic %q: %v", r.Header.Get("X-Relay-Topic"), err)
	}
	rc.mu.Lock()
	stall := rc.stalled[topic]
	rc.mu.Unlock()
	if stall != nil {
		select {
		case <-stall:
		case <-r.Context().Done():
			return
		}
	}
	rec, err := decode(r.Header, body)
	if err != nil {
		rc.t.Errorf("receiver: %v", err)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if rec.Attributes["subject"] == refuseSubject {
		http.Error(w, "this event is refused", http.StatusUnprocessableEntity)
		return
	}
	rc.mu.Lock()
	rc.records[topic] = append(rc.records[topic], rec)
	rc.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// decode maps a request to a record: structured mode by its content type, else binary mode.
func decode(h http.Header, body []byte) (conformance.Record, error) {
	var rec conformance.Record
	if strings.HasPrefix(h.Get("Content-Type"), "application/cloudevents+json") {
		var err error
		if rec, err = conformance.ParseStructured(body); err != nil {
			return rec, err
		}
	} else {
		rec.Attributes = map[string]string{}
		for k, vs := range h {
			name, ok := strings.CutPrefix(strings.ToLower(k), "ce-")
			if !ok {
				continue
			}
			v, err := url.PathUnescape(vs[0])
			if err != nil {
				return rec, fmt.Errorf("header %s: %w", k, err)
			}
			rec.Attributes[name] = v
		}
		if ct := h.Get("Content-Type"); ct != "" {
			rec.Attributes["datacontenttype"] = ct
		}
		rec.Data = body
	}
	if k := h.Get("X-Relay-Key"); k != "" {
		key, err := url.PathUnescape(k)
		if err != nil {
			return rec, fmt.Errorf("X-Relay-Key: %w", err)
		}
		rec.Key = []byte(key)
	}
	return rec, nil
}

// verify checks a Standard Webhooks signature: a timestamp within five minutes, and one of the
// space-separated "v1,<base64>" signatures equal to HMAC-SHA256(key, id.timestamp.body).
func verify(key []byte, h http.Header, body []byte, now time.Time) error {
	id, ts, sigs := h.Get("webhook-id"), h.Get("webhook-timestamp"), h.Get("webhook-signature")
	if id == "" || ts == "" || sigs == "" {
		return fmt.Errorf("missing webhook-* headers: id %q timestamp %q signature %q", id, ts, sigs)
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("webhook-timestamp %q: %w", ts, err)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > 5*time.Minute || d < -5*time.Minute {
		return fmt.Errorf("webhook-timestamp %s is %v away", ts, d)
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + ts + "."))
	mac.Write(body)
	want := mac.Sum(nil)
	for _, s := range strings.Fields(sigs) {
		v, b64, _ := strings.Cut(s, ",")
		got, err := base64.StdEncoding.DecodeString(b64)
		if v == "v1" && err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return fmt.Errorf("no signature in %q matches", sigs)
}

// conformance.Reader

func (rc *receiver) Prepare(*testing.T, string) {}

func (rc *receiver) Read(_ *testing.T, topic string) []conformance.Record {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]conformance.Record(nil), rc.records[topic]...)
}

func (rc *receiver) KeepsKeys() bool { return true }

func (rc *receiver) Refused(topic string) (relay.Message, bool) {
	e := &relay.Event{SpecVersion: "1.0", ID: "EZrefused", Source: "/refused", Type: "t", Subject: refuseSubject,
		DataContentType: "application/json", Data: []byte(`{}`)}
	return relay.Message{Event: e, Topic: topic}, true
}

func (rc *receiver) Stall(_ *testing.T, topic string) (func(), bool) {
	ch := make(chan struct{})
	rc.mu.Lock()
	rc.stalled[topic] = ch
	rc.mu.Unlock()
	var once sync.Once
	return func() { once.Do(func() { close(ch) }) }, true
}

func (rc *receiver) stats() (requests, maxInFlight int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.requests, rc.maxInFlight
}
