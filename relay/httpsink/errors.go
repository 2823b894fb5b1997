package httpsink

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/relaykit/twilio-relay/relay"
)

// StatusError is an answer other than 2xx.
type StatusError struct {
	URL    string
	Status int
	// RetryAfter is what the Retry-After header asked for (seconds or an HTTP date), 0 when absent.
	// The pipeline does not yet honour per-error delays: it retries with its own backoff.
	RetryAfter time.Duration
	// Body is the start of the response body, for the log.
	Body string
}

func (e *StatusError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "POST %s: status %d %s", e.URL, e.Status, http.StatusText(e.Status))
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, " (retry after %v)", e.RetryAfter)
	}
	if e.Body != "" {
		fmt.Fprintf(&b, ": %q", e.Body)
	}
	return b.String()
}

// Temporary reports whether a later attempt may succeed: 408, 429, 5xx and 3xx (redirects are not
// followed: the URL is wrong, not the message, which is a configuration fix away from delivery).
func (e *StatusError) Temporary() bool {
	switch {
	case e.Status == http.StatusRequestTimeout, e.Status == http.StatusTooManyRequests:
		return true
	case e.Status >= 500, e.Status >= 300 && e.Status < 400:
		return true
	}
	return false
}

// classify marks what no retry can mend as permanent: a 4xx other than 408 and 429. Everything else
// (connection refused or reset, TLS failure, timeout, 5xx, 429, 3xx) is transient.
func classify(err error) error {
	var se *StatusError
	if errors.As(err, &se) && !se.Temporary() {
		return relay.Permanent(err)
	}
	return err
}

// parseRetryAfter reads a Retry-After header: delay seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
		if s < 0 {
			return 0
		}
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
