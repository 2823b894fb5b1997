package redis_test

import (
	"context"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/relaykit/twilio-relay/relay"
	"github.com/relaykit/twilio-relay/relay/relaytest/conformance"
)

// reader reads streams back with XRANGE for the conformance suite.
type reader struct {
	rdb *goredis.Client
}

func newReader(t *testing.T, addr string) *reader {
	t.Helper()
	rdb := goredis.NewClient(&goredis.Options{Addr: addr})
	t.Cleanup(func() { _ = rdb.Close() })
	return &reader{rdb: rdb}
}

func (r *reader) Prepare(*testing.T, string) {}

// entries returns every entry of stream, oldest first.
func (r *reader) entries(t *testing.T, stream string) []goredis.XMessage {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	xs, err := r.rdb.XRange(ctx, stream, "-", "+").Result()
	if err != nil {
		t.Fatalf("XRANGE %s: %v", stream, err)
	}
	return xs
}

func (r *reader) Read(t *testing.T, topic string) []conformance.Record {
	t.Helper()
	var out []conformance.Record
	for _, x := range r.entries(t, topic) {
		rec := conformance.Record{Attributes: map[string]string{}}
		for k, v := range x.Values {
			s, ok := v.(string)
			if !ok {
				t.Errorf("entry %s: field %s is a %T", x.ID, k, v)
			}
			switch name, isAttr := strings.CutPrefix(k, "ce_"); {
			case isAttr:
				rec.Attributes[name] = s
			case k == "content-type":
				rec.Attributes["datacontenttype"] = s
			case k == "key":
				rec.Key = []byte(s)
			case k == "data":
				rec.Data = []byte(s)
			default:
				t.Errorf("entry %s: unexpected field %s", x.ID, k)
			}
		}
		rec.Position = relay.Position{Set: true, Partition: relay.NoPartition, ID: x.ID}
		out = append(out, rec)
	}
	return out
}

func (r *reader) KeepsKeys() bool { return true }

// Refused: Redis refuses no valid XADD for the message itself.
func (r *reader) Refused(string) (relay.Message, bool) { return relay.Message{}, false }

// Stall pauses every client's writes (CLIENT PAUSE … WRITE) until release.
func (r *reader) Stall(t *testing.T, _ string) (func(), bool) {
	t.Helper()
	ctx := context.Background()
	if err := r.rdb.Do(ctx, "CLIENT", "PAUSE", 30000, "WRITE").Err(); err != nil {
		t.Fatalf("CLIENT PAUSE: %v", err)
	}
	return func() {
		if err := r.rdb.Do(ctx, "CLIENT", "UNPAUSE").Err(); err != nil {
			t.Errorf("CLIENT UNPAUSE: %v", err)
		}
	}, true
}
