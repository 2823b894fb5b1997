package relay

import "context"

// ClaimResult is what a shared dedupe tier says of an event a replica is about to deliver.
type ClaimResult int

const (
	ClaimOwned     ClaimResult = iota // nobody has it: this replica delivers it
	ClaimDuplicate                    // some replica delivered it within the window
	ClaimBusy                         // another replica is delivering it right now
)

// SharedDeduper is a dedupe tier shared by the relay's replicas, consulted after the in-process one.
// Claim marks an event in flight, atomically and with an expiry (so a replica that dies mid-delivery
// does not hold it for ever); Commit marks it delivered for the dedupe window once its sinks acknowledged
// it; Release drops this replica's claim when delivery failed, so Twilio's retry can proceed at once.
// An error means the tier is unreachable: the pipeline then carries on with local dedupe only
// (at-least-once holds either way). All three are safe for concurrent use.
type SharedDeduper interface {
	Claim(ctx context.Context, key Key) (ClaimResult, error)
	Commit(ctx context.Context, key Key) error
	Release(ctx context.Context, key Key) error
}
