package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
)

// The environment variables that hold the admin listener's credentials (admin.auth in config.yaml reads
// the same ones), which the commands that read it send.
const (
	envAdminToken    = "RELAY_ADMIN_TOKEN"
	envAdminUsername = "RELAY_ADMIN_USERNAME"
	envAdminPassword = "RELAY_ADMIN_PASSWORD"
)

// adminGet GETs path from an admin listener and decodes its JSON into v, with the credentials of the
// environment when set: RELAY_ADMIN_TOKEN as a bearer token, else RELAY_ADMIN_USERNAME and
// RELAY_ADMIN_PASSWORD as Basic credentials.
func adminGet(ctx context.Context, c *http.Client, base, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(base, "/")+path, nil)
	if err != nil {
		return err
	}
	setAdminCredentials(req)
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusUnauthorized:
		return fmt.Errorf("GET %s: %s: the admin listener wants credentials: set %s (or %s and %s)", req.URL, resp.Status,
			envAdminToken, envAdminUsername, envAdminPassword)
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("GET %s: %s", req.URL, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("GET %s: %w", req.URL, err)
	}
	return nil
}

// setAdminCredentials puts the environment's admin credentials on req, when set: RELAY_ADMIN_TOKEN as a
// bearer token, else RELAY_ADMIN_USERNAME and RELAY_ADMIN_PASSWORD as Basic credentials.
func setAdminCredentials(req *http.Request) {
	if tok := os.Getenv(envAdminToken); tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	} else if u := os.Getenv(envAdminUsername); u != "" {
		req.SetBasicAuth(u, os.Getenv(envAdminPassword))
	}
}
