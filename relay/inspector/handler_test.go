package inspector

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/relaykit/twilio-relay/relay"
)

func get(t *testing.T, h http.Handler, target string) (int, string) {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, target, nil))
	return w.Code, w.Body.String()
}

func TestPageAndAPI(t *testing.T) {
	r := newRecord(t, Config{})
	process(r, delivered(event("EZ1", "SM1"), 42), delivered(event("EZ2", "SM2"), 43))
	r.Rejected(relay.Refusal{Endpoint: "events", Reason: "bad_signature", Remote: "203.0.113.9", BodyBytes: 700})
	h := Handler(r, Actions{Name: "relay-0", Routes: []RouteInfo{{Name: "messaging", Match: "types com.twilio.messaging.*", Targets: "kafka:twilio.messaging"}}})

	code, body := get(t, h, "/?q=SM2")
	if code != 200 || !strings.Contains(body, "EZ2") || strings.Contains(body, `data-id="EZ1"`) || !strings.Contains(body, "partition 2 offset 43") ||
		!strings.Contains(body, "bad_signature") || !strings.Contains(body, "203.0.113.9") {
		t.Fatalf("page: %d\n%s", code, body)
	}
	for _, secret := range []string{"+15550001111", "hello"} {
		if strings.Contains(body, secret) {
			t.Errorf("the page shows %q from data", secret)
		}
	}
	code, body = get(t, h, "/api/events?id=EZ1")
	var got struct{ Events []Event }
	if err := json.Unmarshal([]byte(body), &got); code != 200 || err != nil || len(got.Events) != 1 || *got.Events[0].Sinks[0].At.Offset != 42 {
		t.Fatalf("/api/events: %d %v %s", code, err, body)
	}
	code, body = get(t, h, "/api/routes")
	if code != 200 || !strings.Contains(body, `"hits": 2`) {
		t.Fatalf("/api/routes: %d %s", code, body)
	}
	if code, body = get(t, h, "/static/app.js"); code != 200 || !strings.Contains(body, "refresh") {
		t.Fatalf("/static/app.js: %d", code)
	}
	if code, _ = get(t, h, "/page.html"); code != 404 {
		t.Fatalf("/page.html: %d, want 404", code)
	}
}

// TestActionsNeedTheFormTokenAndTheOrigin: a POST without the page's token, or from another site, is
// refused; replay is refused unless allowed; a dry run lists without replaying.
func TestActionsNeedTheFormTokenAndTheOrigin(t *testing.T) {
	r := newRecord(t, Config{})
	replayed := 0
	dls := []DeadLetter{{Line: 1, Endpoint: "events", Reason: "no_route", OriginalID: "EZ9", Bytes: 10}}
	acts := Actions{
		DeadLetters: func(context.Context, string, string) ([]DeadLetter, error) { return dls, nil },
		Replay:      func(context.Context, string, string) (string, error) { replayed++; return "replayed 1", nil },
	}
	h := Handler(r, acts)
	_, page := get(t, h, "/")
	m := regexp.MustCompile(`name="csrf" value="([0-9a-f]{64})"`).FindStringSubmatch(page)
	if m == nil {
		t.Fatal("no form token on the page")
	}
	post := func(form url.Values, hdr map[string]string) (int, string) {
		req := httptest.NewRequest(http.MethodPost, "/actions/replay", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		b, _ := io.ReadAll(w.Body)
		return w.Code, string(b)
	}
	if code, _ := post(url.Values{"replay": {"1"}}, nil); code != 403 {
		t.Errorf("without the token: %d", code)
	}
	if code, _ := post(url.Values{"csrf": {m[1]}, "replay": {"1"}}, map[string]string{"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}); code != 403 {
		t.Errorf("from another site: %d", code)
	}
	if code, body := post(url.Values{"csrf": {m[1]}, "dry_run": {"1"}}, map[string]string{"Origin": "http://example.com"}); code != 200 || !strings.Contains(body, "1 dead letters would be replayed") || replayed != 0 {
		t.Errorf("dry run: %d replayed %d\n%s", code, replayed, body)
	}
	if code, body := post(url.Values{"csrf": {m[1]}, "replay": {"1"}}, map[string]string{"Sec-Fetch-Site": "same-origin"}); code != 200 || replayed != 1 || !strings.Contains(body, "replayed 1") {
		t.Errorf("replay: %d replayed %d", code, replayed)
	}
	acts.Replay = nil
	h = Handler(r, acts)
	_, page = get(t, h, "/")
	m = regexp.MustCompile(`name="csrf" value="([0-9a-f]{64})"`).FindStringSubmatch(page)
	if code, _ := post(url.Values{"csrf": {m[1]}, "replay": {"1"}}, nil); code != 403 {
		t.Errorf("replay while off: %d", code)
	}
}
