package query_test

import (
	"database/sql"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	_ "github.com/mattn/go-sqlite3"

	"lode/internal/query"
)

// openDB opens a fresh SQLite file in t.TempDir() and runs the setup SQL.
func openDB(tb testing.TB, setup ...string) *sql.DB {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "test.db")
	db, err := sql.Open("sqlite3", "file:"+path+"?_foreign_keys=off")
	if err != nil {
		tb.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	tb.Cleanup(func() { db.Close() })
	for _, s := range setup {
		if _, err := db.Exec(s); err != nil {
			tb.Fatalf("setup %q: %v", s, err)
		}
	}
	return db
}

// openFixtures opens a copy of Datasette's own fixtures.db (the database the
// reference responses in ../shared/datasette-examples were recorded from).
func openFixtures(tb testing.TB) *sql.DB {
	tb.Helper()
	src, err := os.Open(filepath.Join("testdata", "fixtures.db"))
	if err != nil {
		tb.Fatal(err)
	}
	defer src.Close()
	path := filepath.Join(tb.TempDir(), "fixtures.db")
	dst, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		tb.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		tb.Fatal(err)
	}
	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// loadTable introspects name the way the sqlitedb package does, enough for
// query.Build: columns, primary keys, foreign keys, view flag, FTS table.
func loadTable(tb testing.TB, db *sql.DB, name string) *query.Table {
	tb.Helper()
	t := &query.Table{Name: name}
	var typ string
	if err := db.QueryRow("select type from sqlite_master where name = ?", name).Scan(&typ); err != nil {
		tb.Fatalf("table %q: %v", name, err)
	}
	t.IsView = typ == "view"
	rows, err := db.Query("select name, type, \"notnull\", pk, hidden from pragma_table_xinfo(?)", name)
	if err != nil {
		tb.Fatal(err)
	}
	pks := map[int]string{}
	for rows.Next() {
		var c query.Column
		var hidden int
		if err := rows.Scan(&c.Name, &c.Type, &c.NotNull, &c.PK, &hidden); err != nil {
			tb.Fatal(err)
		}
		c.Hidden = hidden != 0
		if c.PK > 0 {
			pks[c.PK] = c.Name
		}
		t.Columns = append(t.Columns, c)
	}
	if err := rows.Err(); err != nil {
		tb.Fatal(err)
	}
	rows.Close()
	for i := 1; i <= len(pks); i++ {
		t.PrimaryKeys = append(t.PrimaryKeys, pks[i])
	}
	fks, err := db.Query(`select "from", "table", "to" from pragma_foreign_key_list(?)`, name)
	if err != nil {
		tb.Fatal(err)
	}
	for fks.Next() {
		var fk query.ForeignKey
		if err := fks.Scan(&fk.Column, &fk.OtherTable, &fk.OtherColumn); err != nil {
			tb.Fatal(err)
		}
		t.ForeignKeys = append(t.ForeignKeys, fk)
	}
	fks.Close()
	// FTS: a virtual table declared with content="name".
	var fts string
	err = db.QueryRow(`select name from sqlite_master where type = 'table' and sql like 'CREATE VIRTUAL TABLE%' and (sql like ? or sql like ?)`,
		`%content="`+name+`"%`, `%content=[`+name+`]%`).Scan(&fts)
	if err == nil {
		t.FTSTable = fts
		cols, err := db.Query("select name from pragma_table_info(?)", fts)
		if err != nil {
			tb.Fatal(err)
		}
		for cols.Next() {
			var c string
			if err := cols.Scan(&c); err != nil {
				tb.Fatal(err)
			}
			t.FTSColumns = append(t.FTSColumns, c)
		}
		cols.Close()
	}
	// The label is the schema's decision (sqlitedb); here a name or
	// title column is enough.
	for _, c := range t.Columns {
		if l := strings.ToLower(c.Name); !c.Hidden && t.LabelColumn == "" && (l == "name" || l == "title") {
			t.LabelColumn = c.Name
		}
	}
	return t
}

// queryRows runs SQL and returns every row as []any.
func queryRows(tb testing.TB, db *sql.DB, q string, args ...any) [][]any {
	tb.Helper()
	rows, err := db.Query(q, args...)
	if err != nil {
		tb.Fatalf("query %s %v: %v", q, args, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		tb.Fatal(err)
	}
	var out [][]any
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			tb.Fatal(err)
		}
		for i, v := range vals {
			if b, ok := v.([]byte); ok {
				vals[i] = string(b)
			}
		}
		out = append(out, vals)
	}
	if err := rows.Err(); err != nil {
		tb.Fatalf("query %s %v: %v", q, args, err)
	}
	return out
}

// mustBuild builds the query for a raw query string and fails the test on
// error.
func mustBuild(tb testing.TB, t *query.Table, rawQuery string) *query.Select {
	tb.Helper()
	v, err := url.ParseQuery(rawQuery)
	if err != nil {
		tb.Fatal(err)
	}
	s, err := query.Build(t, v, query.DefaultOptions())
	if err != nil {
		tb.Fatalf("Build(%s, %q): %v", t.Name, rawQuery, err)
	}
	return s
}

// page runs s.SQL and returns the rows shown and the next token.
func page(tb testing.TB, db *sql.DB, s *query.Select) ([][]any, string) {
	tb.Helper()
	rows := queryRows(tb, db, s.SQL, s.Args...)
	if len(rows) > s.PageSize && s.PageSize > 0 {
		return rows[:s.PageSize], s.NextToken(rows[s.PageSize-1])
	}
	return rows, ""
}

func joinKey(vals []any) string {
	parts := make([]string, len(vals))
	for i, v := range vals {
		parts[i] = query.PyStr(v)
	}
	return strings.Join(parts, "|")
}
