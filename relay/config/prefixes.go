package config

import (
	"net/netip"

	"github.com/relaykit/twilio-relay/relay"
)

// Prefixes is a list of CIDR prefixes in configuration, parsed once, as it is decoded. Like a relay.List,
// an entry may hold several, comma-separated; a bare address is a one-address prefix. An entry that is
// neither is kept, for validation to report with its path next to every other problem.
type Prefixes []Prefix

// Prefix is one entry of Prefixes: a prefix, or the text of an entry that is not one.
type Prefix struct {
	prefix netip.Prefix
	text   string
}

// UnmarshalYAML decodes a sequence of strings, split as a relay.List is, into prefixes.
func (ps *Prefixes) UnmarshalYAML(unmarshal func(any) error) error {
	var entries relay.List
	if err := unmarshal(&entries); err != nil {
		return err
	}
	*ps = make(Prefixes, len(entries))
	for i, e := range entries {
		_ = (*ps)[i].UnmarshalText([]byte(e))
	}
	return nil
}

// UnmarshalText parses one prefix or address. It never fails: an entry that is neither is kept as text.
func (p *Prefix) UnmarshalText(b []byte) error {
	s := string(b)
	*p = Prefix{text: s}
	if pfx, err := netip.ParsePrefix(s); err == nil {
		p.prefix = pfx.Masked()
	} else if a, err := netip.ParseAddr(s); err == nil {
		p.prefix = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
	}
	return nil
}

// List returns the prefixes (of a validated configuration: every entry is one).
func (ps Prefixes) List() []netip.Prefix {
	var out []netip.Prefix
	for _, p := range ps {
		if p.prefix.IsValid() {
			out = append(out, p.prefix)
		}
	}
	return out
}

// invalid returns the first entry that is not a prefix.
func (ps Prefixes) invalid() (string, bool) {
	for _, p := range ps {
		if !p.prefix.IsValid() {
			return p.text, true
		}
	}
	return "", false
}
