package filesink_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/relaykit/twilio-relay/relay"
	"github.com/relaykit/twilio-relay/relay/filesink"
	"github.com/relaykit/twilio-relay/relay/relaytest/checktest"
)

// TestCheck: the file is open while its directory is there.
func TestCheck(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "dl")
	s, err := filesink.New("file", filesink.Config{Path: filepath.Join(dir, "dead.jsonl")})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(t.Context())
	checktest.Want(t, checktest.Run(t, s, "x"), map[string]relay.CheckStatus{"file": relay.CheckPassed})
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	checktest.Want(t, checktest.Run(t, s, "x"), map[string]relay.CheckStatus{"file": relay.CheckFailed})
}
