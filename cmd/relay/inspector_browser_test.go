package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/relaykit/twilio-relay/relay/kafka"
	"github.com/relaykit/twilio-relay/relay/twilio"
	"github.com/relaykit/twilio-relay/relay/twilio/twiliotest"
)

// The inspector in a real browser: Debian's chromium, headless, driven over the DevTools protocol
// (chromedp), against the real relay writing to a real Kafka broker. Screenshots for docs/inspector.md:
//
//	RELAY_SCREENSHOTS=docs/inspector RELAY_KAFKA_LIBS=$(scripts/kafka/fetch.sh) go test -run TestInspectorInBrowser ./cmd/relay/

const browserConfig = `
listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:0, auth: { token: "${ADMIN_TOKEN}" } }
log: { level: warn }
endpoints:
  - name: events
    path: /twilio/events
    public_url: ` + publicURL + `
    auth_tokens: [ "${TOKEN}" ]
sinks:
  - name: kafka
    kafka: { brokers: [ "${BROKERS}" ] }
  - name: dlq
    file: { path: "${DLQ}" }
routes:
  - name: messaging
    match: { types: [ "com.twilio.messaging.*" ] }
    to: [ { sink: kafka, topic: twilio.messaging } ]
  - name: voice
    match: { types: [ "com.twilio.voice.*" ] }
    to: [ { sink: kafka, topic: twilio.other } ]
dead_letter: { sink: dlq, topic: twilio.deadletter }
spool: { dir: "${SPOOL}", sinks: [ kafka ] }
inspector: { allow_replay: true }
`

// Values the page and the API must never show: the tokens, a refused request's signature, and what the
// events' data holds (phone numbers, a message body).
const (
	adminToken = "admin-token-0123456789abcdef0123"
	phone      = "+15558675309"
	smsBody    = "meet me at the usual place"
	wrongToken = "not-the-account-token-0123456789"
	browserSID = "SMb0000000000000000000000000000001"
)

// findChromium returns Debian's chromium (scripts/browser/install.sh installs it), or skips the test
// when it is not installed and RELAY_REQUIRE_BROWSER is not set.
func findChromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "no chromium on PATH: scripts/browser/install.sh installs Debian's chromium (scripts/test.sh runs it)"
	if os.Getenv("RELAY_REQUIRE_BROWSER") != "" {
		t.Fatal(msg + " [RELAY_REQUIRE_BROWSER is set]")
	}
	t.Skip(msg)
	return ""
}

// browser starts headless chromium for the test, sending the admin token with every request. The flags
// keep it off the network: as root it needs --no-sandbox, and without the background-networking ones it
// tries Google's hosts at every start.
func browser(t *testing.T) context.Context {
	exe := findChromium(t)
	opts := []chromedp.ExecAllocatorOption{chromedp.ExecPath(exe), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck, chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 900),
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true)}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatalf("start chromium (%s): %v", exe, err)
	}
	if _, err := chromedp.Call(ctx, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{
		Headers: network.Headers{"Authorization": "Bearer " + adminToken}}); err != nil {
		t.Fatal(err)
	}
	return ctx
}

// personalEvent is a message status event whose data holds personal data.
func personalEvent(id, typ string) json.RawMessage {
	return json.RawMessage(fmt.Sprintf(`{"specversion":"1.0","type":%q,"source":"/2010-04-01/Accounts/AC1/Messages/%s.json","id":%q,`+
		`"dataschema":"https://events-schemas.twilio.com/Messaging.MessageStatus/5","datacontenttype":"application/json",`+
		`"time":"2026-12-01T10:00:00.000Z","data":{"messageSid":%q,"to":%q,"from":"+15550001111","body":%q,"messageStatus":"delivered"}}`,
		typ, browserSID, id, browserSID, phone, smsBody))
}

