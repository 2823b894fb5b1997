package filesink

import (
	"context"
	"fmt"

	"github.com/relaykit/twilio-relay/relay"
)

var _ relay.Checker = (*Sink)(nil)

// Check tells whether the file is open for appending (New opened it, creating it) and its directory is
// still there. Topics are written into each line and are not checked.
func (s *Sink) Check(ctx context.Context, _ []string) []relay.Check {
	if err := s.Ping(ctx); err != nil {
		return []relay.Check{{Name: "file", Status: relay.CheckFailed, Detail: fmt.Sprintf("%s: %v", s.cfg.Path, err),
			Fix: "the file's directory must exist and be writable by the relay"}}
	}
	return []relay.Check{{Name: "file", Status: relay.CheckPassed, Detail: s.cfg.Path + " is open for appending"}}
}
