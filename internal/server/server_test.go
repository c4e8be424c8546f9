package server_test

import (
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"lode/internal/server"
	"lode/internal/sqlitedb"
	"lode/internal/sqlitetest"
)

// newTestServer serves a fresh copy of the sqlitetest fixtures database
// (as "fixtures") over a real HTTP listener and returns its base URL and
// the database path.
func newTestServer(t testing.TB, settings map[string]string) (string, string) {
	t.Helper()
	path := sqlitetest.WriteFixtures(t, t.TempDir())
	if settings == nil {
		settings = map[string]string{}
	}
	if _, ok := settings["index_count_time_limit_ms"]; !ok {
		// Tests check the counts; a loaded machine must not turn them null.
		settings["index_count_time_limit_ms"] = "10000"
	}
	srv, err := server.New(context.Background(), server.Config{Files: []string{path}, Settings: settings})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	return ts.URL, path
}

// newFixturesServer serves a fresh copy of the fixtures database with the
// default settings and returns the server (for its methods) and the
// listener.
func newFixturesServer(t testing.TB) (*server.Server, *httptest.Server) {
	t.Helper()
	path := sqlitetest.WriteFixtures(t, t.TempDir())
	srv, err := server.New(context.Background(), server.Config{Files: []string{path}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	return srv, ts
}

// get fetches base+path and returns status, headers and body.
func get(t testing.TB, base, path string) (int, http.Header, []byte) {
	t.Helper()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(base + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

// getJSON fetches path, checks the status and decodes the JSON body.
func getJSON(t testing.TB, base, path string, wantStatus int) map[string]any {
	t.Helper()
	status, h, b := get(t, base, path)
	if status != wantStatus {
		t.Fatalf("GET %s = %d; want %d: %s", path, status, wantStatus, b)
	}
	if ct := h.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("GET %s content type %q", path, ct)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("GET %s: %v: %s", path, err, b)
	}
	return m
}

func TestEndpoints(t *testing.T) {
	base, _ := newTestServer(t, nil)

	idx := getJSON(t, base, "/.json", 200)
	fx := idx["databases"].(map[string]any)["fixtures"].(map[string]any)
	if fx["tables_count"].(float64) != 9 || fx["hidden_tables_count"].(float64) < 5 || fx["views_count"].(float64) != 1 {
		t.Errorf("/.json fixtures = %v", fx)
	}

	db := getJSON(t, base, "/fixtures.json", 200)
	tables := map[string]map[string]any{}
	for _, x := range db["tables"].([]any) {
		m := x.(map[string]any)
		tables[m["name"].(string)] = m
	}
	if c := tables["items"]["count"]; c != float64(sqlitetest.ItemsRows) {
		t.Errorf("items count = %v", c)
	}
	if fts := tables["docs"]["fts_table"]; fts != "docs_fts" {
		t.Errorf("docs fts_table = %v", fts)
	}
	if h := tables["docs_fts_data"]["hidden"]; h != true {
		t.Errorf("docs_fts_data hidden = %v", h)
	}
	out := tables["people"]["foreign_keys"].(map[string]any)["outgoing"].([]any)
	if len(out) != 1 || out[0].(map[string]any)["other_table"] != "cities" {
		t.Errorf("people outgoing = %v", out)
	}

	// Every table and view answers its table page, in every name encoding.
	for name := range tables {
		m := getJSON(t, base, "/fixtures/"+url.PathEscape(tildeEncode(name))+".json?_size=2", 200)
		if m["ok"] != true {
			t.Errorf("%s: %v", name, m)
		}
	}
	for _, p := range []string{
		"/fixtures/table+with+spaces.json", "/fixtures/table~20with~20spaces.json",
		"/fixtures/slash~2Ftable.json", "/fixtures/dot~2Etable.json",
		"/fixtures/" + url.PathEscape(tildeEncode("ünïcödé")) + ".json",
		"/fixtures/cheap_items.json",
	} {
		m := getJSON(t, base, p, 200)
		if len(m["rows"].([]any)) == 0 {
			t.Errorf("%s: no rows", p)
		}
	}

	// Rows by key: rowid, integer, text (with special characters), compound.
	for _, tc := range []struct{ path, key, want string }{
		{"/fixtures/items/5.json", "name", "item 0005"},
		{"/fixtures/cities/3.json", "name", "City 3"},
		{"/fixtures/people/a~2Fb.json", "name", "Person 1"},
		{"/fixtures/people/dot~2Eted.json", "name", "Person 2"},
		{"/fixtures/people/com~2Cma.json", "name", "Person 3"},
		{"/fixtures/people/space+d~7Etilde.json", "name", "Person 4"},
		{"/fixtures/pairs/c,0.json", "value", "v2"},
		{"/fixtures/slash~2Ftable/a~2Fb.json", "content", "slashed"},
	} {
		m := getJSON(t, base, tc.path, 200)
		rows := m["rows"].([]any)
		if len(rows) != 1 || rows[0].(map[string]any)[tc.key] != tc.want {
			t.Errorf("%s rows = %v; want %s=%s", tc.path, rows, tc.key, tc.want)
		}
	}
	// A rowid row includes rowid; blobs and datetime text come back intact.
	row := getJSON(t, base, "/fixtures/items/100.json", 200)["rows"].([]any)[0].(map[string]any)
	if row["rowid"] != float64(100) || row["created"] != "2024-05-17 10:00:00" {
		t.Errorf("items/100 = %v", row)
	}
	// A blob whose bytes are valid UTF-8 is sent as text, as Datasette
	// does (the recordings check the base64 form of other blobs).
	if row["data"] != "\x00\x01\x02d" {
		t.Errorf("items/100 data = %q", row["data"])
	}

	// Queries with named parameters.
	q := getJSON(t, base, "/fixtures/-/query.json?sql="+url.QueryEscape("select id, name from cities where id > :p order by id")+"&p=18&_extra=columns,query", 200)
	if rows := q["rows"].([]any); len(rows) != 2 || rows[0].(map[string]any)["id"] != float64(19) {
		t.Errorf("query rows = %v", rows)
	}
	if p := q["query"].(map[string]any)["params"].(map[string]any); p["p"] != "18" {
		t.Errorf("query params = %v", p)
	}
	// Shapes.
	for _, shape := range []string{"objects", "arrays", "array", "arrayfirst", "object"} {
		status, _, b := get(t, base, "/fixtures/cities.json?_size=3&_shape="+shape)
		if status != 200 || !json.Valid(b) {
			t.Errorf("_shape=%s: %d %s", shape, status, b)
		}
	}
	// Facets and count.
	m := getJSON(t, base, "/fixtures/items.json?_facet=category&_size=0&_extra=count,facet_results,suggested_facets", 200)
	if m["count"] != float64(sqlitetest.ItemsRows) {
		t.Errorf("count = %v", m["count"])
	}
	if res := m["facet_results"].(map[string]any)["results"].(map[string]any); res["category"] == nil {
		t.Errorf("facet_results = %v", res)
	}

	// Instance endpoints.
	for _, p := range []string{"/-/versions.json", "/-/settings.json", "/-/databases.json", "/-/config.json", "/-/threads.json", "/-/plugins.json", "/-/actor.json"} {
		status, _, b := get(t, base, p)
		if status != 200 || !json.Valid(b) {
			t.Errorf("%s: %d %s", p, status, b)
		}
	}
	// newTestServer sets one setting; Datasette's config shows it under
	// "settings" (and is {} without any: TestGateSchemaPages).
	if _, _, b := get(t, base, "/-/config.json"); !strings.Contains(string(b), `{"settings":{"index_count_time_limit_ms":`) {
		t.Errorf("/-/config.json = %s; want the explicit setting", b)
	}
	st := getJSON(t, base, "/-/settings.json", 200)
	if sq := st["sqlite"].(map[string]any)["fixtures"].(map[string]any); sq["journal_mode"] != "wal" || sq["synchronous"] != "full" {
		t.Errorf("settings sqlite = %v", sq)
	}
	if v := getJSON(t, base, "/-/versions.json", 200)["sqlite"].(map[string]any)["version"]; !strings.HasPrefix(fmt.Sprint(v), "3.") {
		t.Errorf("sqlite version = %v", v)
	}
}

func tildeEncode(s string) string {
	var b strings.Builder
	for _, c := range []byte(s) {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-':
			b.WriteByte(c)
		case c == ' ':
			b.WriteByte('+')
		default:
			fmt.Fprintf(&b, "~%02X", c)
		}
	}
	return b.String()
}

func TestErrors(t *testing.T) {
	base, _ := newTestServer(t, nil)
	// SQL that SQLite refuses is reported with the query's (empty) rows,
	// in Datasette's shape.
	for _, q := range []string{"select * from nope", "select 1 from", "select 1; select 2"} {
		m := getJSON(t, base, "/fixtures/-/query.json?sql="+url.QueryEscape(q), 400)
		if m["ok"] != false || m["error"] == "" || m["truncated"] != false || fmt.Sprint(m["rows"]) != "[]" || m["status"] != nil {
			t.Errorf("%s = %v", q, m)
		}
	}
	// No SQL is an empty result, and _shape=object on a query is a 200
	// with ok false: both as Datasette.
	if m := getJSON(t, base, "/fixtures/-/query.json", 200); m["ok"] != true || fmt.Sprint(m["rows"]) != "[]" {
		t.Errorf("no sql = %v", m)
	}
	if m := getJSON(t, base, "/fixtures/-/query.json?sql=select+1&_shape=object", 200); m["ok"] != false || m["error"] != "_shape=object is only available on tables" {
		t.Errorf("_shape=object on a query = %v", m)
	}
	for _, tc := range []struct {
		path   string
		status int
		msg    string
	}{
		{"/nope.json", 404, "Database not found"},
		{"/fixtures/nope.json", 404, "Table not found"},
		{"/fixtures/cities/999.json", 404, "Row not found"},
		{"/fixtures/pairs/a.json", 404, "Row not found"},
		{"/fixtures/cities.json?_sort=nope", 400, ""},
		{"/fixtures/cities.json?_sort=id&_sort_desc=id", 400, "Cannot use _sort and _sort_desc at the same time"},
		{"/fixtures/cities.json?_size=-1", 400, ""},
		{"/fixtures/cities.json?_size=abc", 400, ""},
		{"/fixtures/cities.json?_shape=nope", 400, "Invalid _shape: nope"},
		{"/fixtures/cities.json?_where=" + url.QueryEscape("nonsense((("), 400, ""},
		{"/fixtures/-/query.json?sql=" + url.QueryEscape("update t set x = 1"), 400, "Statement must be a SELECT"},
		{"/fixtures/-/nothing.json", 404, ""},
		{"/-/nothing.json", 404, ""},
		{"/a/b/c/d/e", 404, ""},
	} {
		m := getJSON(t, base, tc.path, tc.status)
		if m["ok"] != false || m["status"] != float64(tc.status) || m["error"] == "" {
			t.Errorf("%s = %v", tc.path, m)
		}
		if tc.msg != "" && m["error"] != tc.msg {
			t.Errorf("%s error = %q; want %q", tc.path, m["error"], tc.msg)
		}
	}
}

// TestQueryCannotWrite tries every kind of write through ?sql= and shows
// each is refused with a JSON 4xx error and the file is unchanged.
func TestQueryCannotWrite(t *testing.T) {
	base, path := newTestServer(t, nil)
	hash := func() [32]byte {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return sha256.Sum256(b)
	}
	before := hash()
	for _, q := range []string{
		"INSERT INTO cities (name) VALUES ('x')",
		"UPDATE cities SET name = 'x'",
		"DELETE FROM cities",
		"DROP TABLE cities",
		"CREATE TABLE t (x)",
		"ATTACH DATABASE '" + filepath.Join(t.TempDir(), "x.db") + "' AS x",
		"PRAGMA journal_mode = delete",
		"VACUUM INTO '" + filepath.Join(t.TempDir(), "copy.db") + "'",
		"WITH x AS (SELECT 1) INSERT INTO cities (name) SELECT 'y' FROM x",
		"select 1; delete from cities",
		"select load_extension('x')",
		"select * from pragma_table_info('cities'); pragma query_only=0",
		"-- comment\nDELETE FROM cities",
	} {
		status, _, b := get(t, base, "/fixtures/-/query.json?sql="+url.QueryEscape(q))
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil || (status != 400 && status != 403) || m["ok"] != false || m["error"] == "" {
			t.Errorf("%q = %d %s; want a 400/403 JSON error", q, status, b)
		}
	}
	if hash() != before {
		t.Fatal("database file changed")
	}
	// Reading pragma functions is allowed, as in Datasette.
	getJSON(t, base, "/fixtures/-/query.json?sql="+url.QueryEscape("select * from pragma_table_info('cities')"), 200)
}

func TestRunawayQueryInterrupted(t *testing.T) {
	base, _ := newTestServer(t, map[string]string{"sql_time_limit_ms": "100"})
	runaway := "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"
	m := getJSON(t, base, "/fixtures/-/query.json?sql="+url.QueryEscape(runaway), 400)
	if !strings.Contains(m["error"].(string), "sql_time_limit_ms") || m["title"] != "SQL Interrupted" {
		t.Errorf("runaway = %v", m)
	}
	// The server keeps answering, on every pooled connection.
	for i := 0; i < 10; i++ {
		getJSON(t, base, "/fixtures/-/query.json?sql=select+1", 200)
	}
}

// TestBigTableLimits uses a view whose count(*) would take minutes: the
// page still answers, the count is reported as unknown and a facet over it
// is listed as timed out.
func TestBigTableLimits(t *testing.T) {
	path := sqlitetest.WriteFixtures(t, t.TempDir())
	{
		db := sqlitetest.MustOpenDBWith(t, path, sqlitedb.Settings{})
		if _, err := db.WriteDB().Exec(`CREATE VIEW huge AS WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 1000000000) SELECT x, x % 7 AS m FROM c`); err != nil {
			t.Fatal(err)
		}
	}
	srv, err := server.New(context.Background(), server.Config{Files: []string{path}, Settings: map[string]string{
		"count_time_limit_ms": "20", "facet_time_limit_ms": "20", "sql_time_limit_ms": "2000",
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	m := getJSON(t, ts.URL, "/fixtures/huge.json?_size=5&_extra=count&_facet=m", 200)
	if len(m["rows"].([]any)) != 5 {
		t.Errorf("rows = %v", m["rows"])
	}
	if m["count"] != nil || m["count_timed_out"] != true {
		t.Errorf("count = %v, count_timed_out = %v; want null, true", m["count"], m["count_timed_out"])
	}
	fr := m["facet_results"].(map[string]any)
	if to := fr["timed_out"].([]any); len(to) != 1 || to[0] != "m" {
		t.Errorf("facet timed_out = %v", to)
	}
}

func TestCSV(t *testing.T) {
	base, _ := newTestServer(t, map[string]string{"max_returned_rows": "100", "default_page_size": "50"})
	read := func(p string) [][]string {
		status, h, b := get(t, base, p)
		if status != 200 || !strings.HasPrefix(h.Get("Content-Type"), "text/plain") {
			t.Fatalf("GET %s = %d %s %s", p, status, h.Get("Content-Type"), b)
		}
		recs, err := csv.NewReader(strings.NewReader(string(b))).ReadAll()
		if err != nil {
			t.Fatalf("GET %s: %v", p, err)
		}
		return recs
	}
	if recs := read("/fixtures/items.csv"); len(recs) != 51 || recs[0][0] != "rowid" {
		t.Errorf("items.csv: %d records, header %v", len(recs), recs[0])
	}
	// _stream=on returns every row, across pages, exactly once.
	recs := read("/fixtures/items.csv?_stream=on")
	if len(recs) != sqlitetest.ItemsRows+1 {
		t.Fatalf("items.csv?_stream=on: %d records; want %d", len(recs), sqlitetest.ItemsRows+1)
	}
	seen := map[string]bool{}
	for _, r := range recs[1:] {
		if seen[r[0]] {
			t.Fatalf("rowid %s twice", r[0])
		}
		seen[r[0]] = true
	}
	if recs := read("/fixtures/-/query.csv?sql=select+rowid+from+items&_stream=on"); len(recs) != sqlitetest.ItemsRows+1 {
		t.Errorf("query.csv?_stream=on: %d records", len(recs))
	}
	if recs := read("/fixtures/-/query.csv?sql=select+rowid+from+items"); len(recs) != 101 {
		t.Errorf("query.csv capped: %d records; want 101", len(recs))
	}
	status, h, _ := get(t, base, "/fixtures/items.csv?_dl=1")
	if status != 200 || !strings.Contains(h.Get("Content-Disposition"), "items.csv") {
		t.Errorf("_dl=1: %d %v", status, h)
	}
}

func TestPidHeaderAndTruncation(t *testing.T) {
	base, _ := newTestServer(t, map[string]string{"max_returned_rows": "10"})
	status, h, _ := get(t, base, "/fixtures.json")
	if status != 200 || h.Get("X-Lode-Pid") != strconv.Itoa(os.Getpid()) {
		t.Errorf("X-Lode-Pid = %q", h.Get("X-Lode-Pid"))
	}
	m := getJSON(t, base, "/fixtures/-/query.json?sql=select+*+from+items", 200)
	if len(m["rows"].([]any)) != 10 || m["truncated"] != true {
		t.Errorf("truncated = %v with %d rows", m["truncated"], len(m["rows"].([]any)))
	}
}

// TestSchemaChangeSeen shows a table created after startup (by another
// connection, as the write API or another process would) is served.
func TestSchemaChangeSeen(t *testing.T) {
	srv, ts := newFixturesServer(t)
	getJSON(t, ts.URL, "/fixtures/later.json", 404)
	if _, err := srv.DB("fixtures").WriteDB().Exec("CREATE TABLE later (x); INSERT INTO later VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	m := getJSON(t, ts.URL, "/fixtures/later.json", 200)
	if len(m["rows"].([]any)) != 1 {
		t.Errorf("later rows = %v", m["rows"])
	}
}

func TestSettingsRejected(t *testing.T) {
	for _, s := range []map[string]string{
		{"no_such_setting": "1"}, {"default_page_size": "x"}, {"allow_sql": "maybe"},
		{"max_returned_rows": "0"}, {"write_queue_time_limit_ms": "0"},
	} {
		if _, err := server.ParseSettings(s); err == nil {
			t.Errorf("ParseSettings(%v) = nil error", s)
		}
	}
}

// TestServeGracefulShutdown serves on a real 127.0.0.1:0 listener and shows
// Serve answers, then returns nil once its context is cancelled.
func TestServeGracefulShutdown(t *testing.T) {
	path := sqlitetest.WriteFixtures(t, t.TempDir())
	srv, err := server.New(context.Background(), server.Config{Files: []string{path}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- server.Serve(ctx, ln, srv, nil, 0) }()
	getJSON(t, "http://"+ln.Addr().String(), "/fixtures/cities/1.json", 200)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve after cancel = %v; want nil", err)
	}
	if _, err := http.Get("http://" + ln.Addr().String() + "/.json"); err == nil {
		t.Fatal("server still answers after shutdown")
	}
}

// TestConcurrentReadsDuringSchemaChanges reads from several goroutines
// while tables are created, so cached statements and the schema snapshot
// are replaced under load (run with -race).
func TestConcurrentReadsDuringSchemaChanges(t *testing.T) {
	srv, ts := newFixturesServer(t)
	paths := []string{
		"/fixtures/cities/3.json", "/fixtures/people.json?_size=5&_sort=name",
		"/fixtures/items.json?_size=3&_extra=count&_facet=category", "/fixtures/pairs/a,0.json",
		"/fixtures/-/query.json?sql=select+count(*)+from+items",
	}
	errc := make(chan error, 4)
	for g := 0; g < 4; g++ {
		go func(g int) {
			for i := 0; i < 40; i++ {
				p := paths[(g+i)%len(paths)]
				resp, err := http.Get(ts.URL + p)
				if err != nil {
					errc <- err
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					errc <- fmt.Errorf("GET %s = %d", p, resp.StatusCode)
					return
				}
			}
			errc <- nil
		}(g)
	}
	db := srv.DB("fixtures")
	for i := 0; i < 15; i++ {
		if _, err := db.WriteDB().Exec(fmt.Sprintf("CREATE TABLE extra_%d (x)", i)); err != nil {
			t.Fatal(err)
		}
		if _, err := db.RefreshSchema(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	for g := 0; g < 4; g++ {
		if err := <-errc; err != nil {
			t.Error(err)
		}
	}
	getJSON(t, ts.URL, "/fixtures/extra_14.json", 200)
}

// TestCSVStreamSizeLimit streams a 2 MB result with max_csv_mb=1: the
// output stops at a row boundary just under 1 MiB.
func TestCSVStreamSizeLimit(t *testing.T) {
	base, _ := newTestServer(t, map[string]string{"max_csv_mb": "1"})
	q := "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 40000) SELECT x, printf('%040d', x) AS pad FROM c"
	status, _, b := get(t, base, "/fixtures/-/query.csv?_stream=on&sql="+url.QueryEscape(q))
	if status != 200 {
		t.Fatalf("status %d", status)
	}
	if len(b) > 1<<20 || len(b) < (1<<20)-100 {
		t.Fatalf("streamed %d bytes; want just under %d", len(b), 1<<20)
	}
	recs, err := csv.NewReader(strings.NewReader(string(b))).ReadAll()
	if err != nil {
		t.Fatalf("cut CSV does not parse: %v", err)
	}
	last := recs[len(recs)-1]
	if len(last) != 2 || len(last[1]) != 40 {
		t.Fatalf("last record %q is not a whole row", last)
	}
	// Without the limit every row arrives.
	base2, _ := newTestServer(t, map[string]string{"max_csv_mb": "0"})
	_, _, b = get(t, base2, "/fixtures/-/query.csv?_stream=on&sql="+url.QueryEscape(q))
	if n := strings.Count(string(b), "\r\n"); n != 40001 {
		t.Fatalf("unlimited stream has %d lines; want 40001", n)
	}
}

// TestAddStatusEndpoint: a status endpoint may not shadow a page Lode
// answers itself, and an added one is served as JSON only.
func TestAddStatusEndpoint(t *testing.T) {
	srv, ts := newFixturesServer(t)
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"status":"added"}`))
	})
	for _, name := range []string{"actor", "auth-token", "versions", "settings", "config", "databases", "plugins", "threads", "schema", "metrics"} {
		if err := srv.AddStatusEndpoint("/-/"+name+".json", ok); err == nil {
			t.Errorf("AddStatusEndpoint(%s) was accepted; it would shadow or never be reached", name)
		}
	}
	for _, bad := range []string{"/-/workers", "/workers.json", "/-/a/b.json", "/-/.json", "/-/a~2Fb.json"} {
		if err := srv.AddStatusEndpoint(bad, ok); err == nil {
			t.Errorf("AddStatusEndpoint(%q) was accepted", bad)
		}
	}
	if err := srv.AddStatusEndpoint("/-/workers.json", ok); err != nil {
		t.Fatal(err)
	}
	if m := getJSON(t, ts.URL, "/-/workers.json", 200); m["status"] != "added" {
		t.Errorf("/-/workers.json = %v", m)
	}
	if status, _, b := get(t, ts.URL, "/-/workers"); status != 404 || !strings.Contains(string(b), "/-/workers.json") {
		t.Errorf("/-/workers = %d %s; want a 404 pointing at the .json", status, b)
	}
	// Every refused name is a page Lode answers: none is "Database not found".
	for _, p := range []string{"/-/actor.json", "/-/versions.json", "/-/settings.json", "/-/config.json", "/-/databases.json", "/-/plugins.json", "/-/threads.json", "/-/schema.json", "/-/metrics"} {
		if status, _, b := get(t, ts.URL, p); status != 200 {
			t.Errorf("GET %s = %d %s", p, status, b)
		}
	}
}