// TestInspectorInBrowser answers "what happened to event EZ…?" in a real browser and checks the answer
// against Kafka: outcome, topic, partition and offset; then the same from the API and `relay trace`. A
// refused request shows with its reason; dead letters of the file sink preview and replay through the
// page's form (CSRF token, same origin); no token or data value appears anywhere in the page or the API.
func TestInspectorInBrowser(t *testing.T) {
	ctx := browser(t)
	k := startKafka(t)
	dir := t.TempDir()
	h := startRelayWith(t, k, browserConfig, map[string]string{"ADMIN_TOKEN": adminToken,
		"DLQ": filepath.Join(dir, "dead.jsonl"), "SPOOL": filepath.Join(dir, "spool")})
	admin := "http://" + h.relay.AdminAddr

	var ids []string
	for i := range 4 {
		id := fmt.Sprintf("EZb%031d", i)
		ids = append(ids, id)
		if r := h.post(personalEvent(id, "com.twilio.messaging.message.delivered")); r.Status != http.StatusOK {
			t.Fatalf("post %s: %d %s", id, r.Status, r.Body)
		}
	}
	if r := h.post(personalEvent("NOb0000000000000000000000000000001", "com.twilio.error-logs.error.logged")); r.Status != http.StatusOK {
		t.Fatalf("post of an event no route takes: %d", r.Status)
	}
	refusedBody, _ := json.Marshal([]json.RawMessage{personalEvent("EZrefused", "com.twilio.messaging.message.sent")})
	_, forgedSig := twilio.Sign(wrongToken, publicURL, refusedBody)
	forged := &twiliotest.Sender{URL: h.sender.URL, PublicURL: publicURL, Token: wrongToken, Client: h.sender.Client}
	if r, err := forged.PostBody(context.Background(), refusedBody); err != nil || r.Status != http.StatusServiceUnavailable {
		t.Fatalf("forged request: %v %d, want 503 (reject_status)", err, r.Status)
	}

	target := ids[2]
	rec := recordOf(t, readTopic(t, k.Addr(), "twilio.messaging"), target)
	where := fmt.Sprintf("partition %d offset %d", rec.Partition, rec.Offset)

	// The page: search the id, read the row.
	row := fmt.Sprintf(`tr.event[data-id="%s"]`, target)
	// The page before the search lists the event too: wait for the answer's page, whose search box
	// holds the id as its value attribute (typing sets only the property).
	answered := fmt.Sprintf(`input#q[value="%s"]`, target)
	if err := chromedp.Do(ctx, chromedp.Navigate(admin+"/"), chromedp.WaitVisible("#q"), chromedp.SendKeys("#q", target),
		chromedp.Click("#search"), chromedp.WaitVisible(answered), chromedp.WaitVisible(row)); err != nil {
		t.Fatalf("search on the page: %v", err)
	}
	text := mustRun(t, ctx, chromedp.Text(row))
	for _, want := range []string{"delivered", "kafka → twilio.messaging", where, browserSID} {
		if !strings.Contains(text, want) {
			t.Errorf("the row of %s says %q; want %q in it (Kafka holds it at %s)", target, text, want, where)
		}
	}
	if rows := mustRun(t, ctx, chromedp.Evaluate[int](`document.querySelectorAll("tr.event").length`)); rows != 1 {
		t.Errorf("a search by id shows %d events, want 1", rows)
	}
	if refusals := mustRun(t, ctx, chromedp.Text("#refusals")); !strings.Contains(refusals, "signature_mismatch") || !strings.Contains(refusals, "127.0.0.1") {
		t.Errorf("refusals on the page: %q, want signature_mismatch from 127.0.0.1", refusals)
	}
	noSecrets(t, "the page after a search", pageHTML(t, ctx), forgedSig)
	screenshot(t, ctx, "search-by-id", 1280)

	// By SID: every event about the message, its four statuses and the error log no route took.
	if err := chromedp.Do(ctx, chromedp.Navigate(admin+"/?q="+browserSID), chromedp.WaitVisible("table.events")); err != nil {
		t.Fatal(err)
	}
	if rows := mustRun(t, ctx, chromedp.Evaluate[int](`document.querySelectorAll("tr.event").length`)); rows != len(ids)+1 {
		t.Errorf("a search by SID shows %d events, want %d", rows, len(ids)+1)
	}

	// Dead letters: a dry run, then the replay, through the page's own forms.
	if err := chromedp.Do(ctx, chromedp.Navigate(admin+"/"), chromedp.WaitVisible("#preview"), chromedp.Click("#preview"),
		chromedp.WaitVisible("#message")); err != nil {
		t.Fatalf("replay preview: %v", err)
	}
	if msg := mustRun(t, ctx, chromedp.Text("#message")); !strings.Contains(msg, "dry run: 1 dead letters would be replayed") {
		t.Errorf("preview says %q", msg)
	}
	screenshot(t, ctx, "overview", 1280)
	if err := chromedp.Do(ctx, chromedp.WaitVisible("#replay"), chromedp.Click("#replay")); err != nil {
		t.Fatalf("replay: %v", err)
	}
	if msg := waitText(t, ctx, "#message", "replayed "); !strings.Contains(msg, "replayed 1 dead letters: 0 events delivered, 1 dead-lettered again") {
		t.Errorf("replay says %q", msg)
	}
	noSecrets(t, "the page after the replay", pageHTML(t, ctx), forgedSig)
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile), chromedp.Navigate(admin+"/?q="+target),
		chromedp.WaitVisible(row)); err != nil {
		t.Fatal(err)
	}
	screenshot(t, ctx, "phone", 390)

	// The API and relay trace say the same, and need the token.
	checkAPI(t, admin, target, where, forgedSig)
	t.Setenv(envAdminToken, adminToken)
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"trace", "-admin", h.relay.AdminAddr, browserSID}, &out, &errOut); err != nil {
		t.Fatalf("relay trace: %v\n%s", err, errOut.String())
	}
	t.Logf("relay trace -admin %s %s:\n%s", h.relay.AdminAddr, browserSID, out.String())
	line := ""
	for _, l := range strings.Split(out.String(), "\n") {
		if strings.Contains(l, target) {
			line = l
		}
	}
	if !strings.Contains(line, where) || !strings.Contains(line, "twilio.messaging") || !strings.Contains(line, "delivered") ||
		!strings.Contains(out.String(), "dead_lettered (no_route)") || strings.Count(out.String(), "\n") != len(ids)+2 {
		t.Errorf("relay trace says\n%s\nwant %s delivered to twilio.messaging at %s, and the error log dead-lettered", out.String(), target, where)
	}
}

