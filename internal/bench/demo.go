package bench

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"strings"

	// The bench package opens SQLite itself only to generate the demo
	// database; the servers under test open their own copies.
	_ "github.com/mattn/go-sqlite3"
)

// Demo database shape. The workloads (workload.go) address these tables and
// id ranges, so they are constants rather than options.
const (
	// DemoDBName is the database name a server derives from demo.db.
	DemoDBName = "demo"
	// DemoAuthors is the number of rows in the authors table.
	DemoAuthors = 1000
	// DemoPosts is the number of rows in the posts table (and its FTS index).
	DemoPosts = 100_000
	// DemoAccounts is the number of rows in the accounts table that the
	// read-then-write transaction workload updates.
	DemoAccounts = 1000
	// DemoCounters is the number of rows in counters; row 1 is the hot row.
	DemoCounters = 10
)

var demoCategories = []string{"news", "sport", "science", "culture", "travel", "food", "tech", "health"}

var demoWords = strings.Fields(`sqlite lock journal write ahead log reader writer busy timeout
transaction commit rollback checkpoint page cache index query table row column server worker
process thread request latency throughput durable sync disk memory snapshot shared reserved
pending exclusive deferred immediate savepoint group batch queue retry error locked database
python django datasette gunicorn golang http json benchmark study machine core`)

// GenerateDemo writes the demo database to path (which must not exist):
// authors, posts (DemoPosts rows with a foreign key to authors and an FTS4
// index), accounts and counters for the write workloads, and an empty events
// table for inserts. FTS4 rather than FTS5 so that servers built without the
// sqlite_fts5 tag (and Datasette on any Python) can search it too.
//
// Everything is written in one transaction with prepared statements and
// journal_mode=OFF (the file is new; a crash leaves a file we delete), which
// keeps generation to a couple of seconds. The seed makes the content
// deterministic so two runs of the study use identical data.
func GenerateDemo(ctx context.Context, path string, seed uint64) (err error) {
	if _, err := os.Stat(path); err == nil {
		return fmt.Errorf("generate demo database: %s already exists", path)
	}
	db, err := sql.Open("sqlite3", "file:"+path+"?_journal_mode=OFF&_synchronous=OFF&_foreign_keys=1")
	if err != nil {
		return fmt.Errorf("generate demo database: %w", err)
	}
	defer func() {
		if cerr := db.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("generate demo database: close: %w", cerr)
		}
		if err != nil {
			os.Remove(path)
		}
	}()
	db.SetMaxOpenConns(1)
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("generate demo database: %w", err)
	}
	defer tx.Rollback()
	for _, stmt := range demoSchema {
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("generate demo database: %s: %w", firstLine(stmt), err)
		}
	}
	// Rows are generated inside SQLite by recursive CTEs: one statement per
	// table instead of 100k round trips through database/sql, which keeps
	// generation fast even in a -race test binary. Pseudo-random choices
	// come from a multiplicative hash of the row number and the seed, so
	// the content is deterministic.
	if err := fill(ctx, tx, "INSERT INTO categories (id, name) VALUES (?, ?)", len(demoCategories), func(i int) []any {
		return []any{i, demoCategories[i-1]}
	}); err != nil {
		return err
	}
	h := func(k int) string { // a pseudo-random non-negative integer for row i
		return fmt.Sprintf("((i * 2654435761 + %d * 40503 + %d) %% 1000003)", k, seed%100000)
	}
	// The words as one string of fixed-width slots: a word is an rtrim of
	// a substr, an expression rather than a lookup per word.
	var padded strings.Builder
	for _, w := range demoWords {
		fmt.Fprintf(&padded, "%-12s", w)
	}
	word := func(k int) string {
		return fmt.Sprintf("rtrim(substr('%s', 1 + 12 * (%s %% %d), 12))", padded.String(), h(k), len(demoWords))
	}
	words := func(from, n int) string {
		parts := make([]string, n)
		for j := range parts {
			parts[j] = word(from + j)
		}
		return strings.Join(parts, " || ' ' || ")
	}
	series := func(n int) string {
		return fmt.Sprintf("WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < %d) ", n)
	}
	for _, q := range []string{
		series(DemoAuthors) + `INSERT INTO authors (id, name, country)
			SELECT i, 'Author ' || i, substr('NZFRDEUSJPBR', 1 + 2 * (i % 6), 2) FROM s`,
		series(DemoPosts) + fmt.Sprintf(`INSERT INTO posts (id, author_id, title, body, category, score, created)
			SELECT i, 1 + %s %% %d, %s, %s, (SELECT name FROM categories WHERE id = 1 + %s %% %d), %s %% 1000,
				printf('2024-%%02d-%%02d', 1 + i %% 12, 1 + i %% 28) FROM s`,
			h(1), DemoAuthors, words(10, 5), words(20, 12), h(2), len(demoCategories), h(3)),
		series(DemoAccounts) + fmt.Sprintf(`INSERT INTO accounts (id, owner, balance) SELECT i, 1 + (i - 1) %% %d, 1000 FROM s`, DemoAuthors),
		series(DemoCounters) + `INSERT INTO counters (id, name, n) SELECT i, 'counter-' || i, 0 FROM s`,
	} {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("generate demo database: %s: %w", firstLine(q), err)
		}
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO posts_fts (posts_fts) VALUES ('rebuild')"); err != nil {
		return fmt.Errorf("generate demo database: build full-text index: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("generate demo database: commit: %w", err)
	}
	// ANALYZE gives the planner real statistics, as a maintained production
	// database would have.
	if _, err := db.ExecContext(ctx, "ANALYZE"); err != nil {
		return fmt.Errorf("generate demo database: analyze: %w", err)
	}
	return nil
}

