package kube

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// pod is what the tests look at in a pod.
type pod struct {
	Name, UID string
	Ready     bool
	Deleting  bool
}

// pods lists the release's pods.
func (r *release) pods(t *testing.T) []pod {
	t.Helper()
	out := r.e.c.Kubectl(t, "-n", r.ns, "get", "pods", "-l", "app.kubernetes.io/instance=relay", "-o", "json")
	var list struct {
		Items []struct {
			Metadata struct {
				Name              string  `json:"name"`
				UID               string  `json:"uid"`
				DeletionTimestamp *string `json:"deletionTimestamp"`
			} `json:"metadata"`
			Status struct {
				Conditions []struct{ Type, Status string } `json:"conditions"`
			} `json:"status"`
		} `json:"items"`
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatal(err)
	}
	var pods []pod
	for _, it := range list.Items {
		p := pod{Name: it.Metadata.Name, UID: it.Metadata.UID, Deleting: it.Metadata.DeletionTimestamp != nil}
		for _, c := range it.Status.Conditions {
			p.Ready = p.Ready || (c.Type == "Ready" && c.Status == "True")
		}
		pods = append(pods, p)
	}
	return pods
}

// onePod returns the release's only pod, failing the test when there is not exactly one.
func (r *release) onePod(t *testing.T) pod {
	t.Helper()
	pods := r.pods(t)
	if len(pods) != 1 {
		t.Fatalf("want one pod, have %v", pods)
	}
	return pods[0]
}

// initTermination returns the termination message of the pod's preflight init container once it has
// exited with 1 (now or on an earlier try), else "".
func (r *release) initTermination(t *testing.T) string {
	t.Helper()
	out := r.e.c.Kubectl(t, "-n", r.ns, "get", "pods", "-l", "app.kubernetes.io/instance=relay", "-o", "json")
	type terminated struct {
		ExitCode int    `json:"exitCode"`
		Message  string `json:"message"`
	}
	var list struct {
		Items []struct {
			Status struct {
				InitContainerStatuses []struct {
					Name      string                           `json:"name"`
					State     struct{ Terminated *terminated } `json:"state"`
					LastState struct{ Terminated *terminated } `json:"lastState"`
				} `json:"initContainerStatuses"`
			} `json:"status"`
		} `json:"items"`
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatal(err)
	}
	for _, it := range list.Items {
		for _, c := range it.Status.InitContainerStatuses {
			for _, term := range []*terminated{c.State.Terminated, c.LastState.Terminated} {
				if c.Name == "preflight" && term != nil && term.ExitCode == 1 {
					return term.Message
				}
			}
		}
	}
	return ""
}

// waitFor polls cond every 200 ms for within at most.
func waitFor(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// objects lists the namespace's objects (kind/name), except events and what every namespace holds.
func (r *release) objects(t *testing.T) []string {
	t.Helper()
	kinds := strings.Fields(r.e.c.Kubectl(t, "api-resources", "--verbs=list", "--namespaced", "-o", "name"))
	kinds = slices.DeleteFunc(kinds, func(k string) bool { return strings.HasPrefix(k, "events") })
	out := r.e.c.Kubectl(t, "-n", r.ns, "get", strings.Join(kinds, ","), "-o", "name", "--ignore-not-found")
	objs := slices.DeleteFunc(strings.Fields(out), func(o string) bool {
		return o == "configmap/kube-root-ca.crt" || o == "serviceaccount/default"
	})
	slices.Sort(objs)
	return objs
}

// diagnose logs what explains a failure: the namespace's events and the tail of every container log.
func (r *release) diagnose(t *testing.T) {
	if out, err := r.e.c.KubectlErr(nil, "-n", r.ns, "get", "events", "--sort-by=.lastTimestamp"); err == nil {
		t.Logf("events in %s:\n%s", r.ns, tailString(out, 3<<10))
	}
	logs, _ := filepath.Glob(filepath.Join(r.e.c.Dir, "pod-logs", r.ns+"_*", "*", "*.log"))
	for _, f := range logs {
		b, _ := os.ReadFile(f)
		t.Logf("tail of %s:\n%s", f, tailString(string(b), 3<<10))
	}
}

// spoolDepth reads the admin listener's /spool: messages waiting, every sink together.
func (r *release) spoolDepth() (int, error) {
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/spool", r.adminPort))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var st struct{ Sinks []struct{ Depth int } }
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return 0, err
	}
	n := 0
	for _, s := range st.Sinks {
		n += s.Depth
	}
	return n, nil
}
