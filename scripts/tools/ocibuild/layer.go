package main

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// entry is one file or directory of the layer.
type entry struct {
	src  string // file on this machine; empty for a directory
	dst  string // absolute path in the image
	mode int64  // permission bits, with the sticky bit for /tmp
	dir  bool
}

// buildLayer writes the entries, and every parent directory they need (0755), into one tar layer. All
// of it belongs to root and carries the time given.
func buildLayer(entries []entry, modTime time.Time) (v1.Layer, error) {
	byPath := map[string]entry{}
	for _, e := range entries {
		p := strings.TrimPrefix(path.Clean(e.dst), "/")
		if p == "" || p == "." {
			return nil, fmt.Errorf("%q: not a path below /", e.dst)
		}
		if _, ok := byPath[p]; ok {
			return nil, fmt.Errorf("/%s is given twice", p)
		}
		byPath[p] = e
	}
	for p := range byPath { // parents not given: 0755
		for dir := path.Dir(p); dir != "."; dir = path.Dir(dir) {
			if e, ok := byPath[dir]; ok && !e.dir {
				return nil, fmt.Errorf("/%s is a file and a directory", dir)
			} else if !ok {
				byPath[dir] = entry{dst: "/" + dir, mode: 0o755, dir: true}
			}
		}
	}
	paths := make([]string, 0, len(byPath))
	for p := range byPath {
		paths = append(paths, p)
	}
	sort.Strings(paths) // a parent sorts before what it holds
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, p := range paths {
		if err := writeEntry(tw, p, byPath[p], modTime); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	data := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	})
}

func writeEntry(tw *tar.Writer, p string, e entry, modTime time.Time) error {
	hdr := &tar.Header{Name: p, Mode: e.mode, ModTime: modTime, Uname: "root", Gname: "root", Format: tar.FormatPAX}
	if e.dir {
		if e.src != "" {
			return fmt.Errorf("/%s: a directory cannot have a source", p)
		}
		hdr.Typeflag, hdr.Name = tar.TypeDir, p+"/"
		return tw.WriteHeader(hdr)
	}
	data, err := os.ReadFile(e.src)
	if err != nil {
		return err
	}
	hdr.Typeflag, hdr.Size = tar.TypeReg, int64(len(data))
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	_, err = tw.Write(data)
	return err
}
