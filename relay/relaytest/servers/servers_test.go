package servers_test

import (
	"bufio"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/relaykit/twilio-relay/relay/relaytest/servers"
)

func TestRedis(t *testing.T) {
	t.Parallel()
	rd := servers.StartRedis(t)
	if got := roundTrip(t, rd.Addr(), "PING\r\n", 1); got != "+PONG" {
		t.Fatalf("PING answered %q", got)
	}
	// No persistence: the tests never leave files behind or wait for a fork.
	if got := roundTrip(t, rd.Addr(), "CONFIG GET save\r\n", 5); got != "*2 $4 save $0 " {
		t.Fatalf("CONFIG GET save answered %q, want save empty", got)
	}
	if got := roundTrip(t, rd.Addr(), "CONFIG GET appendonly\r\n", 5); got != "*2 $10 appendonly $2 no" {
		t.Fatalf("CONFIG GET appendonly answered %q, want no", got)
	}
	rd.Kill()
	if _, err := net.DialTimeout("tcp", rd.Addr(), time.Second); err == nil {
		t.Fatal("server still accepts connections after Kill")
	}
}

func TestRedisPassword(t *testing.T) {
	t.Parallel()
	rd := servers.StartRedis(t, "--requirepass", "s3cret")
	if got := roundTrip(t, rd.Addr(), "PING\r\n", 1); !strings.HasPrefix(got, "-NOAUTH") {
		t.Fatalf("PING without a password answered %q", got)
	}
}

func TestNATS(t *testing.T) {
	t.Parallel()
	ns := servers.StartNATS(t)
	if !strings.HasPrefix(ns.URL(), "nats://127.0.0.1:") {
		t.Fatalf("URL %q", ns.URL())
	}
	got := roundTrip(t, ns.Addr(), "", 1)
	if !strings.Contains(got, `"jetstream":true`) {
		t.Fatalf("greeting %q lacks JetStream", got)
	}
}

func TestNATSTwoAtOnce(t *testing.T) {
	t.Parallel()
	a, b := servers.StartNATS(t), servers.StartNATS(t)
	if a.Addr() == b.Addr() {
		t.Fatal("two servers on one address")
	}
}

// roundTrip sends req and returns the first n lines of the answer, joined by spaces.
func roundTrip(t *testing.T, addr, req string, n int) string {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	if req != "" {
		if _, err := conn.Write([]byte(req)); err != nil {
			t.Fatal(err)
		}
	}
	br := bufio.NewReader(conn)
	lines := make([]string, n)
	for i := range lines {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		lines[i] = strings.TrimRight(line, "\r\n")
	}
	return strings.Join(lines, " ")
}

// TestMissingBinarySkips: without the binary (and without RELAY_REQUIRE_SERVERS=1) a test skips.
func TestMissingBinarySkips(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	t.Setenv(servers.EnvRequire, "")
	t.Setenv(servers.EnvRedis, "")
	t.Setenv(servers.EnvNATS, "")
	for name, start := range map[string]func(testing.TB){
		"redis": func(t testing.TB) { servers.StartRedis(t) },
		"nats":  func(t testing.TB) { servers.StartNATS(t) },
	} {
		reached := false
		t.Run(name, func(t *testing.T) {
			start(t)
			reached = true
		})
		if reached {
			t.Errorf("%s: started without a binary on PATH", name)
		}
	}
}
