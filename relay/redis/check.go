package redis

import (
	"context"
	"fmt"

	goredis "github.com/redis/go-redis/v9"
	"github.com/relaykit/twilio-relay/relay"
)

var _ relay.Checker = (*Sink)(nil)

// Check sends PING with the configured credentials and asks who it is (ACL WHOAMI), then for each
// stream: what its key holds (TYPE: nothing yet, or a stream; anything else refuses every XADD), and
// whether this user may XADD to it (ACL DRYRUN, Redis 7+, which needs ACL permissions of its own:
// without them the answer is "cannot tell"). Nothing is written.
func (s *Sink) Check(ctx context.Context, streams []string) []relay.Check {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	addr := s.client.Options().Addr
	if err := s.client.Ping(ctx).Err(); err != nil {
		c := relay.Check{Name: "connect", Status: relay.CheckDown, Detail: fmt.Sprintf("PING %s: %v", addr, err),
			Fix: "check addr and that the server is reachable from here; tls.enabled must match the server"}
		switch {
		case goredis.IsAuthError(err):
			c.Status = relay.CheckFailed
			c.Detail = fmt.Sprintf("%s refused the credentials: %v", addr, err)
			c.Fix = "check username and password against the server's ACL users (or requirepass)"
		case goredis.IsPermissionError(err):
			c.Status = relay.CheckFailed
			c.Detail = fmt.Sprintf("%s refused a command of the connection's set-up: %v", addr, err)
			c.Fix = "the user needs +ping and +client|setname (the sink names its connections twilio-relay/<sink>) besides +xadd on its streams"
		}
		return []relay.Check{c}
	}
	user, err := s.client.ACLWhoAmI(ctx).Result()
	if err != nil {
		user = "" // before Redis 6, or not allowed: the stream checks still run
	}
	checks := []relay.Check{{Name: "connect", Status: relay.CheckPassed,
		Detail: fmt.Sprintf("PING answered by %s, as user %s", addr, orUnknown(user))}}
	for _, st := range streams {
		checks = append(checks, s.checkKey(ctx, st))
		if user != "" {
			checks = append(checks, s.checkWrite(ctx, user, st))
		}
	}
	return checks
}

func orUnknown(user string) string {
	if user == "" {
		return "(ACL WHOAMI did not answer)"
	}
	return user
}

// checkKey tells what the stream's key holds.
func (s *Sink) checkKey(ctx context.Context, stream string) relay.Check {
	c := relay.Check{Name: "stream " + stream, Topic: stream}
	typ, err := s.client.Type(ctx, stream).Result()
	switch {
	case goredis.IsPermissionError(err):
		c.Status, c.Detail = relay.CheckUnknown, fmt.Sprintf("cannot tell what the key holds: this user may not run TYPE on it: %v", err)
	case err != nil:
		c.Status, c.Detail = relay.CheckDown, fmt.Sprintf("TYPE: %v", err)
	case typ == "none":
		c.Status, c.Detail = relay.CheckPassed, "does not exist yet: the first XADD creates it"
	case typ == "stream":
		c.Status, c.Detail = relay.CheckPassed, "exists, a stream"
	default:
		c.Status = relay.CheckFailed
		c.Detail = fmt.Sprintf("the key holds a %s, not a stream: every XADD fails with WRONGTYPE", typ)
		c.Fix = "route to another key, or rename or delete this one"
	}
	return c
}

// checkWrite asks the server whether user may XADD to the stream, without running it.
func (s *Sink) checkWrite(ctx context.Context, user, stream string) relay.Check {
	c := relay.Check{Name: "write " + stream, Topic: stream}
	res, err := s.client.ACLDryRun(ctx, user, "XADD", stream, "MAXLEN", "~", s.maxLen, "*", FieldData, "x").Result()
	switch {
	case err != nil:
		c.Status = relay.CheckUnknown
		c.Detail = fmt.Sprintf("cannot tell whether %s may XADD to it: ACL DRYRUN: %v", user, err)
		c.Fix = "ACL DRYRUN needs Redis 7 and permission to run it; check the user's ACL by hand"
	case res == "OK":
		c.Status, c.Detail = relay.CheckPassed, fmt.Sprintf("%s may XADD to it (ACL DRYRUN)", user)
	default:
		c.Status, c.Detail = relay.CheckFailed, fmt.Sprintf("%s may not XADD to it: %s", user, res)
		c.Fix = fmt.Sprintf("ACL SETUSER %s ~%s +xadd", user, stream)
	}
	return c
}
