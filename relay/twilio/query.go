package twilio

import (
	"maps"
	"net/url"
	"strings"
)

// maxQueryParams is net/url's default limit on the parameters of a query (GODEBUG urlmaxqueryparams):
// past it url.ParseQuery returns no values at all, so twilio-go finds no bodySHA256. The fast scan below
// follows the default; a process started with another GODEBUG value should not expect agreement beyond it.
const maxQueryParams = 10000

// bodySHA256 returns the bodySHA256 value of rawQuery as twilio-go's ValidateBody reads it from the URL
// public + "?" + rawQuery: url.Parse cuts the URL at the first '#', and url.Values.Get gives the first
// value of the first parameter whose unescaped name is bodySHA256, skipping the parameters that
// url.ParseQuery refuses (a ';', a bad %-escape) instead of giving up on the query. "" when there is none.
//
// Queries whose bodySHA256 needs no unescaping (Twilio's own: it appends bodySHA256=<hex>) are read in
// place; the others through url.ParseQuery itself.
func bodySHA256(rawQuery string) string {
	q, _, _ := strings.Cut(rawQuery, "#")
	if strings.Count(q, "&")+1 > maxQueryParams {
		return ""
	}
	for rest := q; rest != ""; {
		var pair string
		pair, rest, _ = strings.Cut(rest, "&")
		if pair == "" || strings.Contains(pair, ";") {
			continue // url.ParseQuery skips it
		}
		key, value, _ := strings.Cut(pair, "=")
		if strings.ContainsAny(key, "%+") {
			return bodySHA256Parsed(q) // the name may unescape to bodySHA256
		}
		if key != "bodySHA256" {
			continue // a bad escape in its value only makes url.ParseQuery skip it
		}
		if strings.ContainsAny(value, "%+") {
			return bodySHA256Parsed(q)
		}
		return value
	}
	return ""
}

func bodySHA256Parsed(q string) string {
	values, _ := url.ParseQuery(q) // the values it could parse: what url.URL.Query gives twilio-go
	return values.Get("bodySHA256")
}

// maxParsedURLs bounds the memory of which public URLs parse: a relay has a handful.
const maxParsedURLs = 64

// parses reports whether url.Parse accepts publicURL + "?" + rawQuery, which twilio-go's ValidateBody
// requires. For a query without control characters or '#', that is whether publicURL alone parses (url.Parse
// finds no other error in a query), which is remembered per public URL; other queries are parsed whole.
func (v *Verifier) parses(publicURL, rawQuery string) bool {
	if strings.ContainsFunc(rawQuery, func(r rune) bool { return r < 0x20 || r == 0x7f || r == '#' }) {
		_, err := url.Parse(publicURL + "?" + rawQuery)
		return err == nil
	}
	known := v.parsed.Load()
	if known != nil {
		if ok, seen := (*known)[publicURL]; seen {
			return ok
		}
	}
	_, err := url.Parse(publicURL)
	if known == nil || len(*known) < maxParsedURLs {
		next := map[string]bool{publicURL: err == nil}
		if known != nil {
			maps.Copy(next, *known)
		}
		v.parsed.CompareAndSwap(known, &next) // a lost race only costs another parse later
	}
	return err == nil
}
