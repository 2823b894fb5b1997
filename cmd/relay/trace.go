package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/relaykit/twilio-relay/relay/config"
	"github.com/relaykit/twilio-relay/relay/inspector"
)

const traceUsage = `usage: relay trace [-admin URL[,URL…]] [-config F] [-json] ID|SID

Asks each relay's admin listener (every replica: the event reached one of them) what became of the event
with that id (EZ…), or of the events about that resource SID (SM…, CA…), and prints one line per event and
delivery. Credentials for the admin listener come from RELAY_ADMIN_TOKEN, or RELAY_ADMIN_USERNAME and
RELAY_ADMIN_PASSWORD. Exit status 1 when no relay knows it.
`

// runTrace implements `relay trace`.
func runTrace(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("trace", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, traceUsage); fs.PrintDefaults() }
	path := configFlag(fs)
	admins := fs.String("admin", "", "admin listeners to ask, comma-separated (default: admin.listen of the configuration, or 127.0.0.1:9090)")
	asJSON := fs.Bool("json", false, "print the events as JSON")
	timeout := fs.Duration("timeout", 5*time.Second, "how long to wait for each relay")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 || fs.Arg(0) == "" {
		fs.Usage()
		return flag.ErrHelp
	}
	bases := adminURLs(*admins)
	if len(bases) == 0 {
		listen := ":9090"
		if cfg, err := config.Load(*path); err == nil {
			listen = cfg.Admin.Listen
		}
		bases = []string{adminBase(listen)}
	}
	events, errs := trace(ctx, &http.Client{Timeout: *timeout}, bases, fs.Arg(0))
	for _, err := range errs {
		fmt.Fprintln(stderr, "relay trace:", err)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(events); err != nil {
			return err
		}
	} else {
		printTrace(stdout, events)
	}
	if len(events) == 0 {
		return fmt.Errorf("no relay asked (%d of %d answered) holds event or SID %s", len(bases)-len(errs), len(bases), fs.Arg(0))
	}
	return nil
}

// trace asks every admin listener for the events with that id or resource SID, and returns them newest
// first, each with the address that answered, and the errors of those that did not answer.
func trace(ctx context.Context, c *http.Client, bases []string, idOrSID string) ([]inspector.Event, []error) {
	type answer struct {
		events []inspector.Event
		err    error
	}
	answers := make([]answer, len(bases))
	done := make(chan struct{}, len(bases))
	for i, base := range bases {
		go func() {
			defer func() { done <- struct{}{} }()
			var body struct{ Events []inspector.Event }
			err := adminGet(ctx, c, base, "/api/events?limit=1000&q="+url.QueryEscape(idOrSID), &body)
			for j := range body.Events {
				body.Events[j].Relay = strings.TrimPrefix(strings.TrimPrefix(base, "http://"), "https://")
			}
			answers[i] = answer{body.Events, err}
		}()
	}
	for range bases {
		<-done
	}
	var events []inspector.Event
	var errs []error
	for _, a := range answers {
		events = append(events, a.events...)
		if a.err != nil {
			errs = append(errs, a.err)
		}
	}
	slices.SortStableFunc(events, func(a, b inspector.Event) int { return b.ReceivedAt.Compare(a.ReceivedAt) })
	return events, errs
}

// printTrace prints one line per delivery of each event (one line for an event without deliveries).
func printTrace(w io.Writer, events []inspector.Event) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "RECEIVED\tRELAY\tENDPOINT\tEVENT\tTYPE\tOUTCOME\tSINK\tTOPIC\tWHERE\tATTEMPTS\tDETAIL")
	for _, e := range events {
		outcome := e.Outcome
		if e.Reason != "" {
			outcome += " (" + e.Reason + ")"
		}
		if e.Late {
			outcome += " late"
		}
		head := fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s", e.ReceivedAt.Format(time.RFC3339Nano), e.Relay, e.Endpoint, e.ID, e.Type, outcome)
		if len(e.Sinks) == 0 {
			where := ""
			if e.DeadLetter != nil {
				where = "dead letter at " + e.DeadLetter.Text
			}
			fmt.Fprintf(tw, "%s\t-\t-\t%s\t-\t%s\n", head, where, e.Detail)
		}
		for _, d := range e.Sinks {
			where := "-"
			switch {
			case d.At != nil:
				where = d.At.Text
			case d.Spooled:
				where = "in the spool"
			}
			detail := d.Error
			if detail == "" {
				detail = e.Detail
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", head, d.Sink, d.Topic, where, d.Attempts, detail)
		}
	}
	tw.Flush()
}
