package twilio_test

import (
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/relaykit/twilio-relay/relay"
	"github.com/relaykit/twilio-relay/relay/twilio"
	"github.com/twilio/twilio-go/client"
)

// Classic (form-encoded) vectors A1, A2, A6 and A7 of /work/shared/twilio/vectors.txt, token "12345",
// BASE_URL https://mycompany.com/myapp.php?foo=1&bar=2. Literals on purpose (see signature_test.go).
var (
	vecA1Params = url.Values{"CallSid": {"CA1234567890ABCDE"}, "Caller": {"+14158675309"}, "Digits": {"1234"},
		"From": {"+14158675309"}, "To": {"+18005551212"}}
	vecA2Params = url.Values{"Digits": {"1234"}, "CallSid": {"CA1234567890ABCDE"}, "To": {"+18005551212"},
		"Caller": {"+14158675309"}, "From": {"+14158675309"}, "ReasonConferenceEnded": {"test"}, "Reason": {"Participant"}}
	vecA6Params  = url.Values{"Sid": {"CA123"}, "SidAccount": {"AC123"}, "Digits": {"5678", "1234", "1234"}}
	vecA6Params2 = url.Values{"MessagingBinding.Address": {"+1325xxxxxxx", "+1415xxxxxxx"}}
)

func TestVerifyFormVectors(t *testing.T) {
	v := twilio.NewVerifier([]string{"wrong-token", vecToken}) // a keyring: any token may sign
	tests := []struct {
		name   string
		public []string // the endpoint's signed URL forms, without query
		query  string
		params url.Values
		sig    string
		err    error
	}{
		{"A1", []string{vecPublicURL}, "foo=1&bar=2", vecA1Params, "RSOYDt4T1cUTdK1PDd93/VVr8B8=", nil},
		{"A1 signed with :443, public URL without port", []string{vecPublicURL}, "foo=1&bar=2", vecA1Params, "kvajT1Ptam85bY51eRf/AJRuM3w=", nil},
		{"A1 public URL with :443, signed without port", []string{"https://mycompany.com:443/myapp.php"}, "foo=1&bar=2", vecA1Params, "RSOYDt4T1cUTdK1PDd93/VVr8B8=", nil},
		{"A1 http signed with :80", []string{"http://mycompany.com/myapp.php"}, "foo=1&bar=2", vecA1Params, "0ZXoZLH/DfblKGATFgpif+LLRf4=", nil},
		{"A1 http :1234", []string{"http://mycompany.com:1234/myapp.php"}, "foo=1&bar=2", vecA1Params, "Zmvh+3yNM1Phv2jhDCwEM3q5ebU=", nil},
		{"A1 https :1234 validates port-less (twilio-go strips the port)", []string{"https://mycompany.com:1234/myapp.php"}, "foo=1&bar=2", vecA1Params, "RSOYDt4T1cUTdK1PDd93/VVr8B8=", nil},
		{"A1 user:pass@ form when Basic credentials are set", []string{vecPublicURL, "https://user:pass@mycompany.com/myapp.php"}, "foo=1&bar=2", vecA1Params, "CukzLTc1tT5dXEDIHm/tKBanW10=", nil},
		{"A1 user:pass@ with :443", []string{vecPublicURL, "https://user:pass@mycompany.com/myapp.php"}, "foo=1&bar=2", vecA1Params, "ZQFR1PTIZXF2MXB8ZnKCvnnA+rI=", nil},
		{"A1 user:pass@ form not configured", []string{vecPublicURL}, "foo=1&bar=2", vecA1Params, "CukzLTc1tT5dXEDIHm/tKBanW10=", twilio.ErrSignatureMismatch},
		{"A1 query reordered", []string{vecPublicURL}, "bar=2&foo=1", vecA1Params, "RSOYDt4T1cUTdK1PDd93/VVr8B8=", twilio.ErrSignatureMismatch},
		{"A1 a parameter changed", []string{vecPublicURL}, "foo=1&bar=2", with(vecA1Params, "Digits", "9999"), "RSOYDt4T1cUTdK1PDd93/VVr8B8=", twilio.ErrSignatureMismatch},
		{"A1 a parameter added", []string{vecPublicURL}, "foo=1&bar=2", with(vecA1Params, "Extra", "x"), "RSOYDt4T1cUTdK1PDd93/VVr8B8=", twilio.ErrSignatureMismatch},
		{"A1 trailing slash", []string{vecPublicURL + "/"}, "foo=1&bar=2", vecA1Params, "RSOYDt4T1cUTdK1PDd93/VVr8B8=", twilio.ErrSignatureMismatch},
		{"A2 (Reason sorts before ReasonConferenceEnded)", []string{vecPublicURL}, "foo=1&bar=2", vecA2Params, "vOEb5UThFn24KEfnOFLQY2AE5FY=", nil},
		{"A2 http", []string{"http://mycompany.com/myapp.php"}, "foo=1&bar=2", vecA2Params, "n2xBNyzSW7rfYStDtOFiFMv7qNo=", nil},
		{"A2 http :1234", []string{"http://mycompany.com:1234/myapp.php"}, "foo=1&bar=2", vecA2Params, "n2xBNyzSW7rfYStDtOFiFMv7qNo=", nil},
		{"A2 wrong-order signature is rejected", []string{vecPublicURL}, "foo=1&bar=2", vecA2Params, "95+Bu0JVPi0r/SsESZCVf0dWAjw=", twilio.ErrSignatureMismatch},
		{"A6 repeated values, sorted and de-duplicated (python/node)", []string{vecPublicURL}, "foo=1&bar=2", vecA6Params, "IK+Dwps556ElfBT0I3Rgjkr1wJU=", nil},
		{"A6 MessagingBinding.Address", []string{vecPublicURL}, "foo=1&bar=2", vecA6Params2, "83O6e2vORAoJHUNzJjDWN1jz+BA=", nil},
		{"A7 query as Twilio sent it (%27)", []string{vecPublicURL}, "foo=1&bar=2&Body=It%27s+amazing", vecA1Params, "TfZzewPq8wqrGlMfyAud8+/IvJ0=", nil},
		{"A7 query unescaped is not what Twilio signed", []string{vecPublicURL}, "foo=1&bar=2&Body=It's+amazing", vecA1Params, "TfZzewPq8wqrGlMfyAud8+/IvJ0=", twilio.ErrSignatureMismatch},
		{"no signature", []string{vecPublicURL}, "foo=1&bar=2", vecA1Params, "", twilio.ErrNoSignature},
		{"an Event Streams request on a classic endpoint", []string{vecPublicURL}, vecA4Query1, nil, vecA4Sig1, twilio.ErrEventsOnForms},
		{"a base URL with a query is never used", []string{vecPublicURL + "?foo=1&bar=2"}, "", vecA1Params, "RSOYDt4T1cUTdK1PDd93/VVr8B8=", twilio.ErrSignatureMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The parameters travel as a form body and are parsed back, as the receiver does.
			params, err := twilio.ParseForm([]byte(tt.params.Encode()))
			if err != nil {
				t.Fatal(err)
			}
			if err := v.VerifyForm(tt.public, tt.query, params, tt.sig); !errors.Is(err, tt.err) {
				t.Fatalf("VerifyForm: %v, want %v", err, tt.err)
			}
		})
	}
}

