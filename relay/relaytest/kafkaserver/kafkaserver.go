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
// The broker listens on free 127.0.0.1 ports, keeps its data under t.TempDir() and is killed
// in t.Cleanup. The JVM runs in its own process group and gets SIGKILL if the test binary dies.
//
// Start returns only once the broker is registered and unfenced and its group coordinator is
// loaded, so the first consumer-group join does not hit "Group Coordinator Not Available"
// (which kafka-go answers with a 5s JoinGroupBackoff).
//
// Startup speed: the storage format (a separate JVM run) is done once per test binary and
// reused with fresh cluster/directory ids; and the first broker started against a libs dir
// records a JVM class-data-sharing archive (libsDir/.cds/*.jsa, ~50 MB) when it stops
// gracefully, which later JVMs load. RELAY_KAFKA_CDS=0 disables the archive.
package kafkaserver

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
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
	props    map[string]string

	mu   sync.Mutex
	proc *process // nil when not running
}

type process struct {
	cmd    *exec.Cmd
	done   chan struct{} // closed when the JVM has exited (and any CDS archive is settled)
	err    error         // Wait's result, valid after done is closed
	ready  bool          // waitReady succeeded (guarded by Server.mu)
	termed bool          // SIGTERM was sent by Stop (guarded by Server.mu)
	killed bool          // SIGKILL was sent (guarded by Server.mu)
	dump   *cdsDump      // non-nil if this JVM records the CDS archive at exit
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
	s := &Server{libsDir: libsDir, dir: t.TempDir()}
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

// CreateTopic creates a topic with replication factor 1 and waits until every partition has a leader.
func (s *Server) CreateTopic(t testing.TB, name string, partitions int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client, done := s.client(10 * time.Second)
	defer done()

	res, err := client.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{
		Topic:             name,
		NumPartitions:     partitions,
		ReplicationFactor: 1,
	}}})
	if err != nil {
		t.Fatalf("kafkaserver: create topic %q: %v", name, err)
	}
	if err := res.Errors[name]; err != nil && !errors.Is(err, kafka.TopicAlreadyExists) {
		t.Fatalf("kafkaserver: create topic %q: %v", name, err)
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
			if ready {
				return
			}
			last = fmt.Sprintf("partitions not ready: %+v", md.Topics[0].Partitions)
		}
		sleep(ctx, 50*time.Millisecond)
	}
	t.Fatalf("kafkaserver: topic %q has no leader after 30s: %s", name, last)
}

// client returns a kafka-go client with its own transport (no pooled connections shared with
// other brokers or outliving a restart) and a func that closes its connections.
func (s *Server) client(timeout time.Duration) (*kafka.Client, func()) {
	tr := &kafka.Transport{DialTimeout: time.Second, MetadataTTL: 100 * time.Millisecond}
	return &kafka.Client{Addr: kafka.TCP(s.Addr()), Timeout: timeout, Transport: tr}, tr.CloseIdleConnections
}

