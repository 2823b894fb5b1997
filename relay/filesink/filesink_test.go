package filesink

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/relaykit/twilio-relay/relay"
)

func TestWriteRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "dead.jsonl")
	s, err := New("dlq", Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	ev := &relay.Event{SpecVersion: "1.0", ID: "EZ1", Source: "/s", Type: "t", Data: []byte(`{"a":1}`), Extensions: map[string]string{"deadletterreason": "no_route"}}
	bin := &relay.Event{SpecVersion: "1.0", ID: "EZ2", Source: "/s", Type: "t", Data: []byte("\x00\xffnot json"), Binary: true}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var written []relay.Message
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			msgs := []relay.Message{{Event: ev, Topic: "dead", Key: []byte("k")}, {Event: bin, Topic: "dead"}}
			if err := s.Write(context.Background(), msgs); err != nil {
				t.Error(err)
			}
			mu.Lock()
			written = append(written, msgs...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	if err := s.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.Write(context.Background(), []relay.Message{{Event: ev}}); err == nil {
		t.Fatal("Write after Close succeeded")
	}
	var ids []string
	err = Read(path, func(n int, l Line) error {
		var ce map[string]any
		if err := json.Unmarshal(l.Event, &ce); err != nil {
			t.Fatalf("line %d: %v", n, err)
		}
		ids = append(ids, ce["id"].(string))
		if ce["id"] == "EZ2" && ce["data_base64"] != "AP9ub3QganNvbg==" {
			t.Errorf("binary data written as %v", ce)
		}
		if ce["id"] == "EZ1" && (l.Key != "k" || ce["deadletterreason"] != "no_route" || l.Topic != "dead") {
			t.Errorf("line %d: %+v %v", n, l, ce)
		}
		return nil
	})
	if err != nil || len(ids) != 8 {
		t.Fatalf("read %d lines (%v), want 8", len(ids), err)
	}
	file, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range written { // each Position is the byte offset of the message's own line
		at := m.Position.Offset
		if !m.Position.Set || at < 0 || at >= int64(len(file)) || (at > 0 && file[at-1] != '\n') ||
			!strings.Contains(string(file[at:at+int64(bytes.IndexByte(file[at:], '\n'))]), `"id":"`+m.Event.ID+`"`) {
			t.Errorf("%s: position %+v is not the start of its line", m.Event.ID, m.Position)
		}
	}
}

func TestValidate(t *testing.T) {
	if errs := (Config{}).Validate(); len(errs) != 1 {
		t.Fatalf("empty path: %v", errs)
	}
	if _, err := New("x", Config{Path: "/proc/definitely/not/writable/f"}); err == nil {
		t.Fatal("New on an unwritable path succeeded")
	}
}
