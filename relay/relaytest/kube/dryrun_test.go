package kube

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestServerDryRun puts every worked example of the chart, and its minimal required values, through a
// real API server: `helm install --dry-run=server` (the server's version against the chart's kubeVersion,
// every kind known to the server, its OpenAPI schemas), then `kubectl apply --dry-run=server` of the
// rendered manifests (admission, defaulting and validation, as a real install would meet them), and of
// the manifests an example ships (Strimzi's KafkaTopics). The CustomResourceDefinitions they need
// (scripts/tools/crds: ServiceMonitor, KafkaTopic) are applied first.
func TestServerDryRun(t *testing.T) {
	c := Start(t, APIServer)
	root, _ := repoRoot()
	chart := filepath.Join(root, "charts", "relay")
	c.applyCRDs(t, filepath.Join(root, "scripts", "tools", "crds"))

	cases := map[string]string{"minimal": filepath.Join(chart, "tests", "values", "required.yaml")}
	examples, _ := filepath.Glob(filepath.Join(chart, "examples", "*.yaml"))
	for _, e := range examples {
		cases["example-"+strings.TrimSuffix(filepath.Base(e), ".yaml")] = e
	}
	if len(examples) == 0 {
		t.Fatal("no chart examples found")
	}
	names := make([]string, 0, len(cases))
	for n := range cases {
		names = append(names, n)
	}
	slices.Sort(names)

	var table []string
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			manifest := c.helmDryRun(t, chart, "relay", "twilio", "-f", cases[name])
			applied := c.applyDryRun(t, manifest)
			table = append(table, fmt.Sprintf("| %s | `helm install --dry-run=server`: ok | `kubectl apply --dry-run=server`: %d objects accepted (%s) |",
				name, len(applied), strings.Join(applied, ", ")))
		})
	}

	// Manifests an example ships beside its values (examples/<name>/*.yaml, e.g. Strimzi's KafkaTopics),
	// in the namespace its documented `kubectl apply -n NS -f <file>` names.
	extra, _ := filepath.Glob(filepath.Join(chart, "examples", "*", "*.yaml"))
	for _, f := range extra {
		rel, _ := filepath.Rel(root, f)
		t.Run(rel, func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			ns := "default"
			if m := regexp.MustCompile(`kubectl apply -n (\S+) -f ` + regexp.QuoteMeta(rel)).FindSubmatch(b); m != nil {
				ns = string(m[1])
			}
			c.ensureNamespaces(t, ns)
			out, err := c.KubectlErr(b, "apply", "--dry-run=server", "-n", ns, "-o", "name", "-f", "-")
			if err != nil {
				t.Fatalf("kubectl apply --dry-run=server -n %s -f %s: %v", ns, rel, err)
			}
			table = append(table, fmt.Sprintf("| %s | | `kubectl apply --dry-run=server -n %s`: %d objects accepted (%s) |",
				rel, ns, len(strings.Fields(out)), strings.Join(strings.Fields(out), ", ")))
		})
	}

	// The server judges more than a schema: a Deployment whose selector does not select its own pods is
	// valid to every schema and refused here, so the dry-runs above could have failed.
	t.Run("refused: selector not matching the template", func(t *testing.T) {
		manifest := c.helmDryRun(t, chart, "relay", "twilio", "-f", cases["minimal"])
		broken := breakSelector(t, manifest)
		_, err := c.KubectlErr(broken, "apply", "--dry-run=server", "-n", "twilio", "-f", "-")
		if err == nil || !strings.Contains(err.Error(), "selector") {
			t.Fatalf("the API server accepted a Deployment whose selector does not match its template: %v", err)
		}
		table = append(table, "| refused: a Deployment's selector not matching its template | | refused: "+
			firstLine(err.Error())+" |")
	})
	t.Logf("server-side dry-runs against kube-apiserver %s:\n%s", c.serverVersion(t), strings.Join(table, "\n"))
}

