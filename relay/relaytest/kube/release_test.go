package kube

import (
	"context"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/relaykit/twilio-relay/relay/relaytest/kafkaserver"
	"github.com/relaykit/twilio-relay/relay/relaytest/ledger"
	"github.com/relaykit/twilio-relay/relay/twilio/twiliotest"
)

// EnvRelayImage names the relay image (repository:tag) imported into the node (scripts/k8s/test.sh builds
// it with scripts/image.sh and gives its tarball to cluster.sh).
const EnvRelayImage = "RELAY_K8S_RELAY_IMAGE"

// env is what every scenario on the node shares: the cluster, the Kafka broker, the chart, the image.
type env struct {
	c      *Cluster
	kafka  *kafkaserver.Server
	chart  string
	image  string
	sasl   map[string]string // SASL user → password, known to the broker
	values chartValues       // the chart's values.yaml, the defaults under every example
}

// release is one installation of the chart in its own namespace, on the host network.
type release struct {
	e         *env
	ns        string
	prefix    string   // every event id of the release starts with it
	files     []string // values files, in order (the node's last)
	port      int      // webhook port on 127.0.0.1
	adminPort int
	publicURL string        // what Twilio calls and signs: the example's, as written
	token     string        // the Twilio auth token the relay holds
	basic     *url.Userinfo // Basic credentials the endpoint requires, if any
	topics    []string      // topics the routes write to
	dead      string        // the dead-letter topic
	notes     []string      // what differs from the example as written
	before    []string      // objects in the namespace before the install (the test's own Secrets)
}

// newRelease prepares a release in namespace ns from the values file (an example, or the minimal required
// values): it creates the namespace and the Secrets the values refer to, with fresh credentials, and writes
// the node's values (host network, image, ports, the test broker) that go over it.
func (e *env) newRelease(t *testing.T, ns, file string, extra map[string]any) *release {
	t.Helper()
	ports := freePorts(t, 2)
	r := &release{e: e, ns: ns, prefix: "EZk8s-" + ns + "-", port: ports[0], adminPort: ports[1], token: "tok-" + randomWord()}
	v := readValues(t, e.values, file)
	// The example's public URL stays: the relay verifies signatures over it, whatever address a request
	// reaches the pod by (here 127.0.0.1, as it would be the ingress controller's in a real cluster).
	r.publicURL = v.PublicURL
	node, secrets := r.nodeValues(v)
	mergeValues(node, extra)
	r.files = []string{file, writeYAML(t, node)}

	c := e.c
	c.Kubectl(t, "create", "namespace", ns)
	t.Cleanup(func() {
		if t.Failed() {
			r.diagnose(t)
		}
	})
	for _, name := range slices.Sorted(maps.Keys(secrets)) {
		args := []string{"-n", ns, "create", "secret", "generic", name}
		for _, k := range slices.Sorted(maps.Keys(secrets[name])) {
			args = append(args, "--from-literal="+k+"="+secrets[name][k])
		}
		c.Kubectl(t, args...)
	}
	r.before = r.objects(t)
	r.topics, r.dead = r.routedTopics(t)
	return r
}

// helmArgs returns args followed by the release's values files.
func (r *release) helmArgs(args ...string) []string {
	for _, f := range r.files {
		args = append(args, "-f", f)
	}
	return args
}

// routedTopics renders the release's ConfigMap and returns the topics its routes write to and the
// dead-letter topic, creating them in Kafka unless the sink lets the relay create them.
func (r *release) routedTopics(t *testing.T) ([]string, string) {
	t.Helper()
	out := r.e.c.Helm(t, r.helmArgs("template", "relay", r.e.chart, "-n", r.ns, "--show-only", "templates/configmap.yaml")...)
	var cm struct {
		Data map[string]string `yaml:"data"`
	}
	if err := yaml.Unmarshal([]byte(out), &cm); err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Sinks []struct {
			Kafka struct {
				AutoCreate bool `yaml:"allow_auto_topic_creation"`
			} `yaml:"kafka"`
		} `yaml:"sinks"`
		Routes []struct {
			To []struct {
				Topic string `yaml:"topic"`
			} `yaml:"to"`
		} `yaml:"routes"`
		DeadLetter struct {
			Topic string `yaml:"topic"`
		} `yaml:"dead_letter"`
	}
	if err := yaml.Unmarshal([]byte(cm.Data["config.yaml"]), &cfg); err != nil {
		t.Fatalf("the rendered config.yaml: %v", err)
	}
	var topics []string
	for _, route := range cfg.Routes {
		for _, to := range route.To {
			if strings.Contains(to.Topic, "{") {
				t.Fatalf("topic template %q: the test reads literal topics only", to.Topic)
			}
			if !slices.Contains(topics, to.Topic) {
				topics = append(topics, to.Topic)
			}
		}
	}
	autoCreate := len(cfg.Sinks) > 0 && cfg.Sinks[0].Kafka.AutoCreate
	for _, topic := range topics {
		if !autoCreate {
			r.e.kafka.CreateTopic(t, topic, 3)
		}
	}
	if autoCreate {
		r.notes = append(r.notes, "topics created by the relay's first write")
	}
	// Created in any case: reading a missing topic would create it (the broker allows auto-creation).
	r.e.kafka.CreateTopic(t, cfg.DeadLetter.Topic, 1)
	return topics, cfg.DeadLetter.Topic
}

