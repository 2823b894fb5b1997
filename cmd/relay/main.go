// Command relay receives Twilio Event Streams webhook-sink requests, verifies, deduplicates and routes
// their CloudEvents, and delivers them to Kafka. See README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/relaykit/twilio-relay/relay/config"
)

// version is set at build time: -ldflags "-X main.version=v1.2.3".
var version = "dev"

const usage = `relay: Twilio Event Streams to Kafka.

Usage:
  relay serve   [-config config.yaml]   run the relay
  relay check   [-config config.yaml] [-connect [-allow-unreachable]]
                                        validate a configuration; exit 1 listing every problem; with
                                        -connect, also check every sink's connection and topics
  relay send    -url URL -token TOKEN [-file events.json | -sample NAME] [flags]
                                        sign events like Twilio and POST them (relay send -h)
  relay dev                             the relay with an in-memory Kafka, for a first look (not durable)
  relay twilio  apply|test|types [-config F] [flags]
                                        Twilio's side as code: sink, subscriptions, self-test (relay twilio -h)
  relay spool   [-config F] [-dir D]      what the durable spool holds (the relay must be stopped)
  relay drain   [-admin ADDR] [-delay D] [-timeout T]
                                        stop a running relay's intake and empty its spool (a preStop hook)
  relay dlq replay [-config F] [-file F] [-reason R] [-endpoint E] [-dry-run]
                                        send dead letters through the routes again, after a fix
  relay trace   [-admin URL[,URL…]] ID|SID
                                        what became of an event, asked of every replica's admin listener
  relay bench   -url URL [-token T] [-rate R | -closed] [flags]
                                        load at a fixed rate, or closed loop at a fixed concurrency; latency percentiles (relay bench -h)
  relay version                         print the version
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "relay:", err)
		}
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return flag.ErrHelp
	}
	switch args[0] {
	case "serve":
		return runServe(ctx, args[1:], stderr)
	case "check":
		return runCheck(ctx, args[1:], stdout, stderr)
	case "send":
		return runSend(ctx, args[1:], stdout, stderr)
	case "dev":
		return runDev(ctx, args[1:], stdout, stderr)
	case "twilio":
		return runTwilio(ctx, args[1:], stdout, stderr)
	case "spool":
		return runSpool(args[1:], stdout, stderr)
	case "dlq":
		return runDLQ(ctx, args[1:], stdout, stderr)
	case "drain":
		return runDrain(ctx, args[1:], stdout, stderr)
	case "trace":
		return runTrace(ctx, args[1:], stdout, stderr)
	case "bench":
		return runBench(ctx, args[1:], stdout, stderr)
	case "version", "-version", "--version":
		fmt.Fprintln(stdout, "relay", version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}

func configFlag(fs *flag.FlagSet) *string {
	def := "config.yaml"
	if v := os.Getenv("RELAY_CONFIG"); v != "" {
		def = v
	}
	return fs.String("config", def, "configuration file (env RELAY_CONFIG)")
}

func runCheck(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := configFlag(fs)
	connect := fs.Bool("connect", false, "also connect to every sink, as serve would, and check each topic the configuration names: "+
		"one line per check (✓, ✗ with the fix, ? when it cannot tell); exit 1 on any ✗")
	allowUnreachable := fs.Bool("allow-unreachable", false, "with -connect: a destination that does not answer is reported but does not fail "+
		"the check (for an init step: readiness waits for it, a sink that spools takes events meanwhile)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return fmt.Errorf("%s: %w", *path, err)
	}
	fmt.Fprintf(stdout, "%s: ok (%d endpoints, %d sinks, %d routes)\n", *path, len(cfg.Endpoints), len(cfg.Sinks), len(cfg.Routes))
	if !*connect {
		return nil
	}
	return checkConnect(ctx, cfg, newLogger(cfg.Log, stderr), stdout, *allowUnreachable)
}

func runServe(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := configFlag(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return fmt.Errorf("%s: %w", *path, err)
	}
	return serve(ctx, cfg, newLogger(cfg.Log, stderr), nil)
}

// serve runs the relay until ctx ends, then shuts it down within the configured timeout. ready, when
// set, is called with the relay once it listens.
func serve(ctx context.Context, cfg *config.Config, log *slog.Logger, ready func(*Relay)) error {
	r, err := NewRelay(cfg, log)
	if err != nil {
		return err
	}
	if err := r.Open(); err != nil {
		cctx, cancel := context.WithTimeout(context.Background(), time.Duration(cfg.Limits.ShutdownTimeout))
		defer cancel()
		return errors.Join(err, r.Close(cctx))
	}
	if ready != nil {
		ready(r)
	}
	var served error
	select {
	case <-ctx.Done():
	case served = <-r.Served():
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), time.Duration(cfg.Limits.ShutdownTimeout))
	defer cancel()
	return errors.Join(served, r.Close(sctx))
}

func newLogger(c config.Log, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level)) // validated by config
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}
