// Command ocibuild writes a container image as a tarball that `docker load` and `ctr images import` read,
// without a Docker daemon and without pulling a base image: one layer holding the given files on nothing
// (like FROM scratch), and the image configuration from flags. The layer's files belong to root, carry
// one fixed time (SOURCE_DATE_EPOCH, else 0), and are written in sorted order, so that the same inputs
// give the same image digest.
//
//	ocibuild -binary out/relay -entrypoint /relay -cmd serve \
//	  -file config.yaml:/etc/relay/config.yaml -file /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt \
//	  -dir /tmp:1777 -env RELAY_CONFIG=/etc/relay/config.yaml -user 65532:65532 -expose 8080/tcp \
//	  -tag ghcr.io/relaykit/twilio-relay:0.1.0 -platform linux/amd64 -o relay.tar
//
// A pause image for a test cluster is `ocibuild -binary pause -tag local/pause:1 -o pause.tar`.
// scripts/image.sh documents the relay's image; ocibuild/inspect reads a tarball back.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// list is a repeatable string flag.
type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(v string) error { *l = append(*l, v); return nil }

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "ocibuild:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("ocibuild", flag.ContinueOnError)
	var files, dirs, env, labels, expose list
	binary := fs.String("binary", "", "the executable, stored at the entrypoint's first element with mode 0755")
	entrypoint := fs.String("entrypoint", "", `entrypoint: a JSON array (["/relay"]) or one path; default "/" + the binary's name`)
	cmd := fs.String("cmd", "", `default arguments: a JSON array (["serve"]) or one word`)
	fs.Var(&files, "file", "SRC:DST[:MODE] a file to add (mode in octal, default 0644); repeatable")
	fs.Var(&dirs, "dir", "DST:MODE an empty directory (e.g. /tmp:1777); repeatable")
	fs.Var(&env, "env", "NAME=VALUE in the image's environment; repeatable")
	fs.Var(&labels, "label", "KEY=VALUE image label; repeatable")
	fs.Var(&expose, "expose", "PORT/PROTO exposed port (8080/tcp); repeatable")
	user := fs.String("user", "", "user the entrypoint runs as (UID:GID)")
	workdir := fs.String("workdir", "", "working directory")
	tag := fs.String("tag", "", "image reference written into the tarball (registry/repo:tag); required")
	platform := fs.String("platform", "linux/"+runtime.GOARCH, "OS/ARCH[/VARIANT] of the binary")
	out := fs.String("o", "", "output tarball; required")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *binary == "" || *tag == "" || *out == "" || fs.NArg() > 0 {
		return errors.New("usage: ocibuild -binary FILE -tag REF -o FILE [flags] (ocibuild -h)")
	}
	ref, err := name.NewTag(*tag, name.StrictValidation)
	if err != nil {
		return fmt.Errorf("-tag: %w", err)
	}
	plat, err := v1.ParsePlatform(*platform)
	if err != nil {
		return fmt.Errorf("-platform: %w", err)
	}
	ep, err := argv("entrypoint", *entrypoint, "/"+path.Base(*binary))
	if err != nil {
		return err
	}
	cmdv, err := argv("cmd", *cmd, "")
	if err != nil {
		return err
	}
	created, err := sourceDate()
	if err != nil {
		return err
	}
	entries := []entry{{src: *binary, dst: ep[0], mode: 0o755}}
	for _, f := range files {
		e, err := fileEntry(f)
		if err != nil {
			return err
		}
		entries = append(entries, e)
	}
	for _, d := range dirs {
		e, err := dirEntry(d)
		if err != nil {
			return err
		}
		entries = append(entries, e)
	}
	layer, err := buildLayer(entries, created)
	if err != nil {
		return err
	}
	cfg := v1.Config{Entrypoint: ep, Cmd: cmdv, Env: env, User: *user, WorkingDir: *workdir}
	if cfg.Labels, err = keyValues("label", labels); err != nil {
		return err
	}
	if len(expose) > 0 {
		cfg.ExposedPorts = map[string]struct{}{}
		for _, p := range expose {
			cfg.ExposedPorts[p] = struct{}{}
		}
	}
	for _, e := range env {
		if !strings.Contains(e, "=") {
			return fmt.Errorf("-env %q: want NAME=VALUE", e)
		}
	}
	img, err := image(layer, cfg, *plat, created, strings.Join(os.Args, " "))
	if err != nil {
		return err
	}
	return tarball.WriteToFile(*out, ref, img)
}

// image puts the layer on an empty base and sets the configuration.
func image(layer v1.Layer, cfg v1.Config, plat v1.Platform, created time.Time, by string) (v1.Image, error) {
	img, err := mutate.Append(empty.Image, mutate.Addendum{
		Layer:   layer,
		History: v1.History{Created: v1.Time{Time: created}, CreatedBy: by, Comment: "ocibuild"},
	})
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Variant = plat.OS, plat.Architecture, plat.Variant
	cf.Created = v1.Time{Time: created}
	cf.Config = cfg
	return mutate.ConfigFile(img, cf)
}

// argv reads an entrypoint or cmd flag: a JSON array, one word, or def when empty.
func argv(flagName, v, def string) ([]string, error) {
	switch {
	case v == "" && def == "":
		return nil, nil
	case v == "":
		return []string{def}, nil
	case strings.HasPrefix(v, "["):
		var out []string
		if err := json.Unmarshal([]byte(v), &out); err != nil || len(out) == 0 {
			return nil, fmt.Errorf("-%s %s: want a non-empty JSON array of strings", flagName, v)
		}
		return out, nil
	}
	return []string{v}, nil
}

func keyValues(flagName string, kvs []string) (map[string]string, error) {
	if len(kvs) == 0 {
		return nil, nil
	}
	m := map[string]string{}
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("-%s %q: want KEY=VALUE", flagName, kv)
		}
		m[k] = v
	}
	return m, nil
}

func fileEntry(spec string) (entry, error) {
	parts := strings.Split(spec, ":")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || !path.IsAbs(parts[1]) {
		return entry{}, fmt.Errorf("-file %q: want SRC:/DST[:MODE]", spec)
	}
	e := entry{src: parts[0], dst: parts[1], mode: 0o644}
	if len(parts) == 3 {
		m, err := strconv.ParseUint(parts[2], 8, 32)
		if err != nil {
			return entry{}, fmt.Errorf("-file %q: mode %q is not octal", spec, parts[2])
		}
		e.mode = int64(m)
	}
	return e, nil
}

func dirEntry(spec string) (entry, error) {
	dst, mode, ok := strings.Cut(spec, ":")
	m, err := strconv.ParseUint(mode, 8, 32)
	if !ok || !path.IsAbs(dst) || err != nil {
		return entry{}, fmt.Errorf("-dir %q: want /DST:MODE (mode in octal)", spec)
	}
	return entry{dst: dst, mode: int64(m), dir: true}, nil
}

// sourceDate is the time given to every file and to the image: SOURCE_DATE_EPOCH (seconds), else 0.
func sourceDate() (time.Time, error) {
	s := os.Getenv("SOURCE_DATE_EPOCH")
	if s == "" {
		return time.Unix(0, 0).UTC(), nil
	}
	sec, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH %q: want seconds since 1970", s)
	}
	return time.Unix(sec, 0).UTC(), nil
}
