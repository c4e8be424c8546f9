package reliability_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// badCase is one malformed request. Status 0 accepts any 4xx, -1 also
// a 2xx (input Datasette accepts); msg is a
// case-insensitive substring the error message must contain, naming the
// problem.
type badCase struct {
	name, method, path, ctype, body string
	auth                            string // "", "root", or a literal Authorization value
	status                          int
	msg                             string
}

func badInputCorpus() []badCase {
	big := `{"row": {"k": "` + strings.Repeat("x", 11<<20) + `"}}`
	var rows strings.Builder
	rows.WriteString(`{"rows": [`)
	for i := 0; i < 101; i++ {
		if i > 0 {
			rows.WriteString(",")
		}
		rows.WriteString(`{"k": "r"}`)
	}
	rows.WriteString(`]}`)
	deep := strings.Repeat("[", 20000) + strings.Repeat("]", 20000)
	ins := "app/items/-/insert"
	js := "application/json"
	return []badCase{
		// Read endpoints.
		{name: "unknown database", path: "nope.json", status: 404, msg: "database not found"},
		{name: "unknown table", path: "app/nope.json", status: 404, msg: "table not found"},
		{name: "unknown row", path: "app/items/999999.json", status: 404, msg: "row not found"},
		{name: "non-integer rowid", path: "app/items/abc.json", status: 404},
		{name: "unknown instance file", path: "-/nope.json", status: 404},
		{name: "unknown database file", path: "app/-/nope.json", status: 404},
		{name: "unknown _shape", path: "app/items.json?_shape=bogus", status: 400, msg: "_shape"},
		{name: "unknown _shape on query", path: "app/-/query.json?sql=select+1&_shape=bogus", status: 400, msg: "_shape"},
		{name: "negative _size", path: "app/items.json?_size=-1", status: 400, msg: "_size"},
		{name: "huge _size", path: "app/items.json?_size=99999999999999999999", status: 400, msg: "_size"},
		{name: "_size over max_returned_rows", path: "app/items.json?_size=100000", status: 400, msg: "_size"},
		{name: "non-numeric _size", path: "app/items.json?_size=abc", status: 400, msg: "_size"},
		{name: "sort by unknown column", path: "app/items.json?_sort=nocol", status: 400, msg: "nocol"},
		{name: "sort_desc by unknown column", path: "app/items.json?_sort_desc=nocol", status: 400, msg: "nocol"},
		{name: "filter on unknown column", path: "app/items.json?nocol=1", status: 400, msg: "nocol"},
		{name: "unknown filter operator (ignored, as Datasette does)", path: "app/items.json?k__bogus=1", status: -1},
		{name: "facet on unknown column", path: "app/items.json?_facet=nocol", status: 400, msg: "nocol"},
		{name: "_col unknown", path: "app/items.json?_col=nocol", status: 400, msg: "nocol"},
		{name: "_nocol unknown", path: "app/items.json?_nocol=nocol", status: 400, msg: "nocol"},
		{name: "garbage _next (a rowid bound, as Datasette)", path: "app/items.json?_next=%21%21garbage", status: -1},
		{name: "invalid UTF-8 _next", path: "app/items.json?_next=%FF%FE", status: -1},
		{name: "_search without FTS (ignored, as Datasette)", path: "app/items.json?_search=x", status: -1},
		{name: "_where syntax error", path: "app/items.json?_where=" + url.QueryEscape("k = ("), status: 400},
		{name: "invalid UTF-8 filter value", path: "app/items.json?k=%FF%FE", status: -1},
		{name: "invalid UTF-8 in ?sql=", path: "app/-/query.json?sql=select+%27%FF%27", status: -1},
		{name: "invalid UTF-8 table name", path: "app/%FF%FE.json", status: 0},
		{name: "bad tilde-encoding in table", path: "app/items~ZZ.json", status: 0},
		{name: "truncated tilde-encoding", path: "app/items~2.json", status: 0},
		{name: "bad tilde-encoding in pk", path: "app/items/1~Z.json", status: 0},
		{name: "bad tilde-encoding in database", path: "ap~p.json", status: 0},
		{name: "long URL query (60 kB)", path: "app/items.json?k=" + strings.Repeat("a", 60<<10), status: -1},
		{name: "oversized ?sql= (60 kB)", path: "app/-/query.json?sql=select+" + strings.Repeat("1-", 30<<10) + "1", status: 400},
		{name: "?sql= not a SELECT", path: "app/-/query.json?sql=selec+1", status: 400, msg: "select"},
		{name: "?sql= syntax error", path: "app/-/query.json?sql=select+from", status: 400, msg: "syntax"},
		{name: "?sql= missing parameter (empty, as Datasette)", path: "app/-/query.json?sql=select+:p", status: -1},
		{name: "?sql= positional ?", path: "app/-/query.json?sql=select+%3F", status: 400, msg: ":named"},
		{name: "?sql= positional ?1", path: "app/-/query.json?sql=select+%3F1", status: 400, msg: ":named"},
		{name: "?sql= @a parameter", path: "app/-/query.json?sql=select+%40a&a=1", status: 400, msg: ":named"},
		{name: "?sql= $b parameter", path: "app/-/query.json?sql=select+%24b&b=1", status: 400, msg: ":named"},
		{name: "?sql= positional in CSV", path: "app/-/query.csv?sql=select+%3F", status: 400, msg: ":named"},
		{name: "CSV bad _size", path: "app/items.csv?_size=-5", status: 400},
		{name: "PUT on a read route", method: "PUT", path: "app/items.json", status: 405},
		{name: "DELETE on the index", method: "DELETE", path: ".json", status: 405},

		// Write endpoints.
		{name: "insert: no token", method: "POST", path: ins, ctype: js, body: `{"row": {"k": "a"}}`, status: 403, msg: "permission denied"},
		{name: "insert: invalid JSON", method: "POST", path: ins, ctype: js, body: `{"row": {"k": `, auth: "root", status: 400, msg: "json"},
		{name: "insert: empty body", method: "POST", path: ins, ctype: js, body: ``, auth: "root", status: 400},
		{name: "insert: JSON array body", method: "POST", path: ins, ctype: js, body: `[1, 2]`, auth: "root", status: 400},
		{name: "insert: JSON null body", method: "POST", path: ins, ctype: js, body: `null`, auth: "root", status: 400},
		{name: "insert: row is a number", method: "POST", path: ins, ctype: js, body: `{"row": 5}`, auth: "root", status: 400, msg: "row"},
		{name: "insert: rows is a string", method: "POST", path: ins, ctype: js, body: `{"rows": "x"}`, auth: "root", status: 400, msg: "rows"},
		{name: "insert: rows of numbers", method: "POST", path: ins, ctype: js, body: `{"rows": [1, 2]}`, auth: "root", status: 400, msg: "row"},
		{name: "insert: both row and rows", method: "POST", path: ins, ctype: js, body: `{"row": {"k": "a"}, "rows": [{"k": "b"}]}`, auth: "root", status: 400},
		{name: "insert: neither row nor rows", method: "POST", path: ins, ctype: js, body: `{"k": "a"}`, auth: "root", status: 400},
		{name: "insert: unknown column", method: "POST", path: ins, ctype: js, body: `{"row": {"nocol": 1}}`, auth: "root", status: 400, msg: "nocol"},
		{name: "insert: object value (stored as JSON text, as Datasette)", method: "POST", path: ins, ctype: js, body: `{"row": {"k": {"a": 1}}}`, auth: "root", status: -1},
		{name: "insert: 1e400 (stored as Inf, as Datasette)", method: "POST", path: ins, ctype: js, body: `{"row": {"n": 1e400}}`, auth: "root", status: -1},
		{name: "insert: too many rows", method: "POST", path: ins, ctype: js, body: rows.String(), auth: "root", status: 400, msg: "100"},
		{name: "insert: 30-digit integer", method: "POST", path: ins, ctype: js, body: `{"row": {"n": 123456789012345678901234567890}}`, auth: "root", status: 400, msg: "64 bits"},
		{name: "insert: alter with an empty column name", method: "POST", path: ins, ctype: js, body: `{"row": {"": 1}, "alter": true}`, auth: "root", status: 400, msg: "column name must not be empty"},
		{name: "drop: confirm \"yes\" (not confirmed: needs true)", method: "POST", path: "app/items/-/drop", ctype: js, body: `{"confirm": "yes"}`, auth: "root", status: -1},
		{name: "insert: 11 MiB body", method: "POST", path: ins, ctype: js, body: big, auth: "root", status: 413},
		{name: "insert: 20000-deep JSON", method: "POST", path: ins, ctype: js, body: deep, auth: "root", status: 400},
		{name: "insert: invalid UTF-8 in JSON", method: "POST", path: ins, ctype: js, body: "{\"row\": {\"k\": \"\xff\xfe\"}}", auth: "root", status: 400, msg: "utf-8"},
		{name: "insert: text/plain body", method: "POST", path: ins, ctype: "text/plain", body: `{"row": {"k": "a"}}`, auth: "root", status: 400},
		{name: "insert: unknown key", method: "POST", path: ins, ctype: js, body: `{"row": {"k": "a"}, "bogus": 1}`, auth: "root", status: 400, msg: "bogus"},
		{name: "insert: ignore and replace", method: "POST", path: ins, ctype: js, body: `{"row": {"k": "a"}, "ignore": true, "replace": true}`, auth: "root", status: 400},
		{name: "insert into unknown table", method: "POST", path: "app/nope/-/insert", ctype: js, body: `{"row": {"k": "a"}}`, auth: "root", status: 404, msg: "nope"},
		{name: "insert into unknown database", method: "POST", path: "nope/items/-/insert", ctype: js, body: `{"row": {"k": "a"}}`, auth: "root", status: 404, msg: "nope"},
		{name: "insert: bad tilde-encoding", method: "POST", path: "app/ite~ZZms/-/insert", ctype: js, body: `{"row": {"k": "a"}}`, auth: "root", status: 0},
		{name: "upsert without primary key", method: "POST", path: "app/items/-/upsert", ctype: js, body: `{"row": {"k": "a"}}`, auth: "root", status: 400},
		{name: "update: unknown row", method: "POST", path: "app/items/999999/-/update", ctype: js, body: `{"update": {"k": "b"}}`, auth: "root", status: 404},
		{name: "update: update is a list", method: "POST", path: "app/items/1/-/update", ctype: js, body: `{"update": [1]}`, auth: "root", status: 400, msg: "update"},
		{name: "update: unknown column", method: "POST", path: "app/items/1/-/update", ctype: js, body: `{"update": {"nocol": 1}}`, auth: "root", status: 400, msg: "nocol"},
		{name: "update: invalid JSON", method: "POST", path: "app/items/1/-/update", ctype: js, body: `{`, auth: "root", status: 400},
		{name: "delete: unknown row", method: "POST", path: "app/items/999999/-/delete", ctype: js, body: ``, auth: "root", status: 404},
		{name: "delete: bad pk encoding", method: "POST", path: "app/items/1~Z/-/delete", ctype: js, body: ``, auth: "root", status: 0},
		{name: "create: no table name", method: "POST", path: "app/-/create", ctype: js, body: `{"columns": [{"name": "a"}]}`, auth: "root", status: 400, msg: "table"},
		{name: "create: bad column type", method: "POST", path: "app/-/create", ctype: js, body: `{"table": "x", "columns": [{"name": "a", "type": "bogus"}]}`, auth: "root", status: 400, msg: "bogus"},
		{name: "create: columns not a list", method: "POST", path: "app/-/create", ctype: js, body: `{"table": "x", "columns": "a"}`, auth: "root", status: 400, msg: "columns"},
		{name: "create: existing table", method: "POST", path: "app/-/create", ctype: js, body: `{"table": "items", "columns": [{"name": "a"}]}`, auth: "root", status: 400, msg: "items"},
		// As in Datasette (sqlite-utils): the key becomes an INTEGER PRIMARY KEY column.
		{name: "create: pk not a column", method: "POST", path: "app/-/create", ctype: js, body: `{"table": "x2", "columns": [{"name": "a"}], "pk": "zz"}`, auth: "root", status: -1},
		{name: "create: compound pk not columns", method: "POST", path: "app/-/create", ctype: js, body: `{"table": "x3", "columns": [{"name": "a"}], "pks": ["a", "zz"]}`, auth: "root", status: 400, msg: "zz"},
		{name: "create: name sqlite_master", method: "POST", path: "app/-/create", ctype: js, body: `{"table": "sqlite_master", "columns": [{"name": "a"}]}`, auth: "root", status: 400},
		{name: "drop unknown table", method: "POST", path: "app/nope/-/drop", ctype: js, body: `{"confirm": true}`, auth: "root", status: 404, msg: "nope"},
		{name: "drop: invalid JSON (not confirmed, as Datasette)", method: "POST", path: "app/items/-/drop", ctype: js, body: `{"confirm": `, auth: "root", status: -1},
		{name: "GET on a write route", path: "app/items/-/insert", status: 0},

		// Tokens.
		{name: "forged token", method: "POST", path: ins, ctype: js, body: `{"row": {"k": "a"}}`, auth: "Bearer lodetok_forged.abc", status: 401, msg: "invalid token"},
		{name: "garbage bearer", method: "POST", path: ins, ctype: js, body: `{"row": {"k": "a"}}`, auth: "Bearer !!!", status: 401, msg: "token"},
		{name: "token for another secret", method: "POST", path: ins, ctype: js, body: `{"row": {"k": "a"}}`, auth: "foreign", status: 401, msg: "invalid token"},
		{name: "tampered token", method: "POST", path: ins, ctype: js, body: `{"row": {"k": "a"}}`, auth: "tampered", status: 401, msg: "invalid token"},
		{name: "expired token", method: "POST", path: ins, ctype: js, body: `{"row": {"k": "a"}}`, auth: "expired", status: 401, msg: "expired"},
		{name: "invalid UTF-8 token", method: "POST", path: ins, ctype: js, body: `{"row": {"k": "a"}}`, auth: "Bearer lodetok_\xff\xfe", status: 401, msg: "token"},
		{name: "Basic auth", method: "POST", path: ins, ctype: js, body: `{"row": {"k": "a"}}`, auth: "Basic YTpi", status: 0},
		{name: "forged token on a read", path: "app/items.json", auth: "Bearer lodetok_forged.abc", status: 401, msg: "token"},
	}
}