// demoSchema is the demo database's DDL. posts_fts is an external-content
// FTS4 table over posts, which is how Datasette detects a table's full-text
// index (and what `_search=` uses).
var demoSchema = []string{
	`CREATE TABLE authors (
	id INTEGER PRIMARY KEY,
	name TEXT NOT NULL,
	country TEXT NOT NULL
)`,
	`CREATE TABLE categories (
	id INTEGER PRIMARY KEY,
	name TEXT NOT NULL UNIQUE
)`,
	`CREATE TABLE posts (
	id INTEGER PRIMARY KEY,
	author_id INTEGER NOT NULL REFERENCES authors(id),
	title TEXT NOT NULL,
	body TEXT NOT NULL,
	category TEXT NOT NULL,
	score INTEGER NOT NULL,
	created TEXT NOT NULL
)`,
	`CREATE INDEX posts_author_id ON posts(author_id)`,
	`CREATE INDEX posts_category ON posts(category)`,
	`CREATE VIRTUAL TABLE posts_fts USING fts4(title, body, content="posts")`,
	`CREATE TABLE accounts (
	id INTEGER PRIMARY KEY,
	owner INTEGER NOT NULL REFERENCES authors(id),
	balance INTEGER NOT NULL
)`,
	`CREATE TABLE counters (
	id INTEGER PRIMARY KEY,
	name TEXT NOT NULL,
	n INTEGER NOT NULL
)`,
	`CREATE TABLE events (
	id INTEGER PRIMARY KEY,
	post_id INTEGER REFERENCES posts(id),
	kind TEXT NOT NULL,
	payload TEXT
)`,
}

// fill inserts n rows (ids 1..n) with one prepared statement.
func fill(ctx context.Context, tx *sql.Tx, query string, n int, row func(i int) []any) error {
	stmt, err := tx.PrepareContext(ctx, query)
	if err != nil {
		return fmt.Errorf("generate demo database: prepare %s: %w", firstLine(query), err)
	}
	defer stmt.Close()
	for i := 1; i <= n; i++ {
		if _, err := stmt.ExecContext(ctx, row(i)...); err != nil {
			return fmt.Errorf("generate demo database: %s: %w", firstLine(query), err)
		}
	}
	return nil
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
