package spool

import (
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/relaykit/twilio-relay/relay"
	bolt "go.etcd.io/bbolt"
)

// Report is what Inspect finds in a spool that no relay holds open.
type Report struct {
	File    string
	Sinks   []relay.SpoolStat
	Corrupt int                 // entries set aside as damaged
	Samples map[string][]Sample // the oldest few waiting messages of each sink
}

// Sample describes one waiting message.
type Sample struct {
	Stored time.Time
	ID     string
	Type   string
	Topic  string
	Bytes  int
	Err    string // why it cannot be decoded, if it cannot
}

// ErrInUse is returned by Inspect while a running relay holds the spool.
var ErrInUse = errors.New("the spool is open in a running relay: read its admin listener's /spool instead")

// Inspect opens the spool in dir read-only and reports what it holds, with up to samples messages per
// sink.
func Inspect(dir string, samples int) (*Report, error) {
	path := filepath.Join(dir, FileName)
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, ErrInUse
	}
	if err != nil {
		return nil, fmt.Errorf("spool: %s: %w", path, err)
	}
	defer db.Close()
	r := &Report{File: path, Samples: map[string][]Sample{}}
	err = db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			if string(name) == string(corruptBucket) {
				r.Corrupt = b.Stats().KeyN
				return nil
			}
			st := relay.SpoolStat{Sink: string(name)}
			err := b.ForEach(func(_, v []byte) error {
				if st.Depth == 0 {
					st.Oldest = storedAt(v)
				}
				st.Depth++
				st.Bytes += int64(len(v))
				if len(r.Samples[st.Sink]) < samples {
					s := Sample{Stored: storedAt(v), Bytes: len(v)}
					if m, err := decode(v); err != nil {
						s.Err = err.Error()
					} else {
						s.ID, s.Type, s.Topic = m.Event.ID, m.Event.Type, m.Topic
					}
					r.Samples[st.Sink] = append(r.Samples[st.Sink], s)
				}
				return nil
			})
			r.Sinks = append(r.Sinks, st)
			return err
		})
	})
	return r, err
}
