// Package spool provides the relay's durable spool, built on bbolt (the B+tree store under etcd): when a
// sink cannot take events within a request's deadline, the relay stores them here, fsync'd, answers 200,
// and a drainer per sink delivers them in the order they were stored once the sink is back.
//
// One bucket per sink, keyed by a persistent sequence number. Every Append is one transaction (concurrent
// Appends share one commit and one fsync through bbolt's Batch). An entry leaves the spool only after its
// sink acknowledged it, or it was safely dead-lettered, so a crash at any point loses nothing: at worst a
// message delivered just before the crash is delivered again.
package spool

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/relaykit/twilio-relay/relay"
	bolt "go.etcd.io/bbolt"
)

// FileName is the spool's file inside its directory.
const FileName = "spool.db"

// corruptBucket holds entries that could not be decoded, for inspection with `relay spool`.
var corruptBucket = []byte("_corrupt")

// Config configures a spool.
type Config struct {
	Dir string
	// MaxBytes bounds what the spool holds; past it, Append returns relay.ErrSpoolFull.
	MaxBytes int64
	// Sinks are the sinks that spool; each gets a bucket and a drainer.
	Sinks []string
	// RetryMin and RetryMax bound the backoff of a drainer whose sink keeps failing.
	RetryMin, RetryMax time.Duration
	// BatchSize is how many messages a drainer writes at once.
	BatchSize int
	Logger    *slog.Logger
}

// Spool is a relay.Spool on a bbolt file.
type Spool struct {
	db      *bolt.DB
	cfg     Config
	log     *slog.Logger
	total   atomic.Int64 // bytes held or reserved, all sinks
	corrupt atomic.Uint64

	mu    sync.Mutex
	sinks map[string]*sinkState

	stop context.CancelFunc // ends the drainers; set by Start
	wg   sync.WaitGroup
}

type sinkState struct {
	depth            int
	bytes            int64
	oldest           time.Time
	spooled, drained uint64
	wake             chan struct{}
}

var _ relay.Spool = (*Spool)(nil)

// Open opens (or creates) the spool in cfg.Dir. A file that cannot be opened as a bbolt database is
// moved aside as spool.db.corrupt-<time> and reported, and an empty spool takes its place: the relay
// keeps running, and the damaged file stays for inspection. Another process holding the file is an error.
func Open(cfg Config) (*Spool, error) {
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 100
	}
	if cfg.RetryMin <= 0 {
		cfg.RetryMin = 250 * time.Millisecond
	}
	if cfg.RetryMax < cfg.RetryMin {
		cfg.RetryMax = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	s := &Spool{cfg: cfg, log: cfg.Logger.With(slog.String("component", "spool")), sinks: map[string]*sinkState{}}
	path := filepath.Join(cfg.Dir, FileName)
	db, err := openScanned(path, cfg.Sinks, s)
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("spool: %s is in use by another process", path)
	}
	if err != nil {
		aside := fmt.Sprintf("%s.corrupt-%d", path, time.Now().Unix())
		if rerr := os.Rename(path, aside); rerr != nil {
			return nil, fmt.Errorf("spool: %s is damaged (%v) and cannot be moved aside: %w", path, err, rerr)
		}
		s.corrupt.Add(1)
		s.log.Error("spool file damaged: moved aside, starting empty", slog.String("file", aside), slog.Any("error", err))
		s.sinks = map[string]*sinkState{}
		s.total.Store(0)
		if db, err = openScanned(path, cfg.Sinks, s); err != nil {
			return nil, fmt.Errorf("spool: %w", err)
		}
	}
	s.db = db
	s.db.MaxBatchDelay = 2 * time.Millisecond
	return s, nil
}

// openScanned opens the file, makes the buckets and counts what each holds. bbolt panics on some kinds of
// page damage; that is reported as an error here.
func openScanned(path string, sinks []string, s *Spool) (db *bolt.DB, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("damaged: %v", r)
			if db != nil {
				err = errors.Join(err, db.Close())
			}
			db = nil
		}
	}()
	db, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		return nil, err
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range append(sinks, string(corruptBucket)) {
			b, err := tx.CreateBucketIfNotExists([]byte(name))
			if err != nil {
				return err
			}
			if name == string(corruptBucket) {
				continue
			}
			st := &sinkState{wake: make(chan struct{}, 1)}
			err = b.ForEach(func(_, v []byte) error {
				if st.depth == 0 {
					st.oldest = storedAt(v)
				}
				st.depth++
				st.bytes += int64(len(v))
				return nil
			})
			if err != nil {
				return err
			}
			s.sinks[name] = st
			s.total.Add(st.bytes)
		}
		return nil
	})
	if err != nil {
		return nil, errors.Join(err, db.Close())
	}
	return db, nil
}

// Has reports whether the sink has messages waiting.
func (s *Spool) Has(sink string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.sinks[sink]
	return st != nil && st.depth > 0
}

// Append stores msgs for the sink and returns once they are on disk. It returns relay.ErrSpoolFull when
// they do not fit in MaxBytes, and the store's error (a full disk, say) when the write fails; either way
// nothing of msgs is stored.
func (s *Spool) Append(sink string, msgs []relay.Message) error {
	s.mu.Lock()
	st := s.sinks[sink]
	s.mu.Unlock()
	if st == nil {
		return fmt.Errorf("spool: sink %s does not spool", sink)
	}
	now := time.Now()
	vals := make([][]byte, len(msgs))
	var size int64
	for i, m := range msgs {
		v, err := encode(m, now)
		if err != nil {
			return fmt.Errorf("spool: encode: %w", err)
		}
		vals[i] = v
		size += int64(len(v))
	}
	if s.total.Add(size) > s.cfg.MaxBytes {
		s.total.Add(-size)
		return relay.ErrSpoolFull
	}
	err := s.db.Batch(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(sink))
		for _, v := range vals {
			seq, err := b.NextSequence()
			if err != nil {
				return err
			}
			if err := b.Put(seqKey(seq), v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		s.total.Add(-size)
		return fmt.Errorf("spool: append: %w", err)
	}
	s.mu.Lock()
	if st.depth == 0 {
		st.oldest = now
	}
	st.depth += len(msgs)
	st.bytes += size
	st.spooled += uint64(len(msgs))
	s.mu.Unlock()
	select {
	case st.wake <- struct{}{}:
	default:
	}
	return nil
}

func seqKey(seq uint64) []byte {
	k := make([]byte, 8)
	binary.BigEndian.PutUint64(k, seq)
	return k
}

// Stats describes what the spool holds, per sink.
func (s *Spool) Stats() []relay.SpoolStat {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]relay.SpoolStat, 0, len(s.sinks))
	for _, name := range s.cfg.Sinks {
		st := s.sinks[name]
		out = append(out, relay.SpoolStat{Sink: name, Depth: st.depth, Bytes: st.bytes, Oldest: st.oldest,
			Spooled: st.spooled, Drained: st.drained})
	}
	return out
}

// Corrupt returns how many damaged files and entries the spool has found since it opened.
func (s *Spool) Corrupt() uint64 { return s.corrupt.Load() }
