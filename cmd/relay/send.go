package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/relaykit/twilio-relay/relay"
	"github.com/relaykit/twilio-relay/relay/twilio"
)

func runSend(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("send", flag.ContinueOnError)
	fs.SetOutput(stderr)
	target := fs.String("url", "http://127.0.0.1:8080/twilio/events", "where to POST (user:pass@ sends Basic credentials)")
	public := fs.String("public-url", "", "URL to sign instead of -url: the relay's public_url when -url reaches it another way")
	token := fs.String("token", os.Getenv("TWILIO_AUTH_TOKEN"), "auth token to sign with (env TWILIO_AUTH_TOKEN)")
	file := fs.String("file", "", "JSON file: an array of CloudEvents or one event")
	sample := fs.String("sample", "", "built-in sample events: all, or a comma-separated list of "+strings.Join(twilio.SampleNames(), ", "))
	batch := fs.Int("batch", 1, "events per request")
	unique := fs.Bool("unique", false, "give every event a fresh id (so a rerun is not deduplicated)")
	dups := fs.Int("duplicates", 0, "send every request this many more times, one after another")
	concurrent := fs.Int("concurrent-duplicates", 0, "send every request this many more times at once")
	timeout := fs.Duration("timeout", 5*time.Second, "per-request timeout (Twilio waits 5s)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *token == "" {
		return fmt.Errorf("send: -token (or TWILIO_AUTH_TOKEN) is required")
	}
	events, err := loadEvents(*file, *sample)
	if err != nil {
		return fmt.Errorf("send: %w", err)
	}
	if *unique {
		for i := range events {
			if events[i], err = freshID(events[i]); err != nil {
				return fmt.Errorf("send: event %d: %w", i, err)
			}
		}
	}
	if *batch < 1 {
		*batch = 1
	}
	s := &twilio.Sender{URL: *target, PublicURL: *public, Token: *token, Client: &http.Client{Timeout: *timeout}}
	statuses := map[int]int{}
	var mu sync.Mutex
	post := func(body []json.RawMessage) {
		resp, err := s.Post(ctx, body)
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			statuses[0]++
			fmt.Fprintf(stderr, "send: %v\n", err)
			return
		}
		statuses[resp.Status]++
		fmt.Fprintf(stdout, "%d %s\n", resp.Status, bytes.TrimSpace(resp.Body))
	}
	for start := 0; start < len(events); start += *batch {
		body := events[start:min(start+*batch, len(events))]
		post(body)
		for range *dups {
			post(body)
		}
		var wg sync.WaitGroup
		for range *concurrent {
			wg.Add(1)
			go func() { defer wg.Done(); post(body) }()
		}
		wg.Wait()
	}
	var parts []string
	for _, code := range slices.Sorted(maps.Keys(statuses)) {
		label := fmt.Sprint(code)
		if code == 0 {
			label = "transport errors"
		}
		parts = append(parts, fmt.Sprintf("%s: %d", label, statuses[code]))
	}
	fmt.Fprintf(stdout, "sent %d events; responses %s\n", len(events), strings.Join(parts, ", "))
	if statuses[http.StatusOK] == 0 || len(statuses) > 1 {
		return fmt.Errorf("send: not every request was answered 200")
	}
	return nil
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
	_, _ = rand.Read(r)
	prefix := "EV"
	if len(id) >= 2 {
		prefix = id[:2]
	}
	m["id"], _ = json.Marshal(prefix + hex.EncodeToString(r))
	return json.Marshal(m)
}