// setup picks ports and writes server.properties and log4j2.properties.
func (s *Server) setup(cfg config) error {
	ports, err := freePorts(2)
	if err != nil {
		return err
	}
	s.port, s.ctrlPort = ports[0], ports[1]
	for _, d := range []string{"data", "logs"} {
		if err := os.RemoveAll(filepath.Join(s.dir, d)); err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Join(s.dir, d), 0o755); err != nil {
			return err
		}
	}

	props := map[string]string{
		"num.partitions":                                   "3",
		"default.replication.factor":                       "1",
		"min.insync.replicas":                              "1",
		"auto.create.topics.enable":                        "false",
		"group.initial.rebalance.delay.ms":                 "0",
		"offsets.topic.replication.factor":                 "1",
		"offsets.topic.num.partitions":                     "1", // default 50
		"transaction.state.log.replication.factor":         "1",
		"transaction.state.log.min.isr":                    "1",
		"transaction.state.log.num.partitions":             "1", // default 50
		"share.coordinator.state.topic.replication.factor": "1",
		"share.coordinator.state.topic.min.isr":            "1",
		"share.coordinator.state.topic.num.partitions":     "1", // default 50
		// After an unclean stop (Kill) the restarted controller refuses the broker's new
		// registration until the old one's session expires (default 9s).
		"broker.session.timeout.ms":      "4000",
		"broker.heartbeat.interval.ms":   "500",
		"num.network.threads":            "2",
		"num.io.threads":                 "4",
		"log.cleaner.dedupe.buffer.size": strconv.Itoa(16 << 20), // default 128 MiB of heap
	}
	for k, v := range cfg.props {
		props[k] = v
	}
	for k, v := range map[string]string{ // managed keys always win
		"process.roles":                  "broker,controller",
		"node.id":                        strconv.Itoa(nodeID),
		"controller.quorum.voters":       strconv.Itoa(nodeID) + "@" + s.ControllerAddr(),
		"listeners":                      "PLAINTEXT://" + s.Addr() + ",CONTROLLER://" + s.ControllerAddr(),
		"advertised.listeners":           "PLAINTEXT://" + s.Addr(),
		"controller.listener.names":      "CONTROLLER",
		"inter.broker.listener.name":     "PLAINTEXT",
		"listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
		"log.dirs":                       filepath.Join(s.dir, "data"),
	} {
		props[k] = v
	}
	s.props = props

	if err := os.WriteFile(s.path("server.properties"), []byte(formatProps(props, nil)), 0o644); err != nil {
		return err
	}
	log4j := strings.Join([]string{
		"status = warn",
		"appender.file.type = File",
		"appender.file.name = FILE",
		"appender.file.fileName = " + s.LogFile(),
		"appender.file.append = true",
		"appender.file.layout.type = PatternLayout",
		"appender.file.layout.pattern = [%d] %p %m (%c)%n",
		"rootLogger.level = INFO",
		"rootLogger.appenderRef.file.ref = FILE",
		"logger.clients.name = org.apache.kafka.clients",
		"logger.clients.level = WARN",
		"",
	}, "\n")
	return os.WriteFile(s.path("log4j2.properties"), []byte(log4j), 0o644)
}

func formatProps(props map[string]string, skip map[string]bool) string {
	keys := make([]string, 0, len(props))
	for k := range props {
		if !skip[k] {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%s\n", k, props[k])
	}
	return b.String()
}

// Formatted data dirs, reused within the test binary: StorageTool costs a ~2.5s JVM run, and its
// output (meta.properties + bootstrap.checkpoint) does not depend on the ports (static voters).
// Each reuse gets a fresh cluster.id and directory.id.
var formatted struct {
	mu    sync.Mutex
	files map[string]map[string][]byte // key -> file name -> content
}

func (s *Server) prepareData() error {
	key := s.libsDir + "\x00" + formatProps(s.props, map[string]bool{
		"controller.quorum.voters": true, "listeners": true, "advertised.listeners": true, "log.dirs": true,
	})
	data := filepath.Join(s.dir, "data")

	formatted.mu.Lock()
	defer formatted.mu.Unlock()
	if files, ok := formatted.files[key]; ok {
		for name, content := range files {
			if name == "meta.properties" {
				var err error
				if content, err = freshMetaProperties(content); err != nil {
					return err
				}
			}
			if err := os.WriteFile(filepath.Join(data, name), content, 0o644); err != nil {
				return err
			}
		}
		return nil
	}

	if err := s.format(); err != nil {
		return err
	}
	// Cache the result only if it is the expected handful of small top-level files.
	entries, err := os.ReadDir(data)
	if err != nil {
		return err
	}
	files := map[string][]byte{}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(filepath.Join(data, e.Name()))
		if err != nil {
			return err
		}
		files[e.Name()] = b
	}
	if _, err := freshMetaProperties(files["meta.properties"]); err != nil || files["bootstrap.checkpoint"] == nil {
		return nil
	}
	if formatted.files == nil {
		formatted.files = map[string]map[string][]byte{}
	}
	formatted.files[key] = files
	return nil
}

