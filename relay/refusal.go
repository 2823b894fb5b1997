package relay

import "time"

// Refusal is a request the HTTP edge refused before reading its events (its signature or credentials did
// not verify, its source is not allowed, its body is too large). It never holds the signature, a token
// or the body.
type Refusal struct {
	At       time.Time
	Endpoint string
	Reason   string // the error's reason: bad_signature, basic_auth, body_too_large …
	// URL is the endpoint's public URL, the one its signatures are checked against, with "?bodySHA256=…"
	// when the request's query had that parameter (BodySHA256). The rest of the query is whoever was
	// refused's to choose, and is not kept.
	URL        string
	BodySHA256 bool
	// Remote is the client's address (behind a trusted proxy, the one its header names).
	Remote string
	// BodyBytes is the body's length, as read or as announced by Content-Length when it was not read.
	BodyBytes int
}
