// Command chartcheck reads the manifests `helm template` rendered for the relay chart and writes what the
// relay container would see, so that scripts/test-chart.sh can run the real `relay check` on it: the
// configuration file from the ConfigMap, and the container's environment (NAME=VALUE lines, with a
// placeholder for every value that comes from a Secret or the downward API).
//
// On the way it checks that the pod is wired to that file: the -config argument and RELAY_CONFIG point
// into the ConfigMap's mount, every secretKeyRef to the chart's own Secret names a key it holds, and
// every *_file path of the configuration is a file some volume mounts, and spool.dir lies on a writable
// volume (the root file system is read-only).
//
//	helm template ... | go run ./scripts/tools/chartcheck -out DIR
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// The parts of the Kubernetes objects chartcheck reads.
type object struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Data map[string]string `yaml:"data"`
	Spec struct {
		Template struct {
			Spec podSpec `yaml:"spec"`
		} `yaml:"template"`
		VolumeClaimTemplates []struct {
			Metadata struct {
				Name string `yaml:"name"`
			} `yaml:"metadata"`
		} `yaml:"volumeClaimTemplates"`
	} `yaml:"spec"`
}

type podSpec struct {
	Containers []container `yaml:"containers"`
	Volumes    []volume    `yaml:"volumes"`
}

