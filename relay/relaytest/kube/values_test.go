package kube

import (
	"crypto/rand"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// chartValues are the values of the chart that decide what a test must provide: Secrets, SASL, TLS.
type chartValues struct {
	PublicURL string `yaml:"publicUrl"`
	Twilio    struct {
		AuthTokens        []string `yaml:"authTokens"`
		ExistingSecret    string   `yaml:"existingSecret"`
		ExistingSecretKey string   `yaml:"existingSecretKey"`
		BasicAuth         struct {
			Username          string `yaml:"username"`
			Password          string `yaml:"password"`
			ExistingSecret    string `yaml:"existingSecret"`
			ExistingSecretKey string `yaml:"existingSecretKey"`
		} `yaml:"basicAuth"`
	} `yaml:"twilio"`
	Kafka struct {
		SASL struct {
			Mechanism         string `yaml:"mechanism"`
			Username          string `yaml:"username"`
			Password          string `yaml:"password"`
			ExistingSecret    string `yaml:"existingSecret"`
			ExistingSecretKey string `yaml:"existingSecretKey"`
		} `yaml:"sasl"`
		TLS struct {
			Enabled bool `yaml:"enabled"`
		} `yaml:"tls"`
	} `yaml:"kafka"`
}

// readValues reads a values file over base (the chart's defaults), as Helm layers them.
func readValues(t *testing.T, base chartValues, file string) chartValues {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	v := base
	if err := yaml.Unmarshal(b, &v); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return v
}

// nodeValues returns the values the node needs over the release's values v (host network, one pod, the
// local image, free ports, the test broker), and the Secrets v refers to, with fresh credentials: name →
// key → value.
func (r *release) nodeValues(v chartValues) (map[string]any, map[string]map[string]string) {
	e := r.e
	secrets := map[string]map[string]string{}
	put := func(secret, key, value string) {
		if secrets[secret] == nil {
			secrets[secret] = map[string]string{}
		}
		secrets[secret][key] = value
	}
	repo, tag, _ := strings.Cut(e.image, ":")
	kafka := map[string]any{"brokers": []string{e.kafka.Addr()}}
	node := map[string]any{
		"image":        map[string]any{"repository": repo, "tag": tag, "pullPolicy": "Never"},
		"hostNetwork":  true,
		"strategy":     map[string]any{"type": "RollingUpdate", "rollingUpdate": map[string]any{"maxSurge": 0, "maxUnavailable": 1}},
		"replicaCount": 1,
		"autoscaling":  map[string]any{"enabled": false},
		"config": map[string]any{
			"listen": ":" + strconv.Itoa(r.port),
			"admin":  map[string]any{"listen": ":" + strconv.Itoa(r.adminPort)},
		},
		"kafka": kafka,
	}
	if tw := v.Twilio; tw.ExistingSecret != "" {
		put(tw.ExistingSecret, tw.ExistingSecretKey, r.token)
	} else {
		node["twilio"] = map[string]any{"authTokens": []string{r.token}}
	}
	if b := v.Twilio.BasicAuth; b.Username != "" {
		password := b.Password
		if b.ExistingSecret != "" {
			password = "basic-" + randomWord()
			put(b.ExistingSecret, b.ExistingSecretKey, password)
		}
		r.basic = url.UserPassword(b.Username, password)
	}
	if s := v.Kafka.SASL; s.Mechanism != "" {
		kafka["brokers"] = []string{e.kafka.SASLAddr()}
		if s.ExistingSecret != "" {
			put(s.ExistingSecret, s.ExistingSecretKey, e.sasl[s.Username])
		} else {
			kafka["sasl"] = map[string]any{"password": e.sasl[s.Username]}
		}
		r.notes = append(r.notes, "SASL "+s.Mechanism)
	}
	if v.Kafka.TLS.Enabled {
		kafka["tls"] = map[string]any{"enabled": false, "caSecret": map[string]any{"name": ""}, "clientCertSecret": map[string]any{"name": ""}}
		r.notes = append(r.notes, "TLS off (the test broker has no TLS listener)")
	}
	return node, secrets
}

// mergeValues merges src into dst, maps key by key (as Helm merges values files).
func mergeValues(dst, src map[string]any) {
	for k, v := range src {
		if sm, ok := v.(map[string]any); ok {
			if dm, ok := dst[k].(map[string]any); ok {
				mergeValues(dm, sm)
				continue
			}
		}
		dst[k] = v
	}
}

func writeYAML(t *testing.T, v any) string {
	t.Helper()
	b, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "node-values.yaml")
	if err := os.WriteFile(f, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

func freePorts(t *testing.T, n int) []int {
	t.Helper()
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

// randomWord returns 16 random letters and digits: a password the broker's SASL setup accepts.
func randomWord() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}
