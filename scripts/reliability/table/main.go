// Command table prints the ledger reports that the fault and bad-input scenarios saved (one JSON object a
// line, on stdin) as the Markdown table of docs/reliability.md, and exits 1 if any row lost an event, let
// a forged one through, or went over its duplicates target.
package main

import (
	"fmt"
	"os"

	"github.com/relaykit/twilio-relay/relay/relaytest/ledger"
)

func main() {
	reports, err := ledger.ReadReports(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "table:", err)
		os.Exit(2)
	}
	fmt.Print(ledger.Table(reports))
	bad := 0
	for _, r := range reports {
		for _, p := range r.Problems() {
			fmt.Fprintf(os.Stderr, "%s: %s\n", r.Scenario, p)
			bad++
		}
	}
	if bad > 0 {
		os.Exit(1)
	}
}
