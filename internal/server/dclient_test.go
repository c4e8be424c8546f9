package server_test

import (
	"context"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"lode/internal/auth"
	"lode/internal/server"
)

// TestDclient drives Datasette's own command-line client, dclient 0.5a3,
// against Lode over real HTTP: the flows a Datasette user scripts. It runs
// when dclient is installed (LODE_DCLIENT=/path/to/dclient, or dclient on
// PATH) and skips otherwise; it cannot be installed in CI (no PyPI there).
func TestDclient(t *testing.T) {
	bin := os.Getenv("LODE_DCLIENT")
	if bin == "" {
		var err error
		if bin, err = exec.LookPath("dclient"); err != nil {
			t.Skip("dclient not installed (set LODE_DCLIENT to its path)")
		}
	}
	dir := t.TempDir()
	db := copyFile(t, filepath.Join("testdata", "datasette", "edge.db"), dir)
	srv, err := server.New(context.Background(), server.Config{Files: []string{db}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	secret := []byte("dclient-secret")
	api, err := server.NewWriteAPI(srv, server.WriteConfig{Secret: secret, Root: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { api.Close() })
	ts := httptest.NewServer(api)
	t.Cleanup(ts.Close)
	base := ts.URL
	token, err := auth.CreateToken(secret, auth.TokenOptions{Actor: "root"})
	if err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Env = append(os.Environ(), "DATASETTE_URL="+base, "DCLIENT_CONFIG_DIR="+filepath.Join(dir, "dclient"))
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("dclient %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	contains := func(what, out string, want ...string) {
		t.Helper()
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("dclient %s: output lacks %q:\n%.600s", what, w, out)
			}
		}
	}
	contains("databases", run("databases"), "edge")
	contains("tables", run("tables", "-d", "edge"), "items\t250 rows", "secret/x", "ü space")
	contains("schema", run("schema", "-d", "edge"), "CREATE TABLE items (", "CREATE VIRTUAL TABLE notes_fts")
	contains("schema TABLE", run("schema", "-d", "edge", "items"), "CREATE TABLE items (", "category_id INTEGER REFERENCES categories(id)")
	contains("query", run("query", "edge", "select count(*) as n from items where score > 10"), `"n": `)
	contains("rows with filters", run("rows", "edge", "items", "-f", "score", "gt", "13", "--sort-desc", "score", "--limit", "2"), `"id": 131`, `"score": 14.286`)
	contains("rows search", run("rows", "edge", "notes", "--search", "bread"), `"heading": "Shopping"`, `"heading": "Bread"`)
	contains("actor", run("actor", "--token", token), `"id": "root"`)

	data := filepath.Join(dir, "dogs.json")
	if err := os.WriteFile(data, []byte(`[{"id": 1, "name": "Cleo"}, {"id": 2, "name": "Pancakes"}]`), 0o644); err != nil {
		t.Fatal(err)
	}
	run("insert", "edge", "dogs", data, "--json", "--create", "--pk", "id", "--token", token, "--silent")
	contains("rows after insert --create", run("rows", "edge", "dogs"), "Cleo", "Pancakes")
	if err := os.WriteFile(data, []byte(`[{"id": 2, "name": "Pancakes II"}, {"id": 3, "name": "Sam"}]`), 0o644); err != nil {
		t.Fatal(err)
	}
	run("upsert", "edge", "dogs", data, "--json", "--token", token, "--silent")
	out := run("rows", "edge", "dogs")
	contains("rows after upsert", out, "Cleo", "Pancakes II", "Sam")
	run("create-table", "edge", "cats", "--column", "id", "integer", "--column", "name", "text", "--pk", "id", "--token", token)
	contains("schema of a created table", run("schema", "-d", "edge", "cats"), "CREATE TABLE [cats]", "[name] TEXT")
}