type container struct {
	Name         string   `yaml:"name"`
	Args         []string `yaml:"args"`
	Env          []envVar `yaml:"env"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
		ReadOnly  bool   `yaml:"readOnly"`
	} `yaml:"volumeMounts"`
}

type envVar struct {
	Name      string `yaml:"name"`
	Value     string `yaml:"value"`
	ValueFrom *struct {
		SecretKeyRef *struct {
			Name string `yaml:"name"`
			Key  string `yaml:"key"`
		} `yaml:"secretKeyRef"`
		ResourceFieldRef *struct {
			Resource string `yaml:"resource"`
		} `yaml:"resourceFieldRef"`
	} `yaml:"valueFrom"`
}

type volume struct {
	Name      string `yaml:"name"`
	ConfigMap *struct {
		Name string `yaml:"name"`
	} `yaml:"configMap"`
	Secret *struct {
		SecretName string `yaml:"secretName"`
		Items      []struct {
			Key  string `yaml:"key"`
			Path string `yaml:"path"`
		} `yaml:"items"`
	} `yaml:"secret"`
}

func main() {
	out := flag.String("out", "", "directory for config.yaml and env")
	flag.Parse()
	if *out == "" {
		fmt.Fprintln(os.Stderr, "usage: chartcheck -out DIR < manifests.yaml")
		os.Exit(2)
	}
	if err := run(os.Stdin, *out); err != nil {
		fmt.Fprintln(os.Stderr, "chartcheck:", err)
		os.Exit(1)
	}
}

func run(in io.Reader, out string) error {
	objs, err := decodeAll(in)
	if err != nil {
		return err
	}
	var workload *object
	configMaps, secrets := map[string]map[string]string{}, map[string]map[string]string{}
	for i := range objs {
		o := &objs[i]
		switch o.Kind {
		case "Deployment", "StatefulSet":
			if workload != nil {
				return errors.New("more than one Deployment or StatefulSet")
			}
			workload = o
		case "ConfigMap":
			configMaps[o.Metadata.Name] = o.Data
		case "Secret":
			secrets[o.Metadata.Name] = o.Data
		}
	}
	if workload == nil {
		return errors.New("no Deployment or StatefulSet in the manifests")
	}
	pod := workload.Spec.Template.Spec
	var relay *container
	for i := range pod.Containers {
		if pod.Containers[i].Name == "relay" {
			relay = &pod.Containers[i]
		}
	}
	if relay == nil {
		return errors.New("no container named relay")
	}
	vols := pod.Volumes
	for _, c := range workload.Spec.VolumeClaimTemplates {
		vols = append(vols, volume{Name: c.Metadata.Name})
	}
	files, cfg, err := mountedFiles(vols, relay, configMaps)
	if err != nil {
		return err
	}
	configPath, err := configArg(relay)
	if err != nil {
		return err
	}
	data, ok := cfg[configPath]
	if !ok {
		return fmt.Errorf("-config %s is no file of a mounted ConfigMap", configPath)
	}
	env, err := environment(relay.Env, secrets, configPath)
	if err != nil {
		return err
	}
	if err := checkFiles(data, files); err != nil {
		return err
	}
	if err := checkSpool(data, relay); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(out, "config.yaml"), []byte(data), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(out, "env"), []byte(strings.Join(env, "\n")+"\n"), 0o644)
}

func decodeAll(in io.Reader) ([]object, error) {
	dec := yaml.NewDecoder(in)
	var objs []object
	for {
		var o object
		err := dec.Decode(&o)
		if errors.Is(err, io.EOF) {
			return objs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("manifests: %w", err)
		}
		if o.Kind != "" {
			objs = append(objs, o)
		}
	}
}

// mountedFiles lists the files the relay container sees through its volume mounts (every ConfigMap and
// Secret file) and, in cfg, the content of every ConfigMap file. vols includes the StatefulSet's volume
// claims, which hold no files yet.
func mountedFiles(vols []volume, c *container, configMaps map[string]map[string]string) (files map[string]bool, cfg map[string]string, err error) {
	byName := map[string]volume{}
	for _, v := range vols {
		byName[v.Name] = v
	}
	files, cfg = map[string]bool{}, map[string]string{}
	for _, m := range c.VolumeMounts {
		v, ok := byName[m.Name]
		if !ok {
			return nil, nil, fmt.Errorf("volumeMount %s names no volume", m.Name)
		}
		switch {
		case v.ConfigMap != nil:
			data, ok := configMaps[v.ConfigMap.Name]
			if !ok {
				return nil, nil, fmt.Errorf("volume %s: ConfigMap %s is not in the manifests", v.Name, v.ConfigMap.Name)
			}
			for k, content := range data {
				cfg[path.Join(m.MountPath, k)] = content
				files[path.Join(m.MountPath, k)] = true
			}
		case v.Secret != nil:
			if len(v.Secret.Items) == 0 {
				// Every key of a Secret chartcheck cannot see: any file under the mount.
				files[m.MountPath+"/*"] = true
			}
			for _, it := range v.Secret.Items {
				files[path.Join(m.MountPath, it.Path)] = true
			}
		}
	}
	return files, cfg, nil
}

// configArg returns the file `relay serve -config FILE` reads.
func configArg(c *container) (string, error) {
	for i, a := range c.Args {
		if a == "-config" && i+1 < len(c.Args) {
			return c.Args[i+1], nil
		}
	}
	return "", fmt.Errorf("relay container args %q have no -config FILE", c.Args)
}

// environment returns the container's environment as NAME=VALUE, with placeholders for values that come
// from Secrets and the downward API.
func environment(vars []envVar, secrets map[string]map[string]string, configPath string) ([]string, error) {
	var env []string
	seen := map[string]bool{}
	for _, e := range vars {
		if seen[e.Name] {
			return nil, fmt.Errorf("env %s is set twice", e.Name)
		}
		seen[e.Name] = true
		value := e.Value
		switch {
		case e.ValueFrom == nil:
		case e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			if own, ok := secrets[ref.Name]; ok {
				if _, ok := own[ref.Key]; !ok {
					return nil, fmt.Errorf("env %s: the chart's Secret %s has no key %s", e.Name, ref.Name, ref.Key)
				}
			}
			value = "placeholder-" + strings.ToLower(strings.ReplaceAll(e.Name, "_", "-"))
		case e.ValueFrom.ResourceFieldRef != nil:
			value = "805306368" // a memory limit in bytes, as the downward API gives it
		default:
			return nil, fmt.Errorf("env %s: unsupported valueFrom", e.Name)
		}
		if strings.ContainsAny(value, "\n\x00") {
			return nil, fmt.Errorf("env %s: value holds a newline", e.Name)
		}
		env = append(env, e.Name+"="+value)
	}
	for _, kv := range env {
		if name, v, _ := strings.Cut(kv, "="); name == "RELAY_CONFIG" && v != configPath {
			return nil, fmt.Errorf("RELAY_CONFIG=%s but -config %s", v, configPath)
		}
	}
	sort.Strings(env)
	return env, nil
}

// checkFiles fails when a *_file value of the configuration is no mounted file.
func checkFiles(data string, files map[string]bool) error {
	var root yaml.Node
	if err := yaml.Unmarshal([]byte(data), &root); err != nil {
		return fmt.Errorf("config.yaml: %w", err)
	}
	var errs []error
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		for i, c := range n.Content {
			if n.Kind == yaml.MappingNode && i%2 == 1 && strings.HasSuffix(n.Content[i-1].Value, "_file") && c.Value != "" {
				if !files[c.Value] && !files[path.Dir(c.Value)+"/*"] {
					errs = append(errs, fmt.Errorf("config.yaml: %s: %s is not a mounted file", n.Content[i-1].Value, c.Value))
				}
			}
			walk(c)
		}
	}
	walk(&root)
	return errors.Join(errs...)
}

// checkSpool fails when spool.dir is set and no writable volume is mounted at or above it.
func checkSpool(data string, c *container) error {
	var cfg struct {
		Spool struct {
			Dir string `yaml:"dir"`
		} `yaml:"spool"`
	}
	if err := yaml.Unmarshal([]byte(data), &cfg); err != nil {
		return fmt.Errorf("config.yaml: %w", err)
	}
	if cfg.Spool.Dir == "" {
		return nil
	}
	for _, m := range c.VolumeMounts {
		if !m.ReadOnly && (cfg.Spool.Dir == m.MountPath || strings.HasPrefix(cfg.Spool.Dir, strings.TrimSuffix(m.MountPath, "/")+"/")) {
			return nil
		}
	}
	return fmt.Errorf("config.yaml: spool.dir %s is on no writable volume", cfg.Spool.Dir)
}
