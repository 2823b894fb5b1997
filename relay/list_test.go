package relay_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/relaykit/twilio-relay/relay"
)

func TestParseList(t *testing.T) {
	tests := []struct {
		in   []string
		want relay.List
	}{
		{nil, nil},
		{[]string{""}, nil},
		{[]string{"a"}, relay.List{"a"}},
		{[]string{"a,b", "c"}, relay.List{"a", "b", "c"}},
		{[]string{" a , ,b ", ",", "  "}, relay.List{"a", "b"}},
		{[]string{"kafka-1:9092,kafka-2:9092"}, relay.List{"kafka-1:9092", "kafka-2:9092"}},
	}
	for _, tt := range tests {
		if got := relay.ParseList(tt.in...); !slices.Equal(got, tt.want) {
			t.Errorf("ParseList(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestListUnmarshalYAML decodes with a stand-in for the YAML decoder; package config decodes real files.
func TestListUnmarshalYAML(t *testing.T) {
	var l relay.List
	err := l.UnmarshalYAML(func(v any) error { *v.(*[]string) = []string{"a, b", "", "c"}; return nil })
	if err != nil || !slices.Equal(l, relay.List{"a", "b", "c"}) {
		t.Fatalf("got %q, %v", l, err)
	}
	bad := errors.New("not a sequence")
	if err := l.UnmarshalYAML(func(any) error { return bad }); !errors.Is(err, bad) {
		t.Fatalf("decoder error lost: %v", err)
	}
}
