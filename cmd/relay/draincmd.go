package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// runDrain implements `relay drain`: POST /drain on a running relay's admin listener, the preStop hook of
// a pod (the image has no shell, so the hook runs the relay's own binary). It waits for the answer and
// fails unless the relay answers 200 "drained".
func runDrain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("drain", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("admin", "", "the admin listener: host:port or URL (default: $RELAY_ADMIN_LISTEN, else :9090, on this machine)")
	delay := fs.Duration("delay", 0, "keep serving this long after readiness fails, before intake stops")
	timeout := fs.Duration("timeout", 30*time.Second, "then wait at most this long for the spool to empty into the sinks")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 || *delay < 0 || *timeout < 0 {
		return fmt.Errorf("usage: relay drain [-admin ADDR] [-delay D] [-timeout T]")
	}
	base := adminURL(cmp.Or(*addr, os.Getenv("RELAY_ADMIN_LISTEN"), ":9090"))
	q := url.Values{"delay": {delay.String()}, "timeout": {timeout.String()}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(base, "/")+"/drain?"+q.Encode(), nil)
	if err != nil {
		return fmt.Errorf("drain: %w", err)
	}
	setAdminCredentials(req) // the relay's own environment, in the chart's preStop hook
	// The relay answers after delay, the end of the requests in flight (shutdown_timeout at most) and the
	// spool's wait: allow for all three.
	client := &http.Client{Timeout: *delay + *timeout + time.Minute}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("drain: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	fmt.Fprintf(stdout, "%s %s", resp.Status, body)
	if resp.StatusCode != http.StatusOK {
		return errors.New("drain: not drained: " + resp.Status)
	}
	return nil
}
