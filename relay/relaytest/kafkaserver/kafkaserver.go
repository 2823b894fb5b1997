// Package kafkaserver runs a real single-node Apache Kafka 4.x broker (KRaft, combined
// broker+controller) for integration tests, from the jars fetched by scripts/kafka/fetch.sh:
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
// The broker listens on free 127.0.0.1 ports, keeps its data under t.TempDir() and is killed
// in t.Cleanup. The JVM runs in its own process group and gets SIGKILL if the test binary dies.
//
// Start returns only once the broker is registered and unfenced and its group coordinator is
// loaded, so the first consumer-group join does not hit "Group Coordinator Not Available"
// (which kafka-go answers with a 5s JoinGroupBackoff).
//
// Startup speed: the storage format (a separate JVM run) is done once per test binary (and per
// WithSASL user set) and reused with fresh cluster/directory ids; and the first broker started
// against a libs dir records a JVM class-data-sharing archive (libsDir/.cds/*.jsa, ~50 MB) when it stops
// gracefully, which later JVMs load. RELAY_KAFKA_CDS=0 disables the archive.
package kafkaserver

import (
	"context"
	"errors"
	"fmt"
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
	nodeID       = 1
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
	props map[string]string
	sasl  *saslConfig // nil: no SASL listener (see WithSASL)
}

// WithProperty sets (or overrides) one server.properties entry. Node id, roles, listeners,
// quorum voters and log.dirs are managed by the package and cannot be overridden.
func WithProperty(key, value string) Option {
	return func(c *config) { c.props[key] = value }
}

// Server is a running (or stopped) single-node Kafka broker.
type Server struct {
	libsDir  string
	dir      string // root temp dir: configs, logs/, data/
	port     int
	ctrlPort int
	saslPort int         // 0 without WithSASL
	sasl     *saslConfig // nil without WithSASL
	props    map[string]string

	mu   sync.Mutex
	proc *process // nil when not running
}

// Start starts a single-node KRaft broker from the jars in libsDir on free 127.0.0.1 ports, with
// its log dir under t.TempDir(), waits until it is ready (metadata lists it as an unfenced broker,
// group coordinator loaded) and kills it in t.Cleanup.
func Start(t testing.TB, libsDir string, opts ...Option) *Server {
	t.Helper()
	begin := time.Now()
	if fi, err := os.Stat(libsDir); err != nil || !fi.IsDir() {
		t.Fatalf("kafkaserver: libs dir %q is not a directory (run scripts/kafka/fetch.sh): %v", libsDir, err)
	}
	if m, _ := filepath.Glob(filepath.Join(libsDir, "kafka_2.13-*.jar")); len(m) == 0 {
		t.Fatalf("kafkaserver: no kafka_2.13-*.jar in %q (run scripts/kafka/fetch.sh)", libsDir)
	}
	cfg := config{props: map[string]string{}}
	for _, o := range opts {
		o(&cfg)
	}
	if err := cfg.sasl.validate(); err != nil {
		t.Fatalf("kafkaserver: %v", err)
	}
	s := &Server{libsDir: libsDir, dir: t.TempDir(), sasl: cfg.sasl}
	t.Cleanup(s.cleanup)

	// Free ports are found by binding :0 and closing; another process may take one in between,
	// so a bind failure is retried with fresh ports.
	const attempts = 3
	for attempt := 1; ; attempt++ {
		if err := s.setup(cfg); err != nil {
			t.Fatalf("kafkaserver: %v", err)
		}
		if err := s.prepareData(); err != nil {
			t.Fatalf("kafkaserver: %v", err)
		}
		err := s.launchAndWait()
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
	if err := s.launchAndWait(); err != nil {
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
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client, done := s.client(10 * time.Second)
	defer done()

	entries := make([]kafka.ConfigEntry, 0, len(configs))
	for k, v := range configs {
		entries = append(entries, kafka.ConfigEntry{ConfigName: k, ConfigValue: v})
	}
	for {
		res, err := client.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{
			Topic:             name,
			NumPartitions:     partitions,
			ReplicationFactor: 1,
			ConfigEntries:     entries,
		}}})
		if err == nil {
			err = res.Errors[name]
		}
		if err == nil || errors.Is(err, kafka.TopicAlreadyExists) {
			break
		}
		if !retriableCreate(err) || ctx.Err() != nil {
			t.Fatalf("kafkaserver: create topic %q: %v", name, err)
		}
		sleep(ctx, 100*time.Millisecond)
	}

	var last string
	for ctx.Err() == nil {
		md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{name}})
		switch {
		case err != nil:
			last = err.Error()
		case len(md.Topics) != 1 || md.Topics[0].Error != nil:
			last = fmt.Sprintf("topic metadata: %+v", md.Topics)
		default:
			ready := len(md.Topics[0].Partitions) == partitions
			for _, p := range md.Topics[0].Partitions {
				if p.Error != nil || p.Leader.ID != nodeID {
					ready = false
				}
			}
			if !ready {
				last = fmt.Sprintf("partitions not ready: %+v", md.Topics[0].Partitions)
				break
			}
			// The metadata cache names the leader a moment before the partition is online in the
			// replica manager; until then a produce gets NOT_LEADER_OR_FOLLOWER. ListOffsets takes
			// the same path as a produce.
			if last = s.partitionsOnline(ctx, client, name, partitions); last == "" {
				return
			}
		}
		sleep(ctx, 50*time.Millisecond)
	}
	t.Fatalf("kafkaserver: topic %q not ready after 30s: %s", name, last)
}

// retriableCreate reports whether a CreateTopics failure may pass: a network error, or the broker
// briefly fenced when a loaded machine delays its heartbeats (BROKER_NOT_AVAILABLE, or
// INVALID_REPLICATION_FACTOR since no broker is unfenced to hold the single replica).
func retriableCreate(err error) bool {
	var kerr kafka.Error
	if !errors.As(err, &kerr) {
		return true
	}
	return kerr.Temporary() || kerr == kafka.BrokerNotAvailable || kerr == kafka.InvalidReplicationFactor
}

// partitionsOnline returns "" when every partition of topic answers ListOffsets, else why not.
func (s *Server) partitionsOnline(ctx context.Context, client *kafka.Client, topic string, partitions int) string {
	reqs := make([]kafka.OffsetRequest, partitions)
	for p := range reqs {
		reqs[p] = kafka.LastOffsetOf(p)
	}
	res, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	if err != nil {
		return "list offsets: " + err.Error()
	}
	if len(res.Topics[topic]) != partitions {
		return fmt.Sprintf("list offsets: %+v", res.Topics)
	}
	for _, p := range res.Topics[topic] {
		if p.Error != nil {
			return fmt.Sprintf("list offsets of partition %d: %v", p.Partition, p.Error)
		}
	}
	return ""
}

// client returns a kafka-go client with its own transport (no pooled connections shared with
// other brokers or outliving a restart) and a func that closes its connections.
func (s *Server) client(timeout time.Duration) (*kafka.Client, func()) {
	tr := &kafka.Transport{DialTimeout: time.Second, MetadataTTL: 100 * time.Millisecond}
	return &kafka.Client{Addr: kafka.TCP(s.Addr()), Timeout: timeout, Transport: tr}, tr.CloseIdleConnections
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
