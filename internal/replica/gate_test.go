package replica_test

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"lode/internal/replica"
)

// TestStatusPagesPassTheGate: /-/replication.json and /-/workers.json are
// answered behind lode serve's permission gate like every instance page.
// With view-instance given to root only, an anonymous client gets the
// gate's 403 and root gets the status, on a primary with two workers and
// on a replica running in one process.
func TestStatusPagesPassTheGate(t *testing.T) {
	c := &cluster{dir: t.TempDir()}
	c.dest = filepath.Join(c.dir, "dest")
	c.url = replica.FileURL(c.dest)
	newDB(t, c.dir)
	cfg := filepath.Join(c.dir, "lode.yaml")
	if err := os.WriteFile(cfg, []byte("allow:\n  id: root\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c.primary = startNode(t, "primary", c.dir, "data.db", "--replicate", c.url, "--sync-interval", testSync,
		"--root", "--config", cfg, "--workers", "2")
	c.token = rootToken(t)
	rep := c.follow(t, "replica", "--config", cfg, "--workers", "0")

	get := func(base, path, token string) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, base+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("GET %s: %d, not JSON: %s", path, resp.StatusCode, b)
		}
		return resp.StatusCode, m
	}
	for _, n := range []*node{c.primary, rep} {
		for _, tc := range []struct{ path, key string }{
			{"/-/replication.json", "role"},
			{"/-/workers.json", "workers"},
		} {
			if code, m := get(n.Base, tc.path, ""); code != http.StatusForbidden || m["ok"] != false {
				t.Errorf("%s: anonymous GET %s = %d %v; want the gate's 403", n.name, tc.path, code, m)
			}
			waitFor(t, 30*time.Second, n.name+" "+tc.path+" for root", func() (bool, string) {
				code, m := get(n.Base, tc.path, c.token)
				return code == http.StatusOK && m[tc.key] != nil, ""
			})
		}
		if code, _ := get(n.Base, "/-/workers", c.token); code != http.StatusNotFound {
			t.Errorf("%s: /-/workers (no .json) = %d; want 404", n.name, code)
		}
	}
}
