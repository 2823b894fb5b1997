package relay

import "strings"

// List is a list of strings in configuration whose entries may each hold several, comma-separated, so
// that one environment variable can carry a whole list ("kafka-1:9092,kafka-2:9092"). Decoding splits
// the entries, trims them and drops blanks: whoever reads a List reads it normalised.
type List []string

// ParseList splits comma-separated entries, trims them and drops blanks. ParseList(flagValue) reads a
// comma-separated command-line flag.
func ParseList(entries ...string) List {
	var out List
	for _, s := range entries {
		for p := range strings.SplitSeq(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

// UnmarshalYAML decodes a YAML sequence of strings and splits its entries (see ParseList). It has the
// form go.yaml.in/yaml accepts from types that do not import it.
func (l *List) UnmarshalYAML(unmarshal func(any) error) error {
	var entries []string
	if err := unmarshal(&entries); err != nil {
		return err
	}
	*l = ParseList(entries...)
	return nil
}
