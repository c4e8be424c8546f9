package sqlitedb

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
)

// writeFTS5File writes a database whose schema declares an FTS5 table
// without creating it, through writable_schema, so that a build without
// FTS5 can write it too.
func writeFTS5File(tb testing.TB) string {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "fts.db")
	raw, err := sql.Open("sqlite3", "file:"+path+"?mode=rwc")
	if err != nil {
		tb.Fatal(err)
	}
	defer raw.Close()
	for _, q := range []string{
		"CREATE TABLE docs (id integer primary key, body text)",
		"PRAGMA writable_schema = ON",
		`INSERT INTO sqlite_master (type, name, tbl_name, rootpage, sql) VALUES ('table', 'docs_fts', 'docs_fts', 0, 'CREATE VIRTUAL TABLE docs_fts USING fts5(body)')`,
	} {
		if _, err := raw.Exec(q); err != nil {
			tb.Fatalf("%s: %v", q, err)
		}
	}
	return path
}

// TestCheckModules: a schema with an FTS5 table is refused, with the fix,
// only by a build without FTS5; other schemas never ask.
func TestCheckModules(t *testing.T) {
	fts := &Schema{Tables: []*Table{
		{Name: "docs", SQL: "CREATE TABLE docs (id integer primary key, body text)"},
		{Name: "docs_fts", Virtual: true, SQL: `CREATE VIRTUAL TABLE "docs_fts" USING FTS5 (body, content="docs")`},
	}}
	err := checkModules(fts, func() bool { return false })
	want := `table "docs_fts" uses FTS5; this build of Lode lacks it: build with -tags sqlite_fts5`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("checkModules without FTS5 = %v; want %q", err, want)
	}
	if err := checkModules(fts, func() bool { return true }); err != nil {
		t.Errorf("checkModules with FTS5 = %v; want nil", err)
	}
	fts4 := &Schema{Tables: []*Table{{Name: "f", Virtual: true, SQL: "CREATE VIRTUAL TABLE f USING fts4(body)"}}}
	if err := checkModules(fts4, func() bool { t.Error("asked for FTS5 without an FTS5 table"); return false }); err != nil {
		t.Errorf("checkModules(FTS4) = %v; want nil", err)
	}
}

// TestOpenFTS5 opens a database with an FTS5 table: it works in a build
// with FTS5 and is refused at Open, with the fix, in one without.
func TestOpenFTS5(t *testing.T) {
	lib, err := LibraryInfo()
	if err != nil {
		t.Fatal(err)
	}
	path := writeFTS5File(t)
	db, err := Open(context.Background(), path, Settings{})
	if lib.FTS5 {
		if err != nil {
			t.Fatalf("Open with FTS5 compiled in: %v", err)
		}
		db.Close()
		return
	}
	if err == nil {
		db.Close()
		t.Fatal("Open of an FTS5 database in a build without FTS5 succeeded")
	}
	if !strings.Contains(err.Error(), "build with -tags sqlite_fts5") {
		t.Errorf("Open = %v; want the build tag named", err)
	}
}

// TestLibraryInfo: the bundled SQLite reports a version, compile options,
// and FTS5 exactly when the build tag is set (see fts5tag*_test.go).
func TestLibraryInfo(t *testing.T) {
	lib, err := LibraryInfo()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(lib.Version, "3.") || lib.SourceID == "" || len(lib.CompileOptions) == 0 {
		t.Errorf("LibraryInfo = %+v; want a 3.x version, a source id and compile options", lib)
	}
	if lib.FTS5 != buildTagFTS5 {
		t.Errorf("LibraryInfo().FTS5 = %v; the sqlite_fts5 build tag is %v", lib.FTS5, buildTagFTS5)
	}
}
