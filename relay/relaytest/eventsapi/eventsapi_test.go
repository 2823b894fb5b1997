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

// TestLifecycleAndEcho: the catalog carries each type's lifecycle status and documentation URL; a new
// subscription or an added type that Twilio refuses is refused in Twilio's error shape; the sink's GET
// masks the Basic password and, when told, leaves batch_events out.
func TestLifecycleAndEcho(t *testing.T) {
	f := eventsapi.Start(t, eventsapi.Options{Accounts: map[string]string{acct: token}, OmitBatchEvents: true})
	status, body := call(t, f, http.MethodGet, "/v1/Types/com.twilio.conversations.delivery.updated", nil, true)
	if status != 200 || body["status"] != "discontinued" || body["documentation_url"] == nil {
		t.Fatalf("type: %d %v", status, body)
	}
	if _, body := call(t, f, http.MethodGet, "/v1/Types/com.twilio.messaging.message.sent", nil, true); body["status"] != "available" {
		t.Fatalf("an available type: %v", body)
	}

	_, body = call(t, f, http.MethodPost, "/v1/Sinks", url.Values{"Description": {"d"}, "SinkType": {"webhook"},
		"SinkConfiguration": {`{"destination":"https://u:secret@h/x","method":"POST","batch_events":true}`}}, true)
	sid, _ := body["sid"].(string)
	conf := body["sink_configuration"].(map[string]any)
	if conf["destination"] != "https://u:%2A%2A%2A%2A@h/x" || conf["batch_events"] != nil { // "****", escaped
		t.Fatalf("sink echo %v: want the password masked and no batch_events", conf)
	}

	for _, tc := range []struct {
		typ  string
		code float64
		msg  string
	}{
		{"com.twilio.conversations.delivery.updated", 91101, "Type is discontinued"},
		{"com.twilio.voice.insights.call-summary.predicted-complete", 91101, "Type is restricted"},
		{"com.twilio.nothing.like.it", 91104, "Type not found"},
	} {
		status, body := call(t, f, http.MethodPost, "/v1/Subscriptions", url.Values{"Description": {"s"}, "SinkSid": {sid},
			"Types": {`{"type":"com.twilio.messaging.message.sent"}`, `{"type":"` + tc.typ + `"}`}}, true)
		msg, _ := body["message"].(string)
		if status != 400 || body["code"] != tc.code || body["status"] != float64(400) || !strings.HasPrefix(msg, tc.msg) || body["more_info"] == nil {
			t.Errorf("subscribe %s: %d %v", tc.typ, status, body)
		}
	}
	if n := len(f.Snapshot(acct).Subscriptions); n != 0 {
		t.Fatalf("%d subscriptions made by refused requests", n)
	}
	// Deprecated types are still taken; restricted ones are not added to an existing subscription.
	status, body = call(t, f, http.MethodPost, "/v1/Subscriptions", url.Values{"Description": {"s"}, "SinkSid": {sid},
		"Types": {`{"type":"com.twilio.voice.webhook.status-callback.call.completed"}`}}, true)
	sub, _ := body["sid"].(string)
	if status != 201 {
		t.Fatalf("subscribe a deprecated type: %d %v", status, body)
	}
	status, body = call(t, f, http.MethodPost, "/v1/Subscriptions/"+sub+"/SubscribedEvents",
		url.Values{"Type": {"com.twilio.voice.insights.call-summary.predicted-complete"}}, true)
	if status != 400 || body["code"] != float64(91101) {
		t.Fatalf("add a restricted type: %d %v", status, body)
	}
}
