package relay

import (
	"errors"
	"fmt"
	"time"
)

// Error codes. The HTTP edge maps each code to a status in one table (see docs/responses.md).
const (
	EINVALID      = "invalid"      // the request cannot be accepted as sent and never will be
	EUNAUTHORIZED = "unauthorized" // the request is not proven to come from Twilio
	ETOOLARGE     = "too_large"    // the body is over the endpoint's limit
	EUNAVAILABLE  = "unavailable"  // a sink did not acknowledge in time; the sender should retry
	EOVERLOADED   = "overloaded"   // too many requests in flight; the sender should retry
	ENOTFOUND     = "not_found"    // no endpoint at that path
	EINTERNAL     = "internal"     // a bug
)

// Error is an error with a code the HTTP edge maps to a status, a message safe to show the client, and a
// reason short and fixed enough to be a metric label.
type Error struct {
	Code       string
	Reason     string
	Message    string
	RetryAfter time.Duration
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %s", e.Code, e.Message) }

// Errorf returns an *Error with the code, the metric reason and a formatted message.
func Errorf(code, reason, format string, args ...any) *Error {
	return &Error{Code: code, Reason: reason, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, EINTERNAL for any other error and "" for nil.
func ErrorCode(err error) string {
	var e *Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &e):
		return e.Code
	}
	return EINTERNAL
}

// permanentError marks an error that retrying cannot mend.
type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// Permanent marks err as permanent: the pipeline does not retry it and dead-letters the message instead.
// Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

// IsPermanent reports whether err, or an error it wraps, was marked with Permanent.
func IsPermanent(err error) bool {
	var p permanentError
	return errors.As(err, &p)
}

// misconfiguredError marks an error that no retry within a request mends, and that the message is not
// to blame for.
type misconfiguredError struct{ err error }

func (e misconfiguredError) Error() string { return e.err.Error() }
func (e misconfiguredError) Unwrap() error { return e.err }

// Misconfigured marks err as a refusal of the destination that lasts until someone acts (a missing
// topic, refused credentials, no permission to write): the pipeline does not retry it within the
// request and does not dead-letter the message either, so the request is answered 503 at once and the
// sender keeps the event (Twilio retries for 4 hours), or a sink that spools takes it. Misconfigured(nil)
// is nil.
func Misconfigured(err error) error {
	if err == nil {
		return nil
	}
	return misconfiguredError{err}
}

// IsMisconfigured reports whether err, or an error it wraps, was marked with Misconfigured.
func IsMisconfigured(err error) bool {
	var m misconfiguredError
	return errors.As(err, &m)
}
