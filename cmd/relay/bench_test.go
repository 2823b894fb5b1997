package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relaykit/twilio-relay/relay"
	"github.com/relaykit/twilio-relay/relay/dedupe"
	"github.com/relaykit/twilio-relay/relay/filesink"
	"github.com/relaykit/twilio-relay/relay/kafka"
	"github.com/relaykit/twilio-relay/relay/loadgen"
	"github.com/relaykit/twilio-relay/relay/relaytest/kafkaserver"
	"github.com/relaykit/twilio-relay/relay/twilio"
	"github.com/relaykit/twilio-relay/relay/twilio/twiliotest"
)

// The per-event pipeline, stage by stage and together: verify (twilio-go), decode, dedupe (ristretto),
// route, encode (CloudEvents Kafka binary mode). No network.
//
//	go test -run '^$' -bench 'PerEvent' -benchmem ./cmd/relay/

func benchBody(b *testing.B) []byte {
	s, err := twilio.Samples()
	if err != nil {
		b.Fatal(err)
	}
	body, _ := json.Marshal([]json.RawMessage{s["message-delivered"]})
	return body
}

func BenchmarkPerEventVerify(b *testing.B) {
	body := benchBody(b)
	u, sig := twilio.Sign(token, publicURL, body)
	q := u[strings.IndexByte(u, '?')+1:]
	v := twilio.NewVerifier([]string{token})
	b.ReportAllocs()
	for b.Loop() {
		if err := v.Verify([]string{publicURL}, q, body, sig); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPerEventDecode(b *testing.B) {
	body := benchBody(b)
	b.ReportAllocs()
	for b.Loop() {
		if bt := twilio.Decode("events", body, time.Now(), twilio.DecodeOptions{}); len(bt.Events) != 1 {
			b.Fatal("decode")
		}
	}
}

func BenchmarkPerEventDedupe(b *testing.B) {
	c, _ := dedupe.New(dedupe.Config{Window: time.Hour, MaxIDs: 10_000_000}, nil)
	defer c.Close(context.Background())
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		i++
		k := relay.NewKey("events\x00/2010-04-01/Accounts/AC1/Messages/SM1.json\x00EZ" + fmt.Sprint(i))
		if !c.Seen(k) {
			c.Remember(k)
		}
	}
}

func benchRouter() *relay.Router {
	return &relay.Router{Routes: []relay.Route{
		{Name: "voice", Match: relay.Match{Types: []relay.Glob{"com.twilio.voice.*"}}, Targets: []relay.Target{{Sink: "k", Topic: relay.MustParseTemplate("voice")}}},
		{Name: "messaging", Match: relay.Match{Types: []relay.Glob{"com.twilio.messaging.message.*"}}, Targets: []relay.Target{{Sink: "k", Topic: relay.MustParseTemplate("twilio.{type}")}}},
	}}
}

func BenchmarkPerEventRoute(b *testing.B) {
	bt := twilio.Decode("events", benchBody(b), time.Now(), twilio.DecodeOptions{})
	r := benchRouter()
	b.ReportAllocs()
	for b.Loop() {
		ev := *bt.Events[0] // a copy each time, as each request routes its own event
		if ds, err := r.Route(&ev); err != nil || len(ds) != 1 {
			b.Fatal(err)
		}
	}
}

func BenchmarkPerEventEncode(b *testing.B) {
	bt := twilio.Decode("events", benchBody(b), time.Now(), twilio.DecodeOptions{})
	m := relay.Message{Event: bt.Events[0], Topic: "t", Key: []byte("SM1")}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := kafka.Encode(m, false); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPerEventStdlibValid is the yardstick: encoding/json's Valid over the same body, run beside the
// stages so that on a loaded machine their times can be read as ratios to it (docs/benchmarks.md).
func BenchmarkPerEventStdlibValid(b *testing.B) {
	body := benchBody(b)
	b.ReportAllocs()
	for b.Loop() {
		if !json.Valid(body) {
			b.Fatal("invalid")
		}
	}
}

// BenchmarkPerEventAll is one 1-event body through every stage.
func BenchmarkPerEventAll(b *testing.B) {
	body := benchBody(b)
	u, sig := twilio.Sign(token, publicURL, body)
	q := u[strings.IndexByte(u, '?')+1:]
	v := twilio.NewVerifier([]string{token})
	c, _ := dedupe.New(dedupe.Config{Window: time.Hour, MaxIDs: 10_000_000}, nil)
	defer c.Close(context.Background())
	r := benchRouter()
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		i++
		if err := v.Verify([]string{publicURL}, q, body, sig); err != nil {
			b.Fatal(err)
		}
		bt := twilio.Decode("events", body, time.Now(), twilio.DecodeOptions{})
		ev := bt.Events[0]
		ev.ID = fmt.Sprint("EZ", i) // every event new to the deduper
		key := ev.Key()             // once, as the pipeline does
		if c.Seen(key) {
			b.Fatal("seen")
		}
		ds, err := r.Route(ev)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := kafka.Encode(ds[0].Message, false); err != nil {
			b.Fatal(err)
		}
		c.Remember(key)
	}
}

// BenchmarkEndToEnd posts signed 1-event bodies with unique ids to the running relay, which writes them to
// a real Kafka broker with acks=all, and reports events/s and latency percentiles. The relay, the broker
// and the load share the machine.
//
//	RELAY_KAFKA_LIBS=$(scripts/kafka/fetch.sh) go test -run '^$' -bench EndToEnd -benchtime 20000x ./cmd/relay/
func BenchmarkEndToEnd(b *testing.B) {
	k := kafkaserver.Start(b, kafkaserver.LibsFromEnv(b))
	k.CreateTopic(b, "twilio.messaging", 6)
	k.CreateTopic(b, "twilio.other", 3)
	k.CreateTopic(b, "twilio.deadletter", 1)
	h := startRelay(b, k, map[string]string{"DEADLINE": "4s"})
	s, _ := twilio.Samples()
	var tmpl map[string]any
	_ = json.Unmarshal(s["message-delivered"], &tmpl)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}, Timeout: 10 * time.Second}
	sender := &twiliotest.Sender{URL: h.sender.URL, PublicURL: publicURL, Token: token, Client: client}
	var (
		seq       atomic.Int64
		mu        sync.Mutex
		latencies = make([]time.Duration, 0, b.N)
		failures  atomic.Int64
	)
	b.SetParallelism(32) // 64 concurrent requests on 2 cores
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		ev := map[string]any{}
		for k, v := range tmpl {
			ev[k] = v
		}
		local := make([]time.Duration, 0, 1024)
		for pb.Next() {
			n := seq.Add(1)
			ev["id"] = fmt.Sprintf("EZbench%026d", n)
			raw, _ := json.Marshal(ev)
			t0 := time.Now()
			resp, err := sender.Post(context.Background(), []json.RawMessage{raw})
			local = append(local, time.Since(t0))
			if err != nil || resp.Status != 200 {
				failures.Add(1)
			}
		}
		mu.Lock()
		latencies = append(latencies, local...)
		mu.Unlock()
	})
	elapsed := time.Since(start)
	b.StopTimer()
	slices.Sort(latencies)
	pct := func(p float64) float64 {
		return float64(latencies[min(len(latencies)-1, int(p*float64(len(latencies))))].Microseconds()) / 1000
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(failures.Load()), "failures")
	if failures.Load() > 0 {
		b.Errorf("%d of %d requests failed", failures.Load(), b.N)
	}
}

