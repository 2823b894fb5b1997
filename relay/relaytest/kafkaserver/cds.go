package kafkaserver

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
)

// JVM class-data-sharing (CDS) archive.
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
	fmt.Fprintln(h, s.jvm, os.Getenv(EnvJavaOpts))
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