// freshMetaProperties replaces cluster.id and directory.id in a formatted meta.properties.
func freshMetaProperties(b []byte) ([]byte, error) {
	lines := strings.Split(string(b), "\n")
	found := 0
	for i, l := range lines {
		for _, k := range []string{"cluster.id=", "directory.id="} {
			if strings.HasPrefix(l, k) {
				id, err := randomUUID()
				if err != nil {
					return nil, err
				}
				lines[i] = k + id
				found++
			}
		}
	}
	if found != 2 {
		return nil, fmt.Errorf("unexpected meta.properties from StorageTool format:\n%s", b)
	}
	return []byte(strings.Join(lines, "\n")), nil
}

// format runs kafka.tools.StorageTool format on the data dir.
func (s *Server) format() error {
	id, err := randomUUID()
	if err != nil {
		return err
	}
	cmd := s.javaCmd(s.cdsUseArgs(), "kafka.tools.StorageTool", "format", "-t", id, "-c", s.path("server.properties"))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("StorageTool format: %v\n%s", err, tail(out.Bytes(), 8<<10))
	}
	return nil
}

// launchAndWait starts the JVM and waits until the broker is ready or fails.
func (s *Server) launchAndWait() error {
	out, err := os.OpenFile(s.stdoutPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cdsArgs, dump := s.cds()
	cmd := s.javaCmd(cdsArgs, "kafka.Kafka", s.path("server.properties"))
	cmd.Stdout, cmd.Stderr = out, out
	p := &process{cmd: cmd, done: make(chan struct{}), dump: dump}

	// The JVM gets its own process group (so the whole group can be signalled) and SIGKILL when
	// the thread that started it dies. Pdeathsig is tied to that OS thread, so the thread stays
	// locked to this goroutine for the life of the child: if the test binary dies (timeout panic,
	// ^C), so does the JVM.
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with this goroutine
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		p.err = cmd.Wait()
		out.Close()
		s.mu.Lock()
		clean := p.ready && p.termed && !p.killed // a full run: the archive is worth keeping
		s.mu.Unlock()
		dump.finish(clean)
		close(p.done)
	}()
	if err := <-started; err != nil {
		out.Close()
		dump.finish(false)
		return fmt.Errorf("start java: %w", err)
	}
	s.mu.Lock()
	s.proc = p
	s.mu.Unlock()

	if err := s.waitReady(p); err != nil {
		return err
	}
	s.mu.Lock()
	p.ready = true
	s.mu.Unlock()
	return nil
}

// waitReady polls the broker until its metadata lists itself as a broker (registered and
// unfenced) and controller, then until its group coordinator answers OffsetFetch.
func (s *Server) waitReady(p *process) error {
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	client, done := s.client(2 * time.Second)
	defer done()

	poll := func(what string, try func() error) error {
		for {
			select {
			case <-p.done:
				return fmt.Errorf("broker exited before it was ready (%s): %v", what, p.err)
			default:
			}
			err := try()
			if err == nil {
				return nil
			}
			if ctx.Err() != nil {
				return fmt.Errorf("broker not ready after %v (%s): %v", readyTimeout, what, err)
			}
			select {
			case <-p.done:
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
	}

	err := poll("metadata", func() error {
		md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{}})
		if err != nil {
			return err
		}
		for _, b := range md.Brokers {
			if b.ID == nodeID && md.Controller.ID == nodeID {
				return nil
			}
		}
		return fmt.Errorf("broker not registered yet (brokers %v, controller %d)", md.Brokers, md.Controller.ID)
	})
	if err != nil {
		return err
	}
	// The first FindCoordinator creates __consumer_offsets; OffsetFetch succeeds once its
	// partition is loaded.
	const group = "kafkaserver-readiness"
	return poll("group coordinator", func() error {
		fc, err := client.FindCoordinator(ctx, &kafka.FindCoordinatorRequest{Key: group, KeyType: kafka.CoordinatorKeyTypeConsumer})
		if err != nil {
			return err
		}
		if fc.Error != nil {
			return fc.Error
		}
		of, err := client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group})
		if err != nil {
			return err
		}
		return of.Error
	})
}

