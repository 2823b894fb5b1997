package kafka_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/relaykit/twilio-relay/relay"
	"github.com/relaykit/twilio-relay/relay/kafka"
	"github.com/relaykit/twilio-relay/relay/relaytest/kafkaserver"
)

// Outcomes of one message in a Write, for wantOutcomes.
const (
	acked         = "acked"
	transient     = "transient"
	permanent     = "permanent"
	misconfigured = "misconfigured"
)

// wantOutcomes checks err, the result of a Write of len(want) messages, message by message.
func wantOutcomes(t testing.TB, err error, want ...string) relay.WriteErrors {
	t.Helper()
	allAcked := true
	for _, w := range want {
		allAcked = allAcked && w == acked
	}
	if allAcked {
		if err != nil {
			t.Fatalf("Write: %v, want every message acknowledged", err)
		}
		return make(relay.WriteErrors, len(want))
	}
	we := writeErrors(t, err, len(want))
	for i, e := range we {
		got := acked
		switch {
		case e != nil && relay.IsPermanent(e):
			got = permanent
		case e != nil && relay.IsMisconfigured(e):
			got = misconfigured
		case e != nil:
			got = transient
		}
		if got != want[i] {
			t.Errorf("message %d: %s (%v), want %s", i, got, e, want[i])
		}
	}
	return we
}

