package server_test

import (
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"lode/internal/auth"
	"lode/internal/config"
	"lode/internal/server"
	"lode/internal/sqlitedb"
)

const writeSchema = `
CREATE TABLE docs (id INTEGER PRIMARY KEY, title TEXT, score FLOAT);
CREATE TABLE plain (name TEXT);
CREATE TABLE strict_t (id INTEGER PRIMARY KEY, n INTEGER) STRICT;
CREATE TABLE compound (a TEXT, b TEXT, v TEXT, PRIMARY KEY (a, b));
CREATE TABLE accounts (id INTEGER PRIMARY KEY, balance INTEGER);
INSERT INTO docs VALUES (1, 'One', 1.5), (2, 'Two', 2.5);
INSERT INTO plain VALUES ('p1');
INSERT INTO compound VALUES ('x', 'y', 'xy');
INSERT INTO accounts VALUES (1, 100);
`

// writeEnv is a write API over a real file, served on a real listener.
type writeEnv struct {
	t      testing.TB
	url    string
	path   string
	secret []byte
	api    *server.WriteAPI
	now    time.Time
}

type envOpts struct {
	yaml     string
	db       sqlitedb.Settings
	maxBody  int64
	maxRows  int
	mode     string
	root     bool
	rootTok  string
	noSchema bool
	// file and schema name the database file ("data.db") and the SQL it
	// starts with (writeSchema).
	file, schema string
	// settings are --setting values (nil: the defaults).
	settings map[string]string
}

