package conformance

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/relaykit/twilio-relay/relay"
)

// writeReadBack: one Write of every kind of data; all of it readable at once, intact.
func (s *suite) writeReadBack(t *testing.T) {
	sink, r := s.open(t)
	topic := s.topic("readback")
	r.Prepare(t, topic)
	var msgs []relay.Message
	for i, kind := range []dataKind{objectData, binaryData, bigData, noData} {
		msgs = append(msgs, relay.Message{Event: s.event(kind), Topic: topic, Key: fmt.Appendf(nil, "SMkey%d", i)})
	}
	mustWrite(t, sink, msgs)
	checkRecords(t, r, msgs, r.Read(t, topic))
}

// orderInOneWrite: messages of four keys interleaved in one Write keep their order per key.
func (s *suite) orderInOneWrite(t *testing.T) {
	sink, r := s.open(t)
	topic := s.topic("order")
	r.Prepare(t, topic)
	msgs := s.messages(topic, 40, func(i int) []byte { return fmt.Appendf(nil, "SMorder%d", i%4) })
	mustWrite(t, sink, msgs)
	recs := r.Read(t, topic)
	checkRecords(t, r, msgs, recs)
	checkOrder(t, msgs, recs)
}

// orderAcrossWrites: a Write that returned nil precedes the next one, per key.
func (s *suite) orderAcrossWrites(t *testing.T) {
	sink, r := s.open(t)
	topic := s.topic("sequential")
	r.Prepare(t, topic)
	var all []relay.Message
	for range 5 {
		msgs := s.messages(topic, 4, func(int) []byte { return []byte("SMsequential") })
		mustWrite(t, sink, msgs)
		all = append(all, msgs...)
	}
	recs := r.Read(t, topic)
	checkRecords(t, r, all, recs)
	checkOrder(t, all, recs)
}

// perMessageResults: a message the sink can never write fails permanently, alone; the others in its
// Write are acknowledged and readable.
func (s *suite) perMessageResults(t *testing.T) {
	sink, r := s.open(t)
	topic := s.topic("refused")
	bad, ok := r.Refused(topic)
	if !ok {
		t.Skip("the sink refuses no message permanently")
	}
	r.Prepare(t, topic)
	good := s.messages(topic, 4, func(i int) []byte { return fmt.Appendf(nil, "SMgood%d", i) })
	msgs := []relay.Message{good[0], good[1], bad, good[2], good[3]}
	err := write(t, sink, msgs)
	var we relay.WriteErrors
	if !errors.As(err, &we) || len(we) != len(msgs) {
		t.Fatalf("Write returned %v (%T), want a WriteErrors of %d", err, err, len(msgs))
	}
	for i, e := range we {
		switch {
		case i == 2 && !relay.IsPermanent(e):
			t.Errorf("the refused message failed with %v, want a permanent error", e)
		case i != 2 && e != nil:
			t.Errorf("message %d failed with %v, want it acknowledged", i, e)
		}
	}
	checkRecords(t, r, slices.Delete(msgs, 2, 3), r.Read(t, topic)) // as written: with their Positions
}

// cancelledContext: with a context that has already ended, Write returns promptly; nil only when the
// message is readable, otherwise a transient error.
func (s *suite) cancelledContext(t *testing.T) {
	sink, r := s.open(t)
	topic := s.topic("cancelled")
	r.Prepare(t, topic)
	msgs := s.messages(topic, 3, func(int) []byte { return []byte("SMcancelled") })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := timedWrite(t, sink, ctx, msgs, 0)
	checkTransient(t, r, topic, msgs, err)
}

// deadlineWhileStalled: a Write the destination does not answer returns soon after its deadline with a
// transient error.
func (s *suite) deadlineWhileStalled(t *testing.T) {
	sink, r := s.open(t)
	topic := s.topic("stalled")
	release, ok := r.Stall(t, topic)
	if !ok {
		t.Skip("the destination cannot be made to hang")
	}
	defer release()
	msgs := s.messages(topic, 3, func(int) []byte { return []byte("SMstalled") })
	const deadline = 300 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	err := timedWrite(t, sink, ctx, msgs, deadline)
	if err == nil {
		t.Fatal("Write to a hanging destination returned nil")
	}
	for i, e := range results(msgs, err) {
		if e == nil {
			t.Errorf("message %d acknowledged by a hanging destination", i)
		} else if relay.IsPermanent(e) {
			t.Errorf("message %d: permanent error %v; an ended context is transient", i, e)
		}
	}
}

