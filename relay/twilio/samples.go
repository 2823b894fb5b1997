package twilio

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
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
	entries, err := samples.ReadDir("samples")
	if err != nil {
		return nil, err
	}
	out := make(map[string]json.RawMessage, len(entries))
	for _, e := range entries {
		b, err := samples.ReadFile("samples/" + e.Name())
		if err != nil {
			return nil, err
		}
		out[strings.TrimSuffix(e.Name(), path.Ext(e.Name()))] = b
	}
	return out, nil
}

// SampleNames lists the built-in samples, sorted.
func SampleNames() []string {
	s, _ := Samples()
	names := make([]string, 0, len(s))
	for n := range s {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

//go:embed samples/classic/*.form
var classicSamples embed.FS

// ClassicSamples returns the built-in classic callbacks by name (the file name without .form): a
// messaging status callback (delivered, undelivered), an incoming message, a voice status callback and
// a Debugger alert, each a form-encoded body.
func ClassicSamples() (map[string]url.Values, error) {
	entries, err := classicSamples.ReadDir("samples/classic")
	if err != nil {
		return nil, err
	}
	out := make(map[string]url.Values, len(entries))
	for _, e := range entries {
		b, err := classicSamples.ReadFile("samples/classic/" + e.Name())
		if err != nil {
			return nil, err
		}
		params, err := ParseForm(bytes.TrimSpace(b))
		if err != nil {
			return nil, fmt.Errorf("sample %s: %w", e.Name(), err)
		}
		out[strings.TrimSuffix(e.Name(), path.Ext(e.Name()))] = params
	}
	return out, nil
}

// ClassicSampleNames lists the built-in classic callbacks, sorted.
func ClassicSampleNames() []string {
	s, _ := ClassicSamples()
	names := make([]string, 0, len(s))
	for n := range s {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}
