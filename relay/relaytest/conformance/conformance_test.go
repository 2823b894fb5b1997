package conformance_test

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relaykit/twilio-relay/relay"
	"github.com/relaykit/twilio-relay/relay/relaytest/conformance"
)

// The suite is tested on an in-memory destination: a correct sink passes it, and each broken sink
// (a mutant) fails it with the message that names its fault. Mutants run in a child process, since a
// failing suite fails the test that runs it.

const envMutant = "CONFORMANCE_MUTANT"

// mutants maps each fault to a message the suite must report about it.
var mutants = map[string]string{
	"drop-acked":            "acknowledged but is not readable",
	"reorder":               "which was written first",
	"lose-attribute":        "attribute subject",
	"corrupt-data":          "data differs",
	"lose-key":              "key",
	"duplicate":             "is held twice",
	"refuse-transiently":    "want a permanent error",
	"fail-whole-write":      "want a WriteErrors",
	"short-write-errors":    "WriteErrors has",
	"empty-write-errors":    "without an error",
	"ignore-context":        "after its context ended",
	"permanent-on-context":  "an ended context is transient",
	"write-after-close-ok":  "Write after Close returned nil",
	"second-close-panics":   "second Close panicked",
	"ack-hanging-write":     "to a hanging destination returned nil",
	"concurrent-writes-err": "goroutine",
	"wrong-position":        "the sink says it landed at",
}

func TestCorrectSinkPasses(t *testing.T) {
	if os.Getenv(envMutant) != "" {
		t.Skip("child process")
	}
	conformance.Run(t, newMem(""))
}

// TestMutant is what the child process runs.
func TestMutant(t *testing.T) {
	m := os.Getenv(envMutant)
	if m == "" {
		t.Skip("run by TestMutantsFail")
	}
	conformance.Run(t, newMem(m))
}

func TestMutantsFail(t *testing.T) {
	if os.Getenv(envMutant) != "" {
		t.Skip("child process")
	}
	for _, name := range slices.Sorted(maps.Keys(mutants)) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(os.Args[0], "-test.run=^TestMutant$", "-test.count=1", "-test.timeout=2m")
			cmd.Env = append(os.Environ(), envMutant+"="+name)
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) {
				t.Fatalf("the suite passed a sink that %s (%v):\n%s", name, err, out)
			}
			if !bytes.Contains(out, []byte(mutants[name])) {
				t.Fatalf("the suite failed a sink that %s, but not with %q:\n%s", name, mutants[name], out)
			}
		})
	}
}

// mem is an in-memory destination and the Reader of it.
type mem struct {
	mu      sync.Mutex
	records map[string][]conformance.Record
	stalled map[string]chan struct{}
}

func newMem(mutant string) func(t *testing.T) (relay.Sink, conformance.Reader) {
	d := &mem{records: map[string][]conformance.Record{}, stalled: map[string]chan struct{}{}}
	return func(*testing.T) (relay.Sink, conformance.Reader) { return &memSink{d: d, mutant: mutant}, d }
}

func (d *mem) Prepare(*testing.T, string) {}
func (d *mem) KeepsKeys() bool            { return true }
func (d *mem) Read(_ *testing.T, topic string) []conformance.Record {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.records[topic])
}
func (d *mem) Refused(topic string) (relay.Message, bool) {
	return relay.Message{Topic: topic, Event: &relay.Event{ID: "EZrefused", Subject: "refuse me"}}, true
}
func (d *mem) Stall(_ *testing.T, topic string) (func(), bool) {
	ch := make(chan struct{})
	d.mu.Lock()
	d.stalled[topic] = ch
	d.mu.Unlock()
	var once sync.Once
	return func() { once.Do(func() { close(ch) }) }, true
}

// memSink writes to a mem, with the fault its mutant names.
type memSink struct {
	d      *mem
	mutant string
	closed atomic.Bool
	writes atomic.Int64
}

