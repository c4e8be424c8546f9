package server_test

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"lode/internal/server"
	"lode/internal/sqlitedb"
	"lode/internal/sqlitetest"
)

// logBuffer collects a server's log lines for tests that check what is
// logged.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// hardServer serves the files with settings, a logger writing to the
// returned buffer and (when withWrites) the write API with root.
func hardServer(t testing.TB, cfg server.Config, withWrites bool) (string, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	cfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv, err := server.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	var h http.Handler = srv
	if withWrites {
		api, err := server.NewWriteAPI(srv, server.WriteConfig{Secret: []byte("test-secret"), Root: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { api.Close() })
		h = api
	}
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	return ts.URL, logs
}

// errorBody decodes a JSON error and checks its shape.
func errorBody(t testing.TB, what string, status int, h http.Header, b []byte, wantStatus int, wantMsg string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Errorf("%s: not JSON (%d): %.300s", what, status, b)
		return nil
	}
	msg, _ := m["error"].(string)
	// Datasette's query errors carry the (empty) rows instead of a
	// "status" key: the HTTP status is the status then.
	_, hasStatus := m["status"]
	if status != wantStatus || m["ok"] != false || hasStatus && m["status"] != float64(wantStatus) || !strings.Contains(msg, wantMsg) {
		t.Errorf("%s = %d %.400s; want %d with an error containing %q", what, status, b, wantStatus, wantMsg)
	}
	if wantStatus == http.StatusServiceUnavailable && h.Get("Retry-After") == "" && !strings.Contains(wantMsg, "deleted") {
		t.Errorf("%s: 503 without Retry-After", what)
	}
	return m
}

// Positional parameters (?, ?1, @a, $b) cannot be filled from a query
// string: a 400 that says only :named parameters work, on ?sql= (JSON and
// CSV), the HTML query page and canned queries — never a 500 "not enough
// args" from the driver.
func TestPositionalParametersAre400(t *testing.T) {
	e := newWriteEnv(t, envOpts{yaml: `
databases:
  data:
    queries:
      positional:
        sql: SELECT title FROM docs WHERE id = ?
      at_param:
        sql: SELECT title FROM docs WHERE id = @id
`})
	const want = "only :named parameters are supported"
	for _, q := range []string{"select ?", "select ?1", "select @a", "select $b", "select :ok, ?2"} {
		for _, ext := range []string{".json", ".csv"} {
			status, h, b := get(t, e.url, "/data/-/query"+ext+"?sql="+url.QueryEscape(q))
			errorBody(t, "?sql="+q+" "+ext, status, h, b, 400, want)
		}
		status, h, b := get(t, e.url, "/data/-/query?sql="+url.QueryEscape(q))
		if status != 400 || !strings.HasPrefix(h.Get("Content-Type"), "text/html") || !strings.Contains(string(b), want) {
			t.Errorf("HTML query page with %q = %d %s; want a 400 page saying %q", q, status, h.Get("Content-Type"), want)
		}
	}
	for _, name := range []string{"positional", "at_param"} {
		status, h, b := get(t, e.url, "/data/"+name+".json?id=1")
		errorBody(t, "canned "+name, status, h, b, 400, want)
		status, h, b = get(t, e.url, "/data/"+name+"?id=1")
		if status != 400 || !strings.HasPrefix(h.Get("Content-Type"), "text/html") || !strings.Contains(string(b), want) {
			t.Errorf("canned %s HTML page = %d; want a 400 page saying %q: %.300s", name, status, want, b)
		}
	}
	// :named parameters work.
	if m := getJSON(t, e.url, "/data/-/query.json?sql="+url.QueryEscape("select :a as a")+"&a=x", 200); jsonOf(m["rows"]) != `[{"a":"x"}]` {
		t.Errorf(":named parameter: rows %v", m["rows"])
	}
}

