package kafkaserver

import (
	"context"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

// WithAuthorizer turns on KRaft's StandardAuthorizer, with allow.everyone.if.no.acl.found=false. The
// principal of the PLAINTEXT and CONTROLLER listeners, User:ANONYMOUS, is a super user: the harness
// itself (inter-broker and controller traffic, CreateTopic, Grant, reading records back) may do
// everything. The SASL users (WithSASL) may do only what a test grants them with Grant.
func WithAuthorizer() Option {
	return func(c *config) {
		c.props["authorizer.class.name"] = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
		c.props["super.users"] = "User:ANONYMOUS"
		c.props["allow.everyone.if.no.acl.found"] = "false"
	}
}

// ACL allows (or, with Deny, denies) a principal ("User:alice") one operation ("Write", "Describe",
// "Read", "All" …: kafka-go's ACLOperationType names) on a literal topic, or on the cluster when Topic
// is "".
type ACL struct {
	Principal string
	Operation string
	Topic     string
	Deny      bool
}

// Grant creates acls through the PLAINTEXT listener and waits until the broker's authorizer holds them.
func (s *Server) Grant(t testing.TB, acls ...ACL) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), topicTimeout)
	defer cancel()
	client, done := s.client(10 * time.Second)
	defer done()
	entries := make([]kafka.ACLEntry, len(acls))
	for i, a := range acls {
		var op kafka.ACLOperationType
		if err := op.UnmarshalText([]byte(a.Operation)); err != nil {
			t.Fatalf("kafkaserver: Grant: %v", err)
		}
		e := kafka.ACLEntry{ResourceType: kafka.ResourceTypeTopic, ResourceName: a.Topic,
			ResourcePatternType: kafka.PatternTypeLiteral, Principal: a.Principal, Host: "*",
			Operation: op, PermissionType: kafka.ACLPermissionTypeAllow}
		if a.Topic == "" {
			e.ResourceType, e.ResourceName = kafka.ResourceTypeCluster, "kafka-cluster"
		}
		if a.Deny {
			e.PermissionType = kafka.ACLPermissionTypeDeny
		}
		entries[i] = e
	}
	res, err := client.CreateACLs(ctx, &kafka.CreateACLsRequest{ACLs: entries})
	if err == nil {
		for _, e := range res.Errors {
			if e != nil {
				err = e
				break
			}
		}
	}
	if err != nil {
		t.Fatalf("kafkaserver: create ACLs %+v: %v", acls, err)
	}
	for _, e := range entries {
		for !s.hasACL(ctx, client, e) {
			if ctx.Err() != nil {
				t.Fatalf("kafkaserver: ACL %+v not in force after %v", e, topicTimeout)
			}
			sleep(ctx, 50*time.Millisecond)
		}
	}
}

// hasACL reports whether the broker's authorizer holds e.
func (s *Server) hasACL(ctx context.Context, client *kafka.Client, e kafka.ACLEntry) bool {
	res, err := client.DescribeACLs(ctx, &kafka.DescribeACLsRequest{Filter: kafka.ACLFilter{
		ResourceTypeFilter: e.ResourceType, ResourceNameFilter: e.ResourceName,
		ResourcePatternTypeFilter: e.ResourcePatternType, PrincipalFilter: e.Principal, HostFilter: e.Host,
		Operation: e.Operation, PermissionType: e.PermissionType,
	}})
	if err != nil || res.Error != nil {
		return false
	}
	for _, r := range res.Resources {
		if len(r.ACLs) > 0 {
			return true
		}
	}
	return false
}
