package server_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"

	"lode/internal/sqlitedb"
)

const cannedYAML = `
databases:
  data:
    queries:
      by_title:
        sql: SELECT id, title FROM docs WHERE title = :title
      secret_q:
        sql: SELECT 1 AS one
        allow: {id: alice}
      add_doc:
        sql: INSERT INTO docs (title) VALUES (:title)
        write: true
        on_success_message: Added
      bump:
        write: true
        sql: |-
          SELECT balance FROM accounts WHERE id = :id;
          UPDATE accounts SET balance = balance + 1 WHERE id = :id
      stamp:
        write: true
        sql: INSERT INTO docs (title, score) VALUES (:_actor_id || ':' || :_header_x_tag || ':' || length(:_random_chars_6) || ':' || (:_now_epoch > 1700000000), :score)
      who:
        sql: SELECT :_actor_id AS who, :_now_date_utc = date('now') AS today
      blobq:
        sql: SELECT 1 AS n, x'0102ff' AS b
      mixed:
        sql: SELECT :a AS a, :_actor_id AS who, :b AS b, :_actor_id AS again, :a || :b AS ab
      add_msgsql:
        sql: INSERT INTO docs (title) VALUES (:title)
        write: true
        on_success_message_sql: SELECT 'Now ' || count(*) || ' docs, last ' || :title, 2 FROM docs
      add_err:
        sql: INSERT INTO docs (id, title) VALUES (1, 'dup')
        write: true
        on_error_message: Could not add
        on_error_redirect: /data
      half:
        write: true
        sql: |-
          INSERT INTO docs (title) VALUES ('half');
          INSERT INTO nope VALUES (1)
`

func TestCannedReadQuery(t *testing.T) {
	e := newWriteEnv(t, envOpts{yaml: cannedYAML})
	r := e.do("GET", "/data/by_title.json?title=Two", "", "", "")
	if r.status != 200 || jsonOf(r.body) != `{"ok":true,"rows":[{"id":2,"title":"Two"}],"truncated":false}` {
		t.Errorf("canned read = %d %s", r.status, r.raw)
	}
	r = e.do("GET", "/data/by_title.json", "", "", "")
	if r.status != 200 || jsonOf(r.body["rows"]) != `[]` {
		t.Errorf("canned read without param = %d %s", r.status, r.raw)
	}
	// Canned reads share ?sql='s path: shapes and extras work.
	if r := e.do("GET", "/data/by_title.json?title=Two&_shape=array", "", "", ""); r.status != 200 || strings.TrimSpace(r.raw) != `[{"id":2,"title":"Two"}]` {
		t.Errorf("canned read _shape=array = %d %s", r.status, r.raw)
	}
	checkErr(t, e.do("GET", "/data/secret_q.json", "", "", ""), 403, "permission")
	if r := e.do("GET", "/data/secret_q.json", e.token("alice", nil, 0), "", ""); r.status != 200 {
		t.Errorf("alice on her query: %d %s", r.status, r.raw)
	}
	// A table of the same database is still the read API's.
	if r := e.do("GET", "/data/docs.json", "", "", ""); r.status != 200 {
		t.Errorf("table page behind the write API: %d %s", r.status, r.raw)
	}
}

func TestCannedWriteQuery(t *testing.T) {
	e := newWriteEnv(t, envOpts{yaml: cannedYAML})
	r := e.post("/data/add_doc", "", `{"title": "Canned"}`)
	if r.status != 200 || jsonOf(r.body) != `{"message":"Added","ok":true,"redirect":null}` || e.count("docs WHERE title = 'Canned'") != 1 {
		t.Errorf("canned write (JSON) = %d %s", r.status, r.raw)
	}
	// A form post without the HTML page's CSRF token is refused.
	r = e.do("POST", "/data/add_doc", "", "application/x-www-form-urlencoded", "title=Form")
	if r.status != 403 || e.count("docs WHERE title = 'Form'") != 0 {
		t.Errorf("canned write (form without CSRF token) = %d", r.status)
	}
	r = e.post("/data/bump", "", `{"id": 1}`)
	if r.status != 200 || r.body["message"] != "Query executed, 1 row affected" || e.count("accounts WHERE balance = 101") != 1 {
		t.Errorf("script = %d %s", r.status, r.raw)
	}
	// A script is one transaction: a failing statement undoes the others.
	checkErr(t, e.post("/data/half", "", `{}`), 400, "no such table: nope")
	if e.count("docs WHERE title = 'half'") != 0 {
		t.Error("first statement of a failed script was committed")
	}
	checkErr(t, e.post("/data/by_title", "", `{}`), 405, "read-only")
	// on_success_message_sql is run after the write, in its transaction.
	r = e.post("/data/add_msgsql", "", `{"title": "Msg"}`)
	if r.status != 200 || r.body["message"] != "Now 4 docs, last Msg" {
		t.Errorf("on_success_message_sql = %d %s", r.status, r.raw)
	}
	// A failure carries Datasette's message and redirect next to Lode's
	// error.
	r = e.post("/data/add_err", "", `{}`)
	if r.status != 400 || r.body["ok"] != false || r.body["message"] != "Could not add" || r.body["redirect"] != "/data" || !strings.Contains(r.raw, "UNIQUE constraint failed") {
		t.Errorf("failed canned write = %d %s", r.status, r.raw)
	}
}