// cancelMidWrite: a large Write cancelled while it runs returns promptly; what it acknowledged is
// readable and what it did not failed transiently.
func (s *suite) cancelMidWrite(t *testing.T) {
	sink, r := s.open(t)
	topic := s.topic("midwrite")
	r.Prepare(t, topic)
	msgs := s.messages(topic, 200, func(i int) []byte { return fmt.Appendf(nil, "SMmid%d", i%8) })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	time.AfterFunc(time.Millisecond, cancel)
	err := timedWrite(t, sink, ctx, msgs, time.Millisecond)
	checkTransient(t, r, topic, msgs, err)
}

// concurrentWrites: many goroutines write at once, each in sequence; everything lands once, in order
// per goroutine's key.
func (s *suite) concurrentWrites(t *testing.T) {
	sink, r := s.open(t)
	topic := s.topic("concurrent")
	r.Prepare(t, topic)
	const goroutines, writes, perWrite = 16, 4, 5
	batches := make([][][]relay.Message, goroutines)
	for g := range batches {
		key := fmt.Appendf(nil, "SMgoroutine%02d", g)
		for range writes {
			batches[g] = append(batches[g], s.messages(topic, perWrite, func(int) []byte { return key }))
		}
	}
	var wg sync.WaitGroup
	errs := make([]error, goroutines)
	for g := range batches {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			for _, msgs := range batches[g] {
				if err := sink.Write(ctx, msgs); err != nil {
					errs[g] = err
					return
				}
			}
		}()
	}
	wg.Wait()
	var all []relay.Message // as written: with the Positions the sink set
	for g, err := range errs {
		if err != nil {
			t.Errorf("goroutine %d: Write: %v", g, err)
		}
		for _, msgs := range batches[g] {
			all = append(all, msgs...)
		}
	}
	recs := r.Read(t, topic)
	checkRecords(t, r, all, recs)
	checkOrder(t, all, recs)
}

// close: Write after Close fails; a second Close neither panics nor hangs.
func (s *suite) close(t *testing.T) {
	sink, r := s.newSink(t) // closed here, not by open's cleanup
	topic := s.topic("close")
	r.Prepare(t, topic)
	mustWrite(t, sink, s.messages(topic, 2, func(int) []byte { return []byte("SMclose") }))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := sink.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	msgs := s.messages(topic, 1, func(int) []byte { return nil })
	if err := timedWrite(t, sink, ctx, msgs, 0); err == nil {
		t.Error("Write after Close returned nil")
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer func() {
			if p := recover(); p != nil {
				t.Errorf("second Close panicked: %v", p)
			}
		}()
		_ = sink.Close(ctx) // an error is fine: the sink is closed already
	}()
	select {
	case <-done:
	case <-time.After(Prompt + 10*time.Second):
		t.Error("second Close did not return")
	}
}

// timedWrite runs Write and fails the test when it returns later than Prompt after ctx may have ended
// (after = how long into the Write that is).
func timedWrite(t *testing.T, sink relay.Sink, ctx context.Context, msgs []relay.Message, after time.Duration) error {
	t.Helper()
	start := time.Now()
	err := sink.Write(ctx, msgs)
	if took := time.Since(start); took > after+Prompt {
		t.Errorf("Write took %v after its context ended, want at most %v", took-after, Prompt)
	}
	checkShape(t, msgs, err)
	return err
}

// checkTransient checks a Write whose context ended: every message either acknowledged and readable,
// or failed with a transient error.
func checkTransient(t *testing.T, r Reader, topic string, msgs []relay.Message, err error) {
	t.Helper()
	held := map[string]Record{}
	for _, rec := range r.Read(t, topic) {
		held[rec.Attributes["id"]] = rec
	}
	acked := 0
	for i, e := range results(msgs, err) {
		switch {
		case e == nil:
			acked++
			if rec, ok := held[msgs[i].Event.ID]; !ok {
				t.Errorf("message %s acknowledged but not readable", msgs[i].Event.ID)
			} else {
				checkRecord(t, r, msgs[i], rec)
			}
		case relay.IsPermanent(e):
			t.Errorf("message %d: permanent error %v; an ended context is transient", i, e)
		}
	}
	t.Logf("%d of %d messages acknowledged; error: %v", acked, len(msgs), err)
}
