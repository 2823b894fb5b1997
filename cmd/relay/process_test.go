package main

import (
	"bufio"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/relaykit/twilio-relay/relay/twilio/twiliotest"
)

// The fault tests that kill or stop the relay run it as its own process: the binary built from this
// package, with a config file and env, as an operator runs it.

var build struct {
	once sync.Once
	bin  string
	err  error
}

// relayBinary builds the relay once per test process.
func relayBinary(t *testing.T) string {
	t.Helper()
	build.once.Do(func() {
		dir, err := os.MkdirTemp("", "relay-bin-")
		if err != nil {
			build.err = err
			return
		}
		build.bin = filepath.Join(dir, "relay")
		if out, err := exec.Command("go", "build", "-o", build.bin, ".").CombinedOutput(); err != nil {
			build.err = errors.New("build: " + err.Error() + "\n" + string(out))
		}
	})
	if build.err != nil {
		t.Fatal(build.err)
	}
	return build.bin
}

// relayProcess is the relay binary running with a fixed listen and admin address, so that a restart
// answers where the last one did.
type relayProcess struct {
	t             *testing.T
	bin, cfg      string
	listen, admin string
	env           []string
	cmd           *exec.Cmd
	exited        chan struct{}
	exitErr       error
}

// newRelayProcess writes yaml (with testConfig's listen and admin lines) to a file and prepares the
// environment: the test token, and env on top of the test process's own.
func newRelayProcess(t *testing.T, yaml string, env map[string]string) *relayProcess {
	t.Helper()
	dir := t.TempDir()
	p := &relayProcess{t: t, bin: relayBinary(t), cfg: filepath.Join(dir, "config.yaml"), listen: freePort(t), admin: freePort(t)}
	yaml = strings.NewReplacer("\nlisten: 127.0.0.1:0\n", "\nlisten: "+p.listen+"\n",
		"admin: { listen: 127.0.0.1:0 }", "admin: { listen: "+p.admin+" }").Replace(yaml)
	if err := os.WriteFile(p.cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	p.env = append(os.Environ(), "TOKEN="+token)
	for k, v := range env {
		p.env = append(p.env, k+"="+v)
	}
	t.Cleanup(func() {
		if p.running() {
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
	})
	return p
}

// Start runs the relay and waits until its admin listener answers /healthz.
func (p *relayProcess) Start() {
	p.t.Helper()
	p.cmd = exec.Command(p.bin, "serve", "-config", p.cfg)
	p.cmd.Env = p.env
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		p.t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	p.exited = make(chan struct{})
	logs := make(chan struct{})
	go func() { // the relay's log lines, into the test's log while the test runs
		defer close(logs)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			p.t.Log("relay: " + sc.Text())
		}
	}()
	cmd, exited := p.cmd, p.exited
	go func() {
		<-logs
		p.exitErr = cmd.Wait()
		close(exited)
	}()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get("http://" + p.admin + "/healthz"); err == nil {
			resp.Body.Close()
			return
		}
		if !p.running() {
			p.t.Fatalf("the relay exited at start: %v", p.exitErr)
		}
		time.Sleep(100 * time.Millisecond)
	}
	p.t.Fatal("the relay did not answer /healthz within 30s")
}

func (p *relayProcess) running() bool {
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// Signal sends sig to the relay.
func (p *relayProcess) Signal(sig syscall.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("signal %v: %v", sig, err)
	}
}

// Wait waits up to within for the relay to exit and returns its exit code (-1 for a signal).
func (p *relayProcess) Wait(within time.Duration) int {
	p.t.Helper()
	select {
	case <-p.exited:
	case <-time.After(within):
		p.t.Fatalf("the relay did not exit within %s", within)
	}
	return p.cmd.ProcessState.ExitCode()
}

// Sender posts to the relay as Twilio does.
func (p *relayProcess) Sender() *twiliotest.Sender {
	return &twiliotest.Sender{URL: "http://" + p.listen + "/twilio/events", PublicURL: publicURL, Token: token,
		Client: &http.Client{Timeout: 10 * time.Second}}
}

// Admin is the base URL of the admin listener.
func (p *relayProcess) Admin() string { return "http://" + p.admin }

// metric reads one unlabelled sample from /metrics, -1 when absent.
func metric(t *testing.T, admin, name string) float64 {
	t.Helper()
	v, n := metricSum(t, admin, name, false)
	if n == 0 {
		return -1
	}
	return v
}

// metricSum adds up a metric's samples on admin's /metrics: the unlabelled one, or with labelled every
// label set. It returns the sum and how many samples it found.
func metricSum(t *testing.T, admin, name string, labelled bool) (float64, int) {
	t.Helper()
	resp, err := http.Get(admin + "/metrics")
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	sum, n := 0.0, 0
	for sc.Scan() {
		line := sc.Text()
		v, ok := strings.CutPrefix(line, name+" ")
		if labelled && strings.HasPrefix(line, name+"{") {
			v, ok = line[strings.LastIndexByte(line, ' ')+1:], true
		}
		if f, err := strconv.ParseFloat(v, 64); ok && err == nil {
			sum, n = sum+f, n+1
		}
	}
	return sum, n
}
