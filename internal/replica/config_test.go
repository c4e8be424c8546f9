package replica_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"lode/internal/replica"
)

// TestServeConfigRefuses lists the combinations lode serve refuses, each
// with the words its message must contain.
func TestServeConfigRefuses(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name    string
		cfg     replica.ServeConfig
		changed []string
		want    string
	}{
		{"both roles", replica.ServeConfig{Replicate: "file:///a", Follow: "file:///a", Files: []string{"d.db"}, JournalMode: "wal"}, nil, "exclude each other"},
		{"rollback journal", replica.ServeConfig{Replicate: "file:///a", Files: []string{"d.db"}, JournalMode: "delete"}, nil, "needs --journal-mode wal"},
		{"journal keep", replica.ServeConfig{Replicate: "file:///a", Files: []string{"d.db"}, JournalMode: "keep"}, nil, "needs --journal-mode wal"},
		{"two files", replica.ServeConfig{Replicate: "file:///a", Files: []string{"a.db", "b.db"}, JournalMode: "wal"}, nil, "exactly one FILE"},
		{"immutable", replica.ServeConfig{Replicate: "file:///a", Files: []string{"a.db"}, Immutable: []string{"b.db"}, JournalMode: "wal"}, nil, "no -i/--immutable"},
		{"relative file URL", replica.ServeConfig{Replicate: "file://dest", Files: []string{"a.db"}, JournalMode: "wal"}, nil, "three slashes"},
		{"no scheme", replica.ServeConfig{Replicate: "/srv/dest", Files: []string{"a.db"}, JournalMode: "wal"}, nil, "want a URL such as"},
		{"unknown scheme", replica.ServeConfig{Replicate: "gopher://x/y", Files: []string{"a.db"}, JournalMode: "wal"}, nil, "not supported"},
		{"s3 without bucket", replica.ServeConfig{Replicate: "s3:///path", Files: []string{"a.db"}, JournalMode: "wal"}, nil, "name a bucket"},
		{"short interval", replica.ServeConfig{Replicate: "file:///a", SyncInterval: time.Millisecond, Files: []string{"a.db"}, JournalMode: "wal"}, nil, "at least 50ms"},
		{"replica flag on primary", replica.ServeConfig{Replicate: "file:///a", Files: []string{"a.db"}, JournalMode: "wal"}, []string{"primary"}, "replica's flag"},
		{"follow without as", replica.ServeConfig{Follow: "file:///a", FollowDir: dir}, nil, "needs --as NAME"},
		{"as with slash", replica.ServeConfig{Follow: "file:///a", As: "a/b", FollowDir: dir}, nil, "plain name"},
		{"follow with files", replica.ServeConfig{Follow: "file:///a", As: "data", Files: []string{"x.db"}, FollowDir: dir}, nil, "drop the FILE arguments"},
		{"journal mode on replica", replica.ServeConfig{Follow: "file:///a", As: "data", FollowDir: dir}, []string{"journal-mode"}, "does not apply to a replica"},
		{"writer on replica", replica.ServeConfig{Follow: "file:///a", As: "data", FollowDir: dir}, []string{"writer"}, "does not apply to a replica"},
		{"sync interval on replica", replica.ServeConfig{Follow: "file:///a", As: "data", FollowDir: dir}, []string{"sync-interval"}, "primary's flag"},
		{"bad primary", replica.ServeConfig{Follow: "file:///a", As: "data", FollowDir: dir, Primary: "primary:8001"}, nil, "base URL"},
		{"primary with path", replica.ServeConfig{Follow: "file:///a", As: "data", FollowDir: dir, Primary: "http://p:8001/data"}, nil, "without a path"},
		{"bad primary mode", replica.ServeConfig{Follow: "file:///a", As: "data", FollowDir: dir, Primary: "http://p:8001", PrimaryMode: "teleport"}, nil, "want proxy"},
		{"missing follow dir", replica.ServeConfig{Follow: "file:///a", As: "data", FollowDir: filepath.Join(dir, "nope")}, nil, "not a directory"},
		{"replica flags alone", replica.ServeConfig{Files: []string{"a.db"}}, []string{"as"}, "applies only with --replicate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.cfg
			c.Changed = func(f string) bool {
				for _, x := range tc.changed {
					if x == f {
						return true
					}
				}
				return false
			}
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Validate() = %v; want an error containing %q", err, tc.want)
			}
		})
	}
	ok := []replica.ServeConfig{
		{Replicate: "file:///srv/x", Files: []string{"a.db"}, JournalMode: "wal"},
		{Replicate: "s3://bucket/data?endpoint=http://127.0.0.1:9000&force-path-style=true", Files: []string{"a.db"}, JournalMode: "WAL"},
		{Follow: "file:///srv/x", As: "data", FollowDir: dir, Primary: "http://primary:8001", PrimaryMode: "redirect"},
		{Files: []string{"a.db"}, JournalMode: "delete"},
	}
	for _, c := range ok {
		if err := c.Validate(); err != nil {
			t.Errorf("Validate(%+v) = %v; want nil", c, err)
		}
	}
}

