package server_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"lode/internal/config"
	"lode/internal/server"
	"lode/internal/sqlitedb"
)

// FuzzWriteBody sends arbitrary bodies to the write API's JSON endpoints
// (insert, upsert, update, delete, create, drop) of a real database: the
// answer is never a 5xx, is always JSON with an "ok" field, and a 4xx says
// what is wrong. Corpus: testdata/fuzz/FuzzWriteBody.
func FuzzWriteBody(f *testing.F) {
	for _, s := range []string{
		`{"row": {"name": "a", "n": 1}}`,
		`{"rows": [{"name": "a"}, {"name": "b", "n": 2.5}], "return": true}`,
		`{"row": {"id": 1, "name": "x"}, "replace": true}`,
		`{"row": {"id": 1, "name": "x"}, "ignore": true}`,
		`{"rows": [{"id": 1, "name": "up"}]}`,
		`{"update": {"name": "u", "extra": [1, {"a": null}]}, "alter": true, "return": true}`,
		`{"table": "t2", "columns": [{"name": "a", "type": "text"}, {"name": "b", "type": "integer"}], "pk": "a"}`,
		`{"table": "t3", "rows": [{"a": 1, "b": "x"}], "pks": ["a", "b"]}`,
		`{"confirm": true}`,
		`{"row": {"n": 1e400}}`, `{"row": {"n": -0}}`, `{"row": {"name": "\u0000"}}`,
		`[]`, `null`, `{`, ``, `{"row": {}}`, `{"rows": []}`, "{\"row\": {\"name\": \"\xff\"}}",
	} {
		for ep := uint8(0); ep < 6; ep++ {
			f.Add(s, ep)
		}
	}
	path := filepath.Join(f.TempDir(), "fuzz.db")
	raw, err := sql.Open("sqlite3", path)
	if err != nil {
		f.Fatal(err)
	}
	if _, err := raw.Exec(`PRAGMA journal_mode=wal; CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, n REAL); INSERT INTO t (name) VALUES ('one')`); err != nil {
		f.Fatal(err)
	}
	raw.Close()
	lc, err := config.Parse([]byte("permissions:\n  insert-row: true\n  update-row: true\n  delete-row: true\n  create-table: true\n  alter-table: true\n  drop-table: true\n"))
	if err != nil {
		f.Fatal(err)
	}
	ctx := context.Background()
	// synchronous=off: the fuzzer is after decoding and validation bugs,
	// not durability, and an fsync per input would cut executions 10x.
	srv, err := server.New(ctx, server.Config{Files: []string{path}, Lode: lc, DB: sqlitedb.Settings{Synchronous: "off"}})
	if err != nil {
		f.Fatal(err)
	}
	defer srv.Close()
	api, err := server.NewWriteAPI(srv, server.WriteConfig{Secret: []byte("fuzz")})
	if err != nil {
		f.Fatal(err)
	}
	defer api.Close()
	endpoints := []string{"/fuzz/t/-/insert", "/fuzz/t/-/upsert", "/fuzz/t/1/-/update",
		"/fuzz/t/2/-/delete", "/fuzz/-/create", "/fuzz/t2/-/drop"}
	f.Fuzz(func(t *testing.T, body string, ep uint8) {
		target := endpoints[int(ep)%len(endpoints)]
		req := httptest.NewRequest(http.MethodPost, target, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		api.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("POST %s %q: status %d: %s", target, body, rec.Code, rec.Body)
		}
		var resp map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
			t.Fatalf("POST %s %q: status %d, body is not JSON (%v): %s", target, body, rec.Code, err, rec.Body)
		}
		if _, ok := resp["ok"].(bool); !ok {
			t.Fatalf("POST %s %q: no boolean ok: %s", target, body, rec.Body)
		}
		if rec.Code >= 400 {
			if msg, _ := resp["error"].(string); msg == "" {
				t.Fatalf("POST %s %q: status %d without an error message: %s", target, body, rec.Code, rec.Body)
			}
		}
	})
}
