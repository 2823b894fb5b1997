package kafkaserver

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// allocPorts picks free 127.0.0.1 ports for the node's listeners.
func (s *Server) allocPorts() error {
	nports := 2
	if s.sasl != nil {
		nports = 3
	}
	ports, err := freePorts(nports)
	if err != nil {
		return err
	}
	s.port, s.ctrlPort = ports[0], ports[1]
	if s.sasl != nil {
		s.saslPort = ports[2]
	}
	return nil
}

// voter returns the node's entry in controller.quorum.voters, "id@127.0.0.1:port".
func (s *Server) voter() string { return strconv.Itoa(s.id) + "@" + s.ControllerAddr() }

// defaultProps returns the single-node defaults; a cluster overrides the replication settings
// (see clusterProps) and WithProperty overrides both.
func defaultProps() map[string]string {
	return map[string]string{
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
		// registration until the old one's session expires (default 9s). In a cluster this is
		// also how long the controller takes to fence a killed or paused broker and move its
		// partition leaders and ISRs.
		"broker.session.timeout.ms":      "4000",
		"broker.heartbeat.interval.ms":   "500",
		"num.network.threads":            "2",
		"num.io.threads":                 "4",
		"log.cleaner.dedupe.buffer.size": strconv.Itoa(16 << 20), // default 128 MiB of heap
	}
}

// writeConfig (re)creates the node's data and log dirs and writes server.properties and
// log4j2.properties. voters is the controller.quorum.voters value, the same on every node of a
// quorum; the ports must have been picked (allocPorts) on every node first.
func (s *Server) writeConfig(cfg config, voters string) error {
	for _, d := range []string{"data", "logs"} {
		if err := os.RemoveAll(filepath.Join(s.dir, d)); err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Join(s.dir, d), 0o755); err != nil {
			return err
		}
	}

	props := defaultProps()
	for k, v := range cfg.props {
		props[k] = v
	}
	managed := map[string]string{ // managed keys always win
		"process.roles":                  "broker,controller",
		"node.id":                        strconv.Itoa(s.id),
		"controller.quorum.voters":       voters,
		"listeners":                      "PLAINTEXT://" + s.Addr() + ",CONTROLLER://" + s.ControllerAddr(),
		"advertised.listeners":           "PLAINTEXT://" + s.Addr(),
		"controller.listener.names":      "CONTROLLER",
		"inter.broker.listener.name":     "PLAINTEXT",
		"listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
		"log.dirs":                       filepath.Join(s.dir, "data"),
	}
	s.sasl.addProps(managed, s.SASLAddr())
	for k, v := range managed {
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

// Formatted data dirs, reused within the test binary: StorageTool costs a ~1.5s JVM run, and its
// output (meta.properties + bootstrap.checkpoint) depends neither on the ports, the node id nor the
// replication settings (static voters; bootstrap.checkpoint holds only the feature levels and SCRAM
// credentials), so single nodes and cluster nodes share it. Each
// reuse gets its node.id, the given cluster.id (a fresh one for a single node) and a fresh
// directory.id.
var formatted struct {
	mu    sync.Mutex
	files map[string]map[string][]byte // key -> file name -> content
}

// prepareData formats the node's data dir for cluster clusterID ("" for a fresh random one).
func (s *Server) prepareData(clusterID string) error {
	skip := map[string]bool{
		"node.id": true, "controller.quorum.voters": true, "listeners": true, "advertised.listeners": true, "log.dirs": true,
	}
	for k := range clusterProps(3) { // replication settings: a cluster reuses a single node's format
		skip[k] = true
	}
	key := s.libsDir + "\x00" + formatProps(s.props, skip) +
		"\x00" + strings.Join(s.sasl.formatArgs(), "\x00") // SCRAM users live only in the formatted storage
	data := filepath.Join(s.dir, "data")

	formatted.mu.Lock()
	defer formatted.mu.Unlock()
	if files, ok := formatted.files[key]; ok {
		for name, content := range files {
			if name == "meta.properties" {
				var err error
				if content, err = metaProperties(content, s.id, clusterID); err != nil {
					return err
				}
			}
			if err := os.WriteFile(filepath.Join(data, name), content, 0o644); err != nil {
				return err
			}
		}
		return nil
	}

	if err := s.format(clusterID); err != nil {
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
	if _, err := metaProperties(files["meta.properties"], s.id, clusterID); err != nil || files["bootstrap.checkpoint"] == nil {
		return nil
	}
	if formatted.files == nil {
		formatted.files = map[string]map[string][]byte{}
	}
	formatted.files[key] = files
	return nil
}

// metaProperties rewrites a formatted meta.properties for node nodeID of cluster clusterID (a
// fresh random cluster id if ""), with a fresh directory.id.
func metaProperties(b []byte, nodeID int, clusterID string) ([]byte, error) {
	lines := strings.Split(string(b), "\n")
	found := 0
	for i, l := range lines {
		k, _, ok := strings.Cut(l, "=")
		if !ok {
			continue
		}
		var v string
		switch k {
		case "node.id":
			v = strconv.Itoa(nodeID)
		case "cluster.id":
			v = clusterID
		case "directory.id":
		default:
			continue
		}
		if v == "" {
			id, err := randomUUID()
			if err != nil {
				return nil, err
			}
			v = id
		}
		lines[i] = k + "=" + v
		found++
	}
	if found != 3 {
		return nil, fmt.Errorf("unexpected meta.properties from StorageTool format:\n%s", b)
	}
	return []byte(strings.Join(lines, "\n")), nil
}

// format runs kafka.tools.StorageTool format on the data dir, for cluster clusterID ("" for a
// fresh random one).
//
// The quorum is static (controller.quorum.voters lists every voter, kraft.version 0), so format
// takes no quorum flag: Kafka 4.1 refuses --standalone and --initial-controllers together with
// controller.quorum.voters ("If you want to use dynamic quorum, please remove
// controller.quorum.voters"). A dynamic quorum would need controller.quorum.bootstrap.servers and
// every node formatted with --initial-controllers naming each voter's directory id, which would
// tie the formatted files to the ports and directory ids and defeat the reuse above; a static quorum
// only needs every node formatted with the same cluster id.
func (s *Server) format(clusterID string) error {
	if clusterID == "" {
		var err error
		if clusterID, err = randomUUID(); err != nil {
			return err
		}
	}
	args := append([]string{"format", "-t", clusterID, "-c", s.path("server.properties")}, s.sasl.formatArgs()...)
	cmd := s.javaCmd(s.cdsUseArgs(), "kafka.tools.StorageTool", args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("StorageTool format: %v\n%s", err, tail(out.Bytes(), 8<<10))
	}
	return nil
}

func (s *Server) path(name string) string { return filepath.Join(s.dir, name) }

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
