// Package tlsconfig builds the TLS configuration of a client from certificate files: the one loader the
// Kafka, Redis and HTTP sinks' TLS settings share. It uses only the standard library.
package tlsconfig

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
)

// Files names what a client's TLS needs. Every field is optional: without CAFile the system's roots are
// trusted; CertFile and KeyFile, together, are a client certificate.
type Files struct {
	CAFile, CertFile, KeyFile string
	ServerName                string
	// InsecureSkipVerify turns certificate verification off: opt-in, for tests only.
	InsecureSkipVerify bool
}

// Client reads the files and returns the configuration: TLS 1.2 at least. Its errors name the setting
// (tls.ca_file …) and the file.
func (f Files) Client() (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: f.ServerName, InsecureSkipVerify: f.InsecureSkipVerify} //nolint:gosec // opt-in, documented
	if f.CAFile != "" {
		pem, err := os.ReadFile(f.CAFile)
		if err != nil {
			return nil, fmt.Errorf("tls.ca_file: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls.ca_file: %s holds no PEM certificate", f.CAFile)
		}
	}
	if f.CertFile != "" || f.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls: client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}
