package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/relaykit/twilio-relay/relay/loadgen"
)

// runBench is `relay bench`: an open-loop (or, with -closed, closed-loop) load generator (relay/loadgen)
// with a JSON result.
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c loadgen.Config
	fs.StringVar(&c.URL, "url", "http://127.0.0.1:8080/twilio/events", "where to POST")
	fs.StringVar(&c.PublicURL, "public-url", "", "the URL to sign instead of -url (the relay endpoint's public_url)")
	fs.StringVar(&c.Token, "token", os.Getenv("TWILIO_AUTH_TOKEN"), "auth token to sign with (env TWILIO_AUTH_TOKEN); empty: unsigned POSTs")
	fs.Float64Var(&c.Rate, "rate", 1000, "offered events per second (open loop)")
	fs.BoolVar(&c.Closed, "closed", false, "closed loop: -concurrency requests back to back for -duration, instead of -rate")
	fs.DurationVar(&c.Duration, "duration", 15*time.Second, "how long to offer load")
	fs.IntVar(&c.Batch, "batch", 1, "events per POST")
	fs.Float64Var(&c.DupRatio, "dup-ratio", 0, "share of events that are duplicates of one sent before [0,1)")
	fs.StringVar(&c.DupMode, "dup-mode", loadgen.DupResend, "what a duplicate is: "+loadgen.DupResend+
		" (Twilio's: the same event re-sent byte for byte, in a body with others) or "+loadgen.DupReusedID+
		" (not Twilio's: an earlier id on another sample's source and type, a different event to the relay)")
	fs.IntVar(&c.Concurrency, "concurrency", 512, "cap on requests in flight; a request due at the cap is counted late (with -closed: requests always in flight)")
	fs.DurationVar(&c.Timeout, "timeout", 10*time.Second, "per request")
	fs.StringVar(&c.IDPrefix, "id-prefix", "", "prefix of the event ids (default: from the start time)")
	out := fs.String("out", "", "write the JSON result to this file")
	brokers := fs.String("verify-kafka", "", "afterwards, check every event answered 2xx is in -topic on this broker")
	topic := fs.String("topic", "", "the topic for -verify-kafka")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *brokers != "" && *topic == "" {
		return fmt.Errorf("-verify-kafka needs -topic")
	}
	res, err := loadgen.Run(ctx, c)
	if err != nil {
		return err
	}
	if *brokers != "" {
		if res.Verify, err = loadgen.VerifyKafka(ctx, *brokers, *topic, res.Accepted); err != nil {
			return fmt.Errorf("verify: %w", err)
		}
	}
	b, _ := json.MarshalIndent(res, "", "  ")
	if *out != "" {
		if err := os.WriteFile(*out, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	l := res.Latency
	offered := fmt.Sprintf("offered %.0f/s", res.OfferedRate)
	if res.Closed {
		offered = fmt.Sprintf("closed loop, %d in flight,", res.Concurrency)
	}
	fmt.Fprintf(stdout, "%s achieved %.0f/s  requests %d (late %d)  2xx %d 429 %d 5xx %d other %d transport %d  p50 %.2fms p90 %.2fms p99 %.2fms p99.9 %.2fms max %.2fms\n",
		offered, res.AchievedRate, res.Sent, res.Late, res.Status2xx, res.Status429, res.Status5xx, res.StatusElse, res.Transport,
		l.P50, l.P90, l.P99, l.P999, l.Max)
	if res.Duplicates > 0 {
		fmt.Fprintf(stdout, "events %d, of which duplicates (%s) %d\n", res.Events, res.DupMode, res.Duplicates)
	}
	if v := res.Verify; v != nil {
		fmt.Fprintf(stdout, "kafka %s: %d records, %d accepted events (source + id), %d missing, %d extra in %d keys\n",
			v.Topic, v.Records, v.Accepted, v.Missing, v.Extra, v.DuplicateKeys)
		if v.ExampleDuplicate != "" {
			fmt.Fprintf(stdout, "  e.g. %s\n", v.ExampleDuplicate)
		}
		if !v.OK {
			return fmt.Errorf("%d events answered 2xx are not in %s (e.g. %s)", v.Missing, v.Topic, v.Example)
		}
	}
	if res.FirstError != "" {
		fmt.Fprintf(stdout, "first error: %s\n", res.FirstError)
	}
	return nil
}
