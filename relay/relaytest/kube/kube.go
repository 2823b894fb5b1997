// Package kube runs a real single-node Kubernetes for tests, and its tests install the Helm chart
// (charts/relay) on it next to a real Kafka broker. The cluster is scripts/k8s/cluster.sh: etcd,
// kube-apiserver, kube-controller-manager, kube-scheduler, containerd and the kubelet, built from their Go
// modules by scripts/k8s/build.sh, all on 127.0.0.1, their state in t.TempDir(). scripts/k8s/test.sh
// builds what the tests need and runs them:
//
//	scripts/k8s/test.sh
//
// A test gets a cluster with
//
//	c := kube.Start(t, kube.Node)      // or kube.APIServer: etcd and the API server only
//	c.Kubectl(t, "get", "nodes")
//	c.Helm(t, "install", "relay", chart, "--wait")
//
// The tests run only with RELAY_K8S=1 and skip otherwise, saying so. A machine that refuses what the
// cluster needs (root, PID and mount namespaces, containers) makes Start skip with cluster.sh's reason,
// or fail with RELAY_REQUIRE_K8S=1.
//
// Every process of the cluster, containerd's shims and the pods' containers included, runs in PID and
// mount namespaces of its own that die with the test binary (SIGKILL too). Stopping it in t.Cleanup, the
// harness checks that no process refers to the cluster's directory any more.
package kube

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const (
	// EnvRun, when "1", runs the tests that need a cluster; without it they skip.
	EnvRun = "RELAY_K8S"
	// EnvRequire, when "1", turns a machine that refuses the cluster into a test failure instead of a skip.
	EnvRequire = "RELAY_REQUIRE_K8S"
	// EnvBin names the directory of the cluster's binaries (the output of scripts/k8s/build.sh).
	EnvBin = "RELAY_K8S_BIN"
	// EnvHelm names the helm binary (scripts/test-chart.sh builds it); "helm" on PATH when empty.
	EnvHelm = "RELAY_HELM"

	startTimeout = 4 * time.Minute
	stopTimeout  = time.Minute
	// refusedExit is cluster.sh's exit status when the machine cannot run a cluster.
	refusedExit = 3
)

// Mode says which components Start runs.
type Mode string

const (
	// APIServer runs etcd and kube-apiserver: enough for server-side dry-runs, no containers.
	APIServer Mode = "apiserver"
	// Node runs the whole single-node cluster, and pods.
	Node Mode = "node"
)

// Cluster is a running cluster.
type Cluster struct {
	// Dir holds the cluster's state, logs (Dir/logs) and containers' logs (Dir/pod-logs).
	Dir string
	// Kubeconfig is the path of a cluster-admin kubeconfig.
	Kubeconfig string
	// StartTime is how long the cluster took to be ready.
	StartTime time.Duration

	cmd  *exec.Cmd
	done chan struct{} // closed when cluster.sh has exited
	err  error         // its Wait result, valid once done is closed
}

// Enabled skips the test unless RELAY_K8S=1.
func Enabled(t testing.TB) {
	t.Helper()
	if os.Getenv(EnvRun) != "1" {
		t.Skip("needs a Kubernetes node: set " + EnvRun + "=1, or run scripts/k8s/test.sh (builds the cluster, images, Kafka)")
	}
}

// Start runs scripts/k8s/cluster.sh in mode with its state in a new temporary directory, waits until it
// is ready, and stops it in t.Cleanup.
func Start(t testing.TB, mode Mode) *Cluster {
	t.Helper()
	Enabled(t)
	root, err := repoRoot()
	if err != nil {
		t.Fatalf("kube: %v", err)
	}
	// Short: containerd's socket path must fit in 108 bytes.
	dir, err := os.MkdirTemp("", "relay-k8s-")
	if err != nil {
		t.Fatalf("kube: %v", err)
	}
	c := &Cluster{Dir: dir, Kubeconfig: filepath.Join(dir, "kubeconfig"), done: make(chan struct{})}
	out, err := os.Create(filepath.Join(dir, "cluster.log"))
	if err != nil {
		t.Fatalf("kube: %v", err)
	}
	c.cmd = exec.Command(filepath.Join(root, "scripts", "k8s", "cluster.sh"), string(mode), dir)
	c.cmd.Stdout, c.cmd.Stderr = out, out
	// Its own process group, to be signalled as one; SIGKILL when the thread that started it dies, so the
	// thread stays locked to the goroutine that waits for it (as kafkaserver does for its JVMs).
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	begin := time.Now()
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := c.cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		c.err = c.cmd.Wait()
		out.Close()
		close(c.done)
	}()
	if err := <-started; err != nil {
		out.Close()
		os.RemoveAll(dir)
		t.Fatalf("kube: start cluster.sh: %v", err)
	}
	t.Cleanup(func() { c.stop(t) })

	if err := c.waitReady(); err != nil {
		log := c.log()
		var exit *exec.ExitError
		if errors.As(c.err, &exit) && exit.ExitCode() == refusedExit {
			msg := "kube: this machine refuses a cluster: " + strings.TrimSpace(log)
			if os.Getenv(EnvRequire) == "1" {
				t.Fatal(msg + " [" + EnvRequire + "=1]")
			}
			t.Skip(msg)
		}
		t.Fatalf("kube: %s cluster not ready: %v\n%s", mode, err, log)
	}
	c.StartTime = time.Since(begin)
	t.Logf("kube: %s cluster ready in %v (dir %s)", mode, c.StartTime.Round(100*time.Millisecond), dir)
	return c
}