// TestBadInputCorpus sends every malformed request of badInputCorpus to
// one server: each must be a 4xx JSON error naming the problem, never a
// 5xx, and the server must keep answering (and never log a panic).
func TestBadInputCorpus(t *testing.T) {
	dir := t.TempDir()
	path := newDB(t, dir, "app.db", "wal",
		"CREATE TABLE items (id INTEGER PRIMARY KEY, k TEXT, n INTEGER)",
		"INSERT INTO items (k, n) VALUES ('a', 1), ('b', 2)")
	p := startLode(t, path, "--workers", "0", "--root")
	root := createToken(t, "--actor", "root")
	// A short-lived token, and one signed with another secret.
	expired := createToken(t, "--actor", "root", "--expires-after", "1")
	foreign := foreignToken(t)
	tampered := root[:len(root)-3] + flip(root[len(root)-3:])
	c := newClient()
	// Wait (polling) until the short-lived token has expired.
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, _, _ := do(t, c, "GET", p.Base+"-/actor.json", "", nil, "Authorization", "Bearer "+expired)
		if st == 401 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond) // poll interval
	}

	corpus := badInputCorpus()
	for _, tc := range corpus {
		method := tc.method
		if method == "" {
			method = "GET"
		}
		var hdr []string
		switch tc.auth {
		case "":
		case "root":
			hdr = []string{"Authorization", "Bearer " + root}
		case "expired":
			hdr = []string{"Authorization", "Bearer " + expired}
		case "foreign":
			hdr = []string{"Authorization", "Bearer " + foreign}
		case "tampered":
			hdr = []string{"Authorization", "Bearer " + tampered}
		default:
			hdr = []string{"Authorization", tc.auth}
		}
		var body *bytes.Reader
		if tc.body != "" || method == "POST" {
			body = bytes.NewReader([]byte(tc.body))
		}
		var st int
		var b []byte
		if body != nil {
			st, b, _ = do(t, c, method, p.Base+tc.path, tc.ctype, body, hdr...)
		} else {
			st, b, _ = do(t, c, method, p.Base+tc.path, tc.ctype, nil, hdr...)
		}
		var e apiError
		jerr := json.Unmarshal(b, &e)
		t.Logf("%-36s %d %.160s", tc.name, st, e.Error)
		switch {
		case st >= 500:
			t.Errorf("%s: %s %s gave %d: %.300s", tc.name, method, tc.path[:min(len(tc.path), 80)], st, b)
		case tc.status == -1 && st < 400:
			// Accepted input (Datasette's behaviour): no error to check.
		case st < 400:
			t.Errorf("%s: status %d, want an error: %.300s", tc.name, st, b)
		case tc.status > 0 && st != tc.status:
			t.Errorf("%s: status %d, want %d: %.300s", tc.name, st, tc.status, b)
		case jerr != nil || e.OK == nil || *e.OK || e.Error == "" || e.Status != 0 && e.Status != st:
			t.Errorf("%s: status %d without a JSON error body: %.300s", tc.name, st, b)
		case tc.msg != "" && !strings.Contains(strings.ToLower(e.Error), tc.msg):
			t.Errorf("%s: error %q does not name the problem (want %q in it)", tc.name, e.Error, tc.msg)
		}
	}
	// A URL past the 64 KiB header limit is refused by net/http itself,
	// before any handler: 431, rewritten to JSON like every error.
	st, b, _ := do(t, c, "GET", p.Base+"app/items.json?k="+strings.Repeat("a", 100<<10), "", nil)
	var e apiError
	if st != http.StatusRequestHeaderFieldsTooLarge || json.Unmarshal(b, &e) != nil || e.Status != st || !strings.Contains(e.Error, "64 KiB") {
		t.Errorf("100 KiB URL: status %d, want 431 with a JSON error naming the limit: %.300s", st, b)
	}
	st, b, _ = do(t, c, "GET", p.Base+"app/items.json", "", nil)
	if st != 200 {
		t.Fatalf("server stopped answering after the corpus: %d %.200s", st, b)
	}
	if strings.Contains(p.output(), "panic") {
		t.Errorf("the server logged a panic:\n%s", p.output())
	}
	t.Logf("%d malformed requests + 1 oversized URL: no 5xx, no panic", len(corpus))
}

// foreignToken makes a root token signed with a different secret.
func foreignToken(t *testing.T) string {
	t.Helper()
	return createToken(t, "--actor", "root", "--secret", "another-secret")
}

// flip changes the last characters of a token's signature.
func flip(s string) string {
	b := []byte(s)
	for i := range b {
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
	}
	return string(b)
}
