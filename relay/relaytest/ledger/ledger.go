// Package ledger proves delivery. A scenario drives signed traffic with known event ids into a relay,
// the ledger records every answer, and Check compares what a sink holds with what was answered:
// every event answered 200 must be there, nothing forged or never sent may be, and duplicates are
// counted so that a report can say where at-least-once produced them.
package ledger

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Ledger records the answers a relay gave to the events sent to it. It is safe for concurrent use.
type Ledger struct {
	mu       sync.Mutex
	events   map[string]*entry // genuine events, by id
	forged   map[string]bool   // ids sent in requests that must never be forwarded
	statuses map[string]int    // answers per request: "200", "503", "transport"
	requests int
}

type entry struct {
	sends int // requests that carried the event
	oks   int // of those, answered 200
	fails int // of those, answered otherwise or not at all
}

// New returns an empty ledger.
func New() *Ledger {
	return &Ledger{events: map[string]*entry{}, forged: map[string]bool{}, statuses: map[string]int{}}
}

// Record notes one request that carried the genuine events ids and what it was answered: status, or
// err when no answer came (a refused connection, a reset, a client timeout).
func (l *Ledger) Record(ids []string, status int, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.requests++
	key := strconv.Itoa(status)
	if err != nil {
		key = "transport"
	}
	l.statuses[key]++
	for _, id := range ids {
		e := l.events[id]
		if e == nil {
			e = &entry{}
			l.events[id] = e
		}
		e.sends++
		if err == nil && status == 200 {
			e.oks++
		} else {
			e.fails++
		}
	}
}

// Forged notes ids sent in requests that no sink may ever see (bad signatures, tampered bodies).
func (l *Ledger) Forged(ids ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, id := range ids {
		l.forged[id] = true
	}
}

