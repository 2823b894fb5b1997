// Package kafkaserver runs real Apache Kafka 4.x brokers (KRaft, combined broker+controller) for
// integration tests, a single node or a small cluster, from the jars fetched by
// scripts/kafka/fetch.sh:
//
//	RELAY_KAFKA_LIBS=$(scripts/kafka/fetch.sh) go test ./...
//
// A test gets a broker with
//
//	srv := kafkaserver.Start(t, kafkaserver.LibsFromEnv(t))
//	srv.CreateTopic(t, "events", 3)
//	// ... use srv.Addr() as the bootstrap address
//
// WithSASL(User{Name: "alice", Password: "secret"}) adds a SASL_PLAINTEXT listener (SASLAddr) with
// PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512; CreateTopicWithConfig sets topic configuration.
//
// StartCluster(t, libs, 3) starts three nodes in one controller quorum (Cluster.Bootstrap lists
// their addresses); Cluster.CreateTopicWithConfig takes a replication factor. Faults are injected
// per node: Stop (SIGTERM), Kill (SIGKILL), Restart, and Pause/Resume (SIGSTOP/SIGCONT, a frozen
// broker whose requests run into their deadlines).
//
// Brokers listen on free 127.0.0.1 ports, keep their data under t.TempDir() and are killed
// in t.Cleanup (a paused one too). Each JVM runs in its own process group and gets SIGKILL if the
// test binary dies.
//
// Start and StartCluster return only once each broker is registered and unfenced and the group
// coordinator is loaded, so the first consumer-group join does not hit "Group Coordinator Not
// Available" (which kafka-go answers with a 5s JoinGroupBackoff).
//
// Startup speed: the storage format (a separate JVM run) is done once per test binary (and per
// configuration and WithSASL user set) and reused with fresh cluster/directory ids; and the first
// broker started against a libs dir records a JVM class-data-sharing archive (libsDir/.cds/*.jsa,
// ~50 MB) when it stops gracefully, which later JVMs load. RELAY_KAFKA_CDS=0 disables the archive.
package kafkaserver

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

const (
	// EnvLibs names the directory holding the Kafka jars (the output of scripts/kafka/fetch.sh).
	EnvLibs = "RELAY_KAFKA_LIBS"
	// EnvRequire, when "1", turns a missing EnvLibs into a test failure instead of a skip.
	EnvRequire = "RELAY_REQUIRE_KAFKA"
	// EnvJavaOpts adds JVM options (space separated) after the defaults.
	EnvJavaOpts = "RELAY_KAFKA_JAVA_OPTS"
	// EnvCDS, when "0", disables the JVM class-data-sharing archive.
	EnvCDS = "RELAY_KAFKA_CDS"

	readyTimeout = 60 * time.Second
	stopTimeout  = 20 * time.Second
)

// defaultJVMOpts keep each broker small and quick to start; several fit on a 2-core machine.
var defaultJVMOpts = []string{
	"-Xms64m", "-Xmx512m",
	"-XX:+UseSerialGC",
	"-XX:TieredStopAtLevel=1", // C1 only: ~25% faster startup, plenty for tests
	"-XX:+ExitOnOutOfMemoryError",
	"-Djava.awt.headless=true",
}

// LibsFromEnv returns $RELAY_KAFKA_LIBS. If it is empty the test is skipped with a hint on how to
// get the jars, or fails when $RELAY_REQUIRE_KAFKA=1.
func LibsFromEnv(t testing.TB) string {
	t.Helper()
	libs := os.Getenv(EnvLibs)
	if libs != "" {
		return libs
	}
	msg := "no Kafka broker: set " + EnvLibs + " to the jar directory printed by scripts/kafka/fetch.sh, " +
		"e.g. `" + EnvLibs + "=$(scripts/kafka/fetch.sh) go test ./...` (needs Java 17+ and Maven)"
	if os.Getenv(EnvRequire) == "1" {
		t.Fatal(msg + " [" + EnvRequire + "=1]")
	}
	t.Skip(msg)
	return ""
}

// Option changes the broker configuration before Start.
type Option func(*config)

type config struct {
	props       map[string]string
	sasl        *saslConfig // nil: no SASL listener (see WithSASL)
	jvmDefaults bool        // see WithJVMDefaults
}

