package servers

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
)

// EnvNATS names a nats-server binary to use instead of the one on PATH.
const EnvNATS = "RELAY_NATS_SERVER"

// NATS is a running nats-server with JetStream.
type NATS struct {
	proc *process
	addr string
}

// StartNATS starts nats-server with JetStream (-js) on a free 127.0.0.1 port, its store under
// t.TempDir(), and waits until it greets clients with JetStream enabled. extra are more command-line
// options, such as "--user", "relay", "--pass", "secret". The server is killed in t.Cleanup.
func StartNATS(t testing.TB, extra ...string) *NATS {
	t.Helper()
	bin := binary(t, EnvNATS, "nats-server")
	dir := t.TempDir()
	args := func(port int) []string {
		return append([]string{"-js", "-a", "127.0.0.1", "-p", strconv.Itoa(port), "-sd", dir}, extra...)
	}
	p, addr := launch(t, "nats-server", bin, dir, args, func(addr string) error {
		// The server enables JetStream before it accepts clients, so a greeting that says so is enough.
		line, err := firstLine(addr, nil)
		switch {
		case err != nil:
			return err
		case !strings.HasPrefix(line, "INFO "):
			return fmt.Errorf("%w: greeting %q", errNotReady, line)
		case !strings.Contains(line, `"jetstream":true`):
			return fmt.Errorf("nats-server runs without JetStream (greeting %s): is it 2.2 or later?", line)
		}
		return nil
	})
	return &NATS{proc: p, addr: addr}
}

// URL returns the client URL, nats://127.0.0.1:port.
func (n *NATS) URL() string { return "nats://" + n.addr }

// Addr returns the server's "127.0.0.1:port".
func (n *NATS) Addr() string { return n.addr }

// Kill kills the server with SIGKILL; it stays down.
func (n *NATS) Kill() { n.proc.kill() }
