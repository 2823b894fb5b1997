package relay

import "strings"

// SplitList splits comma-separated entries of a list, trims them and drops blanks: one environment
// variable can carry a whole list ("kafka-1:9092,kafka-2:9092").
func SplitList(in []string) []string {
	var out []string
	for _, s := range in {
		for _, p := range strings.Split(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}