// TestStatusEndpoint serves /-/replication.json from a status file: 200
// while fresh and ready, 503 with the reason when stale, not ready or
// missing; a primary's other requests pass through.
func TestStatusEndpoint(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "data.db")
	cfg := replica.ServeConfig{Replicate: "file:///srv/x", Files: []string{db}, JournalMode: "wal"}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	h := replica.NewHandler(next, cfg)
	get := func() (int, map[string]any) {
		rec := httptest.NewRecorder()
		h.StatusHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, replica.StatusEndpoint, nil))
		var m map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
			t.Fatalf("status body %q: %v", rec.Body, err)
		}
		return rec.Code, m
	}
	if code, m := get(); code != http.StatusServiceUnavailable || !strings.Contains(m["error"].(string), "has not started") {
		t.Errorf("without a status file: %d %v", code, m)
	}
	write := func(st replica.Status) {
		b, _ := json.Marshal(st)
		if err := os.WriteFile(replica.StatusPath(db), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(replica.Status{Role: "primary", Ready: true, TXID: 7, ReplicatedTXID: 7, PID: 42, Updated: time.Now()})
	if code, m := get(); code != http.StatusOK || m["ok"] != true || m["txid"] != 7.0 {
		t.Errorf("fresh status: %d %v", code, m)
	}
	write(replica.Status{Role: "primary", Ready: true, PID: 42, Updated: time.Now().Add(-time.Minute)})
	if code, m := get(); code != http.StatusServiceUnavailable || !strings.Contains(m["error"].(string), "pid 42) has not reported") {
		t.Errorf("stale status: %d %v", code, m)
	}
	write(replica.Status{Role: "primary", Ready: true, Error: "s3: access denied", Updated: time.Now()})
	if code, m := get(); code != http.StatusServiceUnavailable || m["error"] != "s3: access denied" {
		t.Errorf("status with an error: %d %v", code, m)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/data/t/-/insert", nil))
	if rec.Code != http.StatusTeapot {
		t.Errorf("a primary's write went to %d; want the next handler", rec.Code)
	}
}

// TestServeRefusesOnTheCommandLine runs lode serve with combinations that
// cannot work: each exits non-zero at once with a message naming the fix,
// and a follower never takes over a file it did not create.
func TestServeRefusesOnTheCommandLine(t *testing.T) {
	dir := t.TempDir()
	db := newDB(t, dir)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"serve", db, "--replicate", replica.FileURL(filepath.Join(dir, "d")), "--journal-mode", "delete"}, "needs --journal-mode wal"},
		{[]string{"serve", "--follow", replica.FileURL(filepath.Join(dir, "d")), "--as", "data", "--follow-dir", dir, "--port", "0"}, "is not a replica left by lode serve --follow"},
		{[]string{"serve", "--follow", replica.FileURL(filepath.Join(dir, "d"))}, "needs --as NAME"},
	} {
		out, err := runLode(t, tc.args...)
		if err == nil || !strings.Contains(out, tc.want) {
			t.Errorf("lode %s: %v\n%s\nwant a failure containing %q", strings.Join(tc.args, " "), err, out, tc.want)
		}
	}
}