func newWriteEnv(t testing.TB, o envOpts) *writeEnv {
	t.Helper()
	file, schema := cmp.Or(o.file, "data.db"), cmp.Or(o.schema, writeSchema)
	path := filepath.Join(t.TempDir(), file)
	raw, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec(schema); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	var lc *config.Config
	if o.yaml != "" {
		if lc, err = config.Parse([]byte(o.yaml)); err != nil {
			t.Fatal(err)
		}
	}
	srv, err := server.New(context.Background(), server.Config{Files: []string{path}, DB: o.db, Lode: lc, Settings: o.settings})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	e := &writeEnv{t: t, path: path, secret: []byte("test-secret"), now: time.Now()}
	api, err := server.NewWriteAPI(srv, server.WriteConfig{Secret: e.secret, Root: o.root, RootToken: o.rootTok,
		MaxBodyBytes: o.maxBody, MaxInsertRows: o.maxRows, Writer: sqlitedb.WriterOptions{Mode: o.mode}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { api.Close() })
	e.api = api
	hs := httptest.NewServer(api)
	t.Cleanup(hs.Close)
	e.url = hs.URL
	return e
}

func (e *writeEnv) token(actor string, r *auth.Restrictions, exp time.Duration) string {
	e.t.Helper()
	tok, err := auth.CreateToken(e.secret, auth.TokenOptions{Actor: actor, Restrict: r, ExpiresAfter: exp})
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

// resp is a decoded JSON response.
type resp struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func (e *writeEnv) do(method, path, token, contentType, body string) resp {
	e.t.Helper()
	req, err := http.NewRequest(method, e.url+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	// raw is the body without insignificant whitespace, so tests can look
	// for a key order in it.
	var c bytes.Buffer
	if json.Compact(&c, b) == nil {
		b = c.Bytes()
	}
	r := resp{status: res.StatusCode, header: res.Header, raw: string(b)}
	_ = json.Unmarshal(b, &r.body)
	return r
}

func (e *writeEnv) post(path, token, body string) resp {
	return e.do(http.MethodPost, path, token, "application/json", body)
}

func (e *writeEnv) root() string { return e.token("root", nil, 0) }

// count returns a row count read on a fresh connection.
func (e *writeEnv) count(where string) int {
	e.t.Helper()
	db, err := sql.Open("sqlite3", e.path)
	if err != nil {
		e.t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow("SELECT count(*) FROM " + where).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// checkErr asserts an error response: status, the JSON shape every error
// has, and that the message contains want.
func checkErr(t testing.TB, r resp, status int, want string) {
	t.Helper()
	if r.status != status {
		t.Errorf("status = %d; want %d (body %s)", r.status, status, r.raw)
	}
	if r.body["ok"] != false || r.body["status"] != float64(status) {
		t.Errorf("error body %s lacks ok:false / status:%d", r.raw, status)
	}
	msg, _ := r.body["error"].(string)
	if !strings.Contains(msg, want) {
		t.Errorf("error = %q; want it to contain %q", msg, want)
	}
}

func TestInsert(t *testing.T) {
	e := newWriteEnv(t, envOpts{root: true})
	tok := e.root()

	r := e.post("/data/docs/-/insert", tok, `{"row": {"title": "Three", "score": 3}}`)
	if r.status != 201 || jsonOf(r.body) != `{"ok":true,"rows":[{"id":3,"score":3,"title":"Three"}]}` {
		t.Fatalf("insert row = %d %s", r.status, r.raw)
	}
	// Column order follows the table, not the request.
	if !strings.Contains(r.raw, `{"id":3,"title":"Three","score":3`) {
		t.Errorf("row columns out of table order: %s", r.raw)
	}
	r = e.post("/data/docs/-/insert", tok, `{"rows": [{"title": "Four"}, {"title": "Five", "score": 5.5}]}`)
	if r.status != 201 || jsonOf(r.body) != `{"ok":true}` {
		t.Fatalf("insert rows = %d %s", r.status, r.raw)
	}
	r = e.post("/data/docs/-/insert", tok, `{"rows": [{"title": "Six"}, {"title": "Seven"}], "return": true}`)
	if r.status != 201 || !strings.Contains(r.raw, `"title":"Six"`) || strings.Index(r.raw, "Six") > strings.Index(r.raw, "Seven") {
		t.Fatalf("insert rows return = %d %s", r.status, r.raw)
	}
	// A rowid table's insert returns its columns without the rowid, an
	// upsert (which names the rowid) with it: Datasette's answers.
	r = e.post("/data/plain/-/insert", tok, `{"row": {"name": "p2"}}`)
	if r.status != 201 || jsonOf(r.body) != `{"ok":true,"rows":[{"name":"p2"}]}` {
		t.Errorf("rowid insert = %d %s", r.status, r.raw)
	}
	r = e.post("/data/plain/-/upsert", tok, `{"row": {"rowid": 2, "name": "p2b"}, "return": true}`)
	if r.status != 200 || jsonOf(r.body) != `{"ok":true,"rows":[{"name":"p2b","rowid":2}]}` {
		t.Errorf("rowid upsert = %d %s", r.status, r.raw)
	}
	// ignore keeps the old row, replace overwrites it.
	r = e.post("/data/docs/-/insert", tok, `{"row": {"id": 1, "title": "Ignored"}, "ignore": true}`)
	if r.status != 201 || e.count("docs WHERE id = 1 AND title = 'One'") != 1 {
		t.Errorf("ignore = %d %s", r.status, r.raw)
	}
	r = e.post("/data/docs/-/insert", tok, `{"row": {"id": 1, "title": "Replaced"}, "replace": true}`)
	if r.status != 201 || e.count("docs WHERE id = 1 AND title = 'Replaced'") != 1 {
		t.Errorf("replace = %d %s", r.status, r.raw)
	}
	// alter adds the missing column.
	r = e.post("/data/docs/-/insert", tok, `{"row": {"title": "Tagged", "tag": "new"}, "alter": true}`)
	if r.status != 201 || !strings.Contains(r.raw, `"tag":"new"`) {
		t.Errorf("alter = %d %s", r.status, r.raw)
	}
	// Nested JSON is stored as JSON text, booleans as integers.
	r = e.post("/data/plain/-/insert", tok, `{"row": {"name": {"a": [1, true]}}}`)
	if r.status != 201 || !strings.Contains(r.raw, `"name":"{\"a\":[1,true]}"`) {
		t.Errorf("nested = %d %s", r.status, r.raw)
	}
}

func TestInsertErrors(t *testing.T) {
	e := newWriteEnv(t, envOpts{root: true, maxRows: 2, maxBody: 4096})
	tok := e.root()
	tests := []struct {
		name, path, ctype, body string
		status                  int
		want                    string
	}{
		{"invalid json", "/data/docs/-/insert", "application/json", `{"row": `, 400, "Invalid JSON: "},
		{"not a dict", "/data/docs/-/insert", "application/json", `[1]`, 400, "JSON must be a dictionary"},
		{"no row", "/data/docs/-/insert", "application/json", `{}`, 400, `JSON must have one or other of "row" or "rows"`},
		{"row and rows", "/data/docs/-/insert", "application/json", `{"row": {}, "rows": []}`, 400, `Cannot use "row" and "rows" at the same time`},
		{"row not dict", "/data/docs/-/insert", "application/json", `{"row": 1}`, 400, `"row" must be a dictionary`},
		{"rows not list", "/data/docs/-/insert", "application/json", `{"rows": 1}`, 400, `"rows" must be a list`},
		{"rows of non-dicts", "/data/docs/-/insert", "application/json", `{"rows": [1]}`, 400, `"rows" must be a list of dictionaries`},
		{"too many rows", "/data/docs/-/insert", "application/json", `{"rows": [{}, {}, {}]}`, 400, "Too many rows, maximum allowed is 2"},
		{"bad parameter", "/data/docs/-/insert", "application/json", `{"row": {}, "foo": 1, "bar": 2}`, 400, `Invalid parameter: "bar", "foo"`},
		{"ignore and replace", "/data/docs/-/insert", "application/json", `{"row": {}, "ignore": true, "replace": true}`, 400, `Cannot use "ignore" and "replace" at the same time`},
		{"unknown column", "/data/docs/-/insert", "application/json", `{"rows": [{"title": "x"}, {"nope": 1, "zip": 2}]}`, 400, "Row 1 has invalid columns: nope, zip"},
		{"wrong type", "/data/strict_t/-/insert", "application/json", `{"row": {"n": "abc"}}`, 400, "cannot store TEXT value in INTEGER column strict_t.n"},
		{"duplicate pk", "/data/docs/-/insert", "application/json", `{"row": {"id": 1}}`, 400, "UNIQUE constraint failed: docs.id"},
		{"content type", "/data/docs/-/insert", "text/plain", `{"row": {}}`, 400, "Invalid content-type, must be application/json"},
		{"no table", "/data/nope/-/insert", "application/json", `{"row": {}}`, 404, "Table not found: nope"},
		{"no database", "/nodb/docs/-/insert", "application/json", `{"row": {}}`, 404, "Database not found: nodb"},
		{"too large", "/data/docs/-/insert", "application/json", `{"row": {"title": "` + strings.Repeat("x", 5000) + `"}}`, 413, "Request body too large"},
		{"upsert missing pk", "/data/docs/-/upsert", "application/json", `{"rows": [{"title": "x"}]}`, 400, `Row 0 is missing primary key column(s): "id"`},
		{"upsert null pk", "/data/compound/-/upsert", "application/json", `{"rows": [{"a": "x", "b": null}]}`, 400, `Row 0 has null primary key column(s): "b"`},
		{"upsert ignore", "/data/docs/-/upsert", "application/json", `{"rows": [{"id": 1}], "ignore": true}`, 400, "Upsert does not support ignore or replace"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkErr(t, e.do("POST", tt.path, tok, tt.ctype, tt.body), tt.status, tt.want)
		})
	}
	// An action Lode does not have is a 404 whatever the method (GET
	// once answered 405, as if the page existed for POST).
	for _, p := range []string{"/data/docs/-/nope", "/data/docs/1/-/nope", "/data/docs/-/update", "/data/docs/1/-/insert"} {
		for _, m := range []string{"GET", "POST"} {
			checkErr(t, e.do(m, p, tok, "application/json", `{"row": {}}`), 404, "Not found: unknown action")
		}
	}
	if n := e.count("docs"); n != 2 {
		t.Errorf("docs has %d rows after failed inserts; want 2", n)
	}
}

func TestUpsertUpdateDelete(t *testing.T) {
	e := newWriteEnv(t, envOpts{root: true})
	tok := e.root()
	r := e.post("/data/docs/-/upsert", tok, `{"rows": [{"id": 1, "title": "Uno"}, {"id": 9, "title": "Nine"}], "return": true}`)
	if r.status != 200 || jsonOf(r.body["rows"]) != `[{"id":1,"score":1.5,"title":"Uno"},{"id":9,"score":null,"title":"Nine"}]` {
		t.Fatalf("upsert = %d %s", r.status, r.raw)
	}
	r = e.post("/data/compound/-/upsert", tok, `{"row": {"a": "x", "b": "y", "v": "new"}}`)
	if r.status != 200 || e.count("compound WHERE v = 'new'") != 1 || e.count("compound") != 1 {
		t.Errorf("compound upsert = %d %s", r.status, r.raw)
	}

	r = e.post("/data/docs/2/-/update", tok, `{"update": {"title": "Dos"}, "return": true}`)
	if r.status != 200 || jsonOf(r.body) != `{"ok":true,"row":{"id":2,"score":2.5,"title":"Dos"}}` {
		t.Errorf("update = %d %s", r.status, r.raw)
	}
	r = e.post("/data/compound/x,y/-/update", tok, `{"update": {"v": "xy2"}}`)
	if r.status != 200 || jsonOf(r.body) != `{"ok":true}` || e.count("compound WHERE v = 'xy2'") != 1 {
		t.Errorf("compound update = %d %s", r.status, r.raw)
	}
	r = e.post("/data/plain/1/-/update", tok, `{"update": {"name": "renamed"}}`)
	if r.status != 200 || e.count("plain WHERE name = 'renamed'") != 1 {
		t.Errorf("rowid update = %d %s", r.status, r.raw)
	}
	checkErr(t, e.post("/data/docs/99/-/update", tok, `{"update": {"title": "x"}}`), 404, "Record not found: ['99']")
	checkErr(t, e.post("/data/docs/2/-/update", tok, `{"title": "x"}`), 400, "JSON must contain an update dictionary")
	checkErr(t, e.post("/data/docs/2/-/update", tok, `{"update": {}, "x": 1}`), 400, "Invalid keys: x")
	checkErr(t, e.post("/data/docs/2/-/update", tok, `{"update": {"nope": 1}}`), 400, "no such column: nope")
	r = e.post("/data/docs/2/-/update", tok, `{"update": {"extra": 7}, "alter": true, "return": true}`)
	if r.status != 200 || !strings.Contains(r.raw, `"extra":7`) {
		t.Errorf("update alter = %d %s", r.status, r.raw)
	}

	r = e.post("/data/docs/2/-/delete", tok, ``)
	if r.status != 200 || jsonOf(r.body) != `{"ok":true}` || e.count("docs WHERE id = 2") != 0 {
		t.Errorf("delete = %d %s", r.status, r.raw)
	}
	checkErr(t, e.post("/data/docs/2/-/delete", tok, ``), 404, "Record not found: ['2']")
	checkErr(t, e.post("/data/docs/a,b/-/delete", tok, ``), 404, "Record not found")
	r = e.post("/data/compound/x,y/-/delete", tok, ``)
	if r.status != 200 || e.count("compound") != 0 {
		t.Errorf("compound delete = %d %s", r.status, r.raw)
	}
}

func TestCreateAndDrop(t *testing.T) {
	e := newWriteEnv(t, envOpts{root: true})
	tok := e.root()
	r := e.post("/data/-/create", tok, `{"table": "people", "columns": [{"name": "id", "type": "integer"}, {"name": "name"}], "pk": "id"}`)
	wantSchema := "CREATE TABLE [people] (\n   [id] INTEGER PRIMARY KEY,\n   [name] TEXT\n)"
	if r.status != 201 || r.body["schema"] != strings.ReplaceAll(strings.ReplaceAll(wantSchema, "[", `"`), "]", `"`) && r.body["schema"] != wantSchema {
		t.Errorf("create columns = %d %s", r.status, r.raw)
	}
	if r.body["table_api_url"] != e.url+"/data/people.json" {
		t.Errorf("table_api_url = %v", r.body["table_api_url"])
	}
	r = e.post("/data/-/create", tok, `{"table": "events", "rows": [{"id": 1, "n": 2.5, "ok": true, "what": "x"}, {"id": 2, "what": null}], "pk": "id"}`)
	if r.status != 201 || r.body["row_count"] != float64(2) || !strings.Contains(r.raw, `INTEGER PRIMARY KEY`) ||
		!strings.Contains(r.raw, `FLOAT`) || e.count("events") != 2 {
		t.Errorf("create rows = %d %s", r.status, r.raw)
	}
	// Rows into an existing table are inserted; ignore needs pk.
	r = e.post("/data/-/create", tok, `{"table": "events", "rows": [{"id": 1, "what": "dup"}], "pk": "id", "ignore": true}`)
	if r.status != 201 || e.count("events WHERE what = 'dup'") != 0 {
		t.Errorf("create ignore = %d %s", r.status, r.raw)
	}
	checkErr(t, e.post("/data/-/create", tok, `{"table": "events", "rows": [{"id": 3}], "pk": "what"}`), 400, "pk cannot be changed for existing table")
	checkErr(t, e.post("/data/-/create", tok, `{"table": "people", "columns": [{"name": "x"}]}`), 400, "table [people] already exists")
	checkErr(t, e.post("/data/-/create", tok, `{"columns": [{"name": "x"}]}`), 400, "Table is required")
	checkErr(t, e.post("/data/-/create", tok, `{"table": "sqlite_x", "columns": [{"name": "x"}]}`), 400, "Invalid table name")
	checkErr(t, e.post("/data/-/create", tok, `{"table": "t"}`), 400, "columns, rows or row is required")
	checkErr(t, e.post("/data/-/create", tok, `{"table": "t", "columns": [{"name": "x", "type": "date"}]}`), 400, "Unsupported column type: date")
	checkErr(t, e.post("/data/-/create", tok, `{"table": "t", "columns": [{"name": "x"}, {"name": "x"}]}`), 400, "Duplicate column name: x")
	checkErr(t, e.post("/data/-/create", tok, `{"table": "t", "row": {"a": 1}, "ignore": true}`), 400, "ignore and replace require pk or pks")
	checkErr(t, e.post("/data/-/create", tok, `{"table": "t", "columns": [], "bogus": 1}`), 400, "Invalid keys: bogus")

	r = e.post("/data/events/-/drop", tok, ``)
	if r.status != 200 || r.body["row_count"] != float64(2) || r.body["message"] != `Pass "confirm": true to confirm` {
		t.Errorf("drop without confirm = %d %s", r.status, r.raw)
	}
	r = e.post("/data/events/-/drop", tok, `{"confirm": true}`)
	if r.status != 200 || jsonOf(r.body) != `{"ok":true}` {
		t.Errorf("drop = %d %s", r.status, r.raw)
	}
	checkErr(t, e.post("/data/events/-/drop", tok, `{"confirm": true}`), 404, "Table not found: events")
}

// TestWriteParity: write answers compared exactly with what Datasette
// 1.0a34 gave for the same requests (run by hand; the differences Lode
// keeps are in the README's "Differences from Datasette").
func TestWriteParity(t *testing.T) {
	e := newWriteEnv(t, envOpts{root: true})
	tok := e.root()
	raw, err := sql.Open("sqlite3", e.path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec(`CREATE VIEW v_docs AS SELECT * FROM docs`); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	// Not found: named on every write endpoint (Datasette names them
	// for update, delete and views only; README "Differences").
	for _, tc := range []struct{ path, want string }{
		{"/data/nope/-/insert", "Table not found: nope"},
		{"/data/nope/-/upsert", "Table not found: nope"},
		{"/data/nope/-/drop", "Table not found: nope"},
		{"/data/nope/1/-/update", "Table not found: nope"},
		{"/data/nope/1/-/delete", "Table not found: nope"},
		{"/data/v_docs/-/insert", "Table not found: v_docs"},
		{"/data/v_docs/-/drop", "Table not found: v_docs"},
		{"/nodb/t/-/insert", "Database not found: nodb"},
		{"/nodb/t/1/-/delete", "Database not found: nodb"},
		{"/nodb/-/create", "Database not found: nodb"},
	} {
		r := e.post(tc.path, tok, `{"row": {"a": 1}, "update": {"a": 1}, "table": "x", "columns": [{"name": "a"}]}`)
		if errs, _ := r.body["errors"].([]any); r.status != 404 || len(errs) != 1 || errs[0] != tc.want {
			t.Errorf("POST %s = %d %s; want 404 with errors [%q]", tc.path, r.status, r.raw, tc.want)
		}
	}
	// A 405 says which methods the page takes.
	for _, tc := range []struct{ method, path, allow string }{
		{"GET", "/data/docs/-/insert", "POST"},
		{"PUT", "/data/docs/1/-/update", "POST"},
		{"GET", "/data/-/create", "POST"},
		{"POST", "/data.json", "GET, HEAD"},
		{"POST", "/data/docs/-/schema.json", "GET, HEAD"},
		{"DELETE", "/data/docs", "GET, HEAD, POST"},
	} {
		r := e.do(tc.method, tc.path, tok, "application/json", "{}")
		if r.status != 405 || r.header.Get("Allow") != tc.allow {
			t.Errorf("%s %s = %d, Allow %q; want 405, Allow %q", tc.method, tc.path, r.status, r.header.Get("Allow"), tc.allow)
		}
	}
	// Create: a single pk that is not a column becomes an INTEGER PRIMARY
	// KEY in front (sqlite-utils); empty columns, rows or row count as
	// absent; a compound key naming a missing column is SQLite's error.
	for _, tc := range []struct{ body, schema string }{
		{`{"table": "c1", "row": {"x": 1}, "pk": "id"}`, "CREATE TABLE [c1] (\n   [id] INTEGER PRIMARY KEY,\n   [x] INTEGER\n)"},
		{`{"table": "c2", "columns": [{"name": "x", "type": "text"}], "pk": "id"}`, "CREATE TABLE [c2] (\n   [id] INTEGER PRIMARY KEY,\n   [x] TEXT\n)"},
		{`{"table": "c3", "rows": [{"x": 1}, {"x": 2}], "pk": "id", "columns": []}`, "CREATE TABLE [c3] (\n   [id] INTEGER PRIMARY KEY,\n   [x] INTEGER\n)"},
	} {
		r := e.post("/data/-/create", tok, tc.body)
		if r.status != 201 || r.body["schema"] != tc.schema {
			t.Errorf("create %s = %d %s; want schema %q", tc.body, r.status, r.raw, tc.schema)
		}
	}
	if n := e.count("c3 WHERE id IN (1, 2)"); n != 2 {
		t.Errorf("c3 rows got ids: %d of 2", n)
	}
	for _, tc := range []struct{ body, want string }{
		{`{"table": "c4", "rows": []}`, "columns, rows or row is required"},
		{`{"table": "c4", "columns": [], "row": {}}`, "columns, rows or row is required"},
		{`{"table": "c4", "columns": [{"name": "x"}], "pks": ["x", "q"]}`, "no such column: q"},
		{`{"table": "c4", "columns": [{"name": "x"}], "pk": "x", "pks": ["x"]}`, "Cannot specify both pk and pks"},
	} {
		r := e.post("/data/-/create", tok, tc.body)
		if errs, _ := r.body["errors"].([]any); r.status != 400 || len(errs) != 1 || errs[0] != tc.want {
			t.Errorf("create %s = %d %s; want 400 with errors [%q]", tc.body, r.status, r.raw, tc.want)
		}
	}
}

func TestPermissionMatrix(t *testing.T) {
	e := newWriteEnv(t, envOpts{root: true, yaml: `
databases:
  data:
    tables:
      plain:
        permissions:
          insert-row: {id: alice}
`})
	expired, err := auth.CreateToken(e.secret, auth.TokenOptions{Actor: "root", ExpiresAfter: time.Second, Now: time.Now().Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	rootTok := e.root()
	body, sig, _ := strings.Cut(strings.TrimPrefix(rootTok, auth.TokenPrefix), ".")
	flip := "A"
	if sig[0] == 'A' {
		flip = "B"
	}
	tampered := auth.TokenPrefix + body + "." + flip + sig[1:] // signature changed
	other, _ := auth.CreateToken([]byte("another secret"), auth.TokenOptions{Actor: "root"})
	restricted := e.token("root", &auth.Restrictions{Resources: map[string]map[string][]string{"data": {"docs": {"insert-row"}}}}, 0)
	alice := e.token("alice", nil, 0)
	tests := []struct {
		name, token, path, body string
		status                  int
		want                    string
	}{
		{"no token", "", "/data/docs/-/insert", `{"row": {}}`, 403, "Permission denied"},
		{"valid root", rootTok, "/data/docs/-/insert", `{"row": {}}`, 201, ""},
		{"expired", expired, "/data/docs/-/insert", `{"row": {}}`, 401, "Token has expired"},
		{"tampered", tampered, "/data/docs/-/insert", `{"row": {}}`, 401, "Invalid token"},
		{"wrong secret", other, "/data/docs/-/insert", `{"row": {}}`, 401, "Invalid token"},
		{"not bearer", "", "/data/docs/-/insert", `{"row": {}}`, 403, "Permission denied"},
		{"restricted allowed", restricted, "/data/docs/-/insert", `{"row": {}}`, 201, ""},
		{"restricted other table", restricted, "/data/plain/-/insert", `{"row": {}}`, 403, "Permission denied"},
		{"restricted other action", restricted, "/data/docs/1/-/delete", ``, 403, "Permission denied"},
		{"restricted upsert", restricted, "/data/docs/-/upsert", `{"row": {"id": 1}}`, 403, "need both insert-row and update-row"},
		{"restricted create", restricted, "/data/-/create", `{"table": "x", "columns": [{"name": "a"}]}`, 403, "Permission denied"},
		{"alice by config", alice, "/data/plain/-/insert", `{"row": {}}`, 201, ""},
		{"alice elsewhere", alice, "/data/docs/-/insert", `{"row": {}}`, 403, "Permission denied"},
		{"alice drop", alice, "/data/plain/-/drop", `{"confirm": true}`, 403, "Permission denied"},
		{"anonymous create", "", "/data/-/create", `{"table": "x", "columns": [{"name": "a"}]}`, 403, "Permission denied"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.post(tt.path, tt.token, tt.body)
			if tt.status < 300 {
				if r.status != tt.status {
					t.Errorf("status = %d; want %d (%s)", r.status, tt.status, r.raw)
				}
				return
			}
			checkErr(t, r, tt.status, tt.want)
		})
	}
	// A header that is not "Bearer ..." is refused, not ignored.
	r := e.do("POST", "/data/docs/-/insert", "", "application/json", `{"row": {}}`)
	_ = r
	req, _ := http.NewRequest("POST", e.url+"/data/docs/-/insert", strings.NewReader(`{"row": {}}`))
	req.Header.Set("Authorization", "Basic abc")
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 401 {
		t.Errorf("Basic auth header: status %d; want 401", res.StatusCode)
	}
}

func TestRootNeedsRootFlag(t *testing.T) {
	e := newWriteEnv(t, envOpts{root: false})
	checkErr(t, e.post("/data/docs/-/insert", e.root(), `{"row": {}}`), 403, "Permission denied")
}

func TestRootSignIn(t *testing.T) {
	e := newWriteEnv(t, envOpts{root: true, rootTok: "one-time"})
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := client.Get(e.url + "/-/auth-token?token=wrong")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 403 {
		t.Errorf("wrong sign-in token: %d; want 403", res.StatusCode)
	}
	res, err = client.Get(e.url + "/-/auth-token?token=one-time")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 302 || len(res.Cookies()) != 1 {
		t.Fatalf("sign-in: %d cookies %v", res.StatusCode, res.Cookies())
	}
	req, _ := http.NewRequest("GET", e.url+"/-/actor.json", nil)
	req.AddCookie(res.Cookies()[0])
	ares, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(ares.Body)
	ares.Body.Close()
	if !strings.Contains(string(b), `"id":"root"`) {
		t.Errorf("actor after sign-in: %s", b)
	}
	// The cookie works for JSON writes.
	req, _ = http.NewRequest("POST", e.url+"/data/docs/-/insert", strings.NewReader(`{"row": {}}`))
	req.Header.Set("Content-Type", "application/json")
	req.AddCookie(res.Cookies()[0])
	wres, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	wres.Body.Close()
	if wres.StatusCode != 201 {
		t.Errorf("insert with root cookie: %d", wres.StatusCode)
	}
	// The sign-in link works once.
	res, err = client.Get(e.url + "/-/auth-token?token=one-time")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 403 {
		t.Errorf("second sign-in with the one-time token: %d; want 403", res.StatusCode)
	}
}

// TestSQLCannotWrite: the ?sql= endpoint stays read-only next to the write
// API.
func TestSQLCannotWrite(t *testing.T) {
	e := newWriteEnv(t, envOpts{root: true})
	for _, q := range []string{
		"INSERT INTO docs (title) VALUES ('sneaky')",
		"UPDATE docs SET title = 'sneaky'",
		"DELETE FROM docs",
		"WITH x AS (SELECT 1) INSERT INTO docs (title) SELECT 'sneaky' FROM x",
		"DROP TABLE docs",
		"PRAGMA journal_mode = delete",
	} {
		for _, tok := range []string{"", e.root()} {
			r := e.do("GET", "/data/-/query.json?sql="+urlQuery(q), tok, "", "")
			if r.status == 200 || r.body["ok"] != false {
				t.Errorf("?sql=%s: status %d body %s; want an error", q, r.status, r.raw)
			}
		}
	}
	if n := e.count("docs WHERE title = 'sneaky'"); n != 0 || e.count("docs") != 2 {
		t.Errorf("?sql= wrote to docs")
	}
}

func urlQuery(s string) string {
	return strings.NewReplacer(" ", "+", "'", "%27", "=", "%3D", "(", "%28", ")", "%29", ",", "%2C").Replace(s)
}

// TestBusyIs503: a lock held by another connection past the busy timeout
// is a 503 with Retry-After and the SQLite code and wait.
func TestBusyIs503(t *testing.T) {
	for _, mode := range []string{"single", "pool"} {
		t.Run(mode, func(t *testing.T) {
			e := newWriteEnv(t, envOpts{root: true, mode: mode, db: sqlitedb.Settings{BusyTimeout: 100 * time.Millisecond}})
			hold, err := sql.Open("sqlite3", e.path)
			if err != nil {
				t.Fatal(err)
			}
			defer hold.Close()
			conn, err := hold.Conn(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := conn.ExecContext(context.Background(), "BEGIN IMMEDIATE"); err != nil {
				t.Fatal(err)
			}
			r := e.post("/data/docs/-/insert", e.root(), `{"row": {"title": "blocked"}}`)
			if _, err := conn.ExecContext(context.Background(), "ROLLBACK"); err != nil {
				t.Fatal(err)
			}
			checkErr(t, r, 503, "database is locked")
			if r.body["code"] != "SQLITE_BUSY" || r.header.Get("Retry-After") == "" {
				t.Errorf("busy response %s, Retry-After %q", r.raw, r.header.Get("Retry-After"))
			}
			if w, _ := r.body["waited_ms"].(float64); w < 100 {
				t.Errorf("waited_ms = %v; want at least the 100 ms busy timeout", r.body["waited_ms"])
			}
			// Once the lock is gone the same request succeeds.
			if r := e.post("/data/docs/-/insert", e.root(), `{"row": {"title": "later"}}`); r.status != 201 {
				t.Errorf("after unlock: %d %s", r.status, r.raw)
			}
		})
	}
}

// TestBusyReadIs503: in a rollback journal an EXCLUSIVE lock shuts readers
// out too; the write API's own reads report that as a 503 lock error, not
// a 400.
func TestBusyReadIs503(t *testing.T) {
	e := newWriteEnv(t, envOpts{root: true, db: sqlitedb.Settings{JournalMode: "delete", BusyTimeout: 50 * time.Millisecond}})
	hold, err := sql.Open("sqlite3", e.path)
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Close()
	conn, err := hold.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(context.Background(), "BEGIN EXCLUSIVE"); err != nil {
		t.Fatal(err)
	}
	r := e.post("/data/docs/-/insert", e.root(), `{"row": {"title": "blocked"}}`)
	conn.ExecContext(context.Background(), "ROLLBACK")
	checkErr(t, r, 503, "database is locked")
	if c, _ := r.body["code"].(string); !strings.HasPrefix(c, "SQLITE_BUSY") {
		t.Errorf("code = %v; want SQLITE_BUSY*", r.body["code"])
	}
}

// TestConcurrentInsertsIsolateFailures sends good and bad inserts at once:
// every good one is committed, every bad one fails alone.
func TestConcurrentInsertsIsolateFailures(t *testing.T) {
	e := newWriteEnv(t, envOpts{root: true})
	tok := e.root()
	const n = 40
	var wg sync.WaitGroup
	statuses := make([]int, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := fmt.Sprintf(`{"row": {"title": "c%d"}}`, i)
			if i%5 == 0 {
				body = `{"row": {"id": 1, "title": "dup"}}` // primary key taken
			}
			req, _ := http.NewRequest("POST", e.url+"/data/docs/-/insert", bytes.NewReader([]byte(body)))
			req.Header.Set("Authorization", "Bearer "+tok)
			req.Header.Set("Content-Type", "application/json")
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			statuses[i] = res.StatusCode
		}()
	}
	wg.Wait()
	for i, s := range statuses {
		want := 201
		if i%5 == 0 {
			want = 400
		}
		if s != want {
			t.Errorf("request %d: status %d; want %d", i, s, want)
		}
	}
	if got := e.count("docs WHERE title LIKE 'c%'"); got != n-n/5 {
		t.Errorf("%d good rows committed; want %d", got, n-n/5)
	}
	if e.count("docs WHERE title = 'dup'") != 0 {
		t.Error("a failed insert was committed")
	}
}

// TestGroupCommitOverHTTP holds the writer busy, queues three inserts over
// HTTP (good, bad, good), then lets them run: they share one transaction,
// the bad one fails alone and the good ones are committed.
func TestGroupCommitOverHTTP(t *testing.T) {
	e := newWriteEnv(t, envOpts{root: true})
	w := e.api.Writer("data")
	gate, started := make(chan struct{}), make(chan struct{})
	blocker := make(chan error, 1)
	go func() {
		blocker <- w.Do(context.Background(), func(ctx context.Context, ex sqlitedb.Execer) error {
			close(started)
			<-gate
			return nil
		})
	}()
	<-started
	before := w.Stats().Batches
	bodies := []string{`{"row": {"title": "g1"}}`, `{"row": {"id": 1, "title": "taken"}}`, `{"row": {"title": "g2"}}`}
	statuses := make([]int, len(bodies))
	var wg sync.WaitGroup
	for i, b := range bodies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i] = e.post("/data/docs/-/insert", e.root(), b).status
		}()
		deadline := time.Now().Add(30 * time.Second)
		for w.Queued() < i+1 {
			if time.Now().After(deadline) {
				t.Fatalf("request %d never queued", i)
			}
			time.Sleep(time.Millisecond) // polling
		}
	}
	close(gate)
	if err := <-blocker; err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if want := []int{201, 400, 201}; !slices.Equal(statuses, want) {
		t.Errorf("statuses = %v; want %v", statuses, want)
	}
	if n := w.Stats().Batches - before; n != 1 {
		t.Errorf("%d transactions for the three queued requests; want 1", n)
	}
	if e.count("docs WHERE title IN ('g1', 'g2')") != 2 || e.count("docs WHERE title = 'taken'") != 0 {
		t.Error("batch-mates of the failing request were not committed, or it was")
	}
}
