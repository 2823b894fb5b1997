package kafka

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/relaykit/twilio-relay/relay"
	kafkago "github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol"
	metadataapi "github.com/segmentio/kafka-go/protocol/metadata"
)

// Check connects to a bootstrap broker as the writers do (TLS, SASL), then asks, without writing
// anything: the cluster's brokers, whether each answers at the address it advertises (writes go
// there), and for each topic whether it exists, its partitions, and whether this principal may write to
// it. The broker's own authorizer answers the last question (Metadata's topic authorized operations,
// which need no permission beyond describing the topic); a broker that does not give them is asked for
// its ACLs (DescribeAcls) where this principal may read them, and otherwise the answer is "cannot tell".
func (s *Sink) Check(ctx context.Context, topics []string) []relay.Check {
	pc, addr, err := s.connect(ctx)
	if err != nil {
		return []relay.Check{s.connectFailure(err)}
	}
	defer pc.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = pc.SetDeadline(dl)
	}
	r, err := pc.RoundTrip(&metadataapi.Request{TopicNames: append([]string{}, topics...), IncludeTopicAuthorizedOperations: true})
	if err != nil {
		return []relay.Check{{Name: "connect", Status: relay.CheckDown,
			Detail: fmt.Sprintf("connected to %s, but it did not answer a metadata request: %v", addr, eofMeansClosed(err)),
			Fix:    "if the listener takes SASL, set sasl.mechanism, username and password; else check the broker's log"}}
	}
	md := r.(*metadataapi.Response)
	checks := []relay.Check{{Name: "connect", Status: relay.CheckPassed,
		Detail: fmt.Sprintf("connected to %s as %s (%s): cluster %s, %s", addr, s.principal(), s.security(), md.ClusterID, count(len(md.Brokers), "broker"))}}
	checks = append(checks, s.checkBrokers(ctx, md.Brokers))
	byName := map[string]*metadataapi.ResponseTopic{}
	for i := range md.Topics {
		byName[md.Topics[i].Name] = &md.Topics[i]
	}
	for _, t := range topics {
		checks = append(checks, s.checkTopic(ctx, t, byName[t], md, addr)...)
	}
	return checks
}

