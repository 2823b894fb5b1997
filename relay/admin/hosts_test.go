package admin

import (
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
)

// TestHosts: the admin listener answers requests whose Host is an address, localhost, the machine's name
// or a configured name, and refuses any other (a DNS-rebinding page sends its own name), whatever the
// path.
func TestHosts(t *testing.T) {
	hn, _ := os.Hostname()
	h := New(Config{Hosts: NewHosts(":9090", "relay-admin.ops.svc.cluster.local:9090", "Relay-Admin")})
	for host, want := range map[string]int{
		"127.0.0.1:9090": 200, "10.1.2.3:9090": 200, "[::1]:9090": 200, "[fe80::1]": 200, "localhost:9090": 200,
		"LOCALHOST": 200, hn + ":9090": 200, "relay-admin.ops.svc.cluster.local:9090": 200, "relay-admin": 200,
		"localhost.:9090":       200,
		"attacker.example:9090": 421, "127.0.0.1.attacker.example": 421, "relay-admin.ops.svc.attacker.example": 421,
		"localhost.attacker.example": 421, "": 421,
	} {
		for _, path := range []string{"/healthz", "/metrics", "/nope"} {
			req := httptest.NewRequest(http.MethodGet, path, nil)
			req.Host = host
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if got := rec.Code; (got == http.StatusMisdirectedRequest) != (want == 421) {
				t.Errorf("Host %q %s: %d, want %d", host, path, got, want)
			}
		}
	}
}
