package dedupe

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relaykit/twilio-relay/relay"
)

func key(i int) string {
	return fmt.Sprintf("events\x00/2010-04-01/Accounts/AC1/Messages/SM%030d.json\x00EZ%032d", i, i)
}

// newCache returns a cache on the snapshot at path whose log goes to logs.
func newCache(t testing.TB, path string, window time.Duration, maxIDs int64, logs *bytes.Buffer) *Cache {
	t.Helper()
	var log *slog.Logger
	if logs != nil {
		log = slog.New(slog.NewTextHandler(logs, nil))
	}
	c, err := New(Config{Window: window, MaxIDs: maxIDs, Snapshot: path}, log)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestSnapshotSurvivesRestart: what one cache remembered, the next one on the same snapshot sees, and
// nothing else; the snapshot is rewritten by each Close.
func TestSnapshotSurvivesRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dedupe.snapshot")
	var logs bytes.Buffer
	c := newCache(t, path, time.Hour, 1000, &logs)
	if !strings.Contains(logs.String(), "no dedupe snapshot") {
		t.Errorf("a first start without a snapshot logs nothing about it: %s", logs.String())
	}
	for i := range 500 {
		c.Remember(relay.NewKey(key(i)))
	}
	if err := c.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Size() != headerLen+500*entryLen+4 {
		t.Fatalf("snapshot: %v, %v; want %d bytes", fi, err, headerLen+500*entryLen+4)
	}
	logs.Reset()
	c = newCache(t, path, time.Hour, 1000, &logs)
	if !strings.Contains(logs.String(), "ids=500") {
		t.Errorf("the load is not logged with its count: %s", logs.String())
	}
	for i := range 500 {
		if !c.Seen(relay.NewKey(key(i))) {
			t.Fatalf("key %d not seen after the restart", i)
		}
	}
	if c.Seen(relay.NewKey(key(500))) {
		t.Fatal("a key never remembered is seen")
	}
	c.Remember(relay.NewKey(key(500)))
	if err := c.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	c = newCache(t, path, time.Hour, 1000, nil)
	defer c.Close(context.Background())
	if !c.Seen(relay.NewKey(key(0))) || !c.Seen(relay.NewKey(key(500))) {
		t.Fatal("the second snapshot lost what the first one held, or what was remembered since")
	}
	if matches, _ := filepath.Glob(path + ".tmp-*"); len(matches) > 0 {
		t.Errorf("temporary files left: %v", matches)
	}
}

// TestSnapshotSkipsExpired: entries whose window has ended are not loaded, and one whose expiry lies
// beyond the current window is kept only for the window.
func TestSnapshotSkipsExpired(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dedupe.snapshot")
	now := time.Now()
	entries := sortEntries([]entry{
		{id: id(relay.NewKey("old").Sum), exp: unixSeconds(now.Add(-time.Minute))},
		{id: id(relay.NewKey("live").Sum), exp: unixSeconds(now.Add(time.Hour))},
	})
	if err := writeSnapshot(path, entries); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	c := newCache(t, path, 2*time.Second, 10, &logs) // a window shorter than the hour left
	defer c.Close(context.Background())
	if c.Seen(relay.NewKey("old")) || !c.Seen(relay.NewKey("live")) {
		t.Fatalf("old seen %v, live seen %v; want only live", c.Seen(relay.NewKey("old")), c.Seen(relay.NewKey("live")))
	}
	if !strings.Contains(logs.String(), "ids=1 expired=1") {
		t.Errorf("load not logged with its counts: %s", logs.String())
	}
	time.Sleep(3100 * time.Millisecond) // expiries are whole seconds
	if c.Seen(relay.NewKey("live")) {
		t.Fatal("an entry outlived the current window")
	}
}

// TestSortEntries: by id, each id once, with its latest expiry.
func TestSortEntries(t *testing.T) {
	a, b := id{1}, id{2}
	got := sortEntries([]entry{{id: b, exp: 5}, {id: a, exp: 3}, {id: b, exp: 9}, {id: a, exp: 1}})
	if fmt.Sprint(got) != fmt.Sprint([]entry{{id: a, exp: 3}, {id: b, exp: 9}}) {
		t.Fatalf("sorted %v", got)
	}
}