// connect opens a connection to the first bootstrap broker that accepts one. An authentication or TLS
// refusal ends the search: another broker of the cluster would refuse the same way.
func (s *Sink) connect(ctx context.Context) (*protocol.Conn, string, error) {
	var errs []error
	for _, b := range s.brokers {
		pc, err := s.dial.dialBroker(ctx, b)
		if err == nil {
			return pc, b, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", b, err))
		if refused(err) != "" {
			break
		}
	}
	return nil, "", errors.Join(errs...)
}

// refused returns what a connection failure says about the configuration ("" when it says nothing: the
// broker did not answer), by the error's type or Kafka error code.
func refused(err error) string {
	var kerr kafkago.Error
	var unknownCA x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var invalid x509.CertificateInvalidError
	var notTLS tls.RecordHeaderError
	switch {
	case errors.As(err, &kerr) && (kerr == kafkago.SASLAuthenticationFailed || kerr == kafkago.IllegalSASLState):
		return "sasl"
	case errors.As(err, &kerr) && kerr == kafkago.UnsupportedSASLMechanism:
		return "mechanism"
	case errors.As(err, &unknownCA), errors.As(err, &hostname), errors.As(err, &invalid):
		return "certificate"
	case errors.As(err, &notTLS):
		return "not-tls"
	}
	return ""
}

func (s *Sink) connectFailure(err error) relay.Check {
	c := relay.Check{Name: "connect", Status: relay.CheckFailed}
	switch refused(err) {
	case "sasl":
		c.Detail = fmt.Sprintf("authentication as %s (SASL %s) refused: %v", s.dial.username, s.dial.mechanism, err)
		c.Fix = "check sasl.username and sasl.password (KAFKA_USERNAME, KAFKA_PASSWORD) and sasl.mechanism against the user the cluster knows"
	case "mechanism":
		c.Detail = fmt.Sprintf("the listener does not enable SASL %s: %v", s.dial.mechanism, err)
		c.Fix = "set sasl.mechanism to one the listener enables (sasl.enabled.mechanisms), or use the listener for this mechanism"
	case "certificate":
		c.Detail = fmt.Sprintf("the broker's certificate is not trusted: %v", err)
		c.Fix = "set tls.ca_file to the CA that signed the brokers' certificates, and tls.server_name when the brokers' names differ from the addresses in brokers"
	case "not-tls":
		c.Detail = fmt.Sprintf("the broker does not speak TLS on this port: %v", err)
		c.Fix = "set tls.enabled: false, or use the brokers' TLS listener port"
	default:
		c.Status = relay.CheckDown
		c.Detail = fmt.Sprintf("no broker answered: %v", err)
		c.Fix = "check brokers (KAFKA_BROKERS) and that they are reachable from here; if that port is a TLS listener set tls.enabled: true"
	}
	return c
}

// principal names the principal the brokers see, as well as the relay can know it.
func (s *Sink) principal() string {
	if s.dial.sasl != nil {
		return "User:" + s.dial.username
	}
	if s.dial.tls != nil && len(s.dial.tls.Certificates) > 0 {
		return "the client certificate's principal"
	}
	return "User:ANONYMOUS"
}

func (s *Sink) security() string {
	var parts []string
	if s.dial.sasl != nil {
		parts = append(parts, "SASL "+s.dial.mechanism)
	} else {
		parts = append(parts, "no SASL")
	}
	if s.dial.tls != nil {
		parts = append(parts, "TLS")
	} else {
		parts = append(parts, "no TLS")
	}
	return strings.Join(parts, ", ")
}

// checkBrokers connects to every broker at the address it advertises, as the writers will.
func (s *Sink) checkBrokers(ctx context.Context, brokers []metadataapi.ResponseBroker) relay.Check {
	errs := make([]error, len(brokers))
	var wg sync.WaitGroup
	for i, b := range brokers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pc, err := s.dial.dialBroker(ctx, advertised(b))
			if err == nil {
				pc.Close()
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	var bad, good []string
	for i, b := range brokers {
		if errs[i] != nil {
			bad = append(bad, fmt.Sprintf("broker %d at %s: %v", b.NodeID, advertised(b), errs[i]))
		} else {
			good = append(good, advertised(b))
		}
	}
	if len(bad) > 0 {
		return relay.Check{Name: "brokers", Status: relay.CheckDown,
			Detail: fmt.Sprintf("%d of %d brokers do not answer at their advertised address (writes to the partitions they lead fail): %s", len(bad), len(brokers), strings.Join(bad, "; ")),
			Fix:    "the brokers' advertised.listeners must name addresses this relay can reach (in Kubernetes, names its network resolves)"}
	}
	return relay.Check{Name: "brokers", Status: relay.CheckPassed,
		Detail: fmt.Sprintf("every broker answers at its advertised address (%s)", strings.Join(good, ", "))}
}

func advertised(b metadataapi.ResponseBroker) string {
	return net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port)))
}

