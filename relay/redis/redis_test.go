package redis_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/relaykit/twilio-relay/relay"
	"github.com/relaykit/twilio-relay/relay/redis"
	"github.com/relaykit/twilio-relay/relay/relaytest/servers"
)

func event(id string) *relay.Event {
	return &relay.Event{SpecVersion: "1.0", ID: id, Source: "/s", Type: "com.twilio.messaging.message.sent",
		DataContentType: "application/json", Data: []byte(`{"messageSid":"SM1"}`)}
}

func newSink(t *testing.T, cfg redis.Config) *redis.Sink {
	t.Helper()
	s, err := redis.New("test", cfg.Defaults())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

// write writes msgs and returns one error per message.
func write(t *testing.T, s *redis.Sink, msgs ...relay.Message) []error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return relay.PerMessage(s.Write(ctx, msgs), len(msgs))
}

// TestEntry: the fields of an entry, in order.
func TestEntry(t *testing.T) {
	t.Parallel()
	srv := servers.StartRedis(t)
	r := newReader(t, srv.Addr())
	s := newSink(t, redis.Config{Addr: srv.Addr()})
	e := event("EZ1")
	e.Subject, e.Extensions = "SM1", map[string]string{"b": "2", "a": "1"}
	if err := write(t, s, relay.Message{Event: e, Topic: "twilio:events", Key: []byte("SM1")})[0]; err != nil {
		t.Fatal(err)
	}
	raw, err := r.rdb.Do(context.Background(), "XRANGE", "twilio:events", "-", "+").Slice()
	if err != nil || len(raw) != 1 {
		t.Fatalf("XRANGE: %v %v", raw, err)
	}
	fields := raw[0].([]any)[1].([]any)
	var got []string
	for _, f := range fields {
		got = append(got, f.(string))
	}
	want := []string{"ce_specversion", "1.0", "ce_id", "EZ1", "ce_source", "/s", "ce_type", "com.twilio.messaging.message.sent",
		"ce_subject", "SM1", "ce_a", "1", "ce_b", "2", "content-type", "application/json", "key", "SM1", "data", `{"messageSid":"SM1"}`}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("entry\n%q\nwant\n%q", got, want)
	}
}

