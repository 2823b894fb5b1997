package httpsink_test

import (
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/relaykit/twilio-relay/relay"
	"github.com/relaykit/twilio-relay/relay/httpsink"
	"github.com/relaykit/twilio-relay/relay/relaytest/checktest"
)

// TestCheck: OPTIONS on the URL, or GET on health_url, and what each answer means; nothing is posted.
func TestCheck(t *testing.T) {
	t.Parallel()
	var posts atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodPost:
			posts.Add(1)
		case r.URL.Path == "/healthy":
			w.WriteHeader(http.StatusNoContent)
		case r.URL.Path == "/sick":
			w.WriteHeader(http.StatusServiceUnavailable)
		case r.URL.Path == "/private" && r.Header.Get("Authorization") != "Bearer ok":
			w.WriteHeader(http.StatusUnauthorized)
		default:
			w.WriteHeader(http.StatusMethodNotAllowed)
		}
	}))
	defer srv.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String() + "/events"
	ln.Close()

	for _, tc := range []struct {
		name string
		cfg  httpsink.Config
		want relay.CheckStatus
	}{
		{"OPTIONS answered 405", httpsink.Config{URL: srv.URL + "/events"}, relay.CheckPassed},
		{"healthy", httpsink.Config{URL: srv.URL + "/events", HealthURL: srv.URL + "/healthy"}, relay.CheckPassed},
		{"sick", httpsink.Config{URL: srv.URL + "/events", HealthURL: srv.URL + "/sick"}, relay.CheckDown},
		{"no credentials", httpsink.Config{URL: srv.URL + "/private"}, relay.CheckUnknown},
		{"credentials", httpsink.Config{URL: srv.URL + "/private", Headers: map[string]string{"Authorization": "Bearer ok"}}, relay.CheckPassed},
		{"unreachable", httpsink.Config{URL: closed}, relay.CheckDown},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checks := checktest.Run(t, newSink(t, tc.cfg), "events")
			checktest.Want(t, checks, map[string]relay.CheckStatus{"connect": tc.want})
		})
	}
	if n := posts.Load(); n != 0 {
		t.Errorf("the checks posted %d requests", n)
	}
}
