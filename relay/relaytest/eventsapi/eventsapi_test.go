package eventsapi_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/relaykit/twilio-relay/relay/relaytest/eventsapi"
)

const (
	acct  = "AC0123456789abcdef0123456789abcdef"
	token = "0123456789abcdef0123456789abcdef"
)

// call sends a raw request as Twilio's libraries do and decodes the JSON answer.
func call(t *testing.T, f *eventsapi.Server, method, path string, form url.Values, auth bool) (int, map[string]any) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, f.URL+path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if auth {
		req.SetBasicAuth(acct, token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func TestWireShapes(t *testing.T) {
	f := eventsapi.Start(t, eventsapi.Options{Accounts: map[string]string{acct: token}})

	status, body := call(t, f, http.MethodGet, "/v1/Sinks", nil, false)
	if status != 401 || body["code"] != float64(20003) || body["status"] != float64(401) || body["more_info"] == nil {
		t.Fatalf("no credentials: %d %v", status, body)
	}

	status, body = call(t, f, http.MethodPost, "/v1/Sinks", url.Values{"Description": {"d"}, "SinkType": {"webhook"},
		"SinkConfiguration": {`{"destination":"https://h/x","method":"POST","batch_events":true}`}}, true)
	sid, _ := body["sid"].(string)
	if status != 201 || !strings.HasPrefix(sid, "DG") || len(sid) != 34 || body["sink_type"] != "webhook" ||
		body["sink_configuration"].(map[string]any)["batch_events"] != true {
		t.Fatalf("create sink: %d %v", status, body)
	}
	status, body = call(t, f, http.MethodPost, "/v1/Sinks", url.Values{"Description": {"d"}, "SinkType": {"webhook"},
		"SinkConfiguration": {`"{\"destination\":\"https://h/x\"}"`}}, true) // encoded twice
	if status != 400 || body["code"] != float64(20001) {
		t.Fatalf("a configuration encoded twice: %d %v", status, body)
	}

	types := url.Values{"Description": {"s"}, "SinkSid": {sid}, "Types": {
		`{"type":"com.twilio.messaging.message.sent","schema_version":3}`, `{"type":"com.twilio.messaging.message.failed"}`}}
	status, body = call(t, f, http.MethodPost, "/v1/Subscriptions", types, true)
	sub, _ := body["sid"].(string)
	if status != 201 || !strings.HasPrefix(sub, "DF") || body["sink_sid"] != sid {
		t.Fatalf("create subscription: %d %v", status, body)
	}
	status, body = call(t, f, http.MethodGet, "/v1/Subscriptions/"+sub+"/SubscribedEvents?PageSize=1", nil, true)
	meta := body["meta"].(map[string]any)
	next, _ := meta["next_page_url"].(string)
	if status != 200 || meta["key"] != "types" || meta["page_size"] != float64(1) || len(body["types"].([]any)) != 1 ||
		!strings.HasPrefix(next, "https://events.twilio.com/v1/Subscriptions/"+sub+"/SubscribedEvents?") {
		t.Fatalf("page 0: %d %v", status, body)
	}
	u, _ := url.Parse(next)
	status, body = call(t, f, http.MethodGet, u.RequestURI(), nil, true)
	got := body["types"].([]any)[0].(map[string]any)
	if status != 200 || got["type"] != "com.twilio.messaging.message.sent" || got["schema_version"] != float64(3) ||
		body["meta"].(map[string]any)["next_page_url"] != nil {
		t.Fatalf("page 1: %d %v", status, body)
	}

	if status, _ := call(t, f, http.MethodDelete, "/v1/Sinks/"+sid, nil, true); status != 400 {
		t.Fatalf("deleting a sink in use: %d", status)
	}
	if status, _ := call(t, f, http.MethodDelete, "/v1/Subscriptions/"+sub, nil, true); status != 204 {
		t.Fatalf("delete subscription: %d", status)
	}
	if status, _ := call(t, f, http.MethodDelete, "/v1/Sinks/"+sid, nil, true); status != 204 {
		t.Fatalf("delete sink: %d", status)
	}
	if status, body := call(t, f, http.MethodGet, "/v1/Sinks/"+sid, nil, true); status != 404 || body["code"] != float64(20404) {
		t.Fatalf("fetch a deleted sink: %d %v", status, body)
	}
}