// TestSink runs the sink against one real broker; each subtest has its own topics and sink.
func TestSink(t *testing.T) {
	t.Parallel()
	srv := kafkaserver.Start(t, kafkaserver.LibsFromEnv(t))

	t.Run("binary mode: values, headers, keys, partitions", func(t *testing.T) {
		t.Parallel()
		const topic = "binary"
		srv.CreateTopic(t, topic, 3)
		var msgs []relay.Message
		for round := range 3 {
			for k := range 6 {
				sid := fmt.Sprintf("SM%02d", k)
				msgs = append(msgs, msg(topic, sid, event(fmt.Sprintf("EZ%s-%d", sid, round), sid)))
			}
		}
		withCT := event("EZct", "SMct")
		withCT.DataContentType = "application/json; charset=utf-8"
		withCT.Subject = "SMct"
		bin := &relay.Event{SpecVersion: "1.0", ID: "EZbin", Source: "s", Type: "t", Binary: true, Data: []byte{0, 0xff, 1}}
		noData := &relay.Event{SpecVersion: "1.0", ID: "EZnodata", Source: "s", Type: "t"}
		msgs = append(msgs, msg(topic, "SMct", withCT), msg(topic, "SMbin", bin), msg(topic, "", noData),
			msg(topic, "", event("EZnokey", "SMnokey")))

		s := newSink(t, srv.Addr(), kafka.Config{})
		mustWrite(t, s, msgs...)

		got := byID(t, readTopic(t, srv.Addr(), topic))
		if len(got) != len(msgs) {
			t.Fatalf("read %d records, want %d", len(got), len(msgs))
		}
		lastOffset := map[string]int64{}
		for _, m := range msgs {
			r, ok := got[m.Event.ID]
			if !ok {
				t.Errorf("event %s not in Kafka", m.Event.ID)
				continue
			}
			want, err := kafka.Encode(m, false)
			if err != nil {
				t.Fatal(err)
			}
			if h, wh := headers(t, r), headers(t, record(want)); !reflect.DeepEqual(h, wh) {
				t.Errorf("%s: headers\n got %v\nwant %v", m.Event.ID, h, wh)
			}
			if string(r.Value) != string(m.Event.Data) || string(r.Key) != string(m.Key) {
				t.Errorf("%s: key %q value %q, want %q %q", m.Event.ID, r.Key, r.Value, m.Key, m.Event.Data)
			}
			if at := (relay.Position{Set: true, Partition: int32(r.Partition), Offset: r.Offset}); m.Position != at {
				t.Errorf("%s: Write said it landed at %+v, Kafka holds it at %+v", m.Event.ID, m.Position, at)
			}
			if m.Key == nil {
				continue
			}
			if p := javaPartition(m.Key, 3); r.Partition != p {
				t.Errorf("%s: key %s on partition %d, the Java partitioner picks %d", m.Event.ID, m.Key, r.Partition, p)
			}
			if last, ok := lastOffset[string(m.Key)]; ok && r.Offset <= last {
				t.Errorf("%s: key %s out of order (offset %d after %d)", m.Event.ID, m.Key, r.Offset, last)
			}
			lastOffset[string(m.Key)] = r.Offset
		}
		// Spot checks that do not go through Encode.
		if h := headers(t, got["EZSM00-0"]); h["ce_id"] != "EZSM00-0" || h["ce_type"] != "com.twilio.messaging.message.sent" ||
			h["content-type"] != "application/json" || h["ce_traceparent"] == "" || h["ce_specversion"] != "1.0" {
			t.Errorf("headers of EZSM00-0: %v", h)
		}
		if ct := headers(t, got["EZct"])["content-type"]; ct != "application/json; charset=utf-8" {
			t.Errorf("content-type %q, want the event's datacontenttype", ct)
		}
		if _, ok := headers(t, got["EZbin"])["content-type"]; ok {
			t.Errorf("binary data without datacontenttype got a content-type")
		}
	})

	t.Run("structured mode", func(t *testing.T) {
		t.Parallel()
		const topic = "structured"
		srv.CreateTopic(t, topic, 3)
		bin := &relay.Event{SpecVersion: "1.0", ID: "EZbin", Source: "s", Type: "t", DataContentType: "application/octet-stream", Binary: true, Data: []byte{0, 0xff}}
		evs := []*relay.Event{event("EZs1", "SM1"), event("EZs2", "SM2"), bin}
		s := newSink(t, srv.Addr(), kafka.Config{Mode: "structured"})
		mustWrite(t, s, msg(topic, "SM1", evs[0]), msg(topic, "SM2", evs[1]), msg(topic, "SM1", evs[2]))

		recs := readTopic(t, srv.Addr(), topic)
		if len(recs) != len(evs) {
			t.Fatalf("read %d records, want %d", len(recs), len(evs))
		}
		for _, r := range recs {
			var id struct{ ID string }
			if err := json.Unmarshal(r.Value, &id); err != nil {
				t.Errorf("structured value is not JSON: %s", r.Value)
				continue
			}
			var ev *relay.Event
			for _, e := range evs {
				if e.ID == id.ID {
					ev = e
				}
			}
			if ev == nil {
				t.Errorf("unexpected record %s", r.Value)
				continue
			}
			checkStructured(t, r, ev)
			if h := headers(t, r); !reflect.DeepEqual(h, map[string]string{"content-type": "application/cloudevents+json"}) {
				t.Errorf("%s: headers %v", ev.ID, h)
			}
			if p := javaPartition(r.Key, 3); r.Partition != p {
				t.Errorf("%s: key %s on partition %d, want %d", ev.ID, r.Key, r.Partition, p)
			}
		}
	})

	t.Run("compression", func(t *testing.T) {
		t.Parallel()
		sizes := map[string]int64{}
		for _, codec := range []string{"none", "gzip", "snappy", "lz4", "zstd"} {
			t.Run(codec, func(t *testing.T) {
				topic := "codec-" + codec
				srv.CreateTopic(t, topic, 1)
				var msgs []relay.Message
				for i := range 20 {
					e := event(fmt.Sprintf("EZ%s%02d", codec, i), "SM1")
					e.Data = fmt.Appendf(nil, `{"messageSid":"SM1","body":%q}`, strings.Repeat(fmt.Sprintf("hello %d ", i), 300))
					msgs = append(msgs, msg(topic, "SM1", e))
				}
				s := newSink(t, srv.Addr(), kafka.Config{Compression: codec})
				mustWrite(t, s, msgs...)
				recs := readTopic(t, srv.Addr(), topic)
				if len(recs) != len(msgs) {
					t.Fatalf("read %d records, want %d", len(recs), len(msgs))
				}
				for i, r := range recs { // one partition, one key: in write order
					m := msgs[i]
					want, _ := kafka.Encode(m, false)
					if string(r.Value) != string(m.Event.Data) || string(r.Key) != "SM1" || !reflect.DeepEqual(headers(t, r), headers(t, record(want))) {
						t.Errorf("record %d differs: key %q headers %v value %.40q...", i, r.Key, headers(t, r), r.Value)
					}
				}
				sizes[codec] = segmentBytes(t, srv, topic)
				if codec != "none" && sizes[codec] > sizes["none"]/2 {
					t.Errorf("%s: %d bytes on disk against %d uncompressed: not compressed", codec, sizes[codec], sizes["none"])
				}
			})
		}
		t.Logf("bytes on disk by codec: %v", sizes)
	})

	t.Run("missing topic fails alone, as a misconfiguration", func(t *testing.T) {
		t.Parallel()
		const present, absent = "present", "absent-topic"
		srv.CreateTopic(t, present, 3)
		s := newSink(t, srv.Addr(), kafka.Config{})
		msgs := []relay.Message{
			msg(present, "SM1", event("EZa", "SM1")), msg(absent, "SM1", event("EZb", "SM1")),
			msg(present, "SM2", event("EZc", "SM2")), msg(absent, "", event("EZd", "SM3")),
		}
		begin := time.Now()
		we := wantOutcomes(t, write(t, s, 10*time.Second, msgs...), acked, misconfigured, acked, misconfigured)
		t.Logf("Write returned in %v: %v", time.Since(begin).Round(time.Millisecond), we)
		for _, i := range []int{1, 3} {
			if !errors.Is(we[i], kafkago.UnknownTopicOrPartition) || !strings.Contains(we[i].Error(), absent) {
				t.Errorf("message %d: %v, want UnknownTopicOrPartition naming the topic", i, we[i])
			}
		}
		got := byID(t, readTopic(t, srv.Addr(), present))
		if len(got) != 2 || got["EZa"].Value == nil || got["EZc"].Value == nil {
			t.Errorf("topic %s holds %v, want EZa and EZc", present, got)
		}
	})

	t.Run("never writable messages fail permanently and alone", func(t *testing.T) {
		t.Parallel()
		const topic = "valid"
		srv.CreateTopic(t, topic, 3)
		s := newSink(t, srv.Addr(), kafka.Config{MaxMessageBytes: 4096})
		big := event("EZbig", "SM1")
		big.Data = fmt.Appendf(nil, `{"body":%q}`, strings.Repeat("x", 8000))
		msgs := []relay.Message{
			msg(topic, "SM1", event("EZok1", "SM1")),
			msg("bad topic!", "SM1", event("EZbad", "SM1")),
			msg(topic, "SM1", big),
			msg(".", "", event("EZdot", "SM1")),
			msg("..", "", event("EZdotdot", "SM1")),
			msg(strings.Repeat("t", 250), "", event("EZlong", "SM1")),
			msg("", "", event("EZempty", "SM1")),
			msg(topic, "SM2", event("EZok2", "SM2")),
		}
		we := wantOutcomes(t, write(t, s, 10*time.Second, msgs...),
			acked, permanent, permanent, permanent, permanent, permanent, permanent, acked)
		if !strings.Contains(we[2].Error(), "max_message_bytes") || !strings.Contains(we[1].Error(), "bad topic!") {
			t.Errorf("errors do not say why: %v / %v", we[1], we[2])
		}
		got := byID(t, readTopic(t, srv.Addr(), topic))
		if len(got) != 2 || got["EZok1"].Value == nil || got["EZok2"].Value == nil {
			t.Errorf("topic %s holds %d records, want EZok1 and EZok2", topic, len(got))
		}

		// A call with nothing writable fails at once, every message permanently.
		begin := time.Now()
		wantOutcomes(t, write(t, s, 10*time.Second, msgs[1], msgs[2]), permanent, permanent)
		if d := time.Since(begin); d > time.Second {
			t.Errorf("a call with nothing to write took %v", d)
		}
		// And an empty call succeeds.
		if err := write(t, s, time.Second); err != nil {
			t.Errorf("Write of no messages: %v", err)
		}
	})

	t.Run("broker MESSAGE_TOO_LARGE is permanent", func(t *testing.T) {
		t.Parallel()
		const small, other = "small-limit", "other"
		srv.CreateTopicWithConfig(t, small, 1, map[string]string{"max.message.bytes": "2048"})
		srv.CreateTopic(t, other, 1)
		s := newSink(t, srv.Addr(), kafka.Config{}) // max_message_bytes 1 MiB: the sink lets it through
		big := event("EZbig", "SM1")
		big.Data = fmt.Appendf(nil, `{"body":%q}`, strings.Repeat("x", 8000))

		we := wantOutcomes(t, write(t, s, 10*time.Second, msg(small, "SM1", big)), permanent)
		if !errors.Is(we[0], kafkago.MessageSizeTooLarge) {
			t.Errorf("error %v, want MessageSizeTooLarge", we[0])
		}
		mustWrite(t, s, msg(small, "SM1", event("EZsmall", "SM1")))
		// Other topics in the same call are not held up.
		wantOutcomes(t, write(t, s, 10*time.Second, msg(other, "SM1", event("EZother", "SM1")), msg(small, "SM1", big)), acked, permanent)

		if got := byID(t, readTopic(t, srv.Addr(), small)); len(got) != 1 || got["EZsmall"].Value == nil {
			t.Errorf("topic %s holds %d records, want only EZsmall", small, len(got))
		}
		if got := byID(t, readTopic(t, srv.Addr(), other)); len(got) != 1 {
			t.Errorf("topic %s holds %d records, want EZother", other, len(got))
		}

		t.Run("a small message batched with a too large one", func(t *testing.T) {
			// Both go to the one partition, so kafka-go puts them in one record batch, which the
			// broker refuses as a whole with MESSAGE_TOO_LARGE.
			err := write(t, s, 10*time.Second, msg(small, "SM1", event("EZsmall2", "SM1")), msg(small, "SM1", big))
			we := writeErrors(t, err, 2)
			if !relay.IsPermanent(we[1]) {
				t.Errorf("too large message: %v, want permanent", we[1])
			}
			if we[0] != nil {
				t.Errorf("the small message batched with a too large one: %v, want it written", we[0])
			}
		})
	})

	t.Run("concurrent writes are each written once", func(t *testing.T) {
		t.Parallel()
		const topic = "concurrent"
		srv.CreateTopic(t, topic, 3)
		s := newSink(t, srv.Addr(), kafka.Config{BatchTimeout: relay.Duration(5 * time.Millisecond)})
		var wg sync.WaitGroup
		for g := range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var msgs []relay.Message
				for i := range 5 {
					sid := fmt.Sprintf("SM%d", i)
					msgs = append(msgs, msg(topic, sid, event(fmt.Sprintf("EZ%02d-%d", g, i), sid)))
				}
				if err := write(t, s, 20*time.Second, msgs...); err != nil {
					t.Errorf("writer %d: %v", g, err)
				}
			}()
		}
		wg.Wait()
		if got := byID(t, readTopic(t, srv.Addr(), topic)); len(got) != 16*5 {
			t.Errorf("read %d distinct events, want %d", len(got), 16*5)
		}
	})

	t.Run("close flushes, then writes fail", closeTest(srv))
	t.Run("collector", collectorTest(srv))
	t.Run("ping", pingTest(srv))
}