// Unacknowledged returns the genuine events never answered 200, sorted: what Twilio would still retry.
func (l *Ledger) Unacknowledged() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var ids []string
	for id, e := range l.events {
		if e.oks == 0 {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// AcknowledgedIDs returns the genuine events answered 200 at least once, sorted.
func (l *Ledger) AcknowledgedIDs() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var ids []string
	for id, e := range l.events {
		if e.oks > 0 {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// Acknowledged returns how many genuine events were answered 200 at least once.
func (l *Ledger) Acknowledged() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, e := range l.events {
		if e.oks > 0 {
			n++
		}
	}
	return n
}

// Report is the outcome of one scenario, a row of docs/reliability.md.
type Report struct {
	Scenario string `json:"scenario"`
	Sent     int    `json:"sent"`     // distinct genuine events sent
	Requests int    `json:"requests"` // POSTs made, redeliveries included
	Answered int    `json:"answered"` // distinct genuine events answered 200 at least once
	Pending  int    `json:"pending"`  // distinct genuine events never answered 200 (Twilio still holds them)
	Present  int    `json:"present"`  // of the answered ones, found in the sink
	Lost     int    `json:"lost"`     // answered 200 and not in the sink, nor quarantined
	// Quarantined are answered events the relay itself reported as damaged at rest (a corrupted spool
	// entry it set aside, counted and logged) instead of delivering them.
	Quarantined int `json:"quarantined"`
	Duplicated  int `json:"duplicated"` // records of genuine events beyond the first
	// DupRefused are the duplicates of events once answered otherwise than 200 (or not at all) and sent
	// again: at-least-once, where the sink had the event before the relay could say so.
	DupRefused int `json:"dup_refused"`
	Unexpected int `json:"unexpected"` // records of ids never sent as genuine events (forged ones included)
	Forged     int `json:"forged"`     // distinct forged ids sent
	// DupTarget is the most duplicates the scenario may show, in percent of the events sent; nil when
	// they are only reported (a fault the relay cannot see through, such as its own SIGKILL).
	DupTarget *float64 `json:"dup_target_percent,omitempty"`

	Statuses map[string]int `json:"statuses"` // answers per request
	Note     string         `json:"note,omitempty"`
	Examples []string       `json:"examples,omitempty"` // a few lost or unexpected ids
}

// DupsAtMost is a duplicates target of percent of the events sent; DupsReported reports them only.
func DupsAtMost(percent float64) *float64 { return &percent }

// DupsReported is the target of a scenario whose duplicates are reported, not bounded.
var DupsReported *float64

// MaxDuplicated is the most duplicates the target allows, -1 when it allows any number.
func (r Report) MaxDuplicated() int {
	if r.DupTarget == nil {
		return -1
	}
	return int(*r.DupTarget * float64(r.Sent) / 100)
}

// Target describes the duplicates target for the table: "0", "≤ 2 % (24)", "reported".
func (r Report) Target() string {
	switch max := r.MaxDuplicated(); {
	case max < 0:
		return "reported"
	case *r.DupTarget == 0:
		return "0"
	default:
		return fmt.Sprintf("≤ %g %% (%d)", *r.DupTarget, max)
	}
}

// Check compares found (records per event id in the sink, every topic together) with the ledger.
// quarantined lists answered events the relay reported as damaged at rest.
func (l *Ledger) Check(scenario string, found map[string]int, quarantined ...string) Report {
	l.mu.Lock()
	defer l.mu.Unlock()
	q := map[string]bool{}
	for _, id := range quarantined {
		q[id] = true
	}
	r := Report{Scenario: scenario, Sent: len(l.events), Requests: l.requests, Forged: len(l.forged),
		Statuses: map[string]int{}}
	for k, v := range l.statuses {
		r.Statuses[k] = v
	}
	for id, e := range l.events {
		n := found[id]
		if n > 1 {
			r.Duplicated += n - 1
			if e.fails > 0 {
				r.DupRefused += n - 1
			}
		}
		if e.oks == 0 {
			r.Pending++
			continue
		}
		r.Answered++
		switch {
		case n > 0:
			r.Present++
		case q[id]:
			r.Quarantined++
		default:
			r.Lost++
			r.example("lost " + id)
		}
	}
	for id, n := range found {
		if l.events[id] == nil {
			r.Unexpected += n
			kind := "never sent"
			if l.forged[id] {
				kind = "forged"
			}
			r.example(kind + " " + id)
		}
	}
	slices.Sort(r.Examples)
	return r
}

func (r *Report) example(s string) {
	if len(r.Examples) < 5 {
		r.Examples = append(r.Examples, s)
	}
}

// Problems lists what breaks the promise: an answered event missing, a record never sent as a genuine
// event, more duplicates than the scenario's target. Empty means the scenario passed.
func (r Report) Problems() []string {
	var p []string
	if r.Lost > 0 {
		p = append(p, fmt.Sprintf("%d events answered 200 are not in the sink", r.Lost))
	}
	if max := r.MaxDuplicated(); max >= 0 && r.Duplicated > max {
		p = append(p, fmt.Sprintf("%d duplicates, over the target of %s", r.Duplicated, r.Target()))
	}
	if r.Unexpected > 0 {
		p = append(p, fmt.Sprintf("%d records of events never sent or forged", r.Unexpected))
	}
	if r.Answered+r.Pending != r.Sent || r.Present+r.Lost+r.Quarantined != r.Answered {
		p = append(p, "the ledger's counts do not add up")
	}
	if len(p) > 0 && len(r.Examples) > 0 {
		p = append(p, "e.g. "+strings.Join(r.Examples, ", "))
	}
	return p
}

// String is a one-line summary for test logs.
func (r Report) String() string {
	return fmt.Sprintf("%s: sent %d, answered 200 %d, present %d, lost %d, quarantined %d, duplicated %d (target %s), "+
		"unexpected %d, forged %d, pending %d, requests %d %v", r.Scenario, r.Sent, r.Answered, r.Present,
		r.Lost, r.Quarantined, r.Duplicated, r.Target(), r.Unexpected, r.Forged, r.Pending, r.Requests, r.Statuses)
}

// EnvOut names the file that scenarios append their reports to, one JSON object a line, when set.
const EnvOut = "RELAY_LEDGER_OUT"

// Save appends the report to the file named by $RELAY_LEDGER_OUT, if any.
func (r Report) Save() error {
	path := os.Getenv(EnvOut)
	if path == "" {
		return nil
	}
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