// TestMaxLen: streams stay near max_len.
func TestMaxLen(t *testing.T) {
	t.Parallel()
	srv := servers.StartRedis(t)
	r := newReader(t, srv.Addr())
	s := newSink(t, redis.Config{Addr: srv.Addr(), MaxLen: 100})
	for range 10 {
		msgs := make([]relay.Message, 100)
		for i := range msgs {
			msgs[i] = relay.Message{Event: event("EZ"), Topic: "capped"}
		}
		for _, err := range write(t, s, msgs...) {
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	n, err := r.rdb.XLen(context.Background(), "capped").Result()
	if err != nil {
		t.Fatal(err)
	}
	// MAXLEN ~ trims whole macro nodes (100 entries each by default): at least 100 stay.
	if n < 100 || n > 300 {
		t.Errorf("XLEN %d after 1000 entries with max_len 100", n)
	}
}

// TestWrongTypeTransient: a key that holds something else fails its messages transiently, alone.
func TestWrongTypeTransient(t *testing.T) {
	t.Parallel()
	srv := servers.StartRedis(t)
	r := newReader(t, srv.Addr())
	if err := r.rdb.Set(context.Background(), "not-a-stream", "x", 0).Err(); err != nil {
		t.Fatal(err)
	}
	s := newSink(t, redis.Config{Addr: srv.Addr()})
	errs := write(t, s, relay.Message{Event: event("EZ1"), Topic: "ok"},
		relay.Message{Event: event("EZ2"), Topic: "not-a-stream"}, relay.Message{Event: event("EZ3"), Topic: "ok"})
	if errs[0] != nil || errs[2] != nil {
		t.Errorf("the messages to a stream: %v", errs)
	}
	if errs[1] == nil || relay.IsPermanent(errs[1]) || !strings.Contains(errs[1].Error(), "WRONGTYPE") {
		t.Errorf("the message to a string key: %v, want a transient WRONGTYPE", errs[1])
	}
	if n := len(r.Read(t, "ok")); n != 2 {
		t.Errorf("stream ok holds %d entries, want 2", n)
	}
}

// TestReadOnlyTransient: writing to a replica (READONLY) is transient.
func TestReadOnlyTransient(t *testing.T) {
	t.Parallel()
	primary := servers.StartRedis(t)
	host, port, _ := strings.Cut(primary.Addr(), ":")
	replica := servers.StartRedis(t, "--replicaof", host, port)
	err := write(t, newSink(t, redis.Config{Addr: replica.Addr()}), relay.Message{Event: event("EZ1"), Topic: "s"})[0]
	if err == nil || relay.IsPermanent(err) || !goredis.IsReadOnlyError(err) {
		t.Fatalf("write to a replica: %v, want a transient READONLY", err)
	}
}

// TestServerDown: a dead server fails writes transiently and promptly, and Ping says so.
func TestServerDown(t *testing.T) {
	t.Parallel()
	srv := servers.StartRedis(t)
	s := newSink(t, redis.Config{Addr: srv.Addr(), Timeout: relay.Duration(time.Second)})
	if err := s.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	srv.Kill()
	start := time.Now()
	err := write(t, s, relay.Message{Event: event("EZ1"), Topic: "s"})[0]
	if err == nil || relay.IsPermanent(err) {
		t.Fatalf("write with the server down: %v, want a transient error", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("took %v", took)
	}
	if err := s.Ping(context.Background()); err == nil {
		t.Error("Ping with the server down: nil")
	}
}

func TestAuthAndDB(t *testing.T) {
	t.Parallel()
	srv := servers.StartRedis(t, "--requirepass", "s3cret")
	ctx := context.Background()
	if err := newSink(t, redis.Config{Addr: srv.Addr()}).Ping(ctx); err == nil {
		t.Error("no password: Ping nil")
	}
	if err := newSink(t, redis.Config{Addr: srv.Addr(), Password: "wrong"}).Ping(ctx); err == nil {
		t.Error("wrong password: Ping nil")
	}
	s := newSink(t, redis.Config{Addr: srv.Addr(), Password: "s3cret", DB: 3})
	if err := write(t, s, relay.Message{Event: event("EZ1"), Topic: "in-db-3"})[0]; err != nil {
		t.Fatal(err)
	}
	rdb := goredis.NewClient(&goredis.Options{Addr: srv.Addr(), Password: "s3cret", DB: 3})
	defer rdb.Close()
	if n, err := rdb.XLen(ctx, "in-db-3").Result(); err != nil || n != 1 {
		t.Errorf("XLEN in db 3: %d, %v", n, err)
	}
}

// TestBatch: a write of many messages is one XADD per message, all of them stored.
func TestBatch(t *testing.T) {
	t.Parallel()
	srv := servers.StartRedis(t)
	r := newReader(t, srv.Addr())
	s := newSink(t, redis.Config{Addr: srv.Addr()})
	if err := s.Ping(context.Background()); err != nil { // connect first
		t.Fatal(err)
	}
	msgs := make([]relay.Message, 50)
	for i := range msgs {
		msgs[i] = relay.Message{Event: event(fmt.Sprint("EZ", i)), Topic: "piped"}
	}
	if err := s.Write(context.Background(), msgs); err != nil {
		t.Fatal(err)
	}
	info, err := r.rdb.Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(info, "cmdstat_xadd:calls=50,") {
		t.Errorf("commandstats: %s", info)
	}
	if n := len(r.Read(t, "piped")); n != 50 {
		t.Errorf("stream holds %d entries, want 50", n)
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  redis.Config
		want string
	}{
		{"minimal", redis.Config{Addr: "localhost:6379"}, ""},
		{"full", redis.Config{Addr: "redis:6380", Username: "relay", Password: "p", DB: 2, MaxLen: 10, TLS: redis.TLSConfig{Enabled: true, ServerName: "redis"}}, ""},
		{"no addr", redis.Config{}, "addr"},
		{"addr without port", redis.Config{Addr: "localhost"}, "addr"},
		{"username without password", redis.Config{Addr: "h:1", Username: "u"}, "password"},
		{"db", redis.Config{Addr: "h:1", DB: -1}, "db"},
		{"max_len", redis.Config{Addr: "h:1", MaxLen: -5}, "max_len"},
		{"timeout", redis.Config{Addr: "h:1", Timeout: -1}, "timeout"},
		{"tls settings without enabled", redis.Config{Addr: "h:1", TLS: redis.TLSConfig{CAFile: "/ca.pem"}}, "tls"},
	} {
		errs := tc.cfg.Defaults().Validate()
		switch {
		case tc.want == "" && len(errs) > 0:
			t.Errorf("%s: %v", tc.name, errs)
		case tc.want != "" && (len(errs) == 0 || !strings.Contains(errs[0].Error(), tc.want)):
			t.Errorf("%s: %v, want an error with %q", tc.name, errs, tc.want)
		}
	}
	if _, err := redis.New("x", redis.Config{Addr: "h:1", TLS: redis.TLSConfig{Enabled: true, CAFile: "/does/not/exist.pem"}}.Defaults()); err == nil {
		t.Error("missing ca_file accepted")
	}
}