// Three small ones from the write API: an integer that does not fit in 64
// bits is a 400, never a silently rounded float; alter refuses a column
// named ""; drop needs "confirm": true, the JSON boolean.
func TestWriteBodyEdges(t *testing.T) {
	e := newWriteEnv(t, envOpts{root: true})
	tok := e.root()
	checkErr(t, e.post("/data/docs/-/insert", tok, `{"row": {"title": 123456789012345678901234567890}}`), 400, "does not fit in 64 bits")
	checkErr(t, e.post("/data/docs/-/insert", tok, `{"row": {"id": -123456789012345678901234567890}}`), 400, "does not fit in 64 bits")
	r := e.post("/data/docs/-/insert", tok, `{"row": {"id": 9223372036854775807, "title": "max"}}`)
	if r.status != 201 || e.count("docs WHERE id = 9223372036854775807 AND typeof(id) = 'integer'") != 1 {
		t.Errorf("insert of the largest int64 = %d %s; want it stored as that integer", r.status, r.raw)
	}
	r = e.post("/data/plain/-/insert", tok, `{"row": {"name": 12345678901234567890123456789.5}}`)
	if r.status != 201 {
		t.Errorf("a float with a fraction = %d %s; want 201 (a float is a float)", r.status, r.raw)
	}
	checkErr(t, e.post("/data/docs/-/insert", tok, `{"row": {"": 1}, "alter": true}`), 400, "Column name must not be empty")
	checkErr(t, e.post("/data/docs/1/-/update", tok, `{"update": {"": 1}, "alter": true}`), 400, "Column name must not be empty")
	for _, body := range []string{`{"confirm": "yes"}`, `{"confirm": 1}`, `{"confirm": "true"}`, `{"confirm": [true]}`} {
		r := e.post("/data/plain/-/drop", tok, body)
		if r.status != 200 || r.body["message"] != `Pass "confirm": true to confirm` || e.count("plain") < 1 {
			t.Errorf("drop with %s = %d %s; want the confirmation question, table kept", body, r.status, r.raw)
		}
	}
	if r := e.post("/data/plain/-/drop", tok, `{"confirm": true}`); r.status != 200 || jsonOf(r.body) != `{"ok":true}` {
		t.Errorf("drop with confirm true = %d %s", r.status, r.raw)
	}
}

// A value a query builds or reads is bounded by SQLITE_LIMIT_LENGTH on the
// read connections: one function call cannot allocate gigabytes while the
// time limit waits for it. Over HTTP: a 400 saying so, at once.
func TestValueLimitOverHTTP(t *testing.T) {
	base, _ := newTestServer(t, nil)
	for _, q := range []string{
		"select length(upper(printf('%.*c', 900000000, 'x')))",
		"select randomblob(1000000000)",
		"select zeroblob(300000000)",
	} {
		status, h, b := get(t, base, "/fixtures/-/query.json?sql="+url.QueryEscape(q))
		errorBody(t, q, status, h, b, 400, "string or blob too big")
	}
}

// max_response_mb bounds one JSON or non-streamed CSV response: the
// query's values (sqlitedb stops reading past it) and the encoded body
// (escaping and base64 make it larger than the values). A streamed CSV is
// bounded by max_csv_mb instead.
func TestResponseSizeCap(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "big.db")
	raw, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec(`CREATE TABLE big (id INTEGER PRIMARY KEY, body TEXT);
		WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3000)
		INSERT INTO big (body) SELECT printf('%.*c', 1000, 'b') FROM c`); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	base, _ := hardServer(t, server.Config{Files: []string{path}, Settings: map[string]string{
		"max_response_mb": "1", "max_returned_rows": "5000"}}, false)
	const want = "max_response_mb"
	tooLarge := []string{
		"/big/big.json?_size=max",              // 3 MB of values
		"/big/big.json?_size=max&_shape=array", // the same in another shape
		"/big/big.csv?_size=max",               // non-streamed CSV
		"/big/-/query.json?sql=" + url.QueryEscape("select randomblob(900000) as b"),              // 0.9 MB of bytes, 1.2 MB of base64
		"/big/-/query.json?sql=" + url.QueryEscape("select printf('%.*c', 300000, char(1)) as c"), // 0.3 MB, 1.8 MB escaped
		"/big/-/query.json?sql=" + url.QueryEscape("select printf('%.*c', 300000, char(1)) as c") + "&_shape=arrayfirst",
	}
	for _, p := range tooLarge {
		status, h, b := get(t, base, p)
		errorBody(t, p, status, h, b, 400, want)
	}
	for _, p := range []string{
		"/big/big.json?_size=500",
		"/big/-/query.json?sql=" + url.QueryEscape("select randomblob(500000) as b"), // not UTF-8: 0.67 MB of base64
		"/big/big.csv?_stream=on", // every row, 3 MB: max_csv_mb applies
	} {
		status, _, b := get(t, base, p)
		if status != 200 {
			t.Errorf("%s = %d %.300s; want 200", p, status, b)
		}
		if strings.HasSuffix(p, "_stream=on") && bytes.Count(b, []byte("\r\n")) != 3001 {
			t.Errorf("streamed CSV has %d lines; want 3001", bytes.Count(b, []byte("\r\n")))
		}
	}
}