func (s *memSink) Write(ctx context.Context, msgs []relay.Message) error {
	n := s.writes.Add(1)
	if s.closed.Load() && s.mutant != "write-after-close-ok" {
		return errors.New("closed")
	}
	if err := ctx.Err(); err != nil {
		if s.mutant == "permanent-on-context" {
			return relay.Permanent(err)
		}
		return err
	}
	if s.mutant == "concurrent-writes-err" && n > 40 {
		return errors.New("too busy")
	}
	errs := make(relay.WriteErrors, len(msgs))
	order := make([]int, len(msgs))
	for i := range order {
		order[i] = i
	}
	if s.mutant == "reorder" {
		slices.Reverse(order)
	}
	for _, i := range order {
		m := msgs[i]
		if m.Event.Subject == "refuse me" {
			errs[i] = relay.Permanent(errors.New("refused"))
			switch s.mutant {
			case "refuse-transiently":
				errs[i] = errors.New("refused")
			case "fail-whole-write":
				return relay.Permanent(errors.New("refused"))
			}
			continue
		}
		s.d.mu.Lock()
		stall := s.d.stalled[m.Topic]
		s.d.mu.Unlock()
		if stall != nil && s.mutant != "ack-hanging-write" {
			if s.mutant == "ignore-context" {
				select { // the suite releases the stall only after Write returns
				case <-stall:
				case <-time.After(conformance.Prompt + time.Second):
				}
			} else {
				select {
				case <-stall:
				case <-ctx.Done():
					errs[i] = ctx.Err()
					continue
				}
			}
		}
		if s.mutant == "drop-acked" && i == len(msgs)-1 {
			continue
		}
		msgs[i].Position = s.store(m)
		if s.mutant == "duplicate" {
			s.store(m)
		}
	}
	switch {
	case s.mutant == "short-write-errors" && errs.Count() > 0:
		return errs[:len(errs)-1]
	case s.mutant == "empty-write-errors":
		return errs
	case errs.Count() == 0:
		return nil
	}
	return errs
}

// store keeps m and returns where: its index among the topic's records.
func (s *memSink) store(m relay.Message) relay.Position {
	e := m.Event
	attrs := map[string]string{}
	for k, v := range map[string]string{"specversion": e.SpecVersion, "id": e.ID, "source": e.Source, "type": e.Type,
		"subject": e.Subject, "time": e.Time, "dataschema": e.DataSchema, "datacontenttype": e.DataContentType} {
		if v != "" {
			attrs[k] = v
		}
	}
	maps.Copy(attrs, e.Extensions)
	data, key := bytes.Clone(e.Data), bytes.Clone(m.Key)
	switch s.mutant {
	case "lose-attribute":
		delete(attrs, "subject")
	case "corrupt-data":
		if len(data) > 0 {
			data[len(data)-1] ^= 1
		}
	case "lose-key":
		key = nil
	}
	s.d.mu.Lock()
	defer s.d.mu.Unlock()
	at := relay.Position{Set: true, Partition: relay.NoPartition, Offset: int64(len(s.d.records[m.Topic]))}
	s.d.records[m.Topic] = append(s.d.records[m.Topic], conformance.Record{Attributes: attrs, Data: data, Key: key, Position: at})
	if s.mutant == "wrong-position" {
		at.Offset++
	}
	return at
}

func (s *memSink) Close(context.Context) error {
	if s.closed.Swap(true) && s.mutant == "second-close-panics" {
		panic("closed twice")
	}
	return nil
}

func TestParseStructured(t *testing.T) {
	e := &relay.Event{SpecVersion: "1.0", ID: "EZ1", Source: "/s", Type: "t", DataContentType: "application/json",
		Extensions: map[string]string{"x": "y"}, Data: []byte(`{"a": [1, 2]}`)}
	b, _ := e.MarshalJSON()
	rec, err := conformance.ParseStructured(b)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"specversion": "1.0", "id": "EZ1", "source": "/s", "type": "t", "datacontenttype": "application/json", "x": "y"}
	if !maps.Equal(rec.Attributes, want) || string(rec.Data) != `{"a": [1, 2]}` {
		t.Errorf("got %v %s", rec.Attributes, rec.Data)
	}
	e.Binary, e.Data = true, []byte{0, 1, 255}
	b, _ = e.MarshalJSON()
	if rec, err = conformance.ParseStructured(b); err != nil || !bytes.Equal(rec.Data, e.Data) {
		t.Errorf("data_base64: %v %v", rec.Data, err)
	}
	if _, err := conformance.ParseStructured([]byte("[]")); err == nil || !strings.Contains(err.Error(), "object") {
		t.Errorf("not an object: %v", err)
	}
}