// newConfig checks libsDir and applies opts over base (the cluster's replication defaults, or
// nil). It fails the test on an unusable libs dir or invalid options.
func newConfig(t testing.TB, libsDir string, base map[string]string, opts []Option) config {
	t.Helper()
	if fi, err := os.Stat(libsDir); err != nil || !fi.IsDir() {
		t.Fatalf("kafkaserver: libs dir %q is not a directory (run scripts/kafka/fetch.sh): %v", libsDir, err)
	}
	if m, _ := filepath.Glob(filepath.Join(libsDir, "kafka_2.13-*.jar")); len(m) == 0 {
		t.Fatalf("kafkaserver: no kafka_2.13-*.jar in %q (run scripts/kafka/fetch.sh)", libsDir)
	}
	cfg := config{props: map[string]string{}}
	for k, v := range base {
		cfg.props[k] = v
	}
	for _, o := range opts {
		o(&cfg)
	}
	if err := cfg.sasl.validate(); err != nil {
		t.Fatalf("kafkaserver: %v", err)
	}
	return cfg
}

// jvmOpts returns the JVM options the configuration asks for.
func (c config) jvmOpts() []string {
	if c.jvmDefaults {
		return []string{"-XX:+ExitOnOutOfMemoryError", "-Djava.awt.headless=true"}
	}
	return defaultJVMOpts
}

// WithProperty sets (or overrides) one server.properties entry. Node id, roles, listeners,
// quorum voters and log.dirs are managed by the package and cannot be overridden.
func WithProperty(key, value string) Option {
	return func(c *config) { c.props[key] = value }
}

// WithJVMDefaults starts the JVM with its own defaults (C2 JIT, G1, a heap sized from the machine's
// memory) instead of the small, quick-starting settings the tests use: for benchmarks, where the broker
// is the ceiling being measured.
func WithJVMDefaults() Option {
	return func(c *config) { c.jvmDefaults = true }
}

// Server is a running (or stopped) Kafka node, combined broker and controller: a single-node
// broker from Start, or one node of a Cluster.
type Server struct {
	id       int // node.id, 1 for a single node
	libsDir  string
	dir      string // root temp dir: configs, logs/, data/
	port     int
	ctrlPort int
	saslPort int         // 0 without WithSASL
	sasl     *saslConfig // nil without WithSASL
	props    map[string]string
	jvm      []string // JVM options before $RELAY_KAFKA_JAVA_OPTS

	mu   sync.Mutex
	proc *process // nil when not running
}

// Start starts a single-node KRaft broker from the jars in libsDir on free 127.0.0.1 ports, with
// its log dir under t.TempDir(), waits until it is ready (metadata lists it as an unfenced broker,
// group coordinator loaded) and kills it in t.Cleanup.
func Start(t testing.TB, libsDir string, opts ...Option) *Server {
	t.Helper()
	begin := time.Now()
	cfg := newConfig(t, libsDir, nil, opts)
	s := &Server{id: 1, libsDir: libsDir, dir: t.TempDir(), sasl: cfg.sasl, jvm: cfg.jvmOpts()}
	t.Cleanup(s.cleanup)

	// Free ports are found by binding :0 and closing; another process may take one in between,
	// so a bind failure is retried with fresh ports.
	const attempts = 3
	for attempt := 1; ; attempt++ {
		if err := s.allocPorts(); err != nil {
			t.Fatalf("kafkaserver: %v", err)
		}
		if err := s.writeConfig(cfg, s.voter()); err != nil {
			t.Fatalf("kafkaserver: %v", err)
		}
		if err := s.prepareData(""); err != nil {
			t.Fatalf("kafkaserver: %v", err)
		}
		err := s.launchAndWait(context.Background())
		if err == nil {
			t.Logf("kafkaserver: broker %s ready in %v (dir %s)", s.Addr(), time.Since(begin).Round(time.Millisecond), s.dir)
			return s
		}
		logs := s.logTail()
		s.kill()
		if attempt < attempts && strings.Contains(logs, "Address already in use") {
			t.Logf("kafkaserver: port clash, retrying with new ports: %v", err)
			continue
		}
		t.Fatalf("kafkaserver: start: %v\n%s", err, logs)
	}
}