func (s *Server) javaCmd(extra []string, class string, args ...string) *exec.Cmd {
	jargs := append([]string{}, defaultJVMOpts...)
	jargs = append(jargs, strings.Fields(os.Getenv(EnvJavaOpts))...)
	jargs = append(jargs, extra...)
	jargs = append(jargs,
		"-Dlog4j2.configurationFile="+s.path("log4j2.properties"),
		"-Dkafka.logs.dir="+filepath.Join(s.dir, "logs"),
		"-cp", filepath.Join(s.libsDir, "*"), // the java launcher expands dir/*
		class)
	jargs = append(jargs, args...)
	cmd := exec.Command(javaBin(), jargs...)
	cmd.Dir = s.dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	return cmd
}

func javaBin() string {
	if home := os.Getenv("JAVA_HOME"); home != "" {
		if _, err := os.Stat(filepath.Join(home, "bin", "java")); err == nil {
			return filepath.Join(home, "bin", "java")
		}
	}
	return "java"
}

func (s *Server) current() *process {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.proc
}

func (s *Server) clear(p *process) {
	s.mu.Lock()
	if s.proc == p {
		s.proc = nil
	}
	s.mu.Unlock()
}

// stop sends SIGTERM and waits; it reports false if it had to SIGKILL.
func (s *Server) stop() bool {
	p := s.current()
	if p == nil {
		return true
	}
	s.mu.Lock()
	p.termed = true
	s.mu.Unlock()
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
		s.clear(p)
		return true
	case <-time.After(stopTimeout):
		s.kill()
		return false
	}
}

func (s *Server) kill() {
	p := s.current()
	if p == nil {
		return
	}
	s.mu.Lock()
	p.killed = true
	s.mu.Unlock()
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
	s.clear(p)
}

// cleanup kills the broker, unless it is recording the CDS archive, which needs a clean exit.
func (s *Server) cleanup() {
	if p := s.current(); p != nil && p.dump != nil {
		s.stop()
	}
	s.kill()
}

func (s *Server) path(name string) string { return filepath.Join(s.dir, name) }

func (s *Server) stdoutPath() string { return filepath.Join(s.dir, "logs", "stdout.log") }

// logTail returns the last lines of the JVM's stdout/stderr and of server.log, for error messages.
func (s *Server) logTail() string {
	var b strings.Builder
	for _, f := range []string{s.stdoutPath(), s.LogFile()} {
		data, err := os.ReadFile(f)
		if err != nil {
			fmt.Fprintf(&b, "--- %s: %v\n", f, err)
			continue
		}
		fmt.Fprintf(&b, "--- tail of %s:\n%s\n", f, tail(data, 6<<10))
		var errs []string
		for _, l := range strings.Split(string(data), "\n") {
			if strings.Contains(l, "] ERROR ") || strings.Contains(l, "] FATAL ") {
				errs = append(errs, l)
			}
		}
		if len(errs) > 20 {
			errs = errs[:20]
		}
		if len(errs) > 0 {
			fmt.Fprintf(&b, "--- first ERROR lines of %s:\n%s\n", f, strings.Join(errs, "\n"))
		}
	}
	return b.String()
}

func tail(data []byte, n int) []byte {
	if len(data) <= n {
		return data
	}
	data = data[len(data)-n:]
	if i := bytes.IndexByte(data, '\n'); i >= 0 {
		data = data[i+1:]
	}
	return data
}

