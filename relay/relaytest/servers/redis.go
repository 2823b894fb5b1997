package servers

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
)

// EnvRedis names a redis-server binary to use instead of the one on PATH.
const EnvRedis = "RELAY_REDIS_SERVER"

// Redis is a running redis-server.
type Redis struct {
	proc *process
	addr string
}

// StartRedis starts redis-server on a free 127.0.0.1 port without persistence (no RDB snapshots, no
// AOF), its working directory under t.TempDir(), and waits until it answers PING. extra are more
// command-line options, such as "--requirepass", "secret". The server is killed in t.Cleanup.
func StartRedis(t testing.TB, extra ...string) *Redis {
	t.Helper()
	bin := binary(t, EnvRedis, "redis-server")
	dir := t.TempDir()
	args := func(port int) []string {
		return append([]string{
			"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
			"--save", "", "--appendonly", "no",
			"--dir", dir, "--logfile", "", "--daemonize", "no",
		}, extra...)
	}
	p, addr := launch(t, "redis-server", bin, dir, args, func(addr string) error {
		line, err := firstLine(addr, []byte("PING\r\n"))
		switch {
		case err != nil:
			return err
		case line == "+PONG", strings.HasPrefix(line, "-NOAUTH"): // up, and maybe wanting a password
			return nil
		}
		return fmt.Errorf("%w: PING answered %q", errNotReady, line)
	})
	return &Redis{proc: p, addr: addr}
}

// Addr returns the server's "127.0.0.1:port".
func (r *Redis) Addr() string { return r.addr }

// Kill kills the server with SIGKILL; it stays down.
func (r *Redis) Kill() { r.proc.kill() }
