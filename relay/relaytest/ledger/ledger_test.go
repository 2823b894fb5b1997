package ledger

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relaykit/twilio-relay/relay/twilio"
	"github.com/relaykit/twilio-relay/relay/twilio/twiliotest"
)

func TestCheck(t *testing.T) {
	l := New()
	l.Record([]string{"a", "b"}, 200, nil)
	l.Record([]string{"c"}, 503, nil)
	l.Record([]string{"d"}, 0, errors.New("connection refused"))
	l.Record([]string{"d"}, 200, nil) // redelivered
	l.Record([]string{"e", "f"}, 200, nil)
	l.Forged("x")
	found := map[string]int{"a": 1, "b": 3, "c": 1, "d": 2, "x": 1, "z": 2}
	r := l.Check("unit", found, "f")
	want := Report{Scenario: "unit", Sent: 6, Requests: 5, Answered: 5, Pending: 1, Present: 3, Lost: 1,
		Quarantined: 1, Duplicated: 3, Unexpected: 3, Forged: 1}
	got := r
	got.Statuses, got.Examples = nil, nil
	if got.String() != want.String() {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if r.DupRefused != 1 {
		t.Errorf("duplicates after a refusal: %d, want 1 (d)", r.DupRefused)
	}
	if r.Statuses["200"] != 3 || r.Statuses["503"] != 1 || r.Statuses["transport"] != 1 {
		t.Errorf("statuses %v", r.Statuses)
	}
	p := strings.Join(r.Problems(), "; ")
	for _, s := range []string{"1 events answered 200", "3 records of events never sent", "lost e", "forged x", "never sent z"} {
		if !strings.Contains(p, s) {
			t.Errorf("problems %q lack %q", p, s)
		}
	}
	clean := New()
	clean.Record([]string{"a"}, 200, nil)
	if p := clean.Check("clean", map[string]int{"a": 2}).Problems(); len(p) != 0 {
		t.Errorf("a duplicate alone is not a problem: %v", p)
	}
}

// TestDriver runs the driver against a server that refuses every event the first time it sees it:
// Run records the refusals, Redeliver brings every event to 200, and the ledger agrees with the server.
func TestDriver(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Header.Get(twilio.SignatureHeader) == "" || !strings.Contains(r.URL.RawQuery, "bodySHA256=") {
			w.WriteHeader(400)
			return
		}
		var evs []struct{ ID string }
		if err := json.Unmarshal(body, &evs); err != nil || len(evs) == 0 {
			w.WriteHeader(400)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		first := false
		for _, e := range evs {
			seen[e.ID]++
			first = first || seen[e.ID] == 1
		}
		if first {
			w.WriteHeader(503)
		}
	}))
	defer srv.Close()
	l := New()
	d := &Driver{Sender: &twiliotest.Sender{URL: srv.URL + "/e", Token: "t", Client: srv.Client()}, Ledger: l,
		Prefix: "EZt", Rate: 400, Batch: 2, DupEvery: 3}
	d.Run(context.Background(), 250*time.Millisecond)
	if l.Acknowledged() != 0 || len(l.Unacknowledged()) != 100 {
		t.Fatalf("after Run: %d acknowledged, %d not, want 0 and 100", l.Acknowledged(), len(l.Unacknowledged()))
	}
	if err := d.Redeliver(context.Background(), 10*time.Second); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	found := map[string]int{}
	for id := range seen {
		found[id] = 1
	}
	mu.Unlock()
	r := l.Check("driver", found)
	if r.Sent != 100 || r.Answered != 100 || r.Present != 100 || len(r.Problems()) != 0 {
		t.Fatalf("%s %v", r, r.Problems())
	}
}

func TestTable(t *testing.T) {
	l := New()
	l.Record([]string{"a"}, 503, nil)
	l.Record([]string{"a", "b"}, 200, nil)
	l.Record([]string{"c"}, 0, errors.New("reset"))
	r := l.Check("kill", map[string]int{"a": 2, "b": 1})
	r.DupTarget = DupsAtMost(50)
	out := filepath.Join(t.TempDir(), "ledger.jsonl")
	t.Setenv(EnvOut, out) // not the suite's own $RELAY_LEDGER_OUT: this row is no scenario
	if err := r.Save(); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	reports, err := ReadReports(f)
	if err != nil || len(reports) != 1 {
		t.Fatalf("read back: %v %v", reports, err)
	}
	got := Table(reports)
	want := "| kill | 3 | 2 | 2 | **0** | 0 | 1 (1) | ≤ 50 % (1) | 0 | 0 | 200×1, 503×1, no answer×1 |  |\n"
	if !strings.HasSuffix(got, want) {
		t.Errorf("table:\n%s\nwant its last line\n%s", got, want)
	}
}

// TestDupTarget: a scenario over its duplicates target fails; one within it, or whose duplicates are
// only reported, does not.
func TestDupTarget(t *testing.T) {
	l := New()
	for _, id := range []string{"a", "b", "c", "d"} {
		l.Record([]string{id}, 200, nil)
	}
	found := map[string]int{"a": 3, "b": 1, "c": 1, "d": 1} // 2 duplicates of 4 events
	for _, tc := range []struct {
		target *float64
		text   string
		fails  bool
	}{
		{DupsAtMost(0), "0", true},
		{DupsAtMost(25), "≤ 25 % (1)", true},
		{DupsAtMost(50), "≤ 50 % (2)", false},
		{DupsReported, "reported", false},
	} {
		r := l.Check("dups", found)
		r.DupTarget = tc.target
		p := strings.Join(r.Problems(), "; ")
		if r.Target() != tc.text || (p != "") != tc.fails {
			t.Errorf("target %s: problems %q, want failing %v", r.Target(), p, tc.fails)
		}
		if tc.fails && !strings.Contains(p, "2 duplicates, over the target of "+tc.text) {
			t.Errorf("problem %q does not say the count and the target", p)
		}
	}
}