// TestGeneratorDuplicatesRecognised: the load generator's duplicates are Twilio's (byte-identical
// re-sends), so the relay recognises every one of them: at 1,500 events/s with 10 % duplicates into an
// instant sink (a file, not synced), each event (source + id) is written once and the relay counts as
// duplicates exactly the duplicates sent (issue #20: the generator used to reuse an id on another
// source, a different event, and the check counted ids).
func TestGeneratorDuplicatesRecognised(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.jsonl")
	h := startRelayWith(t, nil, `
listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:0 }
log: { level: warn }
endpoints:
  - { name: events, path: /twilio/events, public_url: `+publicURL+`, auth_tokens: [ "${TOKEN}" ] }
sinks:
  - { name: file, file: { path: "`+path+`", no_sync: true } }
routes:
  - { name: all, match: { types: [ "*" ] }, to: [ { sink: file, topic: events } ] }
dead_letter: { sink: file, topic: deadletter }
`, nil)
	res, err := loadgen.Run(t.Context(), loadgen.Config{URL: h.sender.URL, PublicURL: publicURL, Token: token,
		Rate: 1500, Duration: 4 * time.Second, Batch: 3, DupRatio: 0.1, Concurrency: 64, IDPrefix: "dup"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status2xx != res.Sent || res.Duplicates < res.Events/20 {
		t.Fatalf("%d of %d requests answered 2xx (first error %q), %d duplicates of %d events; want all, and about 10 %%",
			res.Status2xx, res.Sent, res.FirstError, res.Duplicates, res.Events)
	}
	records := map[loadgen.Key]int{}
	if err := filesink.Read(path, func(_ int, l filesink.Line) error {
		var ev loadgen.Key
		if err := json.Unmarshal(l.Event, &ev); err != nil || l.Topic != "events" {
			return fmt.Errorf("line %s of topic %s: %v", l.Event, l.Topic, err)
		}
		records[ev]++
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	extra, example := 0, ""
	for k, n := range records {
		if n > 1 {
			extra += n - 1
			example = fmt.Sprintf("%s ×%d", k, n)
		}
	}
	if want := int(res.Events - res.Duplicates); extra != 0 || len(records) != want {
		t.Errorf("%d events written, %d extra records (e.g. %s); want %d events once each", len(records), extra, example, want)
	}
	if got, _ := metricSum(t, "http://"+h.relay.AdminAddr, "relay_events_duplicate_total", true); got != float64(res.Duplicates) {
		t.Errorf("the relay counted %v duplicates, the generator sent %d", got, res.Duplicates)
	}
}
