package server_test

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"lode/internal/auth"
	"lode/internal/config"
	"lode/internal/query"
	"lode/internal/server"
	"lode/internal/sqlitedb"
)

// deniedNames are table names that once took other routes than the gate
// checked: a '/', a '.json' suffix, a '.', a '~', a space and non-ASCII, and
// a literal percent-escape.
var deniedNames = []string{"secret/x", "s.json", "a.b", "x~y", "ü space", "%2F"}

// secretMarker is in every denied table's label column; no response to a
// request the gate refuses may contain it.
const secretMarker = "TOPSECRET"

// gateEnv serves a database with one denied table per deniedNames (each
// with a label column holding secretMarker), a public table "pub" with a
// foreign key into each, and a canned query named like a denied table.
type gateEnv struct {
	t      *testing.T
	url    string
	secret []byte
}

func newGateEnv(t *testing.T, allow string, extraYAML string) *gateEnv {
	t.Helper()
	h := newGateHandler(t, allow, extraYAML)
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	return &gateEnv{t: t, url: ts.URL, secret: gateSecret}
}

var gateSecret = []byte("gate-secret")

// newGateHandler builds gateEnv's server.
func newGateHandler(t testing.TB, allow string, extraYAML string) http.Handler {
	t.Helper()
	path := filepath.Join(t.TempDir(), "data.db")
	raw, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	stmts := []string{"CREATE TABLE pub (id INTEGER PRIMARY KEY, title TEXT"}
	var fks []string
	for i, n := range deniedNames {
		q := query.QuoteIdent(n)
		stmts = append(stmts, fmt.Sprintf("CREATE TABLE %s (id INTEGER PRIMARY KEY, name TEXT)", q),
			fmt.Sprintf("INSERT INTO %s VALUES (1, '%s %d')", q, secretMarker, i))
		stmts[0] += fmt.Sprintf(", s%d INTEGER", i)
		fks = append(fks, fmt.Sprintf("FOREIGN KEY (s%d) REFERENCES %s(id)", i, q))
	}
	stmts[0] += ", " + strings.Join(fks, ", ") + ")"
	stmts = append(stmts, "INSERT INTO pub VALUES (1, 'public'"+strings.Repeat(", 1", len(deniedNames))+")")
	for _, s := range stmts {
		if _, err := raw.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	raw.Close()
	var y strings.Builder
	y.WriteString(extraYAML)
	y.WriteString("databases:\n  data:\n    queries:\n      \"secret/x\":\n        sql: select 'canned' as c\n    tables:\n")
	for _, n := range deniedNames {
		fmt.Fprintf(&y, "      %q:\n        allow: %s\n", n, allow)
	}
	lc, err := config.Parse([]byte(y.String()))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(context.Background(), server.Config{Files: []string{path}, Lode: lc,
		Settings: map[string]string{"index_count_time_limit_ms": "10000"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	api, err := server.NewWriteAPI(srv, server.WriteConfig{Secret: gateSecret})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { api.Close() })
	return api
}

// FuzzGate: whatever path and query a client sends, in whatever encoding,
// no answer carries a denied table's rows or labels (the handler is called in
// process; redirects are followed up to five times).
func FuzzGate(f *testing.F) {
	for _, n := range deniedNames {
		canonical, other := urlForms(n)
		for _, p := range append(canonical, other...) {
			f.Add(p)
		}
	}
	f.Add("/data/pub.json?_labels=on&_facet=s0")
	f.Add("/data/pub/1")
	// execute-sql is denied too: with it, ?sql= may read a denied table
	// by Datasette's rule (TestGateSQLAndWhere).
	h := newGateHandler(f, "false", "allow_sql: false\n")
	f.Fuzz(func(t *testing.T, p string) {
		u, err := url.Parse(p)
		if err != nil || u.Path == "" || u.Host != "" || u.Scheme != "" {
			return
		}
		for hop := 0; hop < 5; hop++ {
			req := httptest.NewRequest("GET", "http://x/", nil)
			req.URL = u
			req.RequestURI = u.RequestURI()
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if strings.Contains(rec.Body.String(), secretMarker) {
				t.Fatalf("GET %s (hop %d) = %d carries a denied table's data:\n%.400s", u, hop, rec.Code, rec.Body.String())
			}
			loc := rec.Header().Get("Location")
			if rec.Code/100 != 3 || loc == "" {
				return
			}
			if u, err = url.Parse(loc); err != nil || u.Path == "" {
				return
			}
		}
	})
}

// get fetches a raw path (sent as written, not re-encoded), following
// redirects, and returns the final status and body.
func (e *gateEnv) get(rawPath, token string) (int, string) {
	e.t.Helper()
	req, err := http.NewRequest("GET", e.url+"/", nil)
	if err != nil {
		e.t.Fatal(err)
	}
	u, err := url.Parse(e.url + rawPath)
	if err != nil {
		e.t.Fatalf("%s: %v", rawPath, err)
	}
	req.URL = u
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (e *gateEnv) token(actor string) string {
	tok, err := auth.CreateToken(e.secret, auth.TokenOptions{Actor: actor})
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

// urlForms are the ways a client may write the URLs of table name: the
// tilde encoding Lode and Datasette produce (canonical: must be 403 when
// denied), and percent-encodings of the name or of its tilde form, raw
// UTF-8, and upper/lower-case escapes (each must be refused one way or
// another: 403, or 404 for a name no table has).
func urlForms(name string) (canonical, other []string) {
	tilde := query.TildeEncode(name)
	lowerTilde := regexp.MustCompile(`~[0-9A-F]{2}`).ReplaceAllStringFunc(tilde, strings.ToLower)
	pct := url.PathEscape(name)
	allPct := strings.ReplaceAll(url.QueryEscape(name), "+", "%20")
	for _, suffix := range []string{".json", "", ".csv", "/1.json", "/1"} {
		canonical = append(canonical, "/data/"+tilde+suffix)
		if lowerTilde != tilde {
			canonical = append(canonical, "/data/"+lowerTilde+suffix)
		}
		other = append(other, "/data/"+pct+suffix, "/data/"+allPct+suffix,
			"/data/"+url.PathEscape(tilde)+suffix, "/data/"+strings.ReplaceAll(tilde, "~", "%7E")+suffix)
		if !strings.ContainsAny(name, "/%.") {
			other = append(other, "/data/"+name+suffix) // raw, as a browser's address bar might send it
		}
	}
	other = append(other, "/data/"+name+".json", "/data/"+tilde+"/1.csv") // a literal dot: the format, so another table
	return canonical, other
}

func TestGateDeniedTableEveryURLForm(t *testing.T) {
	e := newGateEnv(t, "false", "")
	alice := e.token("alice")
	for _, name := range deniedNames {
		canonical, other := urlForms(name)
		for _, p := range canonical {
			for _, tok := range []string{"", alice} {
				status, body := e.get(p, tok)
				if status != http.StatusForbidden || strings.Contains(body, secretMarker) {
					t.Errorf("table %q: GET %s (token %v) = %d; want 403\n%.300s", name, p, tok != "", status, body)
				}
			}
		}
		for _, p := range other {
			status, body := e.get(p, "")
			if status < 400 || strings.Contains(body, secretMarker) {
				t.Errorf("table %q: GET %s = %d; want it refused\n%.300s", name, p, status, body)
			}
		}
	}
}

func TestGateAllowedTableEveryURLForm(t *testing.T) {
	e := newGateEnv(t, "{id: alice}", "")
	alice := e.token("alice")
	for _, name := range deniedNames {
		canonical, _ := urlForms(name)
		for _, p := range canonical {
			status, body := e.get(p, alice)
			if status != http.StatusOK || !strings.Contains(body, secretMarker) {
				t.Errorf("table %q allowed for alice: GET %s = %d\n%.300s", name, p, status, body)
			}
			if status, _ := e.get(p, ""); status != http.StatusForbidden {
				t.Errorf("table %q: anonymous GET %s = %d; want 403", name, p, status)
			}
		}
	}
	// The table of that name wins over the canned query, as in Datasette.
	if status, body := e.get("/data/secret~2Fx.json", alice); status != 200 || strings.Contains(body, "canned") {
		t.Errorf("table and canned query of one name = %d %s; want the table", status, body)
	}
}

// Joins and listings must not carry what the gate refuses.
func TestGateJoinsAndListings(t *testing.T) {
	e := newGateEnv(t, "false", "")
	for _, p := range []string{
		"/data/pub.json?_labels=on", "/data/pub.json?_label=s0", "/data/pub.json?_facet=s0&_facet=s1&_facet=s2&_facet=s3&_facet=s4&_facet=s5",
		"/data/pub.json?_extra=expandable_columns,facet_results,suggested_facets", "/data/pub", "/data/pub/1", "/data/pub/1.json",
		"/data/pub.csv?_labels=on", "/data/pub?_facet=s0",
	} {
		status, body := e.get(p, "")
		if status != 200 || strings.Contains(body, secretMarker) {
			t.Errorf("GET %s = %d; want 200 without the denied tables' labels\n%.400s", p, status, body)
		}
		for _, n := range deniedNames {
			if strings.Contains(body, `"other_table": "`+n+`"`) || strings.Contains(body, `href="/data/`+query.TildeEncode(n)) {
				t.Errorf("GET %s names or links denied table %q\n%.400s", p, n, body)
			}
		}
	}
	for _, p := range []string{"/.json", "/data.json", "/", "/data", "/-/databases.json"} {
		status, body := e.get(p, "")
		if status != 200 {
			t.Errorf("GET %s = %d", p, status)
		}
		for _, n := range deniedNames {
			if (p == "/data" || p == "/data.json") && n == "secret/x" {
				continue // the canned query of that name is listed (and shadowed by the table)
			}
			for _, form := range []string{`"` + n + `"`, ">" + n + "<", query.TildeEncode(n)} {
				if n != "%2F" && strings.Contains(body, form) {
					t.Errorf("listing %s shows denied table %q (%s)\n%.600s", p, n, form, body)
				}
			}
		}
		if !strings.Contains(body, "pub") && p != "/-/databases.json" {
			t.Errorf("listing %s lost the public table\n%.300s", p, body)
		}
	}
}

// The schema pages leave out the CREATE statements of denied tables
// (Datasette shows them to whoever may view the database; Lode keeps the
// schema pages consistent with the listings). A public table's own
// statement still names the tables its foreign keys point to.
func TestGateSchemaPages(t *testing.T) {
	e := newGateEnv(t, "false", "")
	for _, p := range []string{"/-/schema.json", "/-/schema.md", "/data/-/schema.json", "/data/-/schema.md", "/data/-/schema"} {
		status, body := e.get(p, "")
		if status != 200 || !strings.Contains(body, "CREATE TABLE pub") {
			t.Errorf("GET %s = %d; want 200 with the public table\n%.400s", p, status, body)
		}
		for _, n := range deniedNames {
			if strings.Contains(body, "CREATE TABLE "+strings.ReplaceAll(query.QuoteIdent(n), `"`, `\"`)) ||
				strings.Contains(body, "CREATE TABLE "+query.QuoteIdent(n)) {
				t.Errorf("GET %s shows denied table %q's CREATE statement\n%.600s", p, n, body)
			}
		}
	}
	for _, n := range deniedNames {
		p := "/data/" + query.TildeEncode(n) + "/-/schema.json"
		if status, body := e.get(p, ""); status != http.StatusForbidden || strings.Contains(body, "CREATE") {
			t.Errorf("GET %s = %d; want 403\n%.300s", p, status, body)
		}
	}
	open := newGateEnv(t, "true", "")
	if _, body := open.get("/data/-/schema.json", ""); !strings.Contains(body, `CREATE TABLE \"secret/x\"`) {
		t.Errorf("an allowed table is missing from the schema page\n%.600s", body)
	}
}

// /-/config.json shows only explicit settings: {} without any, as
// Datasette's config without one; lode.yaml's rules are not shown.
func TestConfigJSONHidesRules(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data.db")
	raw, _ := sql.Open("sqlite3", path)
	if _, err := raw.Exec("CREATE TABLE t (id INTEGER PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	lc, err := config.Parse([]byte("databases:\n  data:\n    allow: {id: alice}\n"))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(context.Background(), server.Config{Files: []string{path}, Lode: lc})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	resp, err := http.Get(ts.URL + "/-/config.json")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || strings.TrimSpace(string(body)) != "{}" {
		t.Errorf("/-/config.json without settings = %d %s; want {}", resp.StatusCode, body)
	}
}

// A database the actor may not view is left out of the instance's
// listings, and its URLs are refused.
func TestGateDeniedDatabase(t *testing.T) {
	e := newWriteEnv(t, envOpts{yaml: "databases:\n  data:\n    allow: {id: alice}\n"})
	for _, p := range []string{"/.json", "/", "/-/databases.json"} {
		r := e.do("GET", p, "", "", "")
		if r.status != 200 || strings.Contains(r.raw, "docs") || strings.Contains(r.raw, `"data"`) || strings.Contains(r.raw, `/data"`) {
			t.Errorf("GET %s = %d shows the denied database\n%.400s", p, r.status, r.raw)
		}
	}
	for _, p := range []string{"/data.json", "/data", "/data/docs.json", "/data/docs/1.json", "/data/-/query.json?sql=select+1"} {
		if r := e.do("GET", p, "", "", ""); r.status != http.StatusForbidden {
			t.Errorf("GET %s = %d; want 403", p, r.status)
		}
		if r := e.do("GET", p, e.token("alice", nil, 0), "", ""); r.status != 200 {
			t.Errorf("alice: GET %s = %d; want 200", p, r.status)
		}
	}
	if r := e.do("GET", "/.json", e.token("alice", nil, 0), "", ""); !strings.Contains(r.raw, `"data"`) || !strings.Contains(r.raw, `"private":true`) {
		t.Errorf("alice's index does not show data as private\n%.400s", r.raw)
	}
}

// ?sql= follows Datasette's rule: a table's allow block does not stop
// execute-sql, so SQL can read a denied table unless execute-sql is
// denied too (allow_sql). _where= is SQL too.
func TestGateSQLAndWhere(t *testing.T) {
	e := newGateEnv(t, "false", "")
	sqlURL := "/data/-/query.json?sql=" + url.QueryEscape(`select name from "secret/x"`)
	if status, body := e.get(sqlURL, ""); status != 200 || !strings.Contains(body, secretMarker) {
		t.Errorf("?sql= on a denied table with execute-sql allowed = %d %s; want 200 (Datasette's rule)", status, body)
	}
	where := "/data/pub.json?_where=" + url.QueryEscape(`s0=(select id from "secret/x" where name like 'TOP%')`)
	if status, _ := e.get(where, ""); status != 200 {
		t.Errorf("_where with execute-sql allowed = %d", status)
	}

	locked := newGateEnv(t, "false", "allow_sql: false\n")
	for _, p := range []string{sqlURL, where, "/data/-/query?sql=select+1", "/data.json?sql=select+1",
		"/data/pub.json?_where=1%3D1", "/data/pub?_where=1%3D1", "/data/pub.csv?_where=1%3D1"} {
		if status, body := locked.get(p, ""); status != http.StatusForbidden || strings.Contains(body, secretMarker) {
			t.Errorf("allow_sql false: GET %s = %d; want 403\n%.300s", p, status, body)
		}
	}
	if status, _ := locked.get("/data/pub.json", ""); status != 200 {
		t.Errorf("allow_sql false: a plain table page = %d; want 200", status)
	}
	if _, body := locked.get("/data.json", ""); !strings.Contains(body, `"allow_execute_sql": false`) {
		t.Errorf("allow_sql false: /data.json does not say allow_execute_sql false\n%.300s", body)
	}
}

// A form on another site (enctype=text/plain needs no CORS preflight) must
// not fire a canned write, nor may any cross-site POST.
func TestGateCrossSiteWrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data.db")
	raw, _ := sql.Open("sqlite3", path)
	if _, err := raw.Exec("CREATE TABLE log (msg TEXT)"); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	lc, err := config.Parse([]byte("databases:\n  data:\n    queries:\n      add_log:\n        sql: INSERT INTO log (msg) VALUES (:msg)\n        write: true\n"))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(context.Background(), server.Config{Files: []string{path}, Lode: lc})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	api, err := server.NewWriteAPI(srv, server.WriteConfig{Secret: []byte("s"), Root: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { api.Close() })
	ts := httptest.NewServer(api)
	t.Cleanup(ts.Close)
	rootTok, _ := auth.CreateToken([]byte("s"), auth.TokenOptions{Actor: "root"})

	post := func(path, ctype, body string, hdr map[string]string) int {
		req, _ := http.NewRequest("POST", ts.URL+path, strings.NewReader(body))
		req.Header.Set("Content-Type", ctype)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	count := func() int {
		var n int
		db, _ := sql.Open("sqlite3", path)
		defer db.Close()
		db.QueryRow("SELECT count(*) FROM log").Scan(&n)
		return n
	}
	cookie := map[string]string{"Cookie": "lode_csrftoken=" + strings.Repeat("ab", 32)}
	for name, tc := range map[string]struct {
		path, ctype, body string
		hdr               map[string]string
	}{
		"text/plain form":               {"/data/add_log", "text/plain", "msg=x", nil},
		"text/plain form to .json":      {"/data/add_log.json", "text/plain", "msg=x", nil},
		"urlencoded form without token": {"/data/add_log.json", "application/x-www-form-urlencoded", "msg=x", nil},
		"unsigned cookie and field":     {"/data/add_log", "application/x-www-form-urlencoded", "msg=x&csrftoken=" + strings.Repeat("ab", 32), cookie},
		"cross-site JSON":               {"/data/add_log", "application/json", `{"msg": "x"}`, map[string]string{"Sec-Fetch-Site": "cross-site"}},
		"same-site JSON":                {"/data/add_log", "application/json", `{"msg": "x"}`, map[string]string{"Sec-Fetch-Site": "same-site"}},
		"foreign Origin":                {"/data/add_log", "application/json", `{"msg": "x"}`, map[string]string{"Origin": "https://evil.example"}},
		"cross-site token with cookies": {"/data/log/-/insert", "application/json", `{"row": {"msg": "x"}}`, map[string]string{"Sec-Fetch-Site": "cross-site", "Authorization": "Bearer " + rootTok, "Cookie": "ds_actor=x"}},
		"insert as text/plain":          {"/data/log/-/insert", "text/plain", `{"row": {"msg": "x"}}`, map[string]string{"Authorization": "Bearer " + rootTok}},
		"create as text/plain":          {"/data/-/create", "text/plain", `{"table": "t2", "columns": [{"name": "a"}]}`, map[string]string{"Authorization": "Bearer " + rootTok}},
	} {
		if status := post(tc.path, tc.ctype, tc.body, tc.hdr); status < 400 {
			t.Errorf("%s: POST %s = %d; want it refused", name, tc.path, status)
		}
	}
	if n := count(); n != 0 {
		t.Fatalf("%d rows written by refused requests", n)
	}
	// A non-browser client and a same-origin page still write.
	if status := post("/data/add_log", "application/json", `{"msg": "api"}`, nil); status != 200 {
		t.Errorf("API client JSON = %d", status)
	}
	if status := post("/data/add_log", "application/json", `{"msg": "page"}`, map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": ts.URL}); status != 200 {
		t.Errorf("same-origin JSON = %d", status)
	}
	// A token without cookies is the credential itself (a --cors browser
	// app's, or any client's): no cross-origin check, as in Datasette.
	if status := post("/data/log/-/insert", "application/json", `{"row": {"msg": "cors app"}}`, map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://app.example", "Authorization": "Bearer " + rootTok}); status != 201 {
		t.Errorf("cross-site insert with a token and no cookies = %d; want 201", status)
	}
	if n := count(); n != 3 {
		t.Errorf("rows = %d; want 3", n)
	}
}

// With the single writer busy in a long write transaction, every page and
// /-/ endpoint still answers, within the time limit: none waits for the
// writer's connection. A write waits at most write_queue_time_limit_ms.
func TestGateNothingWaitsForTheWriter(t *testing.T) {
	e := newWriteEnv(t, envOpts{yaml: cannedYAML, root: true, settings: map[string]string{"write_queue_time_limit_ms": "500"}})
	release := make(chan struct{})
	started := make(chan struct{})
	go e.api.Writer("data").Do(context.Background(), func(ctx context.Context, ex sqlitedb.Execer) error {
		close(started)
		<-release
		return nil
	})
	<-started
	defer close(release)
	client := &http.Client{Timeout: 10 * time.Second}
	for _, p := range []string{
		"/-/settings.json", "/-/versions.json", "/-/databases.json", "/-/threads.json", "/-/config.json",
		"/-/plugins.json", "/-/actor.json", "/-/schema.json", "/data/-/schema.json", "/data/docs/-/schema.json", "/-/settings", "/.json", "/", "/data.json", "/data",
		"/data/docs.json", "/data/docs", "/data/docs.csv", "/data/docs/1.json", "/data/docs/1",
		"/data/-/query.json?sql=select+1", "/data/-/query?sql=select+1", "/data/-/query",
		"/data/by_title.json?title=One", "/data/by_title?title=One", "/data/bump",
	} {
		resp, err := client.Get(e.url + p)
		if err != nil {
			t.Errorf("GET %s with the writer busy: %v", p, err)
			continue
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("GET %s with the writer busy = %d", p, resp.StatusCode)
		}
	}
	start := time.Now()
	r := e.post("/data/docs/-/insert", e.root(), `{"row": {"title": "queued"}}`)
	if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" || !strings.Contains(string(r.raw), "within 500ms") {
		t.Errorf("insert with the writer busy = %d %s; want 503 after write_queue_time_limit_ms (500ms)", r.status, r.raw)
	}
	if d := time.Since(start); d < 500*time.Millisecond {
		t.Errorf("the insert was refused after %s, before its 500ms wait", d)
	}
}

// TestGatePermissionParity: what the permission layer answers as
// Datasette 1.0a34 does (found by a differential probe): a key into a
// denied table stays a plain value under _labels; table_columns only for
// an actor who may execute SQL; _where= without execute-sql in Datasette's
// words; a refusal names what was asked for, whichever level refused it;
// a restricted token's actor shows its restrictions.
func TestGatePermissionParity(t *testing.T) {
	e := newGateEnv(t, "false", "allow_sql: {id: alice}\n")
	if _, body := e.get("/data/pub.json?_labels=on&_shape=array", ""); !strings.Contains(body, `"s0": 1`) || strings.Contains(body, `"label"`) {
		t.Errorf("_labels into denied tables: %.300s", body)
	}
	if _, body := e.get("/data.json", ""); !strings.Contains(body, `"table_columns": {}`) {
		t.Errorf("/data.json without execute-sql shows table_columns: %.600s", body)
	}
	if _, body := e.get("/data.json", e.token("alice")); strings.Contains(body, `"table_columns": {}`) || !strings.Contains(body, `"table_columns"`) {
		t.Errorf("/data.json for alice (execute-sql) lacks table_columns: %.600s", body)
	}
	if status, body := e.get("/data/pub.json?_where=1%3D1", ""); status != 403 || !strings.Contains(body, `"_where= is not allowed"`) {
		t.Errorf("_where without execute-sql = %d %.300s", status, body)
	}
	tok, err := auth.CreateToken(e.secret, auth.TokenOptions{Actor: "bob", Restrict: &auth.Restrictions{Resources: map[string]map[string][]string{"data": {"pub": {"vt"}}}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, body := e.get("/-/actor.json", tok); !strings.Contains(body, `"_r"`) || !strings.Contains(body, `"pub"`) {
		t.Errorf("restricted actor = %s", body)
	}

	locked := newGateEnv(t, "false", "allow: {id: alice}\n")
	if status, body := locked.get("/data/pub.json", ""); status != 403 || !strings.Contains(body, "view this table") {
		t.Errorf("a table of a denied instance = %d %.300s; want 403 naming the table", status, body)
	}
}
