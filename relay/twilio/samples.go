package twilio

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"path"
	"slices"
	"strings"
)

// This file holds examples of what Twilio sends: realistic events of the main types, and classic
// form-encoded callbacks. The tests decode them, and `relay send` posts them.

//go:embed samples/*.json
var samples embed.FS

// Samples returns the built-in sample events by name (the file name without .json): realistic payloads
// of the main event types, including data as a JSON-encoded string and a sink test event.
func Samples() (map[string]json.RawMessage, error) {
	return readSamples(samples, "samples", func(b []byte) (json.RawMessage, error) { return b, nil })
}

// SampleNames lists the built-in samples, sorted.
func SampleNames() []string {
	s, _ := Samples()
	return slices.Sorted(maps.Keys(s))
}

//go:embed samples/classic/*.form
var classicSamples embed.FS

// ClassicSamples returns the built-in classic callbacks by name (the file name without .form): a
// messaging status callback (delivered, undelivered), an incoming message, a voice status callback and
// a Debugger alert, each a form-encoded body.
func ClassicSamples() (map[string]url.Values, error) {
	return readSamples(classicSamples, "samples/classic", func(b []byte) (url.Values, error) { return ParseForm(bytes.TrimSpace(b)) })
}

// ClassicSampleNames lists the built-in classic callbacks, sorted.
func ClassicSampleNames() []string {
	s, _ := ClassicSamples()
	return slices.Sorted(maps.Keys(s))
}

// readSamples reads the files of dir by name (the file name without its extension), each through parse.
func readSamples[V any](fsys embed.FS, dir string, parse func([]byte) (V, error)) (map[string]V, error) {
	entries, err := fsys.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	out := make(map[string]V, len(entries))
	for _, e := range entries {
		b, err := fsys.ReadFile(dir + "/" + e.Name())
		if err != nil {
			return nil, err
		}
		v, err := parse(b)
		if err != nil {
			return nil, fmt.Errorf("sample %s: %w", e.Name(), err)
		}
		out[strings.TrimSuffix(e.Name(), path.Ext(e.Name()))] = v
	}
	return out, nil
}
