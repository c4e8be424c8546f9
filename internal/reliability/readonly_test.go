package reliability_test

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// writeAttempts is the corpus of SQL that tries to write, escape the
// database or exhaust the server through ?sql=. Every entry must be
// refused with a 4xx JSON error. %DIR% is replaced by the test's
// temporary directory, so a VACUUM INTO or ATTACH that slipped through
// would leave a file the test sees.
var writeAttempts = []string{
	"insert into t (a) values (1)",
	"INSERT INTO t DEFAULT VALUES",
	"replace into t (id, a) values (1, 'x')",
	"insert or replace into t (id, a) values (1, 'x')",
	"insert into t (a) values (1) returning *",
	"update t set a = 'x'",
	"delete from t",
	"drop table t",
	"drop view v",
	"drop index t_a",
	"create table x (a)",
	"create temp table x (a)",
	"create table x as select * from t",
	"create view v2 as select 1",
	"create index i2 on t (a)",
	"create trigger tr after insert on t begin delete from t; end",
	"create virtual table f using fts5 (x)",
	"alter table t add column z",
	"alter table t rename to u",
	"ATTACH DATABASE '%DIR%/attached.db' AS x",
	"attach 'file:%DIR%/attached2.db?mode=rwc' as x",
	"attach ':memory:' as m",
	"detach main",
	"PRAGMA writable_schema = 1",
	"pragma writable_schema=ON",
	"pragma main.writable_schema = 1",
	"PRAGMA journal_mode = delete",
	"PRAGMA user_version = 5",
	"pragma query_only = 0",
	"pragma foreign_keys = off",
	"pragma wal_checkpoint(TRUNCATE)",
	"pragma incremental_vacuum",
	"pragma optimize",
	"VACUUM",
	"VACUUM INTO '%DIR%/copy.db'",
	"vacuum main into '%DIR%/copy2.db'",
	"REINDEX",
	"ANALYZE",
	"BEGIN; DELETE FROM t; COMMIT",
	"savepoint a",
	"with x as (select 1) insert into t (a) select * from x",
	"WITH x AS (SELECT 1) DELETE FROM t",
	"WITH RECURSIVE c(x) AS (SELECT 1) UPDATE t SET a = 2",
	"with x as (select 1) replace into t (id, a) values (1, 2)",
	"select 1; drop table t",
	"select 1; insert into t (a) values (5)",
	"select * from t; vacuum",
	"/* comment */ insert into t (a) values (1)",
	"-- comment\ndelete from t",
	"select load_extension('%DIR%/evil.so')",
	"select load_extension('libc.so.6', 'system')",
	"select * from sqlite_dbpage",
	"select data from sqlite_dbpage('main') where pgno = 1",
	"insert into sqlite_dbpage (pgno, data) values (1, zeroblob(4096))",
	"select writefile('%DIR%/w.txt', 'x')",
	"select readfile('/etc/passwd')",
	"select edit('x')",
	"select fts3_tokenizer('simple', x'00')",
	"explain delete from t",
	"values (1)",
	"",
	"   ",
	"select " + strings.Repeat("1-", 25000) + "1", // very long (50 kB): expression depth
	"select " + strings.Repeat("(", 5000) + "1" + strings.Repeat(")", 5000),                                                 // deeply nested
	"select a from t where a in (" + strings.Repeat("select a from t where a in (", 400) + "'x'" + strings.Repeat(")", 401), // nested subqueries
	"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT count(*) FROM c",                                  // runs forever: time limit
	"select * from t where a = (" + strings.Repeat("select ", 3000) + "1" + ")",                                             // 3000 nested scalar selects
}

// cannedAttempts are canned read queries (no `write: true`) whose SQL
// writes or escapes; running them must be refused the same way.
var cannedAttempts = map[string]string{
	"drop_it":     "DROP TABLE t",
	"insert_it":   "INSERT INTO t (a) VALUES (:a)",
	"cte_delete":  "WITH x AS (SELECT 1) DELETE FROM t",
	"attach_it":   "ATTACH DATABASE '%DIR%/canned.db' AS c",
	"vacuum_into": "VACUUM INTO '%DIR%/canned-copy.db'",
	"writable":    "PRAGMA writable_schema = 1",
	"dbpage":      "SELECT * FROM sqlite_dbpage",
	"loadext":     "SELECT load_extension('%DIR%/evil.so')",
}

