package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/relaykit/twilio-relay/relay"
	"github.com/relaykit/twilio-relay/relay/config"
	"github.com/relaykit/twilio-relay/relay/filesink"
	"github.com/relaykit/twilio-relay/relay/kafka"
	"github.com/relaykit/twilio-relay/relay/twilio"
)

// deadLetter is a dead-letter record as read back: what it holds and why it is there, and its line in a
// file sink's file (0 for Kafka).
type deadLetter struct {
	Endpoint, Reason, OriginalID string
	Raw                          []byte
	Line                         int
}

// runDLQ implements `relay dlq replay`: it reads the dead-letter destination (or a file sink's file) and
// sends each record's original bytes through decoding, dedupe, the routes and the sinks again, as if
// they had just arrived on their endpoint (they were verified when they first arrived).
func runDLQ(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "replay" {
		return fmt.Errorf("usage: relay dlq replay [-config F] [-file F] [-reason R,…] [-endpoint E] [-dry-run]")
	}
	fs := flag.NewFlagSet("dlq replay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := configFlag(fs)
	file := fs.String("file", "", "read this file sink's file instead of the configured dead-letter destination")
	reasons := fs.String("reason", "", "replay only these reasons (comma-separated: malformed_body, invalid_event, duplicate_key, no_route, route_error, sink_rejected)")
	endpoint := fs.String("endpoint", "", "replay only dead letters of this endpoint")
	dry := fs.Bool("dry-run", false, "list what would be replayed, send nothing")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return fmt.Errorf("%s: %w", *path, err)
	}
	dls, err := selectDeadLetters(ctx, cfg, *file, *reasons, *endpoint)
	if err != nil {
		return err
	}
	if *dry {
		for _, d := range dls {
			fmt.Fprintf(stdout, "%s\t%s\t%s\t%d bytes\n", d.Endpoint, d.Reason, d.OriginalID, len(d.Raw))
		}
		fmt.Fprintf(stdout, "%d dead letters would be replayed\n", len(dls))
		return nil
	}
	return replay(ctx, cfg, dls, stdout, stderr)
}

// selectDeadLetters reads the dead letters of the dead-letter destination (or of file) whose reason is
// one of reasons (comma-separated; any when empty) and whose endpoint is endpoint (any when empty).
func selectDeadLetters(ctx context.Context, cfg *config.Config, file, reasons, endpoint string) ([]deadLetter, error) {
	want := relay.ParseList(reasons)
	var dls []deadLetter
	keep := func(d deadLetter, ok bool) {
		if ok && (len(want) == 0 || slices.Contains(want, d.Reason)) && (endpoint == "" || d.Endpoint == endpoint) {
			dls = append(dls, d)
		}
	}
	return dls, readDeadLetters(ctx, cfg, file, keep)
}

// readDeadLetters reads every record of the dead-letter destination, or of file.
func readDeadLetters(ctx context.Context, cfg *config.Config, file string, keep func(deadLetter, bool)) error {
	if file == "" {
		for _, s := range cfg.Sinks {
			switch {
			case s.Name != cfg.DeadLetter.Sink:
			case s.File != nil:
				file = s.File.Path
			case s.Kafka != nil:
				return kafka.ReadTopic(ctx, *s.Kafka, cfg.DeadLetter.Topic, func(r kafka.Record) error {
					keep(fromKafka(r))
					return nil
				})
			}
		}
	}
	if file == "" {
		return errors.New("the dead-letter sink is neither Kafka nor a file: give -file")
	}
	return filesink.Read(file, func(n int, l filesink.Line) error {
		d, ok := fromCloudEvent(l.Event)
		d.Line = n
		keep(d, ok)
		return nil
	})
}

func fromKafka(r kafka.Record) (deadLetter, bool) {
	if r.Header("content-type") == "application/cloudevents+json" {
		return fromCloudEvent(r.Value)
	}
	return deadLetter{Endpoint: r.Header("ce_endpoint"), Reason: r.Header("ce_deadletterreason"), OriginalID: r.Header("ce_originalid"), Raw: r.Value},
		r.Header("ce_type") == relay.DeadLetterType
}