// A request that found every read connection busy for its whole time
// limit gets 503 with Retry-After (the statement never ran), not the
// time-limit 400 that blames the query. Here a streamed CSV whose client
// stopped reading holds the only connection.
func TestNoFreeReadConnectionIs503(t *testing.T) {
	path := sqlitetest.WriteFixtures(t, t.TempDir())
	base, _ := hardServer(t, server.Config{Files: []string{path}, DB: sqlitedb.Settings{ReadConns: 1},
		Settings: map[string]string{"sql_time_limit_ms": "300", "max_csv_mb": "0"}}, false)
	u, _ := url.Parse(base)
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	endless := url.QueryEscape("with recursive c(x) as (select 1 union all select x + 1 from c) select x, printf('%.*c', 200, 'r') from c")
	fmt.Fprintf(conn, "GET /fixtures/-/query.csv?_stream=on&sql=%s HTTP/1.1\r\nHost: x\r\n\r\n", endless)
	// Read the start of the stream, then stop reading: the server blocks
	// writing, holding its read connection.
	if _, err := io.ReadFull(bufio.NewReader(conn), make([]byte, 4096)); err != nil {
		t.Fatal(err)
	}
	status, h, b := get(t, base, "/fixtures/items.json?_size=1")
	m := errorBody(t, "a read while the only connection is held", status, h, b, 503, "Try again")
	if m != nil && strings.Contains(fmt.Sprint(m["error"]), "took too long") {
		t.Errorf("503 message blames the query: %v", m["error"])
	}
	conn.Close() // the stream ends with a write error and frees the connection
	deadline := time.Now().Add(20 * time.Second)
	for {
		status, _, b = get(t, base, "/fixtures/items.json?_size=1")
		if status == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no read connection came back after the stream's client left: %d %s", status, b)
		}
		time.Sleep(20 * time.Millisecond) // poll interval
	}
}

// facet_total_time_limit_ms is one budget for all facets and suggestions
// of a request; each facet also keeps facet_time_limit_ms. With a budget
// that is already spent after the first facet, the others are reported as
// timed out without running; without a budget (0) none times out.
func TestFacetBudget(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f.db")
	raw, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	var cols, facets []string
	for i := range 20 {
		cols = append(cols, fmt.Sprintf("c%d INTEGER", i))
		facets = append(facets, fmt.Sprintf("_facet=c%d", i))
	}
	var vals []string
	for i := range 20 {
		vals = append(vals, fmt.Sprintf("(x * %d) %% 7", i+1))
	}
	if _, err := raw.Exec(fmt.Sprintf(`CREATE TABLE t (id INTEGER PRIMARY KEY, %s);
		WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 50000)
		INSERT INTO t (%s) SELECT %s FROM c`,
		strings.Join(cols, ", "), strings.ReplaceAll(strings.Join(cols, ", "), " INTEGER", ""), strings.Join(vals, ", "))); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	for _, tc := range []struct {
		budget  string
		minGone int
		maxGone int
	}{
		{"1", 19, 20}, // 1 ms: spent during the first facet (50,000 rows each)
		{"0", 0, 0},   // no overall budget
	} {
		base, _ := hardServer(t, server.Config{Files: []string{path}, Settings: map[string]string{
			"facet_total_time_limit_ms": tc.budget, "facet_time_limit_ms": "60000"}}, false)
		m := getJSON(t, base, "/f/t.json?_size=0&_extra=suggested_facets&"+strings.Join(facets, "&"), 200)
		fr, _ := m["facet_results"].(map[string]any)
		gone, _ := fr["timed_out"].([]any)
		results, _ := fr["results"].(map[string]any)
		if len(gone) < tc.minGone || len(gone) > tc.maxGone || len(gone)+len(results) != 20 {
			t.Errorf("budget %s ms: %d facets timed out, %d ran; want %d..%d timed out of 20", tc.budget, len(gone), len(results), tc.minGone, tc.maxGone)
		}
	}
}

