package kafkaserver_test

import (
	"context"
	"errors"
	"sort"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"

	"github.com/relaykit/twilio-relay/relay/relaytest/kafkaserver"
)

// TestSASL starts a broker WithSASL and produces through its SASL_PLAINTEXT listener with every
// mechanism, as two users; a wrong password and a missing mechanism are refused; the PLAINTEXT
// listener still works without credentials. It also checks CreateTopicWithConfig.
func TestSASL(t *testing.T) {
	t.Parallel()
	libs := kafkaserver.LibsFromEnv(t)
	alice := kafkaserver.User{Name: "alice", Password: "alice-secret"}
	bob := kafkaserver.User{Name: "bob", Password: "bob.s3cret"}
	srv := kafkaserver.Start(t, libs, kafkaserver.WithSASL(alice, bob))
	if srv.SASLAddr() == "" || srv.SASLAddr() == srv.Addr() {
		t.Fatalf("SASLAddr %q, Addr %q: want a second listener", srv.SASLAddr(), srv.Addr())
	}
	const topic = "sasl"
	srv.CreateTopic(t, topic, 1)

	mech := func(t *testing.T, name string, u kafkaserver.User) sasl.Mechanism {
		t.Helper()
		switch name {
		case kafkaserver.MechanismPlain:
			return plain.Mechanism{Username: u.Name, Password: u.Password}
		case kafkaserver.MechanismScramSHA256, kafkaserver.MechanismScramSHA512:
			algo := scram.SHA256
			if name == kafkaserver.MechanismScramSHA512 {
				algo = scram.SHA512
			}
			m, err := scram.Mechanism(algo, u.Name, u.Password)
			if err != nil {
				t.Fatal(err)
			}
			return m
		}
		t.Fatalf("unknown mechanism %s", name)
		return nil
	}
	write := func(m sasl.Mechanism, value string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		tr := &kafka.Transport{SASL: m, DialTimeout: 5 * time.Second}
		defer tr.CloseIdleConnections()
		w := &kafka.Writer{
			Addr: kafka.TCP(srv.SASLAddr()), Topic: topic, Transport: tr,
			RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond, MaxAttempts: 1,
		}
		defer w.Close()
		return w.WriteMessages(ctx, kafka.Message{Value: []byte(value)})
	}

	var want []string
	for _, name := range []string{kafkaserver.MechanismPlain, kafkaserver.MechanismScramSHA256, kafkaserver.MechanismScramSHA512} {
		for _, u := range []kafkaserver.User{alice, bob} {
			value := name + "/" + u.Name
			if err := write(mech(t, name, u), value); err != nil {
				t.Errorf("%s as %s: %v", name, u.Name, err)
				continue
			}
			want = append(want, value)
		}
		wrong := kafkaserver.User{Name: alice.Name, Password: "wrong"}
		if err := write(mech(t, name, wrong), "wrong password"); err == nil {
			t.Errorf("%s with a wrong password: write succeeded", name)
		} else {
			t.Logf("%s with a wrong password: %v", name, err)
		}
	}
	if err := write(nil, "no SASL on the SASL listener"); err == nil {
		t.Error("write without SASL to the SASL listener succeeded")
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	// CreateTopicWithConfig applies topic configuration: this topic refuses a 4 KB record.
	srv.CreateTopicWithConfig(t, "limited", 1, map[string]string{"max.message.bytes": "1024"})
	w := &kafka.Writer{Addr: kafka.TCP(srv.Addr()), Topic: "limited", RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond, MaxAttempts: 1}
	err := w.WriteMessages(ctx, kafka.Message{Value: make([]byte, 4096)})
	w.Close()
	var we kafka.WriteErrors
	if !errors.As(err, &we) || len(we) != 1 || !errors.Is(we[0], kafka.MessageSizeTooLarge) {
		t.Errorf("4 KB record to a topic with max.message.bytes=1024: %v, want MessageSizeTooLarge", err)
	}

	produce(ctx, t, srv.Addr(), topic, kafka.Message{Value: []byte("plaintext")})
	want = append(want, "plaintext")
	wantValues(t, consumeGroup(ctx, t, srv.Addr(), topic, "sasl-check", len(want)), sortedCopy(want)...)
}

// TestWithSASLRejectsUnquotableCredentials checks that Start refuses credentials it could not
// write into server.properties and StorageTool's arguments without quoting.
func TestWithSASLRejectsUnquotableCredentials(t *testing.T) {
	t.Parallel()
	libs := kafkaserver.LibsFromEnv(t)
	for _, u := range []kafkaserver.User{{Name: "al ice", Password: "x"}, {Name: "alice", Password: `p"w`}, {Name: "", Password: "x"}} {
		ft := &fatalTB{TB: t}
		done := make(chan struct{})
		go func() {
			defer close(done)
			kafkaserver.Start(ft, libs, kafkaserver.WithSASL(u))
		}()
		<-done
		if ft.msg == "" {
			t.Errorf("Start WithSASL(%+v) succeeded", u)
		}
	}
}

func sortedCopy(s []string) []string {
	c := append([]string(nil), s...)
	sort.Strings(c)
	return c
}
