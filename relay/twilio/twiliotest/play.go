package twiliotest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/relaykit/twilio-relay/relay"
	"github.com/relaykit/twilio-relay/relay/twilio"
)

// This file plays Twilio faithfully for `relay send`: Twilio's retry rule, classic form callbacks, and
// fresh test events.

// Retry is Twilio's retry rule for a webhook-sink request: 2xx is delivered; 429, 5xx and transport
// errors (timeouts included) are retried with exponential backoff and jitter; any other status makes
// Twilio drop the events for good (error 91305). Twilio retries for up to four hours; Attempts bounds
// the replay here.
type Retry struct {
	Attempts int // at least 1
	Backoff  relay.Backoff
}

// Outcome classes of a delivery.
const (
	Delivered   = "delivered"   // answered 2xx
	Lost        = "lost"        // answered a status Twilio does not retry: the events are dropped
	Undelivered = "undelivered" // still 429/5xx/transport errors when the attempts ran out
)

// Delivery is what became of one request played with Retry.
type Delivery struct {
	Outcome  string
	Attempts int
	Last     Response // the last answer (Status 0 after a transport error)
	Err      error    // the last transport error
}

// Retryable reports whether Twilio retries after this answer: 429, 5xx, or no answer (status 0).
func Retryable(status int) bool {
	return status == 0 || status == http.StatusTooManyRequests || status >= 500
}

// Do plays post under the retry rule. each, when set, is called after every attempt with its number
// (from 1), the answer and the transport error, and the wait before the next attempt (0 when none).
func (r Retry) Do(ctx context.Context, post func(context.Context) (Response, error), each func(attempt int, resp Response, err error, wait time.Duration)) Delivery {
	attempts := max(r.Attempts, 1)
	var d Delivery
	for i := 1; i <= attempts; i++ {
		resp, err := post(ctx)
		d.Attempts, d.Last, d.Err = i, resp, err
		if err != nil {
			resp.Status = 0
		}
		var wait time.Duration
		switch {
		case err == nil && resp.Status >= 200 && resp.Status < 300:
			d.Outcome = Delivered
		case !Retryable(resp.Status):
			d.Outcome = Lost
		case i == attempts || ctx.Err() != nil:
			d.Outcome = Undelivered
		default:
			wait = r.Backoff.Delay(i - 1)
		}
		if each != nil {
			each(i, resp, err, wait)
		}
		if d.Outcome != "" {
			return d
		}
		select {
		case <-ctx.Done():
			d.Outcome = Undelivered
			return d
		case <-time.After(wait):
		}
	}
	d.Outcome = Undelivered
	return d
}

// PostForm posts a classic form-encoded callback the way Twilio posts a statusCallback: the parameters
// as an application/x-www-form-urlencoded body, X-Twilio-Signature over the URL (PublicURL when set,
// with its query) followed by the parameters sorted by key.
func (s *Sender) PostForm(ctx context.Context, params url.Values) (Response, error) {
	target, user, signed, err := s.addresses()
	if err != nil {
		return Response{}, err
	}
	if pu, err := url.Parse(s.PublicURL); err == nil && s.PublicURL != "" {
		target.RawQuery = pu.RawQuery
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target.String(), strings.NewReader(params.Encode()))
	if err != nil {
		return Response{}, err
	}
	return s.do(req, "application/x-www-form-urlencoded; charset=utf-8", twilio.SignForm(s.Token, signed, params), user)
}

// FreshClassic gives a classic callback a new resource SID (same prefix, random digits), so that a rerun
// is not deduplicated.
func FreshClassic(params url.Values) url.Values {
	out := url.Values{}
	for k, vs := range params {
		out[k] = slices.Clone(vs)
	}
	var fresh string
	for _, k := range []string{"MessageSid", "SmsSid", "SmsMessageSid", "CallSid", "Sid"} {
		old := out.Get(k)
		if len(old) < 2 {
			continue
		}
		if fresh == "" || !strings.HasPrefix(fresh, old[:2]) {
			fresh = old[:2] + randomHex(16)
		}
		out.Set(k, fresh)
	}
	return out
}

// NewTestEvent returns a sink test event as Twilio sends it: id the account SID, source "Sink", and a new
// test_id.
func NewTestEvent(accountSID string) []byte {
	id := randomHex(16)
	id = id[:8] + "-" + id[8:12] + "-" + id[12:16] + "-" + id[16:20] + "-" + id[20:]
	return TestEvent(accountSID, id, time.Now())
}

// TestEvent returns the sink test event Twilio posts for a sink test with testID, in Twilio's shape (the
// webhook quickstart's): id the account SID, source "Sink", dataschema
// https://events-schemas.twilio.com/EventStreams.TestSink/1.json, time in milliseconds, data {"test_id"}.
func TestEvent(accountSID, testID string, at time.Time) []byte {
	return fmt.Appendf(nil, `{"specversion":"1.0","type":%q,"source":"Sink","id":%q,`+
		`"dataschema":"https://events-schemas.twilio.com/EventStreams.TestSink/1.json","datacontenttype":"application/json",`+
		`"time":%q,"data":{"test_id":%q}}`, relay.TestEventType, accountSID, at.UTC().Format("2006-01-02T15:04:05.000Z"), testID)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
