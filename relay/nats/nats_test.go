package nats_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/relaykit/twilio-relay/relay"
	"github.com/relaykit/twilio-relay/relay/nats"
	"github.com/relaykit/twilio-relay/relay/relaytest/servers"
)

func event(id string) *relay.Event {
	return &relay.Event{SpecVersion: "1.0", ID: id, Source: "/s", Type: "com.twilio.messaging.message.sent",
		DataContentType: "application/json", Data: []byte(`{"messageSid":"SM1"}`)}
}

func newSink(t *testing.T, cfg nats.Config) *nats.Sink {
	t.Helper()
	s, err := nats.New("test", cfg.Defaults(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

// write writes msgs and returns one error per message.
func write(t *testing.T, s *nats.Sink, msgs ...relay.Message) []error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return relay.PerMessage(s.Write(ctx, msgs), len(msgs))
}

// TestErrorClasses: what is permanent and what is transient, against a real server.
func TestErrorClasses(t *testing.T) {
	t.Parallel()
	srv := servers.StartNATS(t)
	r := newReader(t, srv.URL())
	r.createStream(t, "SMALL", jetstream.StreamConfig{Subjects: []string{"small.>"}, MaxMsgSize: 1024})
	r.createStream(t, "EVENTS", jetstream.StreamConfig{Subjects: []string{"events.>"}})
	s := newSink(t, nats.Config{URLs: []string{srv.URL()}})

	big := event("EZbig")
	big.Data = []byte(`{"pad":"` + strings.Repeat("x", 2048) + `"}`)
	huge := event("EZhuge")
	huge.Data = make([]byte, 2<<20)
	badExt := event("EZext")
	badExt.Extensions = map[string]string{"Bad:Name": "v"}
	for _, tc := range []struct {
		name      string
		msg       relay.Message
		permanent bool
	}{
		{"stored", relay.Message{Event: event("EZok"), Topic: "events.ok"}, false},
		{"over the stream's max_msg_size", relay.Message{Event: big, Topic: "small.big"}, true},
		{"over the server's max_payload", relay.Message{Event: huge, Topic: "events.huge"}, true},
		{"no stream captures the subject", relay.Message{Event: event("EZnostream"), Topic: "nowhere.at.all"}, false},
		{"empty subject", relay.Message{Event: event("EZ1"), Topic: ""}, true},
		{"white space", relay.Message{Event: event("EZ1"), Topic: "events.a b"}, true},
		{"empty token", relay.Message{Event: event("EZ1"), Topic: "events..a"}, true},
		{"wildcard *", relay.Message{Event: event("EZ1"), Topic: "events.*"}, true},
		{"wildcard >", relay.Message{Event: event("EZ1"), Topic: "events.>"}, true},
		{"extension name no header carries", relay.Message{Event: badExt, Topic: "events.ext"}, true},
	} {
		err := write(t, s, tc.msg)[0]
		t.Logf("%s: %v", tc.name, err)
		switch {
		case tc.name == "stored" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.name != "stored" && err == nil:
			t.Errorf("%s: acknowledged", tc.name)
		case tc.name != "stored" && relay.IsPermanent(err) != tc.permanent:
			t.Errorf("%s: %v: permanent %v, want %v", tc.name, err, relay.IsPermanent(err), tc.permanent)
		}
	}
	// The failures did not disturb the others in their write.
	errs := write(t, s, relay.Message{Event: event("EZa"), Topic: "events.a"},
		relay.Message{Event: big, Topic: "small.big"}, relay.Message{Event: event("EZb"), Topic: "events.b"})
	if errs[0] != nil || !relay.IsPermanent(errs[1]) || errs[2] != nil {
		t.Errorf("mixed write: %v", errs)
	}
}

// TestMsgID: a re-sent event is stored once (the duplicate window); one event on two subjects of one
// stream is stored twice; test events, which share their id, are never taken for duplicates.
func TestMsgID(t *testing.T) {
	t.Parallel()
	srv := servers.StartNATS(t)
	r := newReader(t, srv.URL())
	r.createStream(t, "TWILIO", jetstream.StreamConfig{Subjects: []string{"twilio.>"}})
	s := newSink(t, nats.Config{URLs: []string{srv.URL()}})

	e := event("EZdup")
	for range 3 {
		if err := write(t, s, relay.Message{Event: e, Topic: "twilio.messaging"})[0]; err != nil {
			t.Fatal(err)
		}
	}
	if err := write(t, s, relay.Message{Event: e, Topic: "twilio.all"})[0]; err != nil {
		t.Fatal(err)
	}
	test := event("AC00000000000000000000000000000000")
	test.Type = relay.TestEventType
	for range 2 {
		if err := write(t, s, relay.Message{Event: test, Topic: "twilio.test"})[0]; err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	for _, m := range r.messages(t, "TWILIO") {
		got = append(got, m.Subject+" "+m.Header.Get(jetstream.MsgIDHeader))
	}
	want := []string{"twilio.messaging EZdup@twilio.messaging", "twilio.all EZdup@twilio.all", "twilio.test ", "twilio.test "}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("stream holds\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestServerDown: without a server New still succeeds; writes fail at once (transient) and Ping says why.
func TestServerDown(t *testing.T) {
	t.Parallel()
	srv := servers.StartNATS(t)
	newReader(t, srv.URL()).createStream(t, "EVENTS", jetstream.StreamConfig{Subjects: []string{"events.>"}})
	s := newSink(t, nats.Config{URLs: []string{srv.URL()}})
	if err := write(t, s, relay.Message{Event: event("EZ1"), Topic: "events.a"})[0]; err != nil {
		t.Fatal(err)
	}
	srv.Kill()
	deadline := time.Now().Add(5 * time.Second)
	for s.Ping(context.Background()) == nil && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if err := s.Ping(context.Background()); err == nil {
		t.Fatal("Ping with the server down: nil")
	}
	start := time.Now()
	err := write(t, s, relay.Message{Event: event("EZ2"), Topic: "events.a"})[0]
	if err == nil || relay.IsPermanent(err) {
		t.Fatalf("write with the server down: %v, want a transient error", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("write with the server down took %v, want it to fail at once", took)
	}

	// Never a server at all.
	s2 := newSink(t, nats.Config{URLs: []string{srv.URL()}, ConnectTimeout: relay.Duration(200 * time.Millisecond)})
	if err := s2.Ping(context.Background()); err == nil {
		t.Error("Ping without a server: nil")
	}
	if err := write(t, s2, relay.Message{Event: event("EZ3"), Topic: "events.a"})[0]; err == nil || relay.IsPermanent(err) {
		t.Errorf("write without a server: %v, want a transient error", err)
	}
}

func TestPingStream(t *testing.T) {
	t.Parallel()
	srv := servers.StartNATS(t)
	newReader(t, srv.URL()).createStream(t, "EVENTS", jetstream.StreamConfig{Subjects: []string{"events.>"}})
	ctx := context.Background()
	if err := newSink(t, nats.Config{URLs: []string{srv.URL()}}).Ping(ctx); err != nil {
		t.Errorf("no stream configured: %v", err)
	}
	if err := newSink(t, nats.Config{URLs: []string{srv.URL()}, Stream: "EVENTS"}).Ping(ctx); err != nil {
		t.Errorf("existing stream: %v", err)
	}
	err := newSink(t, nats.Config{URLs: []string{srv.URL()}, Stream: "MISSING"}).Ping(ctx)
	if !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Errorf("missing stream: %v, want ErrStreamNotFound", err)
	}
}

func TestAuth(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	userSrv := servers.StartNATS(t, "--user", "relay", "--pass", "s3cret")
	if err := newSink(t, nats.Config{URLs: []string{userSrv.URL()}, Username: "relay", Password: "s3cret"}).Ping(ctx); err != nil {
		t.Errorf("user/password: %v", err)
	}
	if err := newSink(t, nats.Config{URLs: []string{userSrv.URL()}, Username: "relay", Password: "wrong"}).Ping(ctx); err == nil {
		t.Error("wrong password: Ping nil")
	}
	tokenSrv := servers.StartNATS(t, "--auth", "t0ken")
	if err := newSink(t, nats.Config{URLs: []string{tokenSrv.URL()}, Token: "t0ken"}).Ping(ctx); err != nil {
		t.Errorf("token: %v", err)
	}
}

func TestCloseTwice(t *testing.T) {
	t.Parallel()
	srv := servers.StartNATS(t)
	s := newSink(t, nats.Config{URLs: []string{srv.URL()}})
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := write(t, s, relay.Message{Event: event("EZ1"), Topic: "a"})[0]; !errors.Is(err, nats.ErrClosed) {
		t.Fatalf("write after Close: %v", err)
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  nats.Config
		want string
	}{
		{"minimal", nats.Config{URLs: []string{"nats://localhost:4222"}}, ""},
		{"list in one entry", nats.Config{URLs: relay.ParseList("nats://a:4222, tls://b:4222"), Stream: "TWILIO", Mode: "structured"}, ""},
		{"no url", nats.Config{}, "urls"},
		{"no scheme", nats.Config{URLs: []string{"localhost:4222"}}, "urls"},
		{"scheme", nats.Config{URLs: []string{"http://a:4222"}}, "scheme"},
		{"two credentials", nats.Config{URLs: []string{"nats://a"}, Token: "t", CredsFile: "/x.creds"}, "at most one"},
		{"user without password", nats.Config{URLs: []string{"nats://a"}, Username: "u"}, "go together"},
		{"stream name", nats.Config{URLs: []string{"nats://a"}, Stream: "a.b"}, "stream"},
		{"mode", nats.Config{URLs: []string{"nats://a"}, Mode: "batch"}, "mode"},
		{"timeout", nats.Config{URLs: []string{"nats://a"}, Timeout: -1}, "timeout"},
		{"max_pending", nats.Config{URLs: []string{"nats://a"}, MaxPending: -1}, "max_pending"},
	} {
		errs := tc.cfg.Defaults().Validate()
		switch {
		case tc.want == "" && len(errs) > 0:
			t.Errorf("%s: %v", tc.name, errs)
		case tc.want != "" && (len(errs) == 0 || !strings.Contains(errs[0].Error(), tc.want)):
			t.Errorf("%s: %v, want an error with %q", tc.name, errs, tc.want)
		}
	}
}

func TestCheckSubject(t *testing.T) {
	for _, ok := range []string{"a", "twilio.messaging", "a-b_c.D1", "üñí.cödé"} {
		if err := nats.CheckSubject(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", " ", "a b", "a\tb", ".a", "a.", "a..b", "*", "a.*", ">", "a.>"} {
		if err := nats.CheckSubject(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
