// Package sqlitetest provides test helpers for code that uses SQLite
// databases, in the spirit of net/http/httptest: real database files in
// t.TempDir(), closed automatically when the test ends. Only _test.go
// files should import it.
//
// Typical use:
//
//	db := sqlitetest.MustOpenDB(t)               // empty database, default settings
//	path := sqlitetest.WriteFixtures(t, dir)      // the shared fixtures database file
//	fx := sqlitetest.MustOpenFixtures(t)          // fixtures file opened as *sqlitedb.DB
package sqlitetest

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"lode/internal/sqlitedb"
)

// MustOpenDB opens a new, empty database file in tb.TempDir() with default
// settings (WAL, synchronous=FULL, IMMEDIATE transactions) and closes it
// when the test ends.
func MustOpenDB(tb testing.TB) *sqlitedb.DB {
	tb.Helper()
	return MustOpenDBWith(tb, filepath.Join(tb.TempDir(), "test.db"), sqlitedb.Settings{Create: true})
}

// MustOpenDBWith opens path with settings s and closes it when the test ends.
func MustOpenDBWith(tb testing.TB, path string, s sqlitedb.Settings) *sqlitedb.DB {
	tb.Helper()
	db, err := sqlitedb.Open(context.Background(), path, s)
	if err != nil {
		tb.Fatalf("sqlitedb.Open(%q): %v", path, err)
	}
	tb.Cleanup(func() {
		if err := db.Close(); err != nil {
			tb.Errorf("close %q: %v", path, err)
		}
	})
	return db
}

// MustOpenFixtures writes the fixtures database (see WriteFixtures) into
// tb.TempDir() as fixtures.db and opens it with default settings.
func MustOpenFixtures(tb testing.TB) *sqlitedb.DB {
	tb.Helper()
	path := WriteFixtures(tb, tb.TempDir())
	return MustOpenDBWith(tb, path, sqlitedb.Settings{})
}

// Fixture sizes, for tests that count rows.
const (
	// ItemsRows is the number of rows in the rowid table "items".
	ItemsRows = 1200
	// CitiesRows is the number of rows in "cities" (integer primary key).
	CitiesRows = 20
	// PeopleRows is the number of rows in "people" (text primary key).
	PeopleRows = 150
	// PairsRows is the number of rows in "pairs" (compound primary key).
	PairsRows = 300
)

// WriteFixtures creates dir/fixtures.db and returns its path. The database
// (journal mode DELETE, so it is a single self-contained file) holds:
//
//   - items: a rowid table (no declared primary key) with ItemsRows rows:
//     name text, category text (NULL every 7th row), price real (NULL
//     every 5th), tags text holding a JSON array, created datetime (text;
//     exercises driver type conversion), data blob (every 100th row)
//   - cities: integer primary key id, name (label column), CitiesRows rows
//   - people: text primary key id ("p001"...), name, city_id → cities(id)
//     (NULL every 10th row); also ids with "/", "." and "," in them
//   - pairs: compound primary key (a text, b integer), value; PairsRows rows
//   - docs: integer primary key, title, body; docs_fts is an FTS5 index of
//     it (content='docs'), with its shadow tables (hidden)
//   - cheap_items: a view over items
//   - "table with spaces", "slash/table", "dot.table", "ünïcödé": small
//     tables with awkward names (text primary keys)
func WriteFixtures(tb testing.TB, dir string) string {
	tb.Helper()
	path := filepath.Join(dir, "fixtures.db")
	if err := writeFixtures(path); err != nil {
		tb.Fatalf("write fixtures: %v", err)
	}
	return path
}