func with(p url.Values, k, v string) url.Values {
	out := url.Values{}
	for key, vs := range p {
		out[key] = append([]string(nil), vs...)
	}
	out.Set(k, v)
	return out
}

// TestTwilioGoKeepsTheFirstValue documents why VerifyForm folds repeated values itself: twilio-go's
// Validate takes one value per key, and ValidateBody keeps the first, so A6 fails with it alone.
func TestTwilioGoKeepsTheFirstValue(t *testing.T) {
	rv := client.NewRequestValidator(vecToken)
	body := []byte(vecA6Params.Encode())
	if rv.ValidateBody(vecPublicURL+"?foo=1&bar=2", body, "IK+Dwps556ElfBT0I3Rgjkr1wJU=") {
		t.Fatal("twilio-go now validates repeated values: VerifyForm's folding may be simplified")
	}
}

func TestSignForm(t *testing.T) {
	for _, tt := range []struct {
		params url.Values
		want   string
	}{
		{vecA1Params, "RSOYDt4T1cUTdK1PDd93/VVr8B8="},
		{vecA2Params, "vOEb5UThFn24KEfnOFLQY2AE5FY="},
		{vecA6Params, "IK+Dwps556ElfBT0I3Rgjkr1wJU="},
	} {
		if got := twilio.SignForm(vecToken, vecPublicURL+"?foo=1&bar=2", tt.params); got != tt.want {
			t.Errorf("SignForm(%v) = %s, want %s", tt.params, got, tt.want)
		}
	}
}

