package spool

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/relaykit/twilio-relay/relay"
	bolt "go.etcd.io/bbolt"
)

// Deliver writes spooled messages to their sink and returns one error per message: nil when the message
// may leave the spool. *relay.Pipeline's Redeliver is one.
type Deliver func(ctx context.Context, sink string, msgs []relay.Message) []error

// Start starts one drainer per sink; they run until ctx ends or Close stops them. Wait waits for them.
func (s *Spool) Start(ctx context.Context, deliver Deliver) {
	ctx, s.stop = context.WithCancel(ctx)
	for _, name := range s.cfg.Sinks {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.drain(ctx, name, deliver)
		}()
	}
}

// Wait blocks until every drainer has returned.
func (s *Spool) Wait() { s.wg.Wait() }

// Close stops the drainers (what they were delivering stays in the spool unless its sink acknowledged
// it), waits for them within ctx, and closes the file. It is the spool's whole shutdown.
func (s *Spool) Close(ctx context.Context) error {
	if s.stop != nil {
		s.stop()
	}
	stopped := make(chan struct{})
	go func() { s.wg.Wait(); close(stopped) }()
	select {
	case <-stopped:
	case <-ctx.Done():
		return fmt.Errorf("spool: drainers still delivering: %w (the file stays open)", ctx.Err())
	}
	return s.db.Close()
}

// drain delivers the sink's messages in the order they were stored, a batch at a time, backing off while
// the sink fails.
func (s *Spool) drain(ctx context.Context, sink string, deliver Deliver) {
	s.mu.Lock()
	st := s.sinks[sink]
	s.mu.Unlock()
	backoff := s.cfg.RetryMin
	// Entries delivered that the spool could not delete (on a full disk even a delete can fail): skipped
	// by the next batches, so never delivered twice, and deleted with the next batch's.
	undeleted := map[string]bool{}
	for ctx.Err() == nil {
		if !s.Has(sink) {
			select {
			case <-st.wake:
			case <-ctx.Done():
			}
			continue
		}
		keys, msgs := s.peek(sink, undeleted)
		if len(msgs) == 0 {
			if len(undeleted) > 0 && s.removeDelivered(sink, nil, undeleted) != nil {
				select { // nothing else to deliver, and the disk still full: wait before trying again
				case <-time.After(backoff):
				case <-ctx.Done():
				}
				backoff = min(2*backoff, s.cfg.RetryMax)
			}
			continue // else only damaged entries: moved aside by peek
		}
		dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		errs := deliver(dctx, sink, msgs)
		cancel()
		var done [][]byte
		failed := 0
		for i, err := range errs {
			if err == nil {
				done = append(done, keys[i])
			} else {
				failed++
			}
		}
		if len(done) > 0 || len(undeleted) > 0 {
			if err := s.removeDelivered(sink, done, undeleted); err != nil {
				s.log.Error("spool: removing delivered entries (they are not delivered again)", slog.String("sink", sink), slog.Any("error", err))
			}
		}
		if failed == 0 {
			backoff = s.cfg.RetryMin
			continue
		}
		s.log.Warn("spool: sink still failing", slog.String("sink", sink), slog.Int("failed", failed),
			slog.Any("error", firstErr(errs)), slog.Duration("retry_in", backoff))
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
		}
		backoff = min(2*backoff, s.cfg.RetryMax)
	}
}

// removeDelivered deletes the delivered entries done and those a delete failed for before (undeleted),
// and updates undeleted: empty once they are deleted, holding done too when the delete fails.
func (s *Spool) removeDelivered(sink string, done [][]byte, undeleted map[string]bool) error {
	keys := done
	for k := range undeleted {
		keys = append(keys, []byte(k))
	}
	if err := s.remove(sink, keys, true); err != nil {
		for _, k := range done {
			undeleted[string(k)] = true
		}
		return err
	}
	clear(undeleted)
	return nil
}

func firstErr(errs []error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// peek reads the oldest batch of the sink's entries, skipping those in skip. Entries that fail their
// checksum or do not decode are moved to the _corrupt bucket, counted and logged.
func (s *Spool) peek(sink string, skip map[string]bool) (keys [][]byte, msgs []relay.Message) {
	var bad [][]byte
	var badVals [][]byte
	_ = s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket([]byte(sink)).Cursor()
		for k, v := c.First(); k != nil && len(msgs) < s.cfg.BatchSize; k, v = c.Next() {
			if skip[string(k)] {
				continue
			}
			m, err := decode(v)
			if err != nil {
				bad = append(bad, bytes.Clone(k))
				badVals = append(badVals, bytes.Clone(v))
				continue
			}
			keys = append(keys, bytes.Clone(k))
			msgs = append(msgs, m) // decode copied everything out of the mmap
		}
		return nil
	})
	if len(bad) > 0 {
		s.corrupt.Add(uint64(len(bad)))
		s.log.Error("spool: damaged entries moved to _corrupt", slog.String("sink", sink), slog.Int("entries", len(bad)))
		err := s.db.Update(func(tx *bolt.Tx) error {
			cb := tx.Bucket(corruptBucket)
			for i, k := range bad {
				if err := cb.Put(append([]byte(sink+"/"), k...), badVals[i]); err != nil {
					return err
				}
			}
			return nil
		})
		if err == nil {
			_ = s.remove(sink, bad, false)
		}
	}
	return keys, msgs
}

// remove deletes entries and updates the counters; delivered says whether they count as drained.
func (s *Spool) remove(sink string, keys [][]byte, delivered bool) error {
	var freed int64
	removed := 0
	var oldest time.Time
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(sink))
		for _, k := range keys {
			if v := b.Get(k); v != nil {
				freed += int64(len(v))
				removed++
				if err := b.Delete(k); err != nil {
					return err
				}
			}
		}
		if _, v := b.Cursor().First(); v != nil {
			oldest = storedAt(v)
		}
		return nil
	})
	if err != nil {
		return err
	}
	s.total.Add(-freed)
	s.mu.Lock()
	st := s.sinks[sink]
	st.depth -= removed
	st.bytes -= freed
	if delivered {
		st.drained += uint64(removed)
	}
	st.oldest = oldest
	s.mu.Unlock()
	return nil
}
