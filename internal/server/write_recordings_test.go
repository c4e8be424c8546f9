package server_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Write requests recorded against the real Datasette 1.0a34
// (testdata/datasette/writes: schema.sql, cases.jsonl, record_writes.py,
// writes-1.0a34.jsonl; testdata/datasette/README.md says how) are
// replayed in order against
// Lode on the same starting database. Each answer must match (status,
// media type, the body as JSON with the server's host rewritten), except
// for these, each in README.md "Differences from Datasette". Keys are
// line numbers of cases.jsonl.
var writeRecordedDifferences = map[int]string{
	9:   "ignore on a duplicate returns the rows really inserted ([]); Datasette returns the connection's last inserted row",
	32:  "an upsert of a new key inserts the row; Datasette 1.0a34 (with sqlite-utils 3.30) answers ok and inserts nothing",
	52:  "a row key with too few parts is a 404 (Datasette: a 500 HTML page)",
	92:  "a 405 names the method (with status and Allow)",
	93:  "a 405 names the method (with status and Allow)",
	96:  "an upsert whose rows leave out a NOT NULL column updates the rows; Datasette fails it when another row names the column",
	98:  "a write to a missing table names it",
	99:  "a write to a missing database names it",
	100: "a write to a missing table names it",
	101: "a 405 names the method (with status and Allow)",
	102: "the final state of items holds the row the upsert of line 32 inserted",
	107: "the final state of batch: a key a row leaves out takes the column default (Datasette: NULL when another row has the key)",
	108: "the final state of ups: the upsert of line 96 ran",
}

func TestDatasetteWriteRecordings(t *testing.T) {
	dir := filepath.Join("testdata", "datasette", "writes")
	schema, err := os.ReadFile(filepath.Join(dir, "schema.sql"))
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(dir, "writes-1.0a34.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	e := newWriteEnv(t, envOpts{root: true, file: "wd.db", schema: string(schema)})
	tok := e.root()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	same, n := 0, 0
	for line := 1; sc.Scan(); line++ {
		var rec map[string]any
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("line %d: %v", line, err)
		}
		n++
		method, path := rec["method"].(string), rec["path"].(string)
		reqBody, _ := rec["body"].(string)
		body := strings.NewReader(reqBody)
		req, err := http.NewRequest(method, e.url+path, body)
		if err != nil {
			t.Fatal(err)
		}
		if ct, _ := rec["ctype"].(string); ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		if auth, _ := rec["auth"].(bool); auth {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		wantStatus := int(rec["status"].(float64))
		want := strings.ReplaceAll(rec["response"].(string), hostOf(rec["base"].(string)), hostOf(e.url))
		var diffs []string
		if resp.StatusCode != wantStatus {
			diffs = append(diffs, fmt.Sprintf("status = %d; want %d", resp.StatusCode, wantStatus))
		}
		if g, w := mediaType(resp.Header.Get("Content-Type")), mediaType(rec["content_type"].(string)); g != w {
			diffs = append(diffs, fmt.Sprintf("content type = %q; want %q", g, w))
		} else if w == "application/json" {
			diffs = append(diffs, diffJSON(t, want, writeErrorAsDatasette(t, want, got, resp.StatusCode))...)
		}
		reason, listed := writeRecordedDifferences[line]
		switch {
		case len(diffs) == 0 && listed:
			t.Errorf("line %d %s %s: matches Datasette now; drop it from writeRecordedDifferences (%s) and from the README", line, method, path, reason)
		case len(diffs) == 0:
			same++
		case !listed:
			t.Errorf("line %d %s %s differs from Datasette:\n  %s\n  got %.300s", line, method, path, strings.Join(diffs, "\n  "), got)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if n < 100 {
		t.Fatalf("%d recorded writes; the recording has more than 100", n)
	}
	t.Logf("%d of %d recorded write answers identical, %d listed differences", same, n, len(writeRecordedDifferences))
}

// writeErrorAsDatasette removes what Lode's write errors add to
// Datasette's {"ok": false, "errors": [...]} (README): "error", the
// messages joined, and "status", the HTTP status. Anything else is left
// for the comparison.
func writeErrorAsDatasette(t *testing.T, want string, got []byte, status int) string {
	var w, g map[string]any
	if json.Unmarshal([]byte(want), &w) != nil || json.Unmarshal(got, &g) != nil {
		return string(got)
	}
	errs, ok := g["errors"].([]any)
	if _, has := w["error"]; has || !ok || g["ok"] != false {
		return string(got)
	}
	msgs := make([]string, len(errs))
	for i, m := range errs {
		msgs[i], _ = m.(string)
	}
	if g["error"] == strings.Join(msgs, "; ") {
		delete(g, "error")
	}
	if _, has := w["status"]; !has && g["status"] == float64(status) {
		delete(g, "status")
	}
	b, err := json.Marshal(g)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
