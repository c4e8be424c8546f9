package server_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"net/http/httptest"
	"testing"

	"lode/internal/server"
	"lode/internal/sqlitedb"
	"lode/internal/sqlitetest"
)

// TestReadMeetsLockIs503: in rollback-journal mode a reader cannot start
// while another connection holds the EXCLUSIVE lock; with no busy timeout
// the read fails at once. That is a momentary server state, so it must be a
// 503 with Retry-After and SQLite's code, like the write API's lock
// failures, not a 400 that blames the request.
func TestReadMeetsLockIs503(t *testing.T) {
	path := sqlitetest.WriteFixtures(t, t.TempDir())
	srv, err := server.New(context.Background(), server.Config{Files: []string{path},
		DB: sqlitedb.Settings{JournalMode: "delete", BusyTimeout: sqlitedb.NoBusyTimeout}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)

	other, err := sql.Open("sqlite3", "file:"+path+"?_busy_timeout=0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	conn, err := other.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(context.Background(), "BEGIN EXCLUSIVE"); err != nil {
		t.Fatal(err)
	}
	defer conn.ExecContext(context.Background(), "ROLLBACK")

	status, h, b := get(t, ts.URL, "/fixtures/items.json?_size=1&_nocache="+t.Name())
	var body map[string]any
	if err := json.Unmarshal(b, &body); err != nil {
		t.Fatalf("not JSON: %s", b)
	}
	if status != 503 || body["error"] != "database is locked" || body["code"] != "SQLITE_BUSY" || h.Get("Retry-After") == "" {
		t.Errorf("read during an EXCLUSIVE lock = %d %s (Retry-After %q); want 503 database is locked, code SQLITE_BUSY", status, b, h.Get("Retry-After"))
	}
}
