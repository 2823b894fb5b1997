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
	Claim(ctx context.Context, key string) (ClaimResult, error)
	Commit(ctx context.Context, key string) error
	Release(ctx context.Context, key string) error
}

// claimShared asks the shared tier about an owned event. When the tier fails, the event is treated as
// owned: local dedupe only.
func (p *Pipeline) claimShared(ctx context.Context, it *item) ClaimResult {
	if p.cfg.Shared == nil {
		return ClaimOwned
	}
	res, err := p.cfg.Shared.Claim(ctx, it.key)
	if err != nil {
		p.cfg.Observer.SharedDedupeError("claim")
		return ClaimOwned
	}
	it.shared = res == ClaimOwned
	return res
}

// settleShared commits the shared claims of the events that are safe and releases the others.
func (p *Pipeline) settleShared(ctx context.Context, owned []*item) {
	for _, it := range owned {
		if !it.shared {
			continue
		}
		op, f := "commit", p.cfg.Shared.Commit
		if it.failed {
			op, f = "release", p.cfg.Shared.Release
		}
		if err := f(context.WithoutCancel(ctx), it.key); err != nil {
			p.cfg.Observer.SharedDedupeError(op)
		}
	}
}