func writeFixtures(path string) error {
	conn, err := sql.Open("sqlite3", "file:"+path+"?mode=rwc&_journal_mode=DELETE")
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetMaxOpenConns(1)
	tx, err := conn.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	ddl := `
CREATE TABLE items (
  name text not null,
  category text,
  price real,
  tags text,
  created datetime,
  data blob
);
CREATE TABLE cities (id integer primary key, name text);
CREATE TABLE people (
  id text primary key,
  name text,
  city_id integer REFERENCES cities(id)
);
CREATE TABLE pairs (a text, b integer, value text, PRIMARY KEY (a, b));
CREATE TABLE docs (id integer primary key, title text, body text);
CREATE VIRTUAL TABLE docs_fts USING fts5 (title, body, content='docs', content_rowid='id');
CREATE VIEW cheap_items AS SELECT rowid AS item_id, name, price FROM items WHERE price < 10;
CREATE TABLE "table with spaces" (pk text primary key, content text);
CREATE TABLE "slash/table" (pk text primary key, content text);
CREATE TABLE "dot.table" (pk text primary key, content text);
CREATE TABLE "ünïcödé" (pk text primary key, "ünï col" text);
`
	for _, stmt := range strings.Split(ddl, ";\n") {
		if strings.TrimSpace(stmt) == "" {
			continue
		}
		if _, err := tx.Exec(stmt); err != nil {
			return fmt.Errorf("%s: %w", stmt, err)
		}
	}
	categories := []string{"tools", "food", "toys", "books", "garden", "music"}
	for i := 1; i <= ItemsRows; i++ {
		var category, price, data any
		if i%7 != 0 {
			category = categories[i%len(categories)]
		}
		if i%5 != 0 {
			price = float64(i%50) + 0.25
		}
		if i%100 == 0 {
			data = []byte{0, 1, 2, byte(i % 256)}
		}
		tags := fmt.Sprintf(`["t%d", "t%d"]`, i%3, i%4)
		if i%11 == 0 {
			tags = "[]"
		}
		created := fmt.Sprintf("2024-%02d-%02d 10:00:00", i%12+1, i%28+1)
		if _, err := tx.Exec(`INSERT INTO items (name, category, price, tags, created, data) VALUES (?, ?, ?, ?, ?, ?)`,
			fmt.Sprintf("item %04d", i), category, price, tags, created, data); err != nil {
			return err
		}
	}
	for i := 1; i <= CitiesRows; i++ {
		if _, err := tx.Exec(`INSERT INTO cities VALUES (?, ?)`, i, fmt.Sprintf("City %d", i)); err != nil {
			return err
		}
	}
	for i := 1; i <= PeopleRows; i++ {
		var city any = int64(i%CitiesRows + 1)
		if i%10 == 0 {
			city = nil
		}
		id := fmt.Sprintf("p%03d", i)
		switch i {
		case 1:
			id = "a/b"
		case 2:
			id = "dot.ted"
		case 3:
			id = "com,ma"
		case 4:
			id = "space d~tilde"
		}
		if _, err := tx.Exec(`INSERT INTO people VALUES (?, ?, ?)`, id, fmt.Sprintf("Person %d", i), city); err != nil {
			return err
		}
	}
	for i := 0; i < PairsRows; i++ {
		a := string(rune('a' + i%10))
		var value any = fmt.Sprintf("v%d", i)
		if i%9 == 0 {
			value = nil
		}
		if _, err := tx.Exec(`INSERT INTO pairs VALUES (?, ?, ?)`, a, i/10, value); err != nil {
			return err
		}
	}
	docs := []struct{ title, body string }{
		{"Dogs", "the quick brown dog jumps"},
		{"Cats", "a lazy cat sleeps all day"},
		{"Birds", "birds sing; the dog barks"},
	}
	for i, d := range docs {
		if _, err := tx.Exec(`INSERT INTO docs VALUES (?, ?, ?)`, i+1, d.title, d.body); err != nil {
			return err
		}
	}
	for _, q := range []string{
		`INSERT INTO docs_fts (rowid, title, body) SELECT id, title, body FROM docs`,
		`INSERT INTO "table with spaces" VALUES ('x y', 'spaced')`,
		`INSERT INTO "slash/table" VALUES ('a/b', 'slashed')`,
		`INSERT INTO "dot.table" VALUES ('d.e', 'dotted')`,
		`INSERT INTO "ünïcödé" VALUES ('ключ', 'значение')`,
	} {
		if _, err := tx.Exec(q); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	return tx.Commit()
}