func (c *Cluster) waitReady() error {
	deadline := time.After(startTimeout)
	for {
		if _, err := os.Stat(filepath.Join(c.Dir, "ready")); err == nil {
			return nil
		}
		select {
		case <-c.done:
			return fmt.Errorf("cluster.sh exited: %v", c.err)
		case <-deadline:
			return fmt.Errorf("not ready after %v", startTimeout)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// log returns cluster.sh's own output.
func (c *Cluster) log() string {
	b, _ := os.ReadFile(filepath.Join(c.Dir, "cluster.log"))
	return string(b)
}

// stop sends SIGTERM to cluster.sh (it stops the components in order and removes the pods' cgroups), kills
// its process group after stopTimeout, and then checks that no process refers to the cluster's directory.
func (c *Cluster) stop(t testing.TB) {
	pgid := c.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(stopTimeout):
		t.Errorf("kube: cluster.sh did not stop within %v of SIGTERM; killing it", stopTimeout)
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-c.done
	}
	if t.Failed() {
		t.Logf("kube: cluster.sh output:\n%s", tailString(c.log(), 4<<10))
	}
	// The namespace's end kills its last processes asynchronously: give the kernel a moment.
	var left []string
	for range 50 {
		if left = processesReferring(c.Dir); len(left) == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(left) > 0 {
		t.Errorf("kube: processes left after the cluster stopped:\n%s", strings.Join(left, "\n"))
	}
	// The pods' processes are named for nothing in dir: look for their cgroups.
	if cg := c.cgroupsLeft(); len(cg) > 0 {
		t.Errorf("kube: cgroups of the pods left after the cluster stopped:\n%s", strings.Join(cg, "\n"))
	}
	if os.Getenv("RELAY_K8S_KEEP") == "1" {
		t.Logf("kube: kept %s (RELAY_K8S_KEEP=1)", c.Dir)
		return
	}
	if err := os.RemoveAll(c.Dir); err != nil {
		t.Errorf("kube: remove %s: %v", c.Dir, err)
	}
}

// processesReferring lists the processes (pid and command line) whose command line or working directory
// names dir.
func processesReferring(dir string) []string {
	entries, _ := os.ReadDir("/proc")
	var out []string
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		cwd, _ := os.Readlink(filepath.Join("/proc", e.Name(), "cwd"))
		line := string(bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '}))
		if strings.Contains(line, dir) || strings.HasPrefix(cwd, dir) {
			out = append(out, fmt.Sprintf("%d %s", pid, line))
		}
	}
	return out
}

// cgroupsLeft lists the cgroups of the cluster's containers (cluster.sh lists their IDs in Dir/containers
// as it stops them; containerd puts them under /k8s.io/<id>) that still exist, with their processes.
func (c *Cluster) cgroupsLeft() []string {
	ids, err := os.ReadFile(filepath.Join(c.Dir, "containers"))
	if err != nil {
		return nil // no containers ran
	}
	var out []string
	for _, id := range strings.Fields(string(ids)) {
		dirs, _ := filepath.Glob("/sys/fs/cgroup/*/k8s.io/" + id)
		for _, d := range dirs {
			procs, _ := os.ReadFile(filepath.Join(d, "cgroup.procs"))
			out = append(out, fmt.Sprintf("%s (processes: %s)", d, strings.Join(strings.Fields(string(procs)), " ")))
		}
	}
	return out
}

// repoRoot finds the repository's root (the directory holding scripts/k8s/cluster.sh) from the working
// directory up.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "scripts", "k8s", "cluster.sh")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no scripts/k8s/cluster.sh above the working directory")
		}
		dir = parent
	}
}

func tailString(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}