func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("free port: %w", err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// randomUUID returns a random Kafka Uuid in its base64url form, as StorageTool random-uuid does
// (avoiding a leading '-', which a command line would take for a flag).
func randomUUID() (string, error) {
	for {
		var b [16]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", err
		}
		id := base64.RawURLEncoding.EncodeToString(b[:])
		if id[0] != '-' && !bytes.Equal(b[:8], make([]byte, 8)) { // not a reserved (tiny) id
			return id, nil
		}
	}
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// --- JVM class-data-sharing (CDS) archive ---------------------------------------------------
//
// A dynamic CDS archive of the classes a broker loads cuts JVM startup by about a second. The
// first JVM run against a libs dir (per java binary, jar set and JVM options) records it with
// -XX:ArchiveClassesAtExit when it exits cleanly; an flock keeps concurrent test binaries from
// recording at once, and the file is renamed into place only when complete. A stale or
// mismatched archive is ignored by the JVM (it prints a warning to stdout.log and runs without).

type cdsDump struct {
	tmp, final string
	lock       *os.File
}

// finish moves a complete archive into place (ok) or discards it, and releases the lock.
func (d *cdsDump) finish(ok bool) {
	if d == nil {
		return
	}
	if fi, err := os.Stat(d.tmp); ok && err == nil && fi.Size() > 0 {
		_ = os.Rename(d.tmp, d.final)
	} else {
		_ = os.Remove(d.tmp)
	}
	d.lock.Close() // releases the flock
}

// cdsPath returns the archive path for this libs dir, java binary and JVM options, or "".
func (s *Server) cdsPath() string {
	if os.Getenv(EnvCDS) == "0" {
		return ""
	}
	h := sha256.New()
	java, err := exec.LookPath(javaBin())
	if err != nil {
		return ""
	}
	if real, err := filepath.EvalSymlinks(java); err == nil {
		java = real
	}
	fi, err := os.Stat(java)
	if err != nil {
		return ""
	}
	fmt.Fprintf(h, "%s %d %d\n", java, fi.Size(), fi.ModTime().UnixNano())
	fmt.Fprintln(h, defaultJVMOpts, os.Getenv(EnvJavaOpts))
	jars, _ := filepath.Glob(filepath.Join(s.libsDir, "*.jar"))
	for _, j := range jars {
		if fi, err := os.Stat(j); err == nil {
			fmt.Fprintf(h, "%s %d %d\n", filepath.Base(j), fi.Size(), fi.ModTime().UnixNano())
		}
	}
	return filepath.Join(s.libsDir, ".cds", "kafka-"+hex.EncodeToString(h.Sum(nil))[:16]+".jsa")
}

// cdsUseArgs returns the JVM flag to use an existing archive, if any.
func (s *Server) cdsUseArgs() []string {
	path := s.cdsPath()
	if path == "" {
		return nil
	}
	if _, err := os.Stat(path); err != nil {
		return nil
	}
	return []string{"-XX:SharedArchiveFile=" + path}
}

// cds returns the JVM flags for a broker run: use the archive if it exists, else record it if no
// other process is doing so.
func (s *Server) cds() ([]string, *cdsDump) {
	if args := s.cdsUseArgs(); args != nil {
		return args, nil
	}
	path := s.cdsPath()
	if path == "" || os.MkdirAll(filepath.Dir(path), 0o755) != nil {
		return nil, nil
	}
	lock, err := os.OpenFile(path+".lock", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, nil
	}
	if syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) != nil {
		lock.Close() // someone else is recording it
		return nil, nil
	}
	if _, err := os.Stat(path); err == nil { // recorded while we were looking
		lock.Close()
		return []string{"-XX:SharedArchiveFile=" + path}, nil
	}
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	tmp := fmt.Sprintf("%s.tmp-%d-%s", path, os.Getpid(), hex.EncodeToString(rnd[:]))
	return []string{"-XX:ArchiveClassesAtExit=" + tmp}, &cdsDump{tmp: tmp, final: path, lock: lock}
}
