// Command kafka starts the test harness's real Kafka broker (relay/relaytest/kafkaserver) outside a test,
// with the JVM's own defaults (C2, G1, its own heap) unless -test-jvm, creates topics, writes the broker
// address to -addr-file, and runs until SIGTERM/SIGINT. For scripts/bench/compare.sh only.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing"

	"github.com/relaykit/twilio-relay/relay/relaytest/kafkaserver"
)

// tb is the part of testing.TB that kafkaserver uses; any other method panics (nil embedded TB).
type tb struct {
	testing.TB
	dir      string
	cleanups []func()
}

func (t *tb) Helper()                   {}
func (t *tb) Logf(f string, a ...any)   { fmt.Fprintf(os.Stderr, f+"\n", a...) }
func (t *tb) Log(a ...any)              { fmt.Fprintln(os.Stderr, a...) }
func (t *tb) Errorf(f string, a ...any) { fmt.Fprintf(os.Stderr, "error: "+f+"\n", a...) }
func (t *tb) Fatalf(f string, a ...any) { t.Errorf(f, a...); t.exit() }
func (t *tb) Fatal(a ...any)            { fmt.Fprintln(os.Stderr, a...); t.exit() }
func (t *tb) Skip(a ...any)             { t.Fatal(a...) }
func (t *tb) Cleanup(f func())          { t.cleanups = append(t.cleanups, f) }
func (t *tb) TempDir() string           { return t.dir }
func (t *tb) Context() context.Context  { return context.Background() }
func (t *tb) Name() string              { return "bench-kafka" }
func (t *tb) Failed() bool              { return false }
func (t *tb) exit()                     { t.cleanup(); os.Exit(1) }
func (t *tb) cleanup() {
	for i := len(t.cleanups) - 1; i >= 0; i-- {
		t.cleanups[i]()
	}
	t.cleanups = nil
}

func main() {
	libs := flag.String("libs", os.Getenv(kafkaserver.EnvLibs), "jar directory (scripts/kafka/fetch.sh)")
	topics := flag.String("topics", "", "comma-separated topics to create")
	partitions := flag.Int("partitions", 3, "partitions per topic")
	addrFile := flag.String("addr-file", "", "write the broker address here once ready")
	testJVM := flag.Bool("test-jvm", false, "the tests' quick-starting JVM settings (C1, serial GC, 512 MiB) instead of the JVM's defaults")
	flag.Parse()
	dir, err := os.MkdirTemp("", "bench-kafka-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	t := &tb{dir: dir}
	t.Cleanup(func() { os.RemoveAll(dir) })
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var opts []kafkaserver.Option
	if !*testJVM {
		opts = append(opts, kafkaserver.WithJVMDefaults())
	}
	k := kafkaserver.Start(t, *libs, opts...)
	for _, name := range strings.Split(*topics, ",") {
		if name != "" {
			k.CreateTopic(t, name, *partitions)
		}
	}
	if *addrFile != "" {
		if err := os.WriteFile(*addrFile, []byte(k.Addr()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	fmt.Println(k.Addr())
	<-ctx.Done()
	t.cleanup()
}