// install runs `helm install --wait`, then waits for the rollout, and returns how long both took.
func (r *release) install(t *testing.T) time.Duration {
	t.Helper()
	begin := time.Now()
	r.e.c.Helm(t, r.helmArgs("install", "relay", r.e.chart, "-n", r.ns, "--wait", "--timeout", "3m")...)
	r.rolloutStatus(t)
	took := time.Since(begin)
	t.Logf("helm install --wait + kubectl rollout status: %v", took.Round(100*time.Millisecond))
	return took
}

// upgrade runs `helm upgrade --wait` with the release's values files and then args, then waits for the
// rollout, and returns how long both took.
func (r *release) upgrade(t *testing.T, args ...string) time.Duration {
	t.Helper()
	begin := time.Now()
	r.e.c.Helm(t, append(r.helmArgs("upgrade", "relay", r.e.chart, "-n", r.ns, "--wait", "--timeout", "3m"), args...)...)
	r.rolloutStatus(t)
	return time.Since(begin)
}

// rolloutStatus waits until the workload's pods are all updated and ready and the old ones gone. Helm's
// --wait is not enough here: it counts a Deployment ready once replicas - maxUnavailable pods are, which
// with one replica and maxUnavailable 1 (the host network's strategy) is at once.
func (r *release) rolloutStatus(t *testing.T) {
	t.Helper()
	workload := strings.TrimSpace(r.e.c.Kubectl(t, "-n", r.ns, "get", "deployment,statefulset", "-l",
		"app.kubernetes.io/instance=relay", "-o", "name"))
	r.e.c.Kubectl(t, "-n", r.ns, "rollout", "status", workload, "--timeout", "3m")
}

// sender signs events with token as Twilio does for the public URL, and posts them to the pod on
// 127.0.0.1 (the path of the public URL: what the ingress would route there).
func (r *release) sender(token string) *twiliotest.Sender {
	public, _ := url.Parse(r.publicURL)
	u := &url.URL{Scheme: "http", Host: "127.0.0.1:" + strconv.Itoa(r.port), Path: public.Path, User: r.basic}
	return &twiliotest.Sender{URL: u.String(), PublicURL: r.publicURL, Token: token,
		Client: &http.Client{Timeout: 10 * time.Second}}
}

// driver sends events at rate per second, Twilio's way, into l, with ids of the release's prefix then phase.
func (r *release) driver(l *ledger.Ledger, token, phase string, rate float64) *ledger.Driver {
	return &ledger.Driver{Sender: r.sender(token), Ledger: l, Prefix: r.prefix + phase + "-", Rate: rate, Batch: 1,
		DupEvery: 10, Concurrency: 128}
}

// check reads the release's topics back, compares them with the ledger, saves the report (a row of the
// table scripts/k8s/test.sh prints), and fails the test on a lost, unexpected or dead-lettered event.
func (r *release) check(t *testing.T, scenario string, l *ledger.Ledger, note string, forged ...string) ledger.Report {
	t.Helper()
	ctx := context.Background()
	found, err := ledger.KafkaIDs(ctx, r.e.kafka.Addr(), r.topics...)
	if err != nil {
		t.Fatal(err)
	}
	// The scenarios share the broker and topic names: each looks at its own ids.
	maps.DeleteFunc(found, func(id string, _ int) bool { return !strings.HasPrefix(id, r.prefix) })
	dead, err := ledger.KafkaIDs(ctx, r.e.kafka.Addr(), r.dead)
	if err != nil {
		t.Fatal(err)
	}
	maps.DeleteFunc(dead, func(id string, _ int) bool { return !strings.HasPrefix(id, r.prefix) })
	if len(dead) > 0 {
		t.Errorf("%d events were dead-lettered", len(dead))
	}
	l.Forged(forged...)
	rep := l.Check("k8s: "+scenario, found)
	rep.Note = strings.Join(append(slices.Clone(r.notes), note), "; ")
	t.Log(rep)
	for _, p := range rep.Problems() {
		t.Error(p)
	}
	if rep.Sent == 0 || rep.Answered == 0 {
		t.Errorf("the scenario sent %d events and %d were answered 200: it proves nothing", rep.Sent, rep.Answered)
	}
	if err := rep.Save(); err != nil {
		t.Errorf("save the report: %v", err)
	}
	return rep
}

// uninstall runs `helm uninstall --wait`, waits for the pods to go, and checks that the namespace holds
// nothing the install added but what the docs say stays (keep: the PersistentVolumeClaims of the spool).
func (r *release) uninstall(t *testing.T, keep ...string) {
	t.Helper()
	r.e.c.Helm(t, "uninstall", "relay", "-n", r.ns, "--wait", "--timeout", "2m")
	var left []string
	waitFor(t, "pods and objects gone after helm uninstall", 90*time.Second, func() bool {
		left = slices.DeleteFunc(r.objects(t), func(o string) bool { return slices.Contains(r.before, o) })
		return slices.Equal(left, keep)
	})
	t.Logf("helm uninstall left %v (expected %v)", left, keep)
}
