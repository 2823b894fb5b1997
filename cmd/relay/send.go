package main

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/relaykit/twilio-relay/relay"
	"github.com/relaykit/twilio-relay/relay/twilio"
	"github.com/relaykit/twilio-relay/relay/twilio/twiliotest"
)

func runSend(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("send", flag.ContinueOnError)
	fs.SetOutput(stderr)
	target := fs.String("url", "http://127.0.0.1:8080/twilio/events", "where to POST (user:pass@ sends Basic credentials)")
	public := fs.String("public-url", "", "URL to sign instead of -url: the relay's public_url when -url reaches it another way")
	token := fs.String("token", os.Getenv("TWILIO_AUTH_TOKEN"), "auth token to sign with (env TWILIO_AUTH_TOKEN)")
	file := fs.String("file", "", "JSON file: an array of CloudEvents or one event (with -classic: one form body per line)")
	sample := fs.String("sample", "", "built-in samples: all, or a comma-separated list of "+strings.Join(twilio.SampleNames(), ", ")+
		" (with -classic: "+strings.Join(twilio.ClassicSampleNames(), ", ")+")")
	batch := fs.Int("batch", 1, "events per request (Twilio's batch_events sends 1..N)")
	unique := fs.Bool("unique", false, "give every event a fresh id (so a rerun is not deduplicated)")
	dups := fs.Int("duplicates", 0, "send every request this many more times, one after another")
	concurrent := fs.Int("concurrent-duplicates", 0, "send every request this many more times at once")
	overlap := fs.Int("overlap", 0, "repeat this many events of each body at the start of the next (duplicates across bodies)")
	shuffle := fs.Bool("shuffle", false, "deliver the events out of order on purpose")
	seed := fs.Uint64("seed", 0, "seed for -shuffle (0: a new order each run)")
	testEvent := fs.Bool("test-event", false, "also send a sink test event with a fresh test_id")
	account := fs.String("account", "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "account SID: the id of the -test-event (Twilio's test events carry it)")
	classic := fs.Bool("classic", false, "post classic form-encoded callbacks (status callbacks, Debugger), signed the classic way, one per request")
	attempts := fs.Int("attempts", 4, "attempts per request: like Twilio, retry 429, 5xx and timeouts (Twilio goes on for 4 h); 1: no retry")
	backoff := fs.Duration("backoff", 500*time.Millisecond, "first retry delay; it doubles, with jitter, up to -backoff-max")
	backoffMax := fs.Duration("backoff-max", 5*time.Second, "longest retry delay")
	timeout := fs.Duration("timeout", 5*time.Second, "per-request timeout (Twilio waits 5s)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *token == "" {
		return fmt.Errorf("send: -token (or TWILIO_AUTH_TOKEN) is required")
	}
	s := &twiliotest.Sender{URL: *target, PublicURL: *public, Token: *token, Client: &http.Client{Timeout: *timeout}}
	var reqs []sendRequest
	var total int
	var err error
	if *classic {
		if *testEvent {
			return fmt.Errorf("send: -test-event is an Event Streams event; it has no classic form")
		}
		reqs, total, err = classicRequests(s, *file, *sample, *unique, *shuffle, *seed)
	} else {
		reqs, total, err = eventRequests(s, *file, *sample, sendShape{batch: *batch, overlap: *overlap, unique: *unique,
			shuffle: *shuffle, seed: *seed, testEvent: *testEvent, account: *account})
	}
	if err != nil {
		return fmt.Errorf("send: %w", err)
	}
	retry := twiliotest.Retry{Attempts: *attempts, Backoff: relay.Backoff{Initial: *backoff, Max: max(*backoffMax, *backoff), Multiplier: 2}}
	sum := sendSummary{events: total, delivered: map[int]bool{}, lost: map[int]bool{}}
	var mu sync.Mutex
	play := func(r sendRequest) {
		d := retry.Do(ctx, r.post, func(attempt int, resp twiliotest.Response, err error, wait time.Duration) {
			mu.Lock()
			defer mu.Unlock()
			note := ""
			if wait > 0 {
				note = fmt.Sprintf(" (attempt %d/%d; retrying in %s)", attempt, retry.Attempts, wait.Round(time.Millisecond))
			}
			if err != nil {
				fmt.Fprintf(stderr, "send: %v%s\n", err, note)
				return
			}
			fmt.Fprintf(stdout, "%d %s%s\n", resp.Status, bytes.TrimSpace(resp.Body), note)
		})
		mu.Lock()
		defer mu.Unlock()
		sum.add(r, d)
	}
	for _, r := range reqs {
		play(r)
		for range *dups {
			play(r)
		}
		var wg sync.WaitGroup
		for range *concurrent {
			wg.Add(1)
			go func() { defer wg.Done(); play(r) }()
		}
		wg.Wait()
	}
	sum.print(stdout, retry.Attempts)
	if n := len(sum.delivered); n < total {
		return fmt.Errorf("send: %d of %d events not delivered", total-n, total)
	}
	return nil
}

// sendRequest is one request to play: the events it carries (indexes) and how to post it.
type sendRequest struct {
	items []int
	post  func(context.Context) (twiliotest.Response, error)
}

// sendShape is how the events are cut into requests.
type sendShape struct {
	batch, overlap  int
	unique, shuffle bool
	seed            uint64
	testEvent       bool
	account         string
}

// eventRequests prepares Event Streams bodies: fresh ids, a test event, out of order, batches of N with
// the last events of each body repeated at the start of the next.
func eventRequests(s *twiliotest.Sender, file, sample string, sh sendShape) ([]sendRequest, int, error) {
	events, err := loadEvents(file, sample)
	if err != nil {
		return nil, 0, err
	}
	if sh.unique {
		for i := range events {
			if events[i], err = freshID(events[i]); err != nil {
				return nil, 0, fmt.Errorf("event %d: %w", i, err)
			}
		}
	}
	if sh.testEvent {
		events = append(events, twiliotest.NewTestEvent(sh.account))
	}
	order := shuffled(len(events), sh.shuffle, sh.seed)
	sh.batch = max(sh.batch, 1)
	var reqs []sendRequest
	for start := 0; start < len(order); start += sh.batch {
		from := max(start-min(sh.overlap, sh.batch), 0)
		items := slices.Clone(order[from:min(start+sh.batch, len(order))])
		body := make([]json.RawMessage, len(items))
		for i, it := range items {
			body[i] = events[it]
		}
		reqs = append(reqs, sendRequest{items: items, post: func(ctx context.Context) (twiliotest.Response, error) { return s.Post(ctx, body) }})
	}
	return reqs, len(events), nil
}

// classicRequests prepares classic callbacks, one per request.
func classicRequests(s *twiliotest.Sender, file, sample string, unique, shuffle bool, seed uint64) ([]sendRequest, int, error) {
	var forms []url.Values
	switch {
	case file != "" && sample != "":
		return nil, 0, fmt.Errorf("give -file or -sample, not both")
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, 0, err
		}
		for i, line := range strings.Split(string(b), "\n") {
			if line = strings.TrimSpace(line); line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			p, err := twilio.ParseForm([]byte(line))
			if err != nil {
				return nil, 0, fmt.Errorf("%s:%d: %w", file, i+1, err)
			}
			forms = append(forms, p)
		}
	default:
		all, err := twilio.ClassicSamples()
		if err != nil {
			return nil, 0, err
		}
		names := strings.Split(sample, ",")
		if sample == "" || sample == "all" {
			names = twilio.ClassicSampleNames()
		}
		for _, n := range names {
			p, ok := all[strings.TrimSpace(n)]
			if !ok {
				return nil, 0, fmt.Errorf("no classic sample %q (have %s)", n, strings.Join(twilio.ClassicSampleNames(), ", "))
			}
			forms = append(forms, p)
		}
	}
	var reqs []sendRequest
	for _, i := range shuffled(len(forms), shuffle, seed) {
		p := forms[i]
		if unique {
			p = twiliotest.FreshClassic(p)
		}
		reqs = append(reqs, sendRequest{items: []int{i}, post: func(ctx context.Context) (twiliotest.Response, error) { return s.PostForm(ctx, p) }})
	}
	return reqs, len(forms), nil
}

// shuffled returns 0..n-1, in a random order when shuffle is set.
func shuffled(n int, shuffle bool, seed uint64) []int {
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	if shuffle {
		r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
		if seed == 0 {
			r = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
		}
		r.Shuffle(n, func(i, j int) { order[i], order[j] = order[j], order[i] })
	}
	return order
}

// sendSummary counts what was delivered, retried and lost, per event.
type sendSummary struct {
	events, requests, attempts, retried int
	delivered, lost                     map[int]bool
	statuses                            map[int]int
}

func (s *sendSummary) add(r sendRequest, d twiliotest.Delivery) {
	s.requests++
	s.attempts += d.Attempts
	if d.Attempts > 1 {
		s.retried++
	}
	if s.statuses == nil {
		s.statuses = map[int]int{}
	}
	s.statuses[d.Last.Status]++
	for _, it := range r.items {
		switch d.Outcome {
		case twiliotest.Delivered:
			s.delivered[it] = true
		case twiliotest.Lost:
			s.lost[it] = true
		}
	}
}

func (s *sendSummary) print(w io.Writer, attempts int) {
	var parts []string
	for _, code := range slices.Sorted(maps.Keys(s.statuses)) {
		label := fmt.Sprint(code)
		if code == 0 {
			label = "transport errors"
		}
		parts = append(parts, fmt.Sprintf("%s: %d", label, s.statuses[code]))
	}
	lost := 0
	for it := range s.lost {
		if !s.delivered[it] {
			lost++
		}
	}
	undelivered := s.events - len(s.delivered) - lost
	fmt.Fprintf(w, "sent %d events in %d requests, %d attempts; final responses %s\n", s.events, s.requests, s.attempts, strings.Join(parts, ", "))
	fmt.Fprintf(w, "delivered %d, retried %d requests (%d retries), lost %d (answered a status Twilio does not retry: it drops them), "+
		"undelivered %d (still 429/5xx after %d attempts: Twilio would keep retrying for up to 4 h)\n",
		len(s.delivered), s.retried, s.attempts-s.requests, lost, undelivered, attempts)
}

// loadEvents reads events from a file or the built-in samples.
func loadEvents(file, sample string) ([]json.RawMessage, error) {
	switch {
	case file != "" && sample != "":
		return nil, fmt.Errorf("give -file or -sample, not both")
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, err
		}
		b = bytes.TrimSpace(b)
		if len(b) > 0 && b[0] == '{' {
			return []json.RawMessage{b}, nil
		}
		var evs []json.RawMessage
		if err := json.Unmarshal(b, &evs); err != nil {
			return nil, fmt.Errorf("%s: not a JSON array of events or one event: %w", file, err)
		}
		return evs, nil
	}
	all, err := twilio.Samples()
	if err != nil {
		return nil, err
	}
	names := strings.Split(sample, ",")
	if sample == "" || sample == "all" {
		names = twilio.SampleNames()
	}
	var evs []json.RawMessage
	for _, n := range names {
		ev, ok := all[strings.TrimSpace(n)]
		if !ok {
			return nil, fmt.Errorf("no sample %q (have %s)", n, strings.Join(twilio.SampleNames(), ", "))
		}
		evs = append(evs, ev)
	}
	return evs, nil
}

// freshID replaces an event's id with its prefix and random hex of the same length. Test events keep
// theirs: Twilio gives them the account SID.
func freshID(ev json.RawMessage) (json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(ev, &m); err != nil {
		return nil, err
	}
	var id, typ string
	_ = json.Unmarshal(m["id"], &id)
	_ = json.Unmarshal(m["type"], &typ)
	if typ == relay.TestEventType {
		return ev, nil
	}
	r := make([]byte, 16)
	_, _ = crand.Read(r)
	prefix := "EV"
	if len(id) >= 2 {
		prefix = id[:2]
	}
	m["id"], _ = json.Marshal(prefix + hex.EncodeToString(r))
	return json.Marshal(m)
}
