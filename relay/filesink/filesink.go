// Package filesink provides a sink that appends each message as one line of JSON to a file, fsync'd before
// Write returns: a dead-letter destination that needs no broker, and a plain archive. Each line is
// {"topic": …, "key": …, "event": <the event in the CloudEvents JSON format>}; `relay dlq replay` reads
// these files back.
package filesink

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/relaykit/twilio-relay/relay"
)

// Config configures a file sink.
type Config struct {
	// Path is the file; it is created (mode 0600) if missing and always appended to.
	Path string `yaml:"path"`
	// NoSync skips the fsync after each write: faster, but a crash can lose what Write acknowledged.
	NoSync bool `yaml:"no_sync"`
}

// Defaults returns c: a file sink has no optional fields.
func (c Config) Defaults() Config { return c }

// Validate reports every problem with c.
func (c Config) Validate() []error {
	if c.Path == "" {
		return []error{errors.New("path: required")}
	}
	return nil
}

// Line is one line of a file sink's file.
type Line struct {
	Topic string          `json:"topic"`
	Key   string          `json:"key,omitempty"`
	Event json.RawMessage `json:"event"`
}

// Sink appends to one file. It is safe for concurrent use; writes are serialised.
type Sink struct {
	name string
	cfg  Config
	mu   sync.Mutex
	f    *os.File
}

var (
	_ relay.Sink   = (*Sink)(nil)
	_ relay.Pinger = (*Sink)(nil)
)

// New opens (creating) the file for appending. cfg has passed Validate (package config checks it).
func New(name string, cfg Config) (*Sink, error) {
	if err := os.MkdirAll(filepath.Dir(cfg.Path), 0o700); err != nil {
		return nil, fmt.Errorf("file sink %s: %w", name, err)
	}
	f, err := os.OpenFile(cfg.Path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("file sink %s: %w", name, err)
	}
	return &Sink{name: name, cfg: cfg, f: f}, nil
}

// Write appends one line per message and, unless NoSync, fsyncs before it returns; each message's
// Position is the byte offset of its line. A failed write or
// fsync (a full disk) is transient: the pipeline retries, and the relay answers 503 meanwhile.
func (s *Sink) Write(ctx context.Context, msgs []relay.Message) error {
	var buf []byte
	starts := make([]int64, len(msgs)) // of each line in buf
	for i, m := range msgs {
		starts[i] = int64(len(buf))
		ev, err := m.Event.MarshalJSON()
		if err != nil {
			return relay.Permanent(fmt.Errorf("encode: %w", err))
		}
		line, err := json.Marshal(Line{Topic: m.Topic, Key: string(m.Key), Event: ev})
		if err != nil {
			return relay.Permanent(fmt.Errorf("encode: %w", err))
		}
		buf = append(append(buf, line...), '\n')
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return errors.New("file sink closed")
	}
	if _, err := s.f.Write(buf); err != nil {
		return fmt.Errorf("write %s: %w", s.cfg.Path, err)
	}
	if !s.cfg.NoSync {
		if err := s.f.Sync(); err != nil {
			return fmt.Errorf("fsync %s: %w", s.cfg.Path, err)
		}
	}
	// The file is opened for appending: the offset after the write is its end, wherever other writers
	// left it, and the lines are just before it.
	if end, err := s.f.Seek(0, io.SeekCurrent); err == nil {
		base := end - int64(len(buf))
		for i := range msgs {
			msgs[i].Position = relay.Position{Set: true, Partition: relay.NoPartition, Offset: base + starts[i]}
		}
	}
	return nil
}

// Ping checks that the file is still open and its directory exists.
func (s *Sink) Ping(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return errors.New("file sink closed")
	}
	_, err := os.Stat(filepath.Dir(s.cfg.Path))
	return err
}

// Close syncs and closes the file.
func (s *Sink) Close(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return nil
	}
	err := errors.Join(s.f.Sync(), s.f.Close())
	s.f = nil
	return err
}

// Read calls fn for each line of a file sink's file, in order, with its line number.
func Read(path string, fn func(n int, l Line) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 128<<20)
	for n := 1; sc.Scan(); n++ {
		var l Line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return fmt.Errorf("%s:%d: %w", path, n, err)
		}
		if err := fn(n, l); err != nil {
			return err
		}
	}
	return sc.Err()
}
