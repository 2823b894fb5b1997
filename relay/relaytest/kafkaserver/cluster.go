package kafkaserver

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Cluster is a KRaft cluster of nodes on 127.0.0.1, each a combined broker and controller and
// each a voter of one static controller quorum. With three nodes it survives the loss of one
// node; losing two also loses the controller quorum, so nothing can change leaders or shrink
// ISRs until one comes back.
type Cluster struct {
	// Nodes are the cluster's nodes; Nodes[i] has node id i+1. Each can be stopped, killed,
	// restarted, paused and resumed on its own, and has its own ports, log and data dir.
	Nodes []*Server
}

// clusterProps are a cluster's defaults over the single-node ones (WithProperty overrides them):
// the internal topics (consumer offsets, transaction state, share-group state) and topics created
// without a replication factor get min(n, 3) replicas, and the transaction and share-group state
// topics a min ISR of 2 when they have 3 replicas. The broker-wide min.insync.replicas stays 1 (it
// also governs __consumer_offsets): a default of 2 would make every acks=all produce to a
// replication-factor-1 topic fail, so a test sets it per topic instead.
func clusterProps(n int) map[string]string {
	rf := min(n, 3)
	minISR := 1
	if rf >= 3 {
		minISR = 2
	}
	return map[string]string{
		"default.replication.factor":                       strconv.Itoa(rf),
		"offsets.topic.replication.factor":                 strconv.Itoa(rf),
		"transaction.state.log.replication.factor":         strconv.Itoa(rf),
		"transaction.state.log.min.isr":                    strconv.Itoa(minISR),
		"share.coordinator.state.topic.replication.factor": strconv.Itoa(rf),
		"share.coordinator.state.topic.min.isr":            strconv.Itoa(minISR),
	}
}

// StartCluster starts n nodes (combined broker+controller, all voters of a static KRaft quorum)
// from the jars in libsDir on free 127.0.0.1 ports, each with its data under t.TempDir(). The
// JVMs start in parallel; StartCluster returns once every node is ready (registered and unfenced,
// group coordinator loaded), and kills them all in t.Cleanup. Options apply to every node.
func StartCluster(t testing.TB, libsDir string, n int, opts ...Option) *Cluster {
	t.Helper()
	begin := time.Now()
	if n < 1 {
		t.Fatalf("kafkaserver: StartCluster with %d nodes", n)
	}
	cfg := newConfig(t, libsDir, clusterProps(n), opts)
	c := &Cluster{Nodes: make([]*Server, n)}
	for i := range c.Nodes {
		c.Nodes[i] = &Server{id: i + 1, libsDir: libsDir, dir: t.TempDir(), sasl: cfg.sasl, jvm: cfg.jvmOpts()}
	}
	t.Cleanup(c.cleanup)

	// As in Start, a port taken between picking and binding is retried with fresh ports.
	const attempts = 3
	for attempt := 1; ; attempt++ {
		errs, err := c.start(cfg)
		if err != nil {
			t.Fatalf("kafkaserver: %v", err)
		}
		var msg strings.Builder
		clash := false
		for i, err := range errs {
			if err == nil {
				continue
			}
			logs := c.Nodes[i].logTail()
			clash = clash || strings.Contains(logs, "Address already in use")
			fmt.Fprintf(&msg, "\nnode %d (%s): %v\n%s", c.Nodes[i].id, c.Nodes[i].Addr(), err, logs)
		}
		if msg.Len() == 0 {
			t.Logf("kafkaserver: cluster of %d nodes %s ready in %v", n, c.Bootstrap(), time.Since(begin).Round(time.Millisecond))
			return c
		}
		c.killAll()
		if attempt < attempts && clash {
			t.Logf("kafkaserver: port clash, retrying the cluster with new ports")
			continue
		}
		t.Fatalf("kafkaserver: start cluster:%s", msg.String())
	}
}

// errAborted ends the start of the other nodes once one has failed.
var errAborted = errors.New("start aborted: another node failed")

// start picks every node's ports, writes their configs with the full voter set, formats their
// storage with one cluster id and starts the JVMs in parallel. It returns each node's start
// error: only the nodes that failed on their own, not those aborted because of them. A setup
// error (before any JVM starts) is returned as err.
func (c *Cluster) start(cfg config) (errs []error, err error) {
	voters := make([]string, len(c.Nodes))
	for i, s := range c.Nodes {
		if err := s.allocPorts(); err != nil {
			return nil, err
		}
		voters[i] = s.voter()
	}
	for _, s := range c.Nodes {
		if err := s.writeConfig(cfg, strings.Join(voters, ",")); err != nil {
			return nil, err
		}
	}
	clusterID, err := randomUUID()
	if err != nil {
		return nil, err
	}

	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	errs = make([]error, len(c.Nodes))
	var wg sync.WaitGroup
	for i, s := range c.Nodes {
		wg.Go(func() {
			// The first node to get here runs StorageTool; the others wait for it and reuse its
			// output (see prepareData).
			err := s.prepareData(clusterID)
			if err == nil {
				err = s.launchAndWait(ctx)
			}
			if err != nil && ctx.Err() == nil {
				errs[i] = err
				cancel(errAborted)
			}
		})
	}
	wg.Wait()
	return errs, nil
}

// Bootstrap returns the PLAINTEXT addresses of all nodes, comma-separated
// ("127.0.0.1:p1,127.0.0.1:p2,..."), running or not.
func (c *Cluster) Bootstrap() string {
	addrs := make([]string, len(c.Nodes))
	for i, s := range c.Nodes {
		addrs[i] = s.Addr()
	}
	return strings.Join(addrs, ",")
}

// CreateTopicWithConfig creates a topic with the given number of partitions, replication factor
// and topic-level configuration entries (such as {"min.insync.replicas": "2"}, or nil), and waits
// until, in the metadata of every running node, every partition has a leader and a full ISR of
// replicationFactor replicas, and every partition is online. The replicas' nodes must be running.
func (c *Cluster) CreateTopicWithConfig(t testing.TB, name string, partitions, replicationFactor int, configs map[string]string) {
	t.Helper()
	if replicationFactor < 1 || replicationFactor > len(c.Nodes) {
		t.Fatalf("kafkaserver: create topic %q: replication factor %d in a cluster of %d nodes", name, replicationFactor, len(c.Nodes))
	}
	var addrs []string
	for _, s := range c.Nodes {
		if s.current() != nil {
			addrs = append(addrs, s.Addr())
		}
	}
	if len(addrs) == 0 {
		t.Fatalf("kafkaserver: create topic %q: no node is running", name)
	}
	createTopic(t, addrs, name, partitions, replicationFactor, configs)
}

// cleanup ends every node. A node recording the CDS archive needs a clean exit, which its
// controlled shutdown gets quickly only while the quorum is up, so it is stopped first.
func (c *Cluster) cleanup() {
	for _, s := range c.Nodes {
		if p := s.current(); p != nil && p.dump != nil {
			s.stop()
		}
	}
	c.killAll()
}

func (c *Cluster) killAll() {
	for _, s := range c.Nodes {
		s.kill()
	}
}
