package ledger

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
)

// ReadReports reads the reports saved one a line (Save's format).
func ReadReports(r io.Reader) ([]Report, error) {
	var out []Report
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var rep Report
		if err := json.Unmarshal(sc.Bytes(), &rep); err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		out = append(out, rep)
	}
	return out, sc.Err()
}

// Table renders reports as the Markdown table of docs/reliability.md.
func Table(reports []Report) string {
	var b strings.Builder
	b.WriteString("| scenario | events sent | answered 200 | present | lost | quarantined | duplicated (of which after a refused answer) | duplicates target | forged sent | forged or unknown present | answers (per request) | note |\n")
	b.WriteString("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|---|\n")
	for _, r := range reports {
		fmt.Fprintf(&b, "| %s | %d | %d | %d | **%d** | %d | %d (%d) | %s | %d | %d | %s | %s |\n", r.Scenario, r.Sent, r.Answered,
			r.Present, r.Lost, r.Quarantined, r.Duplicated, r.DupRefused, r.Target(), r.Forged, r.Unexpected, statuses(r.Statuses), r.Note)
	}
	return b.String()
}

// statuses lists answers by status, 200 first, then in order: "200×1201, 503×797, no answer×3".
func statuses(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	// Status codes sort as strings; "transport" sorts after every number.
	slices.Sort(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		name := k
		if k == "transport" {
			name = "no answer"
		}
		parts = append(parts, fmt.Sprintf("%s×%d", name, m[k]))
	}
	return strings.Join(parts, ", ")
}