// checkTopic returns the checks of one topic: it exists (and its partitions), and it may be written.
func (s *Sink) checkTopic(ctx context.Context, topic string, t *metadataapi.ResponseTopic, md *metadataapi.Response, addr string) []relay.Check {
	name := "topic " + topic
	if t == nil {
		return []relay.Check{{Name: name, Topic: topic, Status: relay.CheckDown, Detail: "the broker's metadata does not mention it"}}
	}
	switch code := kafkago.Error(t.ErrorCode); {
	case t.ErrorCode == 0:
	case code == kafkago.UnknownTopicOrPartition && s.autoCreate:
		return []relay.Check{{Name: name, Topic: topic, Status: relay.CheckUnknown,
			Detail: "does not exist yet; the first write creates it if the brokers allow it (auto.create.topics.enable)",
			Fix:    "create it to choose its partitions and replication: " + createTopic(addr, topic, md)}}
	case code == kafkago.UnknownTopicOrPartition:
		return []relay.Check{{Name: name, Topic: topic, Status: relay.CheckFailed,
			Detail: fmt.Sprintf("does not exist in cluster %s", md.ClusterID),
			Fix:    "create it (" + createTopic(addr, topic, md) + "), or set allow_auto_topic_creation: true if the brokers allow it; if it does exist, brokers points at another cluster"}}
	case code == kafkago.TopicAuthorizationFailed:
		return []relay.Check{{Name: name, Topic: topic, Status: relay.CheckFailed,
			Detail: fmt.Sprintf("%s may not describe it, and so may not write to it (Kafka hides whether it exists)", s.principal()),
			Fix:    "create it if it is missing, and " + grantWrite(addr, s.principal(), topic)}}
	case code == kafkago.InvalidTopic:
		return []relay.Check{{Name: name, Topic: topic, Status: relay.CheckFailed,
			Detail: "Kafka does not accept this name", Fix: "use a name of letters, digits, '.', '_' and '-' (at most 249)"}}
	default:
		return []relay.Check{{Name: name, Topic: topic, Status: relay.CheckDown, Detail: fmt.Sprintf("metadata error: %v", code)}}
	}
	exists := relay.Check{Name: name, Topic: topic, Status: relay.CheckPassed, Detail: describePartitions(t.Partitions)}
	if leaderless := leaderless(t.Partitions); len(leaderless) > 0 {
		exists.Status = relay.CheckDown
		exists.Detail += fmt.Sprintf("; partitions %v have no leader: writes to them fail until one is elected", leaderless)
		exists.Fix = "check the brokers holding their replicas (kafka-topics.sh --describe --topic " + topic + ")"
	}
	return []relay.Check{exists, s.checkWrite(ctx, topic, t.TopicAuthorizedOperations, addr)}
}

func describePartitions(ps []metadataapi.ResponsePartition) string {
	rf := 0
	if len(ps) > 0 {
		rf = len(ps[0].ReplicaNodes)
	}
	return fmt.Sprintf("exists, %s, replication factor %d", count(len(ps), "partition"), rf)
}

// count is "1 broker", "3 brokers".
func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}

func leaderless(ps []metadataapi.ResponsePartition) []int32 {
	var out []int32
	for _, p := range ps {
		if p.LeaderID < 0 {
			out = append(out, p.PartitionIndex)
		}
	}
	slices.Sort(out)
	return out
}

// createTopic is the command that creates topic with a replication factor the cluster can hold.
func createTopic(addr, topic string, md *metadataapi.Response) string {
	rf := min(3, max(1, len(md.Brokers)))
	return fmt.Sprintf("kafka-topics.sh --bootstrap-server %s --create --topic %s --partitions 3 --replication-factor %d", addr, topic, rf)
}

func grantWrite(addr, principal, topic string) string {
	if !strings.HasPrefix(principal, "User:") {
		principal = "<the relay's principal>"
	}
	return fmt.Sprintf("grant WRITE on it: kafka-acls.sh --bootstrap-server %s --add --allow-principal %s --operation Write --topic %s", addr, principal, topic)
}

// noAuthorizedOperations is what a broker answers for a topic's authorized operations when it does not
// compute them (before Kafka 2.3).
const noAuthorizedOperations = math.MinInt32

