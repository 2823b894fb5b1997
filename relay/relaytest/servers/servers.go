// Package servers runs real Redis and NATS servers for integration tests, from the binaries the
// distribution packages install (scripts/servers/install.sh):
//
//	rd := servers.StartRedis(t)           // redis-server on a free 127.0.0.1 port, no persistence
//	ns := servers.StartNATS(t)            // nats-server -js on a free port, JetStream store in t.TempDir()
//	// ... rd.Addr(), ns.URL()
//
// Each server runs in its own process group, gets SIGKILL if the test binary dies, and is killed in
// t.Cleanup. A missing binary skips the test with a hint, or fails it when RELAY_REQUIRE_SERVERS=1.
// RELAY_REDIS_SERVER and RELAY_NATS_SERVER name other binaries than those on PATH.
package servers

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	// EnvRequire, when "1", turns a missing server binary into a test failure instead of a skip.
	EnvRequire = "RELAY_REQUIRE_SERVERS"

	readyTimeout = 20 * time.Second
	portAttempts = 3
)

// binary returns the path of the server binary, from env or PATH, or skips (or fails) the test.
func binary(t testing.TB, env, name string) string {
	t.Helper()
	if p := os.Getenv(env); p != "" {
		return p
	}
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	msg := fmt.Sprintf("no %s on PATH: run scripts/servers/install.sh (apt-get install %s) or set %s", name, name, env)
	if os.Getenv(EnvRequire) == "1" {
		t.Fatal(msg + " [" + EnvRequire + "=1]")
	}
	t.Skip(msg)
	return ""
}

// process is one running server.
type process struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{} // closed when the process has exited
	err  error         // Wait's result, valid after done is closed

	mu     sync.Mutex
	killed bool
}

// start runs bin with args, its output in logPath, in its own process group with SIGKILL on the death
// of the thread that started it, so that a dying test binary takes the server with it.
func start(name, bin string, args []string, logPath string) (*process, error) {
	out, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	p := &process{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: Pdeathsig is tied to this thread
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		p.err = cmd.Wait()
		out.Close()
		close(p.done)
	}()
	if err := <-started; err != nil {
		out.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	return p, nil
}

// kill sends SIGKILL to the process group and waits for the process to exit.
func (p *process) kill() {
	p.mu.Lock()
	if !p.killed {
		p.killed = true
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	}
	p.mu.Unlock()
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
	}
}

// exited reports whether the process has exited.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// logTail returns the end of the server's log.
func (p *process) logTail() string {
	b, _ := os.ReadFile(p.log)
	if len(b) > 4096 {
		b = b[len(b)-4096:]
	}
	return string(b)
}

// launch starts a server on a free port with args(port) and waits for ready(addr), retrying with a new
// port when another process took the one picked (binding :0 and closing leaves a window).
func launch(t testing.TB, name, bin, dir string, args func(port int) []string, ready func(addr string) error) (*process, string) {
	t.Helper()
	begin := time.Now()
	for attempt := 1; ; attempt++ {
		port, err := freePort()
		if err != nil {
			t.Fatalf("servers: %v", err)
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		logPath := filepath.Join(dir, fmt.Sprintf("%s-%d.log", name, attempt))
		p, err := start(name, bin, args(port), logPath)
		if err != nil {
			t.Fatalf("servers: %v", err)
		}
		err = waitReady(p, addr, ready)
		if err == nil {
			t.Cleanup(p.kill)
			t.Logf("servers: %s ready at %s in %v", name, addr, time.Since(begin).Round(time.Millisecond))
			return p, addr
		}
		p.kill()
		logs := p.logTail()
		if attempt < portAttempts && strings.Contains(strings.ToLower(logs), "address already in use") {
			t.Logf("servers: %s: port %d taken, retrying: %v", name, port, err)
			continue
		}
		t.Fatalf("servers: %s did not start: %v\n%s", name, err, logs)
	}
}

func waitReady(p *process, addr string, ready func(addr string) error) error {
	deadline := time.Now().Add(readyTimeout)
	for {
		if p.exited() {
			return fmt.Errorf("exited before it was ready: %v", p.err)
		}
		err := ready(addr)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after %v: %w", readyTimeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// firstLine dials addr, writes req (if any) and returns the first line the server answers.
func firstLine(addr string, req []byte) (string, error) {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	if len(req) > 0 {
		if _, err := conn.Write(req); err != nil {
			return "", err
		}
	}
	line, err := bufio.NewReader(conn).ReadBytes('\n')
	if err != nil {
		return "", err
	}
	return string(bytes.TrimRight(line, "\r\n")), nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

var errNotReady = errors.New("not ready")
