package kube

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// commandTimeout bounds every kubectl and helm run (helm's own --timeout is shorter).
const commandTimeout = 5 * time.Minute

// Kubectl runs kubectl against the cluster and returns its standard output; it fails the test on an error.
func (c *Cluster) Kubectl(t testing.TB, args ...string) string {
	t.Helper()
	out, err := c.KubectlErr(nil, args...)
	if err != nil {
		t.Fatalf("kubectl %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// KubectlErr runs kubectl with stdin (nil: none) and returns its standard output, or an error holding its
// standard error.
func (c *Cluster) KubectlErr(stdin []byte, args ...string) (string, error) {
	return c.run(stdin, c.bin("kubectl"), args...)
}

// Helm runs helm against the cluster and returns its standard output; it fails the test on an error.
func (c *Cluster) Helm(t testing.TB, args ...string) string {
	t.Helper()
	out, err := c.HelmErr(args...)
	if err != nil {
		t.Fatalf("helm %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// HelmErr runs helm and returns its standard output, or an error holding its standard error.
func (c *Cluster) HelmErr(args ...string) (string, error) {
	helm := os.Getenv(EnvHelm)
	if helm == "" {
		helm = "helm"
	}
	return c.run(nil, helm, args...)
}

// bin returns the path of one of the cluster's binaries.
func (c *Cluster) bin(name string) string {
	if dir := os.Getenv(EnvBin); dir != "" {
		return filepath.Join(dir, name)
	}
	return name
}

func (c *Cluster) run(stdin []byte, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	// Helm's configuration, cache and data stay in the cluster's directory: the user's are never touched.
	cmd.Env = append(os.Environ(), "KUBECONFIG="+c.Kubeconfig,
		"HELM_CONFIG_HOME="+filepath.Join(c.Dir, "helm", "config"),
		"HELM_CACHE_HOME="+filepath.Join(c.Dir, "helm", "cache"),
		"HELM_DATA_HOME="+filepath.Join(c.Dir, "helm", "data"))
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}
