package sqlitedb_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"

	"lode/internal/sqlitedb"
	"lode/internal/sqlitetest"
)

// TestReadOnlySeesAnotherWriter opens a WAL file with ReadOnly while a
// separate connection (standing in for a replica's follower) writes it:
// there is no write connection, the journal mode is left alone, new rows
// and new tables are seen, and Litestream's tables are hidden.
func TestReadOnlySeesAnotherWriter(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "r.db")
	w, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.Exec(`PRAGMA journal_mode=wal; CREATE TABLE t (id INTEGER PRIMARY KEY); INSERT INTO t VALUES (1);
		CREATE TABLE _litestream_seq (id INTEGER PRIMARY KEY, seq INTEGER)`); err != nil {
		t.Fatal(err)
	}
	db := sqlitetest.MustOpenDBWith(t, path, sqlitedb.Settings{ReadOnly: true, JournalMode: "delete", SchemaCheckInterval: time.Millisecond})
	if db.WriteDB() != nil || !db.ReadOnly() {
		t.Fatal("a ReadOnly database has a write connection")
	}
	eff, err := db.EffectiveSettings(), error(nil)
	if err != nil {
		t.Fatal(err)
	}
	if eff.JournalMode != "wal" {
		t.Errorf("journal mode %q; ReadOnly must leave the file's wal alone", eff.JournalMode)
	}
	count := func() int {
		var n int
		if err := db.ReadDB().QueryRowContext(ctx, "SELECT count(*) FROM t").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := count(); n != 1 {
		t.Fatalf("count %d; want 1", n)
	}
	if _, err := w.Exec(`INSERT INTO t VALUES (2); CREATE TABLE later (x)`); err != nil {
		t.Fatal(err)
	}
	if n := count(); n != 2 {
		t.Errorf("count after another connection's insert: %d; want 2", n)
	}
	time.Sleep(5 * time.Millisecond) // past SchemaCheckInterval
	sch, err := db.Schema(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if sch.Table("later") == nil {
		t.Error("a table created by another connection is not in the schema after SchemaCheckInterval")
	}
	if tb := sch.Table("_litestream_seq"); tb == nil || !tb.Hidden {
		t.Errorf("_litestream_seq: %+v; want a hidden table", tb)
	}
	if _, err := db.ReadDB().ExecContext(ctx, "INSERT INTO t VALUES (3)"); err == nil {
		t.Error("a ReadOnly database's read connection wrote")
	}
}

// TestAutoCheckpointOff turns the write connection's automatic
// checkpoints off, as lode serve --replicate does.
func TestAutoCheckpointOff(t *testing.T) {
	db := sqlitetest.MustOpenDBWith(t, filepath.Join(t.TempDir(), "a.db"), sqlitedb.Settings{Create: true, AutoCheckpoint: -1})
	var n int
	if err := db.WriteDB().QueryRow("PRAGMA wal_autocheckpoint").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("wal_autocheckpoint = %d; want 0", n)
	}
}
