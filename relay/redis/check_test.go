package redis_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/relaykit/twilio-relay/relay"
	"github.com/relaykit/twilio-relay/relay/redis"
	"github.com/relaykit/twilio-relay/relay/relaytest/checktest"
	"github.com/relaykit/twilio-relay/relay/relaytest/servers"
)

// TestCheck runs the preflight checks against a real server: the default user may do everything; limited
// may look (TYPE, ACL DRYRUN) but not XADD; a key holding a hash refuses every XADD.
func TestCheck(t *testing.T) {
	t.Parallel()
	srv := servers.StartRedis(t)
	admin := newReader(t, srv.Addr()).rdb
	ctx := context.Background()
	for _, cmd := range [][]any{
		{"HSET", "not-a-stream", "f", "v"},
		{"XADD", "events", "*", "f", "v"},
		{"ACL", "SETUSER", "limited", "on", ">limited-secret", "~*", "+ping", "+client|setname", "+type", "+acl", "-xadd"},
		{"ACL", "SETUSER", "bare", "on", ">bare-secret", "~*", "+ping", "+xadd"},
	} {
		if err := admin.Do(ctx, cmd...).Err(); err != nil {
			t.Fatalf("%v: %v", cmd, err)
		}
	}
	streams := []string{"events", "fresh", "not-a-stream"}

	checks := checktest.Run(t, newSink(t, redis.Config{Addr: srv.Addr()}), streams...)
	checktest.Want(t, checks, map[string]relay.CheckStatus{
		"connect": relay.CheckPassed, "stream events": relay.CheckPassed, "write events": relay.CheckPassed,
		"stream fresh": relay.CheckPassed, "write fresh": relay.CheckPassed, "stream not-a-stream": relay.CheckFailed,
	})
	checktest.WantIn(t, checks, "connect", "as user default")
	checktest.WantIn(t, checks, "stream fresh", "does not exist yet")
	checktest.WantIn(t, checks, "stream not-a-stream", "holds a hash", "WRONGTYPE")

	checks = checktest.Run(t, newSink(t, redis.Config{Addr: srv.Addr(), Username: "limited", Password: "limited-secret"}), "events")
	checktest.Want(t, checks, map[string]relay.CheckStatus{"connect": relay.CheckPassed, "write events": relay.CheckFailed})
	checktest.WantIn(t, checks, "write events", "limited may not XADD", "ACL SETUSER limited ~events +xadd")

	checks = checktest.Run(t, newSink(t, redis.Config{Addr: srv.Addr(), Username: "bare", Password: "bare-secret"}), "events")
	checktest.Want(t, checks, map[string]relay.CheckStatus{"connect": relay.CheckFailed})
	checktest.WantIn(t, checks, "connect", "client|setname")

	checks = checktest.Run(t, newSink(t, redis.Config{Addr: srv.Addr(), Username: "limited", Password: "wrong"}), "events")
	checktest.Want(t, checks, map[string]relay.CheckStatus{"connect": relay.CheckFailed})
	checktest.WantIn(t, checks, "connect", "refused the credentials", "WRONGPASS")

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	checks = checktest.Run(t, newSink(t, redis.Config{Addr: closed, Timeout: relay.Duration(2 * time.Second)}), "events")
	checktest.Want(t, checks, map[string]relay.CheckStatus{"connect": relay.CheckDown})
}
