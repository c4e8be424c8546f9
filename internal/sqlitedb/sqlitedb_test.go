package sqlitedb_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"lode/internal/sqlitedb"
	"lode/internal/sqlitetest"
)

func TestSettingsApplied(t *testing.T) {
	cases := []sqlitedb.Settings{
		{},
		{JournalMode: "delete", Synchronous: "normal", BusyTimeout: 20 * time.Second, CacheSize: -4000, MmapSize: 1 << 20},
		{JournalMode: "truncate", Synchronous: "off", TxLock: "deferred"},
		{JournalMode: "persist", Synchronous: "full", BusyTimeout: time.Millisecond},
	}
	for _, s := range cases {
		t.Run(s.JournalMode+"/"+s.Synchronous+"/"+s.BusyTimeout.String(), func(t *testing.T) {
			s.Create = true
			db := sqlitetest.MustOpenDBWith(t, filepath.Join(t.TempDir(), "s.db"), s)
			got, err := db.EffectiveSettings(), error(nil)
			if err != nil {
				t.Fatal(err)
			}
			want := db.Settings()
			if got.JournalMode != want.JournalMode || got.Synchronous != want.Synchronous ||
				got.BusyTimeout != want.BusyTimeout || got.MmapSize != want.MmapSize {
				t.Errorf("EffectiveSettings = %+v; want %+v", got, want)
			}
			if s.CacheSize != 0 && got.CacheSize != s.CacheSize {
				t.Errorf("cache_size = %d; want %d", got.CacheSize, s.CacheSize)
			}
			if want.JournalMode == "" || want.ReadConns <= 0 {
				t.Errorf("defaults not filled: %+v", want)
			}
		})
	}
}

func TestSettingsValidate(t *testing.T) {
	for _, s := range []sqlitedb.Settings{
		{JournalMode: "wall"}, {Synchronous: "extra-full"}, {TxLock: "exclusive"}, {BusyTimeout: -time.Second},
	} {
		if err := s.Validate(); err == nil {
			t.Errorf("Validate(%+v) = nil; want error", s)
		}
	}
}

func TestOpenMissingFile(t *testing.T) {
	_, err := sqlitedb.Open(context.Background(), filepath.Join(t.TempDir(), "missing.db"), sqlitedb.Settings{})
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Open(missing) = %v; want ErrNotExist", err)
	}
}

func TestReadPoolIsReadOnly(t *testing.T) {
	db := sqlitetest.MustOpenFixtures(t)
	ctx := context.Background()
	// The pool itself: query_only=1 on every connection.
	var qo int
	if err := db.ReadDB().QueryRowContext(ctx, "PRAGMA query_only").Scan(&qo); err != nil || qo != 1 {
		t.Fatalf("PRAGMA query_only = %d, %v; want 1", qo, err)
	}
	sum := func() [32]byte {
		b, err := os.ReadFile(db.Path)
		if err != nil {
			t.Fatal(err)
		}
		return sha256.Sum256(b)
	}
	before := sum()
	for _, q := range []string{
		"INSERT INTO cities (name) VALUES ('x')",
		"UPDATE cities SET name = 'x'",
		"DELETE FROM cities",
		"DROP TABLE cities",
		"CREATE TABLE t (x)",
		"CREATE TEMP TABLE t (x)",
		"ATTACH DATABASE ':memory:' AS other",
		"PRAGMA journal_mode = delete",
		"PRAGMA query_only = 0",
		"VACUUM INTO '" + filepath.Join(t.TempDir(), "copy.db") + "'",
		"WITH x AS (SELECT 1) INSERT INTO cities (name) SELECT 'y' FROM x",
		"SELECT load_extension('/tmp/nothing')",
		"SELECT fts3_tokenizer('simple')",
	} {
		_, err := db.Query(ctx, q, nil, sqlitedb.QueryOptions{CheckReadOnly: true})
		if err == nil {
			t.Errorf("Query(%q) succeeded; want refusal", q)
		}
		// Also without the statement check: the authorizer and mode=ro alone.
		if _, err := db.Query(ctx, q, nil, sqlitedb.QueryOptions{}); err == nil {
			t.Errorf("Query(%q) without CheckReadOnly succeeded; want refusal", q)
		}
	}
	if sum() != before {
		t.Fatal("database file changed")
	}
	// Reads still work, including read-only PRAGMAs and pragma functions.
	for _, q := range []string{"SELECT count(*) FROM items", "PRAGMA table_info(items)", "SELECT * FROM pragma_table_list", "PRAGMA schema_version"} {
		if _, err := db.Query(ctx, q, nil, sqlitedb.QueryOptions{CheckReadOnly: true}); err != nil {
			t.Errorf("Query(%q) = %v; want success", q, err)
		}
	}
}

func TestTimeLimitInterrupts(t *testing.T) {
	db := sqlitetest.MustOpenFixtures(t)
	ctx := context.Background()
	runaway := "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"
	_, err := db.Query(ctx, runaway, nil, sqlitedb.QueryOptions{TimeLimit: 50 * time.Millisecond})
	if !errors.Is(err, sqlitedb.ErrTimeLimit) {
		t.Fatalf("runaway query error = %v; want ErrTimeLimit", err)
	}
	// The pool keeps answering.
	res, err := db.Query(ctx, "SELECT count(*) FROM items", nil, sqlitedb.QueryOptions{TimeLimit: time.Second})
	if err != nil || res.Rows[0][0] != int64(sqlitetest.ItemsRows) {
		t.Fatalf("count after interrupt = %v, %v", res, err)
	}
	n, ok, err := db.Count(ctx, runaway, nil, 20*time.Millisecond)
	if err != nil || ok {
		t.Fatalf("Count(runaway) = %d, %v, %v; want unknown", n, ok, err)
	}
}