func fromCloudEvent(b []byte) (deadLetter, bool) {
	var ce struct {
		Type       string          `json:"type"`
		Endpoint   string          `json:"endpoint"`
		Reason     string          `json:"deadletterreason"`
		OriginalID string          `json:"originalid"`
		Data       json.RawMessage `json:"data"`
		DataBase64 string          `json:"data_base64"`
	}
	if json.Unmarshal(b, &ce) != nil || ce.Type != relay.DeadLetterType {
		return deadLetter{}, false
	}
	raw := []byte(ce.Data)
	if ce.DataBase64 != "" {
		var err error
		if raw, err = base64.StdEncoding.DecodeString(ce.DataBase64); err != nil {
			return deadLetter{}, false
		}
	}
	return deadLetter{Endpoint: ce.Endpoint, Reason: ce.Reason, OriginalID: ce.OriginalID, Raw: raw}, true
}

// replay sends the dead letters through the routes of a relay built from cfg, without listeners and
// without the spool or the dedupe snapshot (a running relay may hold them).
func replay(ctx context.Context, cfg *config.Config, dls []deadLetter, stdout, stderr io.Writer) (err error) {
	c := *cfg
	c.Spool.Sinks = nil
	c.Dedupe.Snapshot = ""
	r, err := NewRelay(&c, newLogger(c.Log, stderr))
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		err = errors.Join(err, r.Close(cctx))
	}()
	summary, err := replayThrough(ctx, &c, r.sinks, r.metrics, r.log, dls)
	fmt.Fprintln(stdout, summary)
	return err
}

// replayThrough sends dead letters through cfg's routes to sinks again, as if they had just arrived on
// their endpoint (they were verified when they first arrived), and says what became of them. It is
// `relay dlq replay`, and the replay of the inspector's page over the running relay's sinks.
//
// The pipeline is its own: a dedupe memory of its own and no shared tier or spool. A replay re-sends on
// purpose, and the relay remembered these events as safe when it dead-lettered them: its memory would
// call them duplicates.
func replayThrough(ctx context.Context, cfg *config.Config, sinks map[string]relay.Sink, obs relay.Observer, log *slog.Logger, dls []deadLetter) (string, error) {
	p, err := relay.NewPipeline(relay.PipelineConfig{
		Router:     cfg.Router(),
		Sinks:      sinks,
		DeadLetter: relay.DeadLetterTarget{Sink: cfg.DeadLetter.Sink, Topic: cfg.DeadLetter.Topic},
		NoRoute:    cfg.NoRoutePolicy(),
		Dedupe:     &replayed{},
		Backoff:    cfg.Backoff(),
		Observer:   obs,
		Logger:     log,
	})
	if err != nil {
		return "", err
	}
	opts := map[string]twilio.DecodeOptions{}
	for _, e := range cfg.Endpoints {
		opts[e.Name] = twilio.DecodeOptions{KeepDataString: e.Data == "keep"}
	}
	var total relay.Outcome
	failed := 0
	for _, d := range dls {
		o, ok := opts[d.Endpoint]
		if !ok {
			failed++
			log.LogAttrs(ctx, slog.LevelError, "replay: endpoint not in the configuration", slog.String("original_id", d.OriginalID), slog.String("endpoint", d.Endpoint))
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		out, err := p.Process(pctx, twilio.Decode(d.Endpoint, d.Raw, time.Now(), o))
		cancel()
		if err != nil {
			failed++
			log.LogAttrs(ctx, slog.LevelError, "replay failed", slog.String("original_id", d.OriginalID), slog.Any("error", err))
			continue
		}
		total.Delivered += out.Delivered
		total.Duplicates += out.Duplicates
		total.DeadLettered += out.DeadLettered
		total.Dropped += out.Dropped
	}
	summary := fmt.Sprintf("replayed %d dead letters: %d events delivered, %d dead-lettered again, %d dropped, %d duplicates, %d failed",
		len(dls), total.Delivered, total.DeadLettered, total.Dropped, total.Duplicates, failed)
	if failed > 0 {
		return summary, fmt.Errorf("%d dead letters could not be replayed (see the log)", failed)
	}
	return summary, nil
}

// replayed is the dedupe memory of one replay: exact, and as large as the replay.
type replayed struct {
	mu   sync.Mutex
	keys map[string]bool
}

func (d *replayed) Seen(key relay.Key) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.keys[key.Text]
}

func (d *replayed) Remember(key relay.Key) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.keys == nil {
		d.keys = map[string]bool{}
	}
	d.keys[key.Text] = true
	return true
}
