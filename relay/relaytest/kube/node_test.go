package kube

import (
	"context"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/relaykit/twilio-relay/relay/relaytest/kafkaserver"
	"github.com/relaykit/twilio-relay/relay/relaytest/ledger"
)

// TestChartOnNode installs the chart on a real node next to a real Kafka broker (both on 127.0.0.1) and
// proves every claim with the ledger: each event answered 200 is in Kafka. Scenarios: each worked example
// as written (its Secrets, its SASL), a configuration change rolling the pod under signed traffic, a token
// rotation through existingSecret, the spool's StatefulSet keeping events across its pod's deletion while
// Kafka is down and draining them when scaled down, and helm uninstall leaving only what the docs say.
func TestChartOnNode(t *testing.T) {
	Enabled(t)
	image := os.Getenv(EnvRelayImage)
	if image == "" || !strings.Contains(image, ":") {
		t.Fatalf("%s must name the relay image imported into the node (repository:tag); scripts/k8s/test.sh sets it", EnvRelayImage)
	}
	libs := kafkaserver.LibsFromEnv(t)
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	chart := filepath.Join(root, "charts", "relay")
	e := &env{chart: chart, image: image, sasl: map[string]string{}}
	e.values = readValues(t, chartValues{}, filepath.Join(chart, "values.yaml"))

	examples, _ := filepath.Glob(filepath.Join(chart, "examples", "*.yaml"))
	if len(examples) == 0 {
		t.Fatal("no chart examples")
	}
	// The broker knows every SASL user an example names, each with a fresh password.
	var users []kafkaserver.User
	for _, ex := range examples {
		if name := readValues(t, e.values, ex).Kafka.SASL.Username; name != "" && e.sasl[name] == "" {
			e.sasl[name] = randomWord()
			users = append(users, kafkaserver.User{Name: name, Password: e.sasl[name]})
		}
	}
	opts := []kafkaserver.Option{kafkaserver.WithProperty("auto.create.topics.enable", "true")}
	if len(users) > 0 {
		opts = append(opts, kafkaserver.WithSASL(users...))
	}
	e.kafka = kafkaserver.Start(t, libs, opts...)
	e.c = Start(t, Node)
	e.c.applyCRDs(t, filepath.Join(root, "scripts", "tools", "crds"))

	for _, ex := range examples {
		name := strings.TrimSuffix(filepath.Base(ex), ".yaml")
		t.Run("install "+name, func(t *testing.T) { e.installExample(t, name, ex) })
	}
	required := filepath.Join(chart, "tests", "values", "required.yaml")
	t.Run("upgrade rolls the pod under traffic", func(t *testing.T) { e.upgradeUnderTraffic(t, required) })
	t.Run("token rotation through existingSecret", func(t *testing.T) {
		e.tokenRotation(t, filepath.Join(chart, "examples", "strimzi.yaml"))
	})
	t.Run("a missing topic stops the pod in its init container", func(t *testing.T) { e.preflightStops(t, required) })
	t.Run("spool keeps events across its pod", func(t *testing.T) { e.spoolAcrossPods(t, required) })
	t.Run("spool scale-down drains", func(t *testing.T) { e.spoolScaleDown(t, required) })
}

// installExample installs an example as written (its Secrets created, its SASL user known to the broker),
// sends signed events, and uninstalls it.
func (e *env) installExample(t *testing.T, name, file string) {
	r := e.newRelease(t, "ex-"+name, file, nil)
	took := r.install(t)
	d := r.driver(ledger.New(), r.token, "events", 100)
	d.Run(context.Background(), 2*time.Second)
	if err := d.Redeliver(context.Background(), time.Minute); err != nil {
		t.Fatalf("%v; answers: %s", err, statusList(d.Ledger.Check("", nil).Statuses))
	}
	r.check(t, "helm install "+name, d.Ledger, "ready after "+took.Round(100*time.Millisecond).String())
	r.uninstall(t)
}

// upgradeUnderTraffic changes the configuration with helm upgrade while signed traffic flows: the
// checksum rolls the pod, the preStop sleep and the grace period drain it. The answers Twilio sees are only
// 200 or 503, or no answer while no pod listens (one node, host network: the new pod starts once the old
// one is gone); Twilio retries what was not answered 200 and nothing answered 200 is lost.
func (e *env) upgradeUnderTraffic(t *testing.T, file string) {
	r := e.newRelease(t, "upgrade", file, nil)
	r.install(t)
	before := r.onePod(t)
	d := r.driver(ledger.New(), r.token, "roll", 100)
	done := make(chan struct{})
	go func() {
		defer close(done)
		d.Run(context.Background(), 40*time.Second)
	}()
	time.Sleep(5 * time.Second)
	took := r.upgrade(t, "--set", "config.log.level=debug")
	t.Logf("helm upgrade --wait (config.log.level: info → debug) took %v", took.Round(100*time.Millisecond))
	after := r.onePod(t)
	if after.UID == before.UID {
		t.Errorf("the configuration changed and the pod %s did not roll", before.Name)
	}
	<-done
	inRoll := d.Ledger.Check("", nil).Statuses
	if err := d.Redeliver(context.Background(), 90*time.Second); err != nil {
		t.Fatal(err)
	}
	for status := range inRoll {
		if status != "200" && status != "503" && status != "transport" {
			t.Errorf("answered %s during the roll: Twilio drops an event on most 4xx", status)
		}
	}
	r.check(t, "helm upgrade under traffic", d.Ledger, "answers before Twilio's retries: "+statusList(inRoll)+
		" (no answer: no pod listening between the old pod's exit and the new one's start); duplicated: "+
		"the new pod does not know the ids the old one delivered (docs/dedupe.md)")
	r.uninstall(t)
}

// preflightStops installs a release whose dead-letter topic does not exist: the init container
// (relay check -connect) fails, the pod never starts, and the ✗ line with its fix is the init container's
// termination message, which kubectl describe pod shows. Creating the topic lets the pod start.
func (e *env) preflightStops(t *testing.T, file string) {
	const topic = "k8s-preflight-deadletter"
	r := e.newRelease(t, "preflight", file, map[string]any{"config": map[string]any{
		"dead_letter": map[string]any{"sink": "kafka", "topic": topic}}})
	e.kafka.DeleteTopic(t, topic) // newRelease created it
	r.e.c.Helm(t, r.helmArgs("install", "relay", r.e.chart, "-n", r.ns)...)
	var msg string
	waitFor(t, "the preflight init container terminated with exit code 1", 2*time.Minute, func() bool {
		msg = r.initTermination(t)
		return msg != ""
	})
	t.Logf("the init container's termination message (kubectl describe pod):\n%s", msg)
	want := "✗ kafka: topic " + topic + " (dead letter): does not exist"
	if !strings.Contains(msg, want) || !strings.Contains(msg, "--create --topic "+topic) {
		t.Errorf("termination message does not say %q and how to create it", want)
	}
	if p := r.onePod(t); p.Ready {
		t.Errorf("pod %s is ready with its dead-letter topic missing", p.Name)
	}
	e.kafka.CreateTopic(t, topic, 1)
	r.e.c.Kubectl(t, "-n", r.ns, "delete", "pods", "-l", "app.kubernetes.io/instance=relay", "--wait=false")
	r.rolloutStatus(t)
	r.uninstall(t)
}

// statusList lists answers by status: "200×3950, 503×12, no answer×38".
func statusList(m map[string]int) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		name := k
		if k == "transport" {
			name = "no answer"
		}
		parts = append(parts, name+"×"+strconv.Itoa(m[k]))
	}
	return strings.Join(parts, ", ")
}