func mustRun[T any](t *testing.T, ctx context.Context, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// pageHTML returns the whole document as the browser holds it, read in one evaluation: a query by node
// fails when the document is replaced meanwhile (a page that finishes loading after a form's POST).
func pageHTML(t *testing.T, ctx context.Context) string {
	t.Helper()
	waitText(t, ctx, "", "complete") // the document has loaded
	return mustRun(t, ctx, chromedp.Evaluate[string](`document.documentElement.outerHTML`))
}

// waitText waits until the element's text holds want (a new page after a form's POST), and returns it;
// with no selector, until the document's readyState does.
func waitText(t *testing.T, ctx context.Context, sel, want string) string {
	t.Helper()
	var text string
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		expr := `(document.querySelector(` + strconv.Quote(sel) + `)||{}).textContent||""`
		if sel == "" {
			expr = `document.readyState`
		}
		text, _ = chromedp.Run(ctx, chromedp.Evaluate[string](expr))
		if strings.Contains(text, want) {
			return text
		}
	}
	t.Fatalf("%s never said %q; last %q", sel, want, text)
	return ""
}

// recordOf returns the record of the event with that id.
func recordOf(t *testing.T, recs []kafka.Record, id string) kafka.Record {
	t.Helper()
	for _, r := range recs {
		if header(r, "ce_id") == id {
			return r
		}
	}
	t.Fatalf("event %s is not in Kafka", id)
	return kafka.Record{}
}

// noSecrets fails when text holds a token, a data value or the forged signature.
func noSecrets(t *testing.T, what, text, forgedSig string) {
	t.Helper()
	for name, secret := range map[string]string{"the Twilio auth token": token, "the admin token": adminToken, "the forged token": wrongToken,
		"the forged signature": forgedSig, "a phone number from data": phone, "the message body from data": smsBody} {
		if strings.Contains(text, secret) {
			t.Errorf("%s shows %s (%q)", what, name, secret)
		}
	}
}

// checkAPI reads the API with and without the token.
func checkAPI(t *testing.T, admin, id, where, forgedSig string) {
	t.Helper()
	get := func(path string, withToken bool) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, admin+path, nil)
		if withToken {
			req.Header.Set("Authorization", "Bearer "+adminToken)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, path := range []string{"/", "/api/events", "/metrics", "/spool"} {
		if code, _ := get(path, false); code != http.StatusUnauthorized {
			t.Errorf("%s without the token: %d, want 401", path, code)
		}
	}
	if code, _ := get("/readyz", false); code == http.StatusUnauthorized {
		t.Error("/readyz needs the token: the kubelet's probes have none")
	}
	code, body := get("/api/events?id="+id, true)
	t.Logf("GET /api/events?id=%s:\n%s", id, body)
	var got struct {
		Events []struct {
			Outcome string
			Sinks   []struct {
				Topic string
				At    struct{ Text string }
			}
		}
	}
	if err := json.Unmarshal([]byte(body), &got); code != 200 || err != nil || len(got.Events) != 1 || got.Events[0].Outcome != "delivered" ||
		got.Events[0].Sinks[0].Topic != "twilio.messaging" || got.Events[0].Sinks[0].At.Text != where {
		t.Errorf("/api/events?id=%s: %d %v\n%s\nwant delivered to twilio.messaging at %s", id, code, err, body, where)
	}
	for _, path := range []string{"/api/events?limit=1000", "/api/refusals", "/api/endpoints", "/api/routes", "/api/spool", "/api/deadletters"} {
		code, body := get(path, true)
		if code != 200 {
			t.Errorf("%s: %d %s", path, code, body)
		}
		noSecrets(t, path, body, forgedSig)
	}
}

// screenshot saves a full-page PNG into $RELAY_SCREENSHOTS, when set.
func screenshot(t *testing.T, ctx context.Context, name string, width int64) {
	t.Helper()
	dir := os.Getenv("RELAY_SCREENSHOTS")
	if dir == "" {
		return
	}
	png := mustRun(t, ctx, chromedp.FullScreenshot(100))
	path := filepath.Join(dir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot %s (%d px wide): %s", name, width, path)
}
