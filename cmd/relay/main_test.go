package main

import (
	"bytes"
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a running command.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func TestCheck(t *testing.T) {
	var out, errOut bytes.Buffer
	t.Setenv("TWILIO_AUTH_TOKENS", "a-token")
	if err := run(context.Background(), []string{"check", "-config", "../../config.yaml"}, &out, &errOut); err != nil {
		t.Fatalf("the shipped config.yaml does not pass check: %v", err)
	}
	if !strings.Contains(out.String(), "ok (1 endpoints, 1 sinks, 1 routes)") {
		t.Errorf("check said %q", out.String())
	}
	t.Setenv("TWILIO_AUTH_TOKENS", "")
	err := run(context.Background(), []string{"check", "-config", "../../config.yaml"}, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "endpoints[0].auth_tokens: at least one auth token is required") {
		t.Fatalf("check with no token: %v", err)
	}
	if err := run(context.Background(), []string{"check", "-config", "does-not-exist.yaml"}, &out, &errOut); err == nil {
		t.Fatal("check of a missing file succeeded")
	}
}

func TestVersionAndUsage(t *testing.T) {
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"version"}, &out, &errOut); err != nil || out.String() != "relay dev\n" {
		t.Fatalf("version: %q, %v", out.String(), err)
	}
	if err := run(context.Background(), []string{"frobnicate"}, &out, &errOut); err == nil || !strings.Contains(errOut.String(), "Usage:") {
		t.Fatalf("unknown command: %v, stderr %q", err, errOut.String())
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestDevAndSend runs `relay dev` (the newcomer's first run) and plays Twilio against it with
// `relay send`: the samples reach the in-memory broker, and a duplicate is answered 200 without a record.
func TestDevAndSend(t *testing.T) {
	listen, admin := freePort(t), freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errOut syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"dev", "-config", "../../config.yaml", "-listen", listen, "-admin", admin}, &out, &errOut)
	}()
	records := func() int { return strings.Count(out.String(), "── topic=twilio.events") }
	deadline := time.Now().Add(30 * time.Second)
	for records() < 6 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if n := records(); n != 6 {
		t.Fatalf("dev printed %d records of the 6 samples\nstdout:\n%s\nstderr:\n%s", n, out.String(), errOut.String())
	}
	if !strings.Contains(out.String(), "NOT DURABLE") {
		t.Error("dev does not say its broker is not durable")
	}

	var sendOut, sendErr bytes.Buffer
	url := "http://" + listen + "/twilio/events"
	err := run(ctx, []string{"send", "-url", url, "-token", devToken, "-sample", "message-delivered", "-unique", "-duplicates", "1", "-concurrent-duplicates", "3"}, &sendOut, &sendErr)
	if err != nil {
		t.Fatalf("send: %v\n%s%s", err, sendOut.String(), sendErr.String())
	}
	if got := strings.Count(sendOut.String(), `"duplicates":1`); got != 4 {
		t.Errorf("send output has %d duplicate answers, want 4:\n%s", got, sendOut.String())
	}
	deadline = time.Now().Add(10 * time.Second)
	for records() < 7 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // a duplicate record, if any, would show up meanwhile
	if n := records(); n != 7 {
		t.Fatalf("after one fresh event sent 5 times: %d records, want 7", n)
	}
	// A wrong token: send reports the failure.
	sendOut.Reset()
	if err := run(ctx, []string{"send", "-url", url, "-token", "wrong", "-sample", "task-created"}, &sendOut, &sendErr); err == nil ||
		!strings.Contains(sendOut.String(), "503") {
		t.Fatalf("send with a wrong token: %v, %s", err, sendOut.String())
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("dev exited with %v", err)
	}
}