// NodeID returns the node's node.id (the broker id in metadata): 1 for a single node, 1..n in a
// Cluster.
func (s *Server) NodeID() int { return s.id }

// Addr returns the "127.0.0.1:port" of the PLAINTEXT listener.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// ControllerAddr returns the "127.0.0.1:port" of the CONTROLLER listener.
func (s *Server) ControllerAddr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.ctrlPort))
}

// LogFile returns the path of the broker's log4j log (server.log).
func (s *Server) LogFile() string { return filepath.Join(s.dir, "logs", "server.log") }

// Stop shuts the broker down gracefully (SIGTERM, then SIGKILL after ~20s). Its data is kept,
// so Restart brings it back with the same topics, messages and committed offsets.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	begin := time.Now()
	if !s.stop() {
		t.Logf("kafkaserver: broker %s did not stop within %v of SIGTERM; killed it", s.Addr(), stopTimeout)
		return
	}
	t.Logf("kafkaserver: broker %s stopped in %v", s.Addr(), time.Since(begin).Round(time.Millisecond))
}

// Kill kills the broker with SIGKILL (an unclean shutdown). Its data is kept.
func (s *Server) Kill(t testing.TB) {
	t.Helper()
	s.kill()
}

// Restart starts the broker again on the same ports and log dir (stopping it first if it is
// running) and waits until it is ready.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	if s.current() != nil {
		s.Stop(t)
	}
	begin := time.Now()
	if err := s.launchAndWait(context.Background()); err != nil {
		logs := s.logTail()
		s.kill()
		t.Fatalf("kafkaserver: restart: %v\n%s", err, logs)
	}
	t.Logf("kafkaserver: broker %s restarted, ready in %v", s.Addr(), time.Since(begin).Round(time.Millisecond))
}

// CreateTopic creates a topic with replication factor 1 and waits until every partition has a leader
// and is online (a produce to it would not get NOT_LEADER_OR_FOLLOWER).
func (s *Server) CreateTopic(t testing.TB, name string, partitions int) {
	t.Helper()
	s.CreateTopicWithConfig(t, name, partitions, nil)
}

// CreateTopicWithConfig is CreateTopic with topic-level configuration entries, such as
// {"max.message.bytes": "2048"}.
func (s *Server) CreateTopicWithConfig(t testing.TB, name string, partitions int, configs map[string]string) {
	t.Helper()
	createTopic(t, []string{s.Addr()}, name, partitions, 1, configs)
}

// Pause freezes the broker JVM with SIGSTOP: it keeps its sockets (the kernel still accepts
// connections) but answers nothing, heartbeats nothing and replicates nothing until Resume, so a
// request to it runs into its deadline. Stop, Kill, Restart and the test's cleanup all work on a
// paused broker (they continue it as needed).
func (s *Server) Pause(t testing.TB) {
	t.Helper()
	if err := s.signalPause(true); err != nil {
		t.Fatalf("kafkaserver: pause broker %s: %v", s.Addr(), err)
	}
	t.Logf("kafkaserver: broker %s paused (SIGSTOP)", s.Addr())
}

// Resume continues a broker frozen by Pause (SIGCONT). The broker may need a moment to catch
// up: a paused broker misses its heartbeats, so a controller may have fenced it meanwhile.
func (s *Server) Resume(t testing.TB) {
	t.Helper()
	if err := s.signalPause(false); err != nil {
		t.Fatalf("kafkaserver: resume broker %s: %v", s.Addr(), err)
	}
	t.Logf("kafkaserver: broker %s resumed (SIGCONT)", s.Addr())
}

// client returns a kafka-go client of this broker; see newClient.
func (s *Server) client(timeout time.Duration) (*kafka.Client, func()) {
	return newClient([]string{s.Addr()}, timeout)
}

// newClient returns a kafka-go client bootstrapped from addrs, with its own transport (no pooled
// connections shared with other brokers or outliving a restart, metadata refreshed every 100ms)
// and a func that closes its connections.
func newClient(addrs []string, timeout time.Duration) (*kafka.Client, func()) {
	tr := &kafka.Transport{DialTimeout: time.Second, MetadataTTL: 100 * time.Millisecond}
	return &kafka.Client{Addr: kafka.TCP(addrs...), Timeout: timeout, Transport: tr}, tr.CloseIdleConnections
}
