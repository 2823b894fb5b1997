package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/relaykit/twilio-relay/relay/config"
	"github.com/relaykit/twilio-relay/relay/spool"
)

// runSpool prints what a spool holds. A running relay holds its spool open; then its admin listener's
// /spool answers instead.
func runSpool(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("spool", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := configFlag(fs)
	dir := fs.String("dir", "", "spool directory (default: spool.dir of the configuration)")
	samples := fs.Int("samples", 5, "oldest messages to list per sink")
	if err := fs.Parse(args); err != nil {
		return err
	}
	admin := ""
	if *dir == "" {
		cfg, err := config.Load(*path)
		if err != nil {
			return fmt.Errorf("%s: %w", *path, err)
		}
		if cfg.Spool.Dir == "" {
			return fmt.Errorf("%s: no spool.dir: this relay does not spool", *path)
		}
		*dir, admin = cfg.Spool.Dir, cfg.Admin.Listen
	}
	r, err := spool.Inspect(*dir, *samples)
	if errors.Is(err, spool.ErrInUse) && admin != "" {
		return fmt.Errorf("%w (curl http://%s/spool)", err, admin)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: %d damaged entries set aside\n", r.File, r.Corrupt)
	for _, st := range r.Sinks {
		age := "-"
		if !st.Oldest.IsZero() {
			age = time.Since(st.Oldest).Round(time.Second).String()
		}
		fmt.Fprintf(stdout, "sink %s: %d waiting, %d bytes, oldest %s ago\n", st.Sink, st.Depth, st.Bytes, age)
		for _, s := range r.Samples[st.Sink] {
			if s.Err != "" {
				fmt.Fprintf(stdout, "  %s  %d bytes  damaged: %s\n", s.Stored.UTC().Format(time.RFC3339), s.Bytes, s.Err)
				continue
			}
			fmt.Fprintf(stdout, "  %s  %s  %s -> %s\n", s.Stored.UTC().Format(time.RFC3339), s.ID, s.Type, s.Topic)
		}
	}
	return nil
}