func TestParseFormRefusesBadEscapes(t *testing.T) {
	if _, err := twilio.ParseForm([]byte("a=%zz")); !errors.Is(err, twilio.ErrBadForm) || twilio.Reason(err) != "bad_form" {
		t.Fatalf("ParseForm: %v", err)
	}
}

func TestDecodeClassic(t *testing.T) {
	at := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	const acct = "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	tests := []struct {
		name                   string
		params                 url.Values
		opts                   twilio.DecodeOptions
		typ, id, source, tm    string
		data                   map[string]any
		reject                 string
		subject, resourceSIDIs string
	}{
		{name: "messaging status callback",
			params: url.Values{"AccountSid": {acct}, "MessageSid": {"SM11111111111111111111111111111111"}, "SmsSid": {"SM11111111111111111111111111111111"},
				"MessageStatus": {"delivered"}, "SmsStatus": {"delivered"}, "From": {"+15017122661"}, "To": {"+15558675310"}, "ApiVersion": {"2010-04-01"}},
			typ: "com.twilio.classic.messaging.message.delivered", id: "SM11111111111111111111111111111111:delivered",
			source: "/2010-04-01/Accounts/" + acct + "/Messages/SM11111111111111111111111111111111.json", tm: "2026-11-23T10:00:00Z",
			data: map[string]any{"MessageStatus": "delivered", "To": "+15558675310"}},
		{name: "older callback with SmsSid and SmsStatus only; status lower-cased",
			params: url.Values{"AccountSid": {acct}, "SmsSid": {"SM22222222222222222222222222222222"}, "SmsStatus": {"Undelivered"}, "ErrorCode": {"30003"}},
			typ:    "com.twilio.classic.messaging.message.undelivered", id: "SM22222222222222222222222222222222:undelivered",
			source: "/2010-04-01/Accounts/" + acct + "/Messages/SM22222222222222222222222222222222.json", tm: "2026-11-23T10:00:00Z",
			data: map[string]any{"ErrorCode": "30003"}},
		{name: "voice status callback with its RFC 1123 Timestamp",
			params: url.Values{"AccountSid": {acct}, "CallSid": {"CA33333333333333333333333333333333"}, "CallStatus": {"no-answer"},
				"Timestamp": {"Mon, 23 Nov 2026 10:05:00 +0000"}, "SequenceNumber": {"2"}},
			typ: "com.twilio.classic.voice.call.no-answer", id: "CA33333333333333333333333333333333:no-answer",
			source: "/2010-04-01/Accounts/" + acct + "/Calls/CA33333333333333333333333333333333.json", tm: "2026-11-23T10:05:00Z",
			data: map[string]any{"SequenceNumber": "2"}},
		{name: "Debugger alert: Payload becomes an object",
			params: url.Values{"AccountSid": {acct}, "Sid": {"NO44444444444444444444444444444444"}, "Level": {"Error"}, "Timestamp": {"2026-11-23T10:06:07Z"},
				"PayloadType": {"application/json"}, "Payload": {`{"resource_sid":"SM1","error_code":"11200","more_info":{"msg":"x"}}`}},
			typ: "com.twilio.classic.debugger.alert.error", id: "NO44444444444444444444444444444444:error",
			source: "/v1/Alerts/NO44444444444444444444444444444444", tm: "2026-11-23T10:06:07Z",
			data: map[string]any{"Payload": map[string]any{"resource_sid": "SM1", "error_code": "11200", "more_info": map[string]any{"msg": "x"}}}},
		{name: "Debugger alert with data: keep: Payload stays a string",
			opts: twilio.DecodeOptions{KeepDataString: true},
			params: url.Values{"AccountSid": {acct}, "Sid": {"NO44444444444444444444444444444444"}, "Level": {"Warning"},
				"Payload": {`{"a":1}`}},
			typ: "com.twilio.classic.debugger.alert.warning", id: "NO44444444444444444444444444444444:warning",
			source: "/v1/Alerts/NO44444444444444444444444444444444", tm: "2026-11-23T10:00:00Z",
			data: map[string]any{"Payload": `{"a":1}`}},
		{name: "a repeated parameter is an array",
			params: url.Values{"AccountSid": {acct}, "CallSid": {"CA33333333333333333333333333333333"}, "CallStatus": {"completed"}, "Digits": {"1", "2"}},
			typ:    "com.twilio.classic.voice.call.completed", id: "CA33333333333333333333333333333333:completed",
			source: "/2010-04-01/Accounts/" + acct + "/Calls/CA33333333333333333333333333333333.json", tm: "2026-11-23T10:00:00Z",
			data: map[string]any{"Digits": []any{"1", "2"}}},
		{name: "vector A1 (a gather, no CallStatus) is no kind the relay maps", params: vecA1Params, reject: "none of"},
		{name: "no AccountSid", params: url.Values{"CallSid": {"CA33333333333333333333333333333333"}, "CallStatus": {"completed"}}, reject: "AccountSid"},
		{name: "a SID that is not one", params: url.Values{"AccountSid": {acct}, "CallSid": {"CA1"}, "CallStatus": {"completed"}}, reject: "not a Twilio SID"},
		{name: "a status that is not a word", params: url.Values{"AccountSid": {acct}, "CallSid": {"CA33333333333333333333333333333333"}, "CallStatus": {"a.b/c"}}, reject: "status word"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := []byte(tt.params.Encode())
			b := twilio.DecodeClassic("calls", body, tt.params, "", at, tt.opts)
			if tt.reject != "" {
				if len(b.Events) != 0 || len(b.Rejects) != 1 || b.Rejects[0].Reason != relay.ReasonInvalidEvent ||
					!strings.Contains(b.Rejects[0].Detail, tt.reject) || string(b.Rejects[0].Raw) != string(body) {
					t.Fatalf("batch %+v: want one invalid_event reject with the form body, detail containing %q", b, tt.reject)
				}
				return
			}
			if len(b.Events) != 1 || len(b.Rejects) != 0 {
				t.Fatalf("batch %+v %+v", b.Events, b.Rejects)
			}
			ev := b.Events[0]
			if ev.Type != tt.typ || ev.ID != tt.id || ev.Source != tt.source || ev.Time != tt.tm || ev.SpecVersion != "1.0" ||
				ev.Endpoint != "calls" || ev.DataContentType != "application/json" {
				t.Fatalf("event %+v\nwant type %s id %s source %s time %s", ev, tt.typ, tt.id, tt.source, tt.tm)
			}
			sid, _, _ := strings.Cut(tt.id, ":")
			if ev.Subject != sid || ev.ResourceSID() != sid {
				t.Errorf("subject %q, resource SID %q: want %s (the Kafka key)", ev.Subject, ev.ResourceSID(), sid)
			}
			var data map[string]any
			if err := json.Unmarshal(ev.Data, &data); err != nil {
				t.Fatalf("data %s: %v", ev.Data, err)
			}
			for k, want := range tt.data {
				if got, _ := json.Marshal(data[k]); string(got) != mustJSON(want) {
					t.Errorf("data.%s = %s, want %s", k, got, mustJSON(want))
				}
			}
			if len(data) != len(tt.params) {
				t.Errorf("data has %d parameters, want all %d", len(data), len(tt.params))
			}
			var raw map[string]any
			if err := json.Unmarshal(ev.Raw, &raw); err != nil || raw["id"] != tt.id || raw["type"] != tt.typ {
				t.Errorf("Raw %s is not the CloudEvent", ev.Raw)
			}
			// The same callback again has the same id: a retry is deduplicated.
			again := twilio.DecodeClassic("calls", body, tt.params, "", at.Add(time.Minute), tt.opts)
			if again.Events[0].DedupeKey() != ev.DedupeKey() {
				t.Errorf("a repeated callback has another dedupe key: %q vs %q", again.Events[0].DedupeKey(), ev.DedupeKey())
			}
		})
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestDecodeClassicIdempotencyToken: Twilio's I-Twilio-Idempotency-Token (the same on its retries of one
// callback) is part of the id, so a retry is deduplicated and two callbacks that share SID and status
// (a <Dial action> posting in-progress twice) are not; without a usable token the id is SID:status.
func TestDecodeClassicIdempotencyToken(t *testing.T) {
	const acct = "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	params := url.Values{"AccountSid": {acct}, "CallSid": {"CA33333333333333333333333333333333"}, "CallStatus": {"in-progress"}}
	body := []byte(params.Encode())
	at := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	key := func(token string) (string, string) {
		b := twilio.DecodeClassic("calls", body, params, token, at, twilio.DecodeOptions{})
		if len(b.Events) != 1 {
			t.Fatalf("token %q: %+v", token, b.Rejects)
		}
		return b.Events[0].ID, b.Events[0].DedupeKey()
	}
	const tokA, tokB = "4f2e8fd5-6bb0-4e8e-840e-0bc9d828a22e", "b00cd941-9b6e-49c3-84fb-e2af2cf92cc7"
	idA, keyA := key(tokA)
	if idA != "CA33333333333333333333333333333333:in-progress:"+tokA {
		t.Errorf("id with a token = %q", idA)
	}
	if _, again := key(tokA); again != keyA {
		t.Errorf("Twilio's retry (same token) has another dedupe key: %q vs %q", again, keyA)
	}
	if _, keyB := key(tokB); keyB == keyA {
		t.Errorf("two callbacks with different tokens share the dedupe key %q", keyA)
	}
	for _, bad := range []string{"", "a b", "x\x00", strings.Repeat("a", 129), "é"} {
		if id, _ := key(bad); id != "CA33333333333333333333333333333333:in-progress" {
			t.Errorf("token %q: id %q, want the SID:status fallback", bad, id)
		}
	}
}