// helmDryRun runs `helm install --dry-run=server` in namespace (created for real first, with any other
// namespace the manifest names) and returns the rendered manifest.
func (c *Cluster) helmDryRun(t *testing.T, chart, release, namespace string, args ...string) string {
	t.Helper()
	c.ensureNamespaces(t, namespace)
	out := c.Helm(t, append([]string{"install", release, chart, "-n", namespace, "--dry-run=server", "-o", "json"}, args...)...)
	var rel struct {
		Manifest string `json:"manifest"`
	}
	if err := json.Unmarshal([]byte(out), &rel); err != nil || rel.Manifest == "" {
		t.Fatalf("helm install --dry-run=server: no manifest in its output (%v):\n%s", err, out)
	}
	c.ensureNamespaces(t, namespacesIn(rel.Manifest)...)
	return rel.Manifest
}

// applyDryRun sends manifest through `kubectl apply --dry-run=server` and returns the objects accepted
// (kind/name), checking that every object of the manifest is among them.
func (c *Cluster) applyDryRun(t *testing.T, manifest string) []string {
	t.Helper()
	out, err := c.KubectlErr([]byte(manifest), "apply", "--dry-run=server", "-n", "twilio", "-o", "name", "-f", "-")
	if err != nil {
		t.Fatalf("kubectl apply --dry-run=server: %v", err)
	}
	applied := strings.Fields(out)
	if want := len(regexp.MustCompile(`(?m)^kind: `).FindAllString(manifest, -1)); len(applied) != want {
		t.Fatalf("kubectl apply --dry-run=server accepted %d objects, the manifest has %d:\n%s", len(applied), want, out)
	}
	return applied
}

// applyCRDs applies every CustomResourceDefinition in dir and waits until the server serves them.
func (c *Cluster) applyCRDs(t *testing.T, dir string) {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if len(files) == 0 {
		t.Fatalf("no CRDs in %s", dir)
	}
	for _, f := range files {
		c.Kubectl(t, "apply", "-f", f)
	}
	c.Kubectl(t, "wait", "--for", "condition=Established", "--timeout", "60s", "crd", "--all")
}

// ensureNamespaces creates the namespaces that do not exist yet.
func (c *Cluster) ensureNamespaces(t *testing.T, names ...string) {
	t.Helper()
	for _, ns := range names {
		if _, err := c.KubectlErr(nil, "get", "namespace", ns); err == nil {
			continue
		}
		c.Kubectl(t, "create", "namespace", ns)
	}
}

var namespaceLine = regexp.MustCompile(`(?m)^  namespace: *"?([a-z0-9-]+)"?\s*$`)

// namespacesIn lists the namespaces the manifest's objects name in their metadata.
func namespacesIn(manifest string) []string {
	var out []string
	for _, m := range namespaceLine.FindAllStringSubmatch(manifest, -1) {
		if !slices.Contains(out, m[1]) {
			out = append(out, m[1])
		}
	}
	return out
}

func (c *Cluster) serverVersion(t *testing.T) string {
	out := c.Kubectl(t, "version", "-o", "json")
	var v struct {
		Server struct {
			GitVersion string `json:"gitVersion"`
		} `json:"serverVersion"`
	}
	_ = json.Unmarshal([]byte(out), &v)
	return v.Server.GitVersion
}

// breakSelector returns the manifest's Deployment with a selector that does not match its pod template.
func breakSelector(t *testing.T, manifest string) []byte {
	t.Helper()
	dec := yaml.NewDecoder(strings.NewReader(manifest))
	for {
		var obj struct {
			Kind string `yaml:"kind"`
		}
		var node yaml.Node
		if err := dec.Decode(&node); err != nil {
			t.Fatalf("no Deployment in the manifest (%v)", err)
		}
		if err := node.Decode(&obj); err != nil || obj.Kind != "Deployment" {
			continue
		}
		var doc map[string]any
		if err := node.Decode(&doc); err != nil {
			t.Fatal(err)
		}
		labels := doc["spec"].(map[string]any)["selector"].(map[string]any)["matchLabels"].(map[string]any)
		labels["app.kubernetes.io/instance"] = "not-the-template"
		out, err := yaml.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}
