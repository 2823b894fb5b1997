package spool

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relaykit/twilio-relay/relay"
	bolt "go.etcd.io/bbolt"
)

func msg(id string) relay.Message {
	return relay.Message{Topic: "t", Key: []byte("SM" + id), Event: &relay.Event{
		Endpoint: "ep", SpecVersion: "1.0", ID: id, Source: "/s", Type: "com.twilio.x",
		Data: []byte(`{"n":"` + id + `"}`), Raw: []byte(`{"id":"` + id + `"}`), Extensions: map[string]string{"x": "y"},
	}}
}

func open(t *testing.T, dir string, maxBytes int64) *Spool {
	t.Helper()
	s, err := Open(Config{Dir: dir, MaxBytes: maxBytes, Sinks: []string{"kafka", "http"}, RetryMin: 5 * time.Millisecond, RetryMax: 20 * time.Millisecond, BatchSize: 3})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// recorder is a Deliver that fails while down and records what it delivered.
type recorder struct {
	mu   sync.Mutex
	down bool
	got  []string
}

func (r *recorder) deliver(_ context.Context, _ string, msgs []relay.Message) []error {
	r.mu.Lock()
	defer r.mu.Unlock()
	errs := make([]error, len(msgs))
	for i, m := range msgs {
		if r.down {
			errs[i] = errors.New("down")
			continue
		}
		r.got = append(r.got, m.Event.ID)
	}
	return errs
}

func (r *recorder) ids() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.got...)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestAppendDrainInOrder(t *testing.T) {
	s := open(t, t.TempDir(), 1<<20)
	defer s.Close(context.Background())
	if s.Has("kafka") {
		t.Fatal("empty spool has messages")
	}
	for i := range 10 {
		if err := s.Append("kafka", []relay.Message{msg(fmt.Sprint(i))}); err != nil {
			t.Fatal(err)
		}
	}
	if !s.Has("kafka") || s.Has("http") {
		t.Fatal("Has is wrong after appending to kafka")
	}
	st := s.Stats()[0]
	if st.Sink != "kafka" || st.Depth != 10 || st.Bytes == 0 || st.Oldest.IsZero() || st.Spooled != 10 {
		t.Fatalf("stats %+v", st)
	}
	r := &recorder{down: true}
	ctx, cancel := context.WithCancel(context.Background())
	s.Start(ctx, r.deliver)
	time.Sleep(50 * time.Millisecond) // several failed attempts: nothing may leave the spool
	if st := s.Stats()[0]; st.Depth != 10 {
		t.Fatalf("depth %d while the sink is down, want 10", st.Depth)
	}
	r.mu.Lock()
	r.down = false
	r.mu.Unlock()
	waitFor(t, "drain", func() bool { return !s.Has("kafka") })
	cancel()
	s.Wait()
	if got := strings.Join(r.ids(), ","); got != "0,1,2,3,4,5,6,7,8,9" {
		t.Fatalf("delivered %s, want the storage order", got)
	}
	if st := s.Stats()[0]; st.Depth != 0 || st.Bytes != 0 || st.Drained != 10 || !st.Oldest.IsZero() {
		t.Fatalf("stats after drain %+v", st)
	}
}

func TestRoundTripKeepsTheMessage(t *testing.T) {
	in := msg("EZ1")
	in.Event.Binary = true
	v, err := encode(in, time.Unix(100, 0))
	if err != nil {
		t.Fatal(err)
	}
	out, err := decode(v)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprintf("%+v %+v", *in.Event, in.Topic+string(in.Key)) != fmt.Sprintf("%+v %+v", *out.Event, out.Topic+string(out.Key)) {
		t.Fatalf("round trip changed the message:\n%+v\n%+v", *in.Event, *out.Event)
	}
	if !storedAt(v).Equal(time.Unix(100, 0)) {
		t.Fatalf("stored at %v", storedAt(v))
	}
	v[len(v)-2] ^= 0xff
	if _, err := decode(v); !errors.Is(err, errCorrupt) {
		t.Fatalf("a damaged entry decoded: %v", err)
	}
}

func TestFullRefusesWholeAppends(t *testing.T) {
	s := open(t, t.TempDir(), 600)
	defer s.Close(context.Background())
	var err error
	n := 0
	for ; err == nil && n < 100; n++ {
		err = s.Append("kafka", []relay.Message{msg(fmt.Sprint(n)), msg(fmt.Sprint(n, "b"))})
	}
	if !errors.Is(err, relay.ErrSpoolFull) {
		t.Fatalf("err = %v after %d appends, want ErrSpoolFull", err, n)
	}
	st := s.Stats()[0]
	if st.Depth != 2*(n-1) || st.Bytes > 600 {
		t.Fatalf("stats %+v after %d accepted appends: a refused append must store nothing", st, n-1)
	}
}

func TestSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, 1<<20)
	for i := range 5 {
		if err := s.Append("http", []relay.Message{msg(fmt.Sprint(i))}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	s = open(t, dir, 1<<20)
	defer s.Close(context.Background())
	if st := s.Stats()[1]; st.Sink != "http" || st.Depth != 5 {
		t.Fatalf("after reopening: %+v, want 5 waiting for http", st)
	}
	r := &recorder{}
	ctx, cancel := context.WithCancel(context.Background())
	s.Start(ctx, r.deliver)
	waitFor(t, "drain after restart", func() bool { return !s.Has("http") })
	cancel()
	s.Wait()
	if got := strings.Join(r.ids(), ","); got != "0,1,2,3,4" {
		t.Fatalf("delivered %s", got)
	}
}

func TestDamagedFileIsMovedAside(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, FileName), []byte(strings.Repeat("not a bbolt file ", 1000)), 0o600); err != nil {
		t.Fatal(err)
	}
	s := open(t, dir, 1<<20)
	defer s.Close(context.Background())
	if s.Corrupt() != 1 {
		t.Fatalf("corrupt = %d, want 1", s.Corrupt())
	}
	aside, _ := filepath.Glob(filepath.Join(dir, FileName+".corrupt-*"))
	if len(aside) != 1 {
		t.Fatalf("damaged file not kept aside: %v", aside)
	}
	if err := s.Append("kafka", []relay.Message{msg("1")}); err != nil {
		t.Fatalf("the fresh spool does not work: %v", err)
	}
}

func TestDamagedEntryIsSetAside(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, 1<<20)
	for i := range 3 {
		if err := s.Append("kafka", []relay.Message{msg(fmt.Sprint(i))}); err != nil {
			t.Fatal(err)
		}
	}
	_ = s.Close(context.Background())
	db, err := bolt.Open(filepath.Join(dir, FileName), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error { // damage the second entry's payload
		b := tx.Bucket([]byte("kafka"))
		v := append([]byte(nil), b.Get(seqKey(2))...)
		v[len(v)-3] ^= 0x55
		return b.Put(seqKey(2), v)
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	s = open(t, dir, 1<<20)
	defer s.Close(context.Background())
	r := &recorder{}
	ctx, cancel := context.WithCancel(context.Background())
	s.Start(ctx, r.deliver)
	waitFor(t, "drain", func() bool { return !s.Has("kafka") })
	cancel()
	s.Wait()
	if got := strings.Join(r.ids(), ","); got != "0,2" || s.Corrupt() != 1 {
		t.Fatalf("delivered %s with %d damaged; want 0,2 and the damaged one set aside", got, s.Corrupt())
	}
	var kept int
	_ = s.db.View(func(tx *bolt.Tx) error { kept = tx.Bucket(corruptBucket).Stats().KeyN; return nil })
	if kept != 1 {
		t.Fatalf("_corrupt holds %d entries, want 1", kept)
	}
}

func TestInUse(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, 1<<20)
	defer s.Close(context.Background())
	if _, err := Open(Config{Dir: dir, MaxBytes: 1 << 20, Sinks: []string{"kafka"}}); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second Open: %v, want an in-use error", err)
	}
}

func TestInspect(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, 1<<20)
	for i := range 4 {
		if err := s.Append("kafka", []relay.Message{msg(fmt.Sprint(i))}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := Inspect(dir, 2); !errors.Is(err, ErrInUse) {
		t.Fatalf("Inspect while open: %v, want ErrInUse", err)
	}
	_ = s.Close(context.Background())
	r, err := Inspect(dir, 2)
	if err != nil {
		t.Fatal(err)
	}
	var kafka relay.SpoolStat
	for _, st := range r.Sinks {
		if st.Sink == "kafka" {
			kafka = st
		}
	}
	if kafka.Depth != 4 || kafka.Oldest.IsZero() || len(r.Samples["kafka"]) != 2 || r.Samples["kafka"][0].ID != "0" {
		t.Fatalf("report %+v", r)
	}
}

// TestCloseStopsTheDrainers: Close is the spool's whole shutdown. It stops a drainer that keeps failing
// (what it was delivering stays), and the file can be opened again at once.
func TestCloseStopsTheDrainers(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, 1<<20)
	if err := s.Append("kafka", []relay.Message{msg("0")}); err != nil {
		t.Fatal(err)
	}
	r := &recorder{down: true}
	s.Start(context.Background(), r.deliver)
	time.Sleep(20 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	s = open(t, dir, 1<<20) // bbolt's lock is free: the file is closed
	defer s.Close(context.Background())
	if st := s.Stats()[0]; st.Depth != 1 {
		t.Fatalf("after Close: %+v, want the undelivered message kept", st)
	}
}