// TestCannedQueryBlob: the CSV of a canned query links a blob cell to the
// query's .blob URL (with Datasette's _nofacet=1), and that link serves
// the bytes (it used to be a 404 "Invalid format: blob").
func TestCannedQueryBlob(t *testing.T) {
	e := newWriteEnv(t, envOpts{yaml: cannedYAML})
	r := e.do("GET", "/data/blobq.csv", "", "", "")
	i := strings.Index(r.raw, "http")
	if r.status != 200 || i < 0 || !strings.Contains(r.raw, "/data/blobq.blob?_nofacet=1&_blob_column=b&_blob_hash=") {
		t.Fatalf("canned CSV = %d %s", r.status, r.raw)
	}
	link := strings.TrimSpace(r.raw[i:])
	res, err := http.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 || string(b) != "\x01\x02\xff" {
		t.Errorf("GET %s = %d %q", link, res.StatusCode, b)
	}
}

// TestCannedMagicParameters: Datasette's magic parameters (_actor_*,
// _header_*, _random_chars_N, _now_*) are filled from the request in
// canned reads and writes (a write with one used to answer 500); a write
// with a parameter the body does not give is refused, not run with "";
// JSON values bind as Python's str() of them.
func TestCannedMagicParameters(t *testing.T) {
	e := newWriteEnv(t, envOpts{yaml: cannedYAML, root: true})
	tok := e.root()
	req := func(method, path, body string, hdr ...string) resp {
		t.Helper()
		rq, _ := http.NewRequest(method, e.url+path, strings.NewReader(body))
		rq.Header.Set("Content-Type", "application/json")
		rq.Header.Set("Authorization", "Bearer "+tok)
		for i := 0; i+1 < len(hdr); i += 2 {
			rq.Header.Set(hdr[i], hdr[i+1])
		}
		res, err := http.DefaultClient.Do(rq)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var out resp
		out.status = res.StatusCode
		b, _ := io.ReadAll(res.Body)
		out.raw = string(b)
		_ = json.Unmarshal(b, &out.body)
		return out
	}
	r := req("POST", "/data/stamp", `{"score": 2.0}`, "X-Tag", "t1")
	if r.status != 200 || e.count(`docs WHERE title = 'root:t1:6:1' AND score = 2.0`) != 1 {
		t.Errorf("magic write = %d %s", r.status, r.raw)
	}
	r = req("GET", "/data/who.json?_shape=array", "")
	if r.status != 200 || !strings.Contains(r.raw, `"who": "root"`) || !strings.Contains(r.raw, `"today": 1`) {
		t.Errorf("magic read = %d %s", r.status, r.raw)
	}
	// Names bound by position (_actor_id) and by name, repeated and
	// interleaved, each get their own value.
	if r := req("GET", "/data/mixed.json?a=1&b=2&_shape=array", ""); r.status != 200 || !strings.Contains(r.raw, `[{"a": "1", "who": "root", "b": "2", "again": "root", "ab": "12"}]`) {
		t.Errorf("mixed parameters = %d %s", r.status, r.raw)
	}
	// Anonymous: no actor, so :_actor_id has no value, and a client may
	// not supply one (in the body or the query string).
	if r := e.do("POST", "/data/stamp", "", "application/json", `{"score": 1, "_actor_id": "root"}`); r.status != 400 || !strings.Contains(r.raw, "You did not supply a value for binding parameter :_actor_id.") {
		t.Errorf("magic write without an actor = %d %s", r.status, r.raw)
	}
	if r := e.do("GET", "/data/who.json?_actor_id=root&_shape=array", "", "", ""); r.status != 200 || !strings.Contains(r.raw, `"who":""`) {
		t.Errorf("anonymous read with ?_actor_id=root = %d %s", r.status, r.raw)
	}
	if r := req("POST", "/data/add_doc", `{}`); r.status != 400 || !strings.Contains(r.raw, "You did not supply a value for binding parameter :title.") {
		t.Errorf("write without its parameter = %d %s", r.status, r.raw)
	}
	for body, want := range map[string]string{`{"title": null}`: "None", `{"title": true}`: "True", `{"title": 1.0}`: "1.0", `{"title": 7}`: "7"} {
		if r := req("POST", "/data/add_doc", body); r.status != 200 || e.count("docs WHERE title = '"+want+"'") != 1 {
			t.Errorf("%s stored as %q? %d %s", body, want, r.status, r.raw)
		}
	}
}

// TestScriptTxLock runs the study's read-then-write script concurrently in
// pool mode: IMMEDIATE transactions never fail the upgrade; the counter
// ends exactly at the number of successes in both modes (no write applied
// twice, none lost).
func TestScriptTxLock(t *testing.T) {
	for _, txlock := range []string{"immediate", "deferred"} {
		t.Run(txlock, func(t *testing.T) {
			e := newWriteEnv(t, envOpts{yaml: cannedYAML, mode: "pool", db: sqlitedb.Settings{TxLock: txlock}})
			const n = 24
			var wg sync.WaitGroup
			var mu sync.Mutex
			ok, busy := 0, 0
			for i := 0; i < n; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					r := e.post("/data/bump", "", `{"id": 1}`)
					mu.Lock()
					defer mu.Unlock()
					switch r.status {
					case http.StatusOK:
						ok++
					case http.StatusServiceUnavailable:
						busy++
						if c, _ := r.body["code"].(string); !strings.HasPrefix(c, "SQLITE_BUSY") {
							t.Errorf("503 without a busy code: %s", r.raw)
						}
					default:
						t.Errorf("status %d: %s", r.status, r.raw)
					}
				}()
			}
			wg.Wait()
			if txlock == "immediate" && busy != 0 {
				t.Errorf("%d lock errors under BEGIN IMMEDIATE with a 5 s timeout", busy)
			}
			if got := e.count("accounts WHERE balance = " + strconv.Itoa(100+ok)); got != 1 {
				t.Errorf("balance is not 100 + %d successes", ok)
			}
			t.Logf("txlock=%s: %d ok, %d busy", txlock, ok, busy)
		})
	}
}