func TestRowCap(t *testing.T) {
	db := sqlitetest.MustOpenFixtures(t)
	res, err := db.Query(context.Background(), "SELECT rowid FROM items", nil, sqlitedb.QueryOptions{MaxRows: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Rows) != 100 || !res.Truncated {
		t.Fatalf("rows = %d, truncated = %v; want 100, true", len(res.Rows), res.Truncated)
	}
	res, err = db.Query(context.Background(), "SELECT id FROM cities", nil, sqlitedb.QueryOptions{MaxRows: 100})
	if err != nil || len(res.Rows) != sqlitetest.CitiesRows || res.Truncated {
		t.Fatalf("cities = %d rows, truncated %v, %v", len(res.Rows), res.Truncated, err)
	}
}

func TestValuesKeepStoredText(t *testing.T) {
	db := sqlitetest.MustOpenFixtures(t)
	for _, prepared := range []bool{false, true} {
		res, err := db.Query(context.Background(), "SELECT created, data, name FROM items WHERE rowid = 100", nil, sqlitedb.QueryOptions{Prepared: prepared})
		if err != nil {
			t.Fatal(err)
		}
		row := res.Rows[0]
		if row[0] != "2024-05-17 10:00:00" {
			t.Errorf("created = %#v; want the stored text", row[0])
		}
		if b, ok := row[1].([]byte); !ok || len(b) != 4 {
			t.Errorf("data = %#v; want 4 bytes", row[1])
		}
		if res.Columns[0] != "created" || res.Columns[2] != "name" {
			t.Errorf("columns = %v", res.Columns)
		}
	}
}

func TestSchema(t *testing.T) {
	db := sqlitetest.MustOpenFixtures(t)
	s, err := db.Schema(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	check := func(name string, f func(*sqlitedb.Table) bool) {
		t.Helper()
		tb := s.Table(name)
		if tb == nil {
			t.Fatalf("table %q missing", name)
		}
		if !f(tb) {
			t.Errorf("table %q: unexpected %+v", name, *tb)
		}
	}
	check("items", func(tb *sqlitedb.Table) bool {
		return tb.HasRowid() && len(tb.PrimaryKeys) == 0 && len(tb.Columns) == 6
	})
	check("cities", func(tb *sqlitedb.Table) bool {
		return len(tb.PrimaryKeys) == 1 && tb.LabelColumn == "name" && len(tb.Incoming) == 1 && tb.Incoming[0].OtherTable == "people"
	})
	check("people", func(tb *sqlitedb.Table) bool {
		return tb.PrimaryKeys[0] == "id" && len(tb.Outgoing) == 1 && tb.Outgoing[0] == sqlitedb.ForeignKey{Column: "city_id", OtherTable: "cities", OtherColumn: "id"}
	})
	check("pairs", func(tb *sqlitedb.Table) bool { return len(tb.PrimaryKeys) == 2 && tb.PrimaryKeys[1] == "b" })
	check("docs", func(tb *sqlitedb.Table) bool { return tb.FTSTable == "docs_fts" && !tb.Hidden })
	check("docs_fts", func(tb *sqlitedb.Table) bool { return tb.Hidden && tb.Virtual && tb.FTSTable == "docs_fts" })
	check("docs_fts_data", func(tb *sqlitedb.Table) bool { return tb.Hidden })
	check("cheap_items", func(tb *sqlitedb.Table) bool { return tb.IsView && len(tb.Columns) == 3 })
	check("ünïcödé", func(tb *sqlitedb.Table) bool { return tb.Columns[1].Name == "ünï col" })

	// A schema change is picked up on refresh. An FTS table's content=
	// may name its table without quotes (Datasette misses that form).
	if _, err := db.WriteDB().Exec("CREATE TABLE added (x); CREATE VIRTUAL TABLE added_fts USING fts4(x, content=added)"); err != nil {
		t.Fatal(err)
	}
	s2, err := db.RefreshSchema(context.Background())
	if err != nil || s2.Table("added") == nil || s2.Version == s.Version {
		t.Fatalf("after CREATE TABLE: %v, %v", s2, err)
	}
	if got := s2.Table("added").FTSTable; got != "added_fts" {
		t.Errorf("added's FTS table = %q; want added_fts (unquoted content=)", got)
	}
}

func TestImmutable(t *testing.T) {
	path := sqlitetest.WriteFixtures(t, t.TempDir())
	db := sqlitetest.MustOpenDBWith(t, path, sqlitedb.Settings{Immutable: true})
	if db.WriteDB() != nil {
		t.Fatal("immutable database has a write connection")
	}
	n, ok, err := db.Count(context.Background(), "SELECT count(*) FROM items", nil, time.Second)
	if err != nil || !ok || n != sqlitetest.ItemsRows {
		t.Fatalf("Count = %d, %v, %v", n, ok, err)
	}
}

// TestNoBusyTimeout shows that NoBusyTimeout really means busy_timeout = 0
// (the zero value means the 5 s default), so `--busy-timeout 0` cells of the
// study fail at once instead of silently waiting.
func TestNoBusyTimeout(t *testing.T) {
	db := sqlitetest.MustOpenDBWith(t, filepath.Join(t.TempDir(), "b.db"),
		sqlitedb.Settings{Create: true, BusyTimeout: sqlitedb.NoBusyTimeout})
	got, err := db.EffectiveSettings(), error(nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.BusyTimeout != 0 {
		t.Errorf("PRAGMA busy_timeout with NoBusyTimeout = %s; want 0", got.BusyTimeout)
	}
}
