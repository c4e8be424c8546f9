package bench_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"

	"lode/internal/bench"
)

func TestGenerateDemo(t *testing.T) {
	path := filepath.Join(t.TempDir(), "demo.db")
	if err := bench.GenerateDemo(context.Background(), path, 1); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for table, want := range map[string]int{"authors": bench.DemoAuthors, "posts": bench.DemoPosts,
		"accounts": bench.DemoAccounts, "counters": bench.DemoCounters, "events": 0} {
		var n int
		if err := db.QueryRow("SELECT count(*) FROM " + table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != want {
			t.Errorf("count(%s) = %d; want %d", table, n, want)
		}
	}
	var hits int
	if err := db.QueryRow("SELECT count(*) FROM posts_fts WHERE posts_fts MATCH 'sqlite'").Scan(&hits); err != nil {
		t.Fatal(err)
	}
	if hits == 0 || hits == bench.DemoPosts {
		t.Errorf("FTS match 'sqlite' = %d rows; want some but not all", hits)
	}
	rows, err := db.Query("PRAGMA foreign_key_check")
	if err != nil {
		t.Fatal(err)
	}
	if rows.Next() {
		t.Error("foreign_key_check reports violations")
	}
	rows.Close()
	if err := bench.GenerateDemo(context.Background(), path, 1); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("GenerateDemo over an existing file = %v; want an 'already exists' error", err)
	}
}