// TestReadOnlySQL sends every write attempt through /DB/-/query.json
// (anonymously and with a root token), through the HTML query page and as
// canned read queries, and checks each is a 4xx JSON error, the database
// file's bytes are unchanged, no file appeared, and the server still
// answers.
func TestReadOnlySQL(t *testing.T) {
	dir := t.TempDir()
	path := newDB(t, dir, "ro.db", "delete",
		"CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT)",
		"CREATE INDEX t_a ON t (a)",
		"CREATE VIEW v AS SELECT * FROM t",
		"INSERT INTO t (a) VALUES ('one'), ('two')")
	var yaml strings.Builder
	yaml.WriteString("databases:\n  ro:\n    queries:\n")
	names := make([]string, 0, len(cannedAttempts))
	for name, q := range cannedAttempts {
		names = append(names, name)
		fmt.Fprintf(&yaml, "      %s:\n        sql: %q\n", name, strings.ReplaceAll(q, "%DIR%", dir))
	}
	sort.Strings(names)
	cfg := writeFile(t, dir, "lode.yaml", yaml.String())
	// A rollback journal, so that anything written would be in ro.db
	// itself; the baseline is taken once the server has opened the file.
	p := startLode(t, path, "--workers", "0", "--journal-mode", "delete", "--config", cfg, "--root",
		"--setting", "sql_time_limit_ms", "300")
	before := fileState(t, dir)
	token := createToken(t, "--actor", "root")
	c := newClient()

	refused := 0
	check := func(what string, status int, body []byte, wantJSON bool) {
		t.Helper()
		if status < 400 || status > 499 {
			t.Errorf("%s: status %d, want 4xx; body %.300s", what, status, body)
			return
		}
		if wantJSON {
			var e apiError
			// Datasette's query errors carry the (empty) rows instead of a
			// "status" key: the HTTP status is the status then.
			if err := json.Unmarshal(body, &e); err != nil || e.OK == nil || *e.OK || e.Error == "" || e.Status != 0 && e.Status != status {
				t.Errorf("%s: status %d body is not a JSON error: %.300s", what, status, body)
				return
			}
		}
		refused++
	}
	for _, q := range writeAttempts {
		q = strings.ReplaceAll(q, "%DIR%", dir)
		short := q
		if len(short) > 60 {
			short = short[:60] + "..."
		}
		u := p.Base + "ro/-/query.json?sql=" + url.QueryEscape(q)
		if strings.TrimSpace(q) == "" {
			// No SQL runs nothing: an empty result, as Datasette answers.
			if st, body, _ := do(t, c, "GET", u, "", nil); st != 200 || !strings.Contains(string(body), `"rows": []`) {
				t.Errorf("empty ?sql=%q: %d %.200s; want 200 with no rows", q, st, body)
			}
			continue
		}
		st, body, _ := do(t, c, "GET", u, "", nil)
		check("anonymous ?sql="+short, st, body, true)
		st, body, _ = do(t, c, "GET", u, "", nil, "Authorization", "Bearer "+token)
		check("root token ?sql="+short, st, body, true)
		if strings.TrimSpace(q) != "" { // an empty ?sql= is the query editor
			st, body, _ = do(t, c, "GET", p.Base+"ro/-/query?sql="+url.QueryEscape(q), "", nil)
			check("HTML ?sql="+short, st, body, false)
		}
	}
	for _, name := range names {
		st, body, _ := do(t, c, "GET", p.Base+"ro/"+name+".json?a=1", "", nil)
		check("canned "+name, st, body, true)
		st, body, _ = do(t, c, "POST", p.Base+"ro/"+name, "application/json", strings.NewReader(`{"a": 1}`), "Authorization", "Bearer "+token)
		if st >= 200 && st < 300 {
			t.Errorf("POST canned read query %s with a root token: status %d: %.300s", name, st, body)
		}
	}
	st, body, _ := do(t, c, "GET", p.Base+"ro/t.json", "", nil)
	if st != http.StatusOK || !strings.Contains(string(body), `"two"`) {
		t.Fatalf("server stopped answering after the corpus: %d %.300s\n%s", st, body, p.output())
	}
	p.kill()
	if after := fileState(t, dir); after != before {
		t.Errorf("directory changed by the corpus:\nbefore %s\nafter  %s", before, after)
	}
	t.Logf("%d write/escape attempts x 3 routes + %d canned queries: %d refusals checked, file bytes unchanged",
		len(writeAttempts), len(cannedAttempts), refused)
}

// fileState lists dir's files (except the config and the -wal/-shm a
// reader may leave) with the database's SHA-256.
func fileState(t *testing.T, dir string) string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var parts []string
	for _, e := range entries {
		n := e.Name()
		if n == "lode.yaml" || strings.HasSuffix(n, "-shm") || strings.HasSuffix(n, "-wal") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, fmt.Sprintf("%s:%x", n, sha256.Sum256(b)))
	}
	return strings.Join(parts, " ")
}

// createToken runs `lode token create ARGS...` with the suite's secret.
func createToken(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(lodeBin, append([]string{"token", "create"}, args...)...)
	cmd.Env = append(os.Environ(), "LODE_SECRET=reliability-secret", "HOME="+t.TempDir())
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("lode token create %v: %v", args, err)
	}
	return strings.TrimSpace(string(out))
}
