package web_test

import (
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	_ "github.com/mattn/go-sqlite3" // the "sqlite3" database/sql driver

	"lode/internal/query"
	"lode/internal/sqlitetest"
)

// Hostile names and values: each would break a page that pasted it into
// HTML without escaping, and each carries quotes and non-ASCII text.
const (
	evilTable  = `<script>alert("t")</script> 'tbl' ü☃`
	evilColumn = `<b>col</b> "c" ß`
	evilValue  = `<script>alert("v")</script> 'val' ✓ ünï`
	evilDB     = "fixtures"
)

// htmlConfig is the lode.yaml of the HTML tests: one canned read query with
// a parameter and one canned write query.
const htmlConfig = `
databases:
  fixtures:
    queries:
      people_in_city:
        title: People in a city
        description: Everyone whose city_id is the given id
        sql: select id, name from people where city_id = :city order by id
      add_message:
        title: Add a guestbook message
        sql: insert into guestbook (message) values (:message)
        write: true
        on_success_message: Message added
`

// writeHTMLFixtures writes sqlitetest's fixtures database plus the tables
// the HTML tests need (a guestbook for the canned write query and a table
// whose name, columns and values are all hostile), and the config file.
// It returns the database path and the config path.
func writeHTMLFixtures(tb testing.TB) (dbPath, configPath string) {
	tb.Helper()
	dir := tb.TempDir()
	dbPath = sqlitetest.WriteFixtures(tb, dir)
	conn, err := sql.Open("sqlite3", "file:"+dbPath+"?_journal_mode=DELETE")
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close()
	stmts := []string{
		`CREATE TABLE guestbook (id integer primary key, message text not null)`,
		fmt.Sprintf(`CREATE TABLE %s (id integer primary key, %s text, city_id integer REFERENCES cities(id))`,
			query.QuoteIdent(evilTable), query.QuoteIdent(evilColumn)),
		fmt.Sprintf(`INSERT INTO %s VALUES (1, '%s', 1), (2, 'plain', 2)`, query.QuoteIdent(evilTable), strings.ReplaceAll(evilValue, "'", "''")),
		// Enough rows to rank among the tables the index page lists.
		fmt.Sprintf(`INSERT INTO %s (id, %s, city_id)
			WITH RECURSIVE n(i) AS (SELECT 3 UNION ALL SELECT i + 1 FROM n WHERE i < 400)
			SELECT i, 'plain ' || i, i %% 20 + 1 FROM n`, query.QuoteIdent(evilTable), query.QuoteIdent(evilColumn)),
	}
	for _, s := range stmts {
		if _, err := conn.Exec(s); err != nil {
			tb.Fatalf("%s: %v", s, err)
		}
	}
	configPath = filepath.Join(dir, "lode.yaml")
	if err := os.WriteFile(configPath, []byte(htmlConfig), 0o644); err != nil {
		tb.Fatal(err)
	}
	return dbPath, configPath
}
