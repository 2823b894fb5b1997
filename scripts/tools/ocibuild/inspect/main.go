// Command inspect reads an image tarball (as `docker save` or ocibuild writes it) back with
// go-containerregistry and prints what a runtime would see, one fact a line, so that a test can check the
// image without trusting the tool that built it:
//
//	tag ghcr.io/relaykit/twilio-relay:0.1.0
//	platform linux/amd64
//	entrypoint ["/relay"]
//	cmd ["serve"]
//	user 65532:65532
//	env RELAY_CONFIG=/etc/relay/config.yaml
//	label org.opencontainers.image.version=0.1.0
//	expose 8080/tcp
//	file /relay 0755 0:0 <size> sha256:<hex>
//	dir /tmp 1777 0:0
//
// -extract /PATH=FILE copies a file of the image's file system out (repeatable).
//
//	inspect -tag ghcr.io/relaykit/twilio-relay:0.1.0 -extract /relay=out/relay relay.tar
package main

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(v string) error { *l = append(*l, v); return nil }

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "inspect:", err)
		os.Exit(1)
	}
}

func run(args []string, w io.Writer) error {
	fs := flag.NewFlagSet("inspect", flag.ContinueOnError)
	tag := fs.String("tag", "", "the image of the tarball to read (it must carry this tag); required")
	var extract list
	fs.Var(&extract, "extract", "/PATH=FILE: copy a file of the image out; repeatable")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *tag == "" || fs.NArg() != 1 {
		return errors.New("usage: inspect -tag REF [-extract /PATH=FILE]... IMAGE.tar")
	}
	ref, err := name.NewTag(*tag, name.StrictValidation)
	if err != nil {
		return err
	}
	img, err := tarball.ImageFromPath(fs.Arg(0), &ref)
	if err != nil {
		return err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	printConfig(w, ref, cf)
	targets := map[string]string{}
	for _, x := range extract {
		p, file, ok := strings.Cut(x, "=")
		if !ok || !path.IsAbs(p) {
			return fmt.Errorf("-extract %q: want /PATH=FILE", x)
		}
		targets[strings.TrimPrefix(p, "/")] = file
	}
	rc := mutate.Extract(img) // the flattened file system, as a runtime unpacks it
	defer rc.Close()
	if err := walk(w, tar.NewReader(rc), targets); err != nil {
		return err
	}
	for p := range targets {
		return fmt.Errorf("-extract: /%s is not a file of the image", p)
	}
	return nil
}

func printConfig(w io.Writer, ref name.Tag, cf *v1.ConfigFile) {
	c := cf.Config
	fmt.Fprintln(w, "tag", ref.String())
	plat := cf.OS + "/" + cf.Architecture
	if cf.Variant != "" {
		plat += "/" + cf.Variant
	}
	fmt.Fprintln(w, "platform", plat)
	fmt.Fprintln(w, "entrypoint", jsonArray(c.Entrypoint))
	fmt.Fprintln(w, "cmd", jsonArray(c.Cmd))
	fmt.Fprintln(w, "user", c.User)
	if c.WorkingDir != "" {
		fmt.Fprintln(w, "workdir", c.WorkingDir)
	}
	for _, e := range c.Env {
		fmt.Fprintln(w, "env", e)
	}
	for _, k := range sortedKeys(c.Labels) {
		fmt.Fprintf(w, "label %s=%s\n", k, c.Labels[k])
	}
	for _, p := range sortedKeys(c.ExposedPorts) {
		fmt.Fprintln(w, "expose", p)
	}
}

// walk prints every file and directory, and copies out the targets it meets (removing them from the map).
func walk(w io.Writer, tr *tar.Reader, targets map[string]string) error {
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		p := strings.TrimSuffix(strings.TrimPrefix(path.Clean("/"+hdr.Name), "/"), "/")
		owner := fmt.Sprintf("%d:%d", hdr.Uid, hdr.Gid)
		switch hdr.Typeflag {
		case tar.TypeDir:
			fmt.Fprintf(w, "dir /%s %04o %s\n", p, hdr.Mode&0o7777, owner)
		case tar.TypeReg:
			h := sha256.New()
			var sink io.Writer = h
			var out *os.File
			if file, ok := targets[p]; ok {
				if out, err = os.OpenFile(file, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, os.FileMode(hdr.Mode&0o777)); err != nil {
					return err
				}
				sink = io.MultiWriter(h, out)
				delete(targets, p)
			}
			n, err := io.Copy(sink, tr)
			if out != nil {
				if cerr := out.Close(); err == nil {
					err = cerr
				}
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(w, "file /%s %04o %s %d sha256:%x\n", p, hdr.Mode&0o7777, owner, n, h.Sum(nil))
		default:
			fmt.Fprintf(w, "other /%s type %c\n", p, hdr.Typeflag)
		}
	}
}

func jsonArray(v []string) string {
	if v == nil {
		v = []string{}
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
