package kafkaserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/segmentio/kafka-go"
)

type process struct {
	cmd    *exec.Cmd
	done   chan struct{} // closed when the JVM has exited (and any CDS archive is settled)
	err    error         // Wait's result, valid after done is closed
	ready  bool          // waitReady succeeded (guarded by Server.mu)
	termed bool          // SIGTERM was sent by Stop (guarded by Server.mu)
	killed bool          // SIGKILL was sent (guarded by Server.mu)
	dump   *cdsDump      // non-nil if this JVM records the CDS archive at exit
}

// launchAndWait starts the JVM and waits until the broker is ready, fails, or ctx is done.
func (s *Server) launchAndWait(ctx context.Context) error {
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

	if err := s.waitReady(ctx, p); err != nil {
		return err
	}
	s.mu.Lock()
	p.ready = true
	s.mu.Unlock()
	return nil
}

// waitReady polls the broker until its metadata lists itself as a broker (registered and
// unfenced) and names a controller, then until the group coordinator answers OffsetFetch. It
// gives up after readyTimeout or when ctx is done.
func (s *Server) waitReady(ctx context.Context, p *process) error {
	ctx, cancel := context.WithTimeoutCause(ctx, readyTimeout, fmt.Errorf("not ready after %v", readyTimeout))
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
				return fmt.Errorf("broker %v (%s): %v", context.Cause(ctx), what, err)
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
		// In KRaft the metadata's controller is a random live broker (clients cannot reach the
		// controllers), so a single node names itself.
		for _, b := range md.Brokers {
			if b.ID == s.id && md.Controller.Host != "" {
				return nil
			}
		}
		return fmt.Errorf("broker not registered yet (brokers %v, controller %d)", md.Brokers, md.Controller.ID)
	})
	if err != nil {
		return err
	}
	// The first FindCoordinator creates __consumer_offsets (in a cluster, once enough brokers
	// have registered for its replication factor); OffsetFetch succeeds once its partition is
	// loaded.
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
	jargs := append([]string{}, s.jvm...)
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
	// A stopped (paused) JVM keeps the SIGTERM pending until it is continued.
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGCONT)
	select {
	case <-p.done:
		s.clear(p)
		return true
	case <-time.After(stopTimeout):
		s.kill()
		return false
	}
}

// kill sends SIGKILL, which also ends a stopped (paused) process, and waits for the exit.
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

// signalPause sends SIGSTOP (pause) or SIGCONT (!pause) to the running JVM's process group.
func (s *Server) signalPause(pause bool) error {
	p := s.current()
	if p == nil {
		return errors.New("broker is not running")
	}
	sig := syscall.SIGCONT
	if pause {
		sig = syscall.SIGSTOP
	}
	if err := syscall.Kill(-p.cmd.Process.Pid, sig); err != nil {
		return fmt.Errorf("%v: %w", sig, err)
	}
	if pause {
		return waitStopped(p.cmd.Process.Pid, 5*time.Second)
	}
	return nil
}

// waitStopped waits until every thread of the process is stopped. A signal is delivered
// asynchronously: on a loaded machine a JVM thread can still answer a request after kill(2) returned,
// and a test that pauses the broker and then expects no answer would see one. Where /proc cannot tell
// (not Linux), it returns at once.
func waitStopped(pid int, within time.Duration) error {
	tasks := fmt.Sprintf("/proc/%d/task", pid)
	if _, err := os.Stat(tasks); err != nil {
		return nil
	}
	deadline := time.Now().Add(within)
	for {
		running := 0
		stats, _ := filepath.Glob(filepath.Join(tasks, "*", "stat"))
		for _, f := range stats {
			b, err := os.ReadFile(f)
			if i := bytes.LastIndexByte(b, ')'); err == nil && i+2 < len(b) && b[i+2] != 'T' && b[i+2] != 't' {
				running++
			}
		}
		if running == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d threads of process %d still running %v after SIGSTOP", running, pid, within)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// cleanup kills the broker, unless it is recording the CDS archive, which needs a clean exit
// (stop continues a paused JVM; SIGKILL needs no continuing).
func (s *Server) cleanup() {
	if p := s.current(); p != nil && p.dump != nil {
		s.stop()
	}
	s.kill()
}

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