// TestVerifyGet: a classic webhook sent with GET is signed over the URL with its query and nothing else
// (twilio-go's Validate with no parameters), with the default-port variants twilio-go tries.
func TestVerifyGet(t *testing.T) {
	const query = "AccountSid=ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa&CallSid=CA33333333333333333333333333333333&CallStatus=completed"
	v := twilio.NewVerifier([]string{"other", vecToken})
	tests := []struct {
		name, query, sig string
		want             error
	}{
		{"signed over the URL and query", query, hmacSig(vecToken, vecPublicURL+"?"+query), nil},
		{"signed over the :443 form", query, hmacSig(vecToken, vecA5PublicPort+"?"+query), nil},
		{"signed as a POST form (URL + sorted parameters)", query, hmacSig(vecToken, vecPublicURL+"?"+query+"AccountSidACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"), twilio.ErrSignatureMismatch},
		{"query reordered", "CallSid=CA33333333333333333333333333333333&AccountSid=ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa&CallStatus=completed",
			hmacSig(vecToken, vecPublicURL+"?"+query), twilio.ErrSignatureMismatch},
		{"another token", query, hmacSig("54321", vecPublicURL+"?"+query), twilio.ErrSignatureMismatch},
		{"no signature", query, "", twilio.ErrNoSignature},
		{"an Event Streams request", vecA4Query1, vecA4Sig1, twilio.ErrEventsOnForms},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := v.VerifyGet([]string{vecPublicURL}, tt.query, tt.sig); !errors.Is(err, tt.want) {
				t.Fatalf("VerifyGet = %v, want %v", err, tt.want)
			}
		})
	}
	// twilio-go agrees on the first: Validate of the URL with its query and no parameters.
	rv := client.NewRequestValidator(vecToken)
	if !rv.Validate(vecPublicURL+"?"+query, nil, hmacSig(vecToken, vecPublicURL+"?"+query)) {
		t.Fatal("twilio-go refuses a GET signature over the URL alone")
	}
}
