package twiliotest_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relaykit/twilio-relay/relay"
	"github.com/relaykit/twilio-relay/relay/twilio"
	"github.com/relaykit/twilio-relay/relay/twilio/twiliotest"
)

func TestRetryFollowsTwilio(t *testing.T) {
	fast := relay.Backoff{Initial: time.Millisecond, Max: 4 * time.Millisecond, Multiplier: 2}
	script := func(statuses ...int) func(context.Context) (twiliotest.Response, error) {
		i := 0
		return func(context.Context) (twiliotest.Response, error) {
			s := statuses[min(i, len(statuses)-1)]
			i++
			if s == 0 {
				return twiliotest.Response{}, errors.New("connection refused")
			}
			return twiliotest.Response{Status: s}, nil
		}
	}
	tests := []struct {
		name     string
		statuses []int
		outcome  string
		attempts int
	}{
		{"200 at once", []int{200}, twiliotest.Delivered, 1},
		{"503, 429, a transport error, then 200", []int{503, 429, 0, 200}, twiliotest.Delivered, 4},
		{"400: Twilio drops the events, no retry", []int{400}, twiliotest.Lost, 1},
		{"401 after a 503: lost", []int{503, 401}, twiliotest.Lost, 2},
		{"404, 408 and 413 are 4xx too", []int{408}, twiliotest.Lost, 1},
		{"a redirect is not delivered", []int{302}, twiliotest.Lost, 1},
		{"500 until the attempts run out", []int{500}, twiliotest.Undelivered, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var waits []time.Duration
			d := twiliotest.Retry{Attempts: 5, Backoff: fast}.Do(context.Background(), script(tt.statuses...),
				func(_ int, _ twiliotest.Response, _ error, wait time.Duration) { waits = append(waits, wait) })
			if d.Outcome != tt.outcome || d.Attempts != tt.attempts {
				t.Fatalf("outcome %s after %d attempts, want %s after %d", d.Outcome, d.Attempts, tt.outcome, tt.attempts)
			}
			for i, w := range waits {
				if (i < len(waits)-1) != (w > 0) {
					t.Errorf("wait %d = %s: only retries wait", i, w)
				}
			}
		})
	}
}

func TestPostFormIsSignedTheClassicWay(t *testing.T) {
	samples, err := twilio.ClassicSamples()
	if err != nil || len(samples) != 5 {
		t.Fatalf("classic samples: %d, %v", len(samples), err)
	}
	const token, public = "classic-token", "https://relay.example.com/twilio/classic?acct=main"
	v := twilio.NewVerifier([]string{token})
	var mu sync.Mutex
	var events []*relay.Event
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		params, err := twilio.ParseForm(body)
		if err == nil {
			err = v.VerifyForm([]string{"https://relay.example.com/twilio/classic"}, r.URL.RawQuery, params, r.Header.Get(twilio.SignatureHeader))
		}
		if err != nil || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
			t.Errorf("%s: %v (content type %q)", body, err, r.Header.Get("Content-Type"))
			w.WriteHeader(503)
			return
		}
		b := twilio.DecodeClassic("classic", body, params, "", time.Now(), twilio.DecodeOptions{})
		mu.Lock()
		events = append(events, b.Events...)
		mu.Unlock()
	}))
	defer srv.Close()
	s := &twiliotest.Sender{URL: srv.URL + "/twilio/classic", PublicURL: public, Token: token}
	for _, name := range twilio.ClassicSampleNames() {
		p := samples[name]
		if name == "message-delivered" {
			fresh := twiliotest.FreshClassic(p)
			if fresh.Get("MessageSid") == p.Get("MessageSid") || fresh.Get("MessageSid") != fresh.Get("SmsSid") || !strings.HasPrefix(fresh.Get("MessageSid"), "SM") {
				t.Errorf("FreshClassic: %s → %s / %s", p.Get("MessageSid"), fresh.Get("MessageSid"), fresh.Get("SmsSid"))
			}
		}
		if r, err := s.PostForm(context.Background(), p); err != nil || r.Status != 200 {
			t.Fatalf("%s: %d %v", name, r.Status, err)
		}
	}
	var types []string
	for _, ev := range events {
		types = append(types, ev.Type)
	}
	want := []string{"com.twilio.classic.voice.call.completed", "com.twilio.classic.debugger.alert.error",
		"com.twilio.classic.messaging.message.received", "com.twilio.classic.messaging.message.delivered",
		"com.twilio.classic.messaging.message.undelivered"}
	if strings.Join(types, " ") != strings.Join(want, " ") {
		t.Fatalf("every sample maps to an event:\n got %v\nwant %v", types, want)
	}
}

func TestNewTestEvent(t *testing.T) {
	a, b := twiliotest.NewTestEvent("AC1"), twiliotest.NewTestEvent("AC1")
	batch := twilio.Decode("e", append(append([]byte("["), a...), append([]byte(","), append(b, ']')...)...), time.Now(), twilio.DecodeOptions{})
	if len(batch.Events) != 2 || !batch.Events[0].IsTest() || batch.Events[0].ID != "AC1" || batch.Events[0].Source != "Sink" {
		t.Fatalf("%+v %+v", batch.Events, batch.Rejects)
	}
	if string(batch.Events[0].Data) == string(batch.Events[1].Data) {
		t.Fatal("two test events share a test_id")
	}
}