// TestSnapshotDamagedIgnored: a damaged, truncated, foreign or empty file is logged and ignored; the
// cache starts empty and works, and its Close replaces the file with a good snapshot.
func TestSnapshotDamagedIgnored(t *testing.T) {
	good := filepath.Join(t.TempDir(), "good")
	c := newCache(t, good, time.Hour, 100, nil)
	for i := range 10 {
		c.Remember(relay.NewKey(key(i)))
	}
	if err := c.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	flipped := bytes.Clone(b)
	flipped[headerLen+3] ^= 0x10
	// Two entries swapped, with a checksum that matches: not written by this code.
	swapped := bytes.Clone(b[:len(b)-4])
	e0 := bytes.Clone(swapped[headerLen : headerLen+entryLen])
	copy(swapped[headerLen:], swapped[headerLen+entryLen:headerLen+2*entryLen])
	copy(swapped[headerLen+entryLen:], e0)
	swapped = binary.LittleEndian.AppendUint32(swapped, crc32.Checksum(swapped, castagnoli))
	for _, tc := range []struct {
		name, want string
		data       []byte
	}{
		{"a flipped bit", "checksum mismatch", flipped},
		{"truncated", "do not hold", b[:len(b)-25]},
		{"out of order", "out of order", swapped},
		{"foreign", "not a dedupe snapshot", []byte("relay spool, not a snapshot, of some length")},
		{"empty", "not a dedupe snapshot", nil},
		{"another version", "not a dedupe snapshot", append([]byte("TRDEDUPE\x02\x00\x00\x00"), b[12:]...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "dedupe.snapshot")
			if err := os.WriteFile(path, tc.data, 0o600); err != nil {
				t.Fatal(err)
			}
			var logs bytes.Buffer
			c := newCache(t, path, time.Hour, 100, &logs)
			if !strings.Contains(logs.String(), "dedupe snapshot ignored") || !strings.Contains(logs.String(), tc.want) {
				t.Errorf("log %q lacks %q", logs.String(), tc.want)
			}
			if c.Seen(relay.NewKey(key(0))) {
				t.Error("an id of an ignored snapshot is seen")
			}
			c.Remember(relay.NewKey("new"))
			if err := c.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			c = newCache(t, path, time.Hour, 100, nil)
			defer c.Close(context.Background())
			if !c.Seen(relay.NewKey("new")) {
				t.Error("the snapshot written over the damaged one does not hold what was remembered")
			}
		})
	}
}

// TestSnapshotUnwritable: a snapshot that cannot be written fails Close with the reason.
func TestSnapshotUnwritable(t *testing.T) {
	file := filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	c := newCache(t, filepath.Join(file, "snap"), time.Hour, 100, nil) // its directory is a file
	c.Remember(relay.NewKey("a"))
	if err := c.Close(context.Background()); err == nil || !strings.Contains(err.Error(), "snapshot") {
		t.Fatalf("Close = %v, want the snapshot's error", err)
	}
}

// TestIDLogRing: the log keeps at most max entries, the newest, and drops expired ones first.
func TestIDLogRing(t *testing.T) {
	l := idLog{max: 3}
	for i := range 5 {
		l.add(entry{id: id{byte(i)}, exp: 100}, 0)
	}
	var got []byte
	l.each(0, func(e entry) { got = append(got, e.id[0]) })
	if string(got) != "\x02\x03\x04" {
		t.Fatalf("ring holds %v, want the last three in order", got)
	}
	l.add(entry{id: id{9}, exp: 200}, 150) // every other entry has expired by 150
	got = got[:0]
	l.each(150, func(e entry) { got = append(got, e.id[0]) })
	if string(got) != "\x09" || l.n != 1 {
		t.Fatalf("after expiry the ring holds %v (n %d), want only the new entry", got, l.n)
	}
	big := idLog{max: chunkLen + 10}
	for i := range chunkLen + 20 {
		big.add(entry{exp: uint32(i + 1)}, 0)
	}
	if big.n != chunkLen+10 || len(big.chunks) != 2 || len(big.chunks[1]) != 10 {
		t.Fatalf("n %d, chunks %d; want a ring of max entries over two chunks", big.n, len(big.chunks))
	}
	first := uint32(0)
	big.each(0, func(e entry) {
		if first == 0 {
			first = e.exp
		}
	})
	if first != 11 {
		t.Fatalf("oldest entry expires at %d, want 11 (the first ten overwritten)", first)
	}
}

// BenchmarkSnapshot measures the snapshot of 1.5 M ids (the default max_ids): its size, the time to
// write it (fsync included) and the time to load it into a new cache.
//
//	go test -run '^$' -bench Snapshot -benchtime 1x ./relay/dedupe/
func BenchmarkSnapshot(b *testing.B) {
	const ids = 1_500_000
	path := filepath.Join(b.TempDir(), "dedupe.snapshot")
	c := newCache(b, path, 4*time.Hour, ids, nil)
	for i := range ids {
		c.Remember(relay.NewKey(key(i)))
		if i%10000 == 0 {
			c.Wait()
		}
	}
	b.ResetTimer()
	var write, load time.Duration
	for range b.N {
		start := time.Now()
		if err := c.Close(context.Background()); err != nil {
			b.Fatal(err)
		}
		write += time.Since(start)
		start = time.Now()
		c = newCache(b, path, 4*time.Hour, ids, nil)
		load += time.Since(start)
	}
	b.StopTimer()
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	missing := 0
	for i := 0; i < ids; i += 1000 {
		if !c.Seen(relay.NewKey(key(i))) {
			missing++
		}
	}
	if missing > 0 {
		b.Fatalf("%d of %d sampled ids missing after the load", missing, ids/1000)
	}
	c.snapshot = ""
	_ = c.Close(context.Background())
	b.ReportMetric(float64(fi.Size())/(1<<20), "MiB")
	b.ReportMetric(float64(fi.Size())/ids, "bytes/id")
	b.ReportMetric(write.Seconds()*1000/float64(b.N), "write-ms")
	b.ReportMetric(load.Seconds()*1000/float64(b.N), "load-ms")
}

// BenchmarkSortEntries measures the sort of 1.5 M ids the snapshot is written in.
func BenchmarkSortEntries(b *testing.B) {
	src := make([]entry, 1_500_000)
	for i := range src {
		src[i] = entry{id: id(relay.NewKey(fmt.Sprint(i)).Sum), exp: uint32(i)}
	}
	buf := make([]entry, len(src))
	for range b.N {
		copy(buf, src)
		sortEntries(buf)
	}
}