// checkWrite tells whether this principal may write to topic, from the authorized operations the broker
// returned, or else from the ACLs.
func (s *Sink) checkWrite(ctx context.Context, topic string, ops int32, addr string) relay.Check {
	c := relay.Check{Name: "write " + topic, Topic: topic}
	if ops == noAuthorizedOperations {
		return s.checkWriteByACLs(ctx, c, addr)
	}
	if ops&(1<<kafkago.ACLOperationTypeWrite) != 0 {
		c.Status, c.Detail = relay.CheckPassed, fmt.Sprintf("%s may write to it (the broker says so)", s.principal())
		return c
	}
	c.Status = relay.CheckFailed
	c.Detail = fmt.Sprintf("%s may not write to it (the broker's authorizer says so): every write is refused", s.principal())
	c.Fix = grantWrite(addr, s.principal(), topic)
	return c
}

// checkWriteByACLs reads the ACLs that apply to the topic, where this principal may read them
// (DescribeAcls needs DESCRIBE on the cluster), and decides as Kafka's authorizer does: a DENY wins, an
// ALLOW for WRITE or ALL grants. With neither, it cannot tell: the principal may be a super user.
func (s *Sink) checkWriteByACLs(ctx context.Context, c relay.Check, addr string) relay.Check {
	res, err := s.client.DescribeACLs(ctx, &kafkago.DescribeACLsRequest{Filter: kafkago.ACLFilter{
		ResourceTypeFilter:        kafkago.ResourceTypeTopic,
		ResourceNameFilter:        c.Topic,
		ResourcePatternTypeFilter: kafkago.PatternTypeMatch,
		Operation:                 kafkago.ACLOperationTypeAny,
		PermissionType:            kafkago.ACLPermissionTypeAny,
	}})
	if err == nil {
		err = res.Error
	}
	switch {
	case errors.Is(err, kafkago.SecurityDisabled):
		c.Status, c.Detail = relay.CheckPassed, "the cluster has no authorizer: every principal may write"
		return c
	case err != nil:
		c.Status = relay.CheckUnknown
		c.Detail = fmt.Sprintf("cannot tell whether %s may write to it: the broker does not say, and its ACLs cannot be read (%v)", s.principal(), err)
		c.Fix = "grant this principal DESCRIBE on the cluster to have this checked, or check the ACLs by hand"
		return c
	}
	switch writeByACLs(res.Resources, s.principal()) {
	case kafkago.ACLPermissionTypeAllow:
		c.Status, c.Detail = relay.CheckPassed, fmt.Sprintf("an ACL lets %s write to it", s.principal())
	case kafkago.ACLPermissionTypeDeny:
		c.Status, c.Detail = relay.CheckFailed, fmt.Sprintf("an ACL denies %s WRITE on it: every write is refused", s.principal())
		c.Fix = "remove the DENY ACL (kafka-acls.sh --list --topic " + c.Topic + ")"
	default:
		c.Status = relay.CheckUnknown
		c.Detail = fmt.Sprintf("no ACL lets %s write to it: writes are refused unless it is a super user", s.principal())
		c.Fix = grantWrite(addr, s.principal(), c.Topic)
	}
	return c
}

// writeByACLs decides WRITE for principal from the ACLs of the topic's resources (literal, prefixed and
// wildcard, as a MATCH filter returns them): Deny when any denies it, Allow when one allows it, else
// Unknown. Hosts are not told apart.
func writeByACLs(resources []kafkago.ACLResource, principal string) kafkago.ACLPermissionType {
	verdict := kafkago.ACLPermissionTypeUnknown
	for _, r := range resources {
		for _, a := range r.ACLs {
			if a.Principal != principal && a.Principal != "User:*" {
				continue
			}
			if a.Operation != kafkago.ACLOperationTypeWrite && a.Operation != kafkago.ACLOperationTypeAll {
				continue
			}
			switch a.PermissionType {
			case kafkago.ACLPermissionTypeDeny:
				return kafkago.ACLPermissionTypeDeny
			case kafkago.ACLPermissionTypeAllow:
				verdict = kafkago.ACLPermissionTypeAllow
			}
		}
	}
	return verdict
}
