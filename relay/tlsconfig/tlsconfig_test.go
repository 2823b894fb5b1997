package tlsconfig_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relaykit/twilio-relay/relay/tlsconfig"
)

// writeCert writes a self-signed certificate and its key as PEM files.
func writeCert(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "relay-test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

func TestClient(t *testing.T) {
	dir := t.TempDir()
	cert, key := writeCert(t, dir)
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		files tlsconfig.Files
		want  string // substring of the error; "" for success
		check func(*tls.Config) bool
	}{
		{"nothing: system roots", tlsconfig.Files{}, "", func(c *tls.Config) bool { return c.RootCAs == nil && c.MinVersion == tls.VersionTLS12 }},
		{"ca and server name", tlsconfig.Files{CAFile: cert, ServerName: "kafka.internal"}, "",
			func(c *tls.Config) bool {
				return c.RootCAs != nil && c.ServerName == "kafka.internal" && !c.InsecureSkipVerify
			}},
		{"client certificate", tlsconfig.Files{CertFile: cert, KeyFile: key}, "", func(c *tls.Config) bool { return len(c.Certificates) == 1 }},
		{"insecure", tlsconfig.Files{InsecureSkipVerify: true}, "", func(c *tls.Config) bool { return c.InsecureSkipVerify }},
		{"missing ca file", tlsconfig.Files{CAFile: filepath.Join(dir, "missing.pem")}, "tls.ca_file: open", nil},
		{"ca file without pem", tlsconfig.Files{CAFile: notPEM}, "tls.ca_file: " + notPEM + " holds no PEM certificate", nil},
		{"bad client certificate", tlsconfig.Files{CertFile: notPEM, KeyFile: notPEM}, "tls: client certificate", nil},
		{"key without certificate", tlsconfig.Files{KeyFile: key}, "tls: client certificate", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := tc.files.Client()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Client: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("Client: error %v, want one containing %q", err, tc.want)
			case tc.check != nil && !tc.check(c):
				t.Fatalf("config %+v", c)
			}
		})
	}
}