// A database file deleted while served: in WAL mode SQLite would go on
// writing into the unreachable file and every insert would answer 201. The
// writer checks the file before every transaction: 503, an ERROR log line
// naming the database and file, and reads go on from the open file.
func TestDeletedDatabaseFileRefusesWrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gone.db")
	raw, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec("PRAGMA journal_mode=wal; CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	base, logs := hardServer(t, server.Config{Files: []string{path}}, true)
	e := &writeEnv{t: t, url: base, path: path, secret: []byte("test-secret")}
	tok := e.root()
	if r := e.post("/gone/t/-/insert", tok, `{"row": {"v": "before"}}`); r.status != 201 {
		t.Fatalf("insert before = %d %s", r.status, r.raw)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		r := e.post("/gone/t/-/insert", tok, fmt.Sprintf(`{"row": {"v": "after%d"}}`, i))
		checkErr(t, r, 503, "deleted or replaced")
	}
	if log := logs.String(); !strings.Contains(log, "level=ERROR") || !strings.Contains(log, "db=gone") || !strings.Contains(log, "file="+path) {
		t.Errorf("no ERROR log naming the database and file:\n%s", log)
	}
	if m := getJSON(t, base, "/gone/t.json", 200); jsonOf(m["rows"]) != `[{"id":1,"v":"before"}]` {
		t.Errorf("read after the file was deleted: rows %v", m["rows"])
	}
}

// A damaged page is the server's problem, not the query's: 500 with "The
// database file is damaged", an ERROR log line naming database and file;
// other tables and databases are still served.
func TestCorruptDatabaseIs500(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "bad.db")
	raw, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec(`PRAGMA journal_mode=delete; CREATE TABLE ok (v TEXT); INSERT INTO ok VALUES ('fine');
		CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);
		WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2000)
		INSERT INTO t (v) SELECT printf('%.*c', 100, 'v') FROM c`); err != nil {
		t.Fatal(err)
	}
	var root, pageSize int64
	if err := raw.QueryRow("SELECT rootpage FROM sqlite_schema WHERE name = 't'").Scan(&root); err != nil {
		t.Fatal(err)
	}
	if err := raw.QueryRow("PRAGMA page_size").Scan(&pageSize); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(bytes.Repeat([]byte{0xee}, int(pageSize)), (root-1)*pageSize); err != nil {
		t.Fatal(err)
	}
	f.Close()
	other := sqlitetest.WriteFixtures(t, dir)
	base, logs := hardServer(t, server.Config{Files: []string{path, other}}, false)
	for _, p := range []string{"/bad/t.json", "/bad/-/query.json?sql=" + url.QueryEscape("select count(*) from t")} {
		status, h, b := get(t, base, p)
		errorBody(t, p, status, h, b, 500, "The database file is damaged")
	}
	if log := logs.String(); !strings.Contains(log, "level=ERROR") || !strings.Contains(log, "db=bad") || !strings.Contains(log, "file="+path) {
		t.Errorf("no ERROR log naming the database and file:\n%s", log)
	}
	getJSON(t, base, "/bad/ok.json", 200)
	getJSON(t, base, "/fixtures/items.json?_size=1", 200)
}

// A facet whose values alone pass max_response_mb (a column of big texts)
// is reported as timed out; the page itself is served.
func TestFacetOfHugeValues(t *testing.T) {
	path := filepath.Join(t.TempDir(), "h.db")
	raw, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec(`CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT, k TEXT);
		WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 40)
		INSERT INTO t (body, k) SELECT printf('%d%.*c', x, 100000, 'b'), x % 3 FROM c`); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	base, _ := hardServer(t, server.Config{Files: []string{path}, Settings: map[string]string{"max_response_mb": "1"}}, false)
	m := getJSON(t, base, "/h/t.json?_size=1&_col=k&_facet=body&_facet=k", 200)
	fr, _ := m["facet_results"].(map[string]any)
	if got := jsonOf(fr["timed_out"]); got != `["body"]` {
		t.Errorf("timed_out = %s; want [\"body\"]", got)
	}
	if res, _ := fr["results"].(map[string]any); res["k"] == nil {
		t.Errorf("the small facet is missing: %v", fr)
	}
}
