package loadgen_test

import (
	"context"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"lode/internal/loadgen"
)

func TestParseScenarioErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, yaml, want string
	}{
		{"not yaml", "requests: [\n  - url: x\n", "scenario YAML"},
		{"empty", "", "scenario is empty"},
		{"no requests", "base_url: http://127.0.0.1:1\n", "line 1: scenario has no requests"},
		{"unknown top field", "base_url: http://127.0.0.1:1\nrequets: []\n", `line 2: unknown scenario field "requets"`},
		{"unknown request field", "requests:\n  - url: http://127.0.0.1:1/\n    wieght: 3\n", `line 3: unknown request field "wieght"`},
		{"bad weight type", "requests:\n  - url: http://127.0.0.1:1/\n    weight: lots\n", "line 3:"},
		{"negative weight", "requests:\n  - url: http://127.0.0.1:1/\n  - url: http://127.0.0.1:1/b\n    weight: -2\n", "line 3: request"},
		{"missing url", "requests:\n  - name: a\n", "line 2: request has no url"},
		{"url and path", "requests:\n  - url: http://127.0.0.1:1/\n    path: /x\n", "line 3: give url: or path:, not both"},
		{"bad template without base", "requests:\n  - url: /x/{{.row.id\n", "line 2"},
		{"bad scheme", "requests:\n  - url: ftp://127.0.0.1/x\n", "want http:// or https://"},
		{"bad template", "base_url: http://127.0.0.1:1\nrequests:\n  - url: /x/{{.row.id\n", "line 3"},
		{"bad method", "requests:\n  - url: http://127.0.0.1:1/\n    method: \"GET /\"\n", "method"},
		{"check needs one kind", "requests:\n  - url: http://127.0.0.1:1/\n    checks:\n      - equals: 3\n", "line 4: a check needs exactly one of status: or json:"},
		{"bad status", "requests:\n  - url: http://127.0.0.1:1/\n    checks:\n      - status: 999\n", "line 4: status 999"},
		{"body and json", "requests:\n  - url: http://127.0.0.1:1/\n    body: x\n    json: {a: 1}\n", "line 2: give body: or json:, not both"},
		{"bad think", "think: soon\nrequests:\n  - url: http://127.0.0.1:1/\n", "line 1: think"},
		{"data missing file", "data: {file: nope.csv}\nrequests:\n  - url: http://127.0.0.1:1/\n", "line 1: data file"},
		{"bad base_url", "base_url: ftp://x\nrequests:\n  - url: /{{.iter}}\n", "want http:// or https://"},
		{"data bad order", "data: {file: x.csv, order: shuffled}\nrequests:\n  - url: http://127.0.0.1:1/\n", `line 1: data order "shuffled"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadgen.ParseScenario([]byte(tt.yaml), dir)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ParseScenario(%q) error = %v; want it to contain %q", tt.yaml, err, tt.want)
			}
		})
	}
}

// recordingServer counts requests per path and keeps bodies and queries.
type recordingServer struct {
	*httptest.Server
	mu     sync.Mutex
	paths  map[string]int
	bodies []string
	uris   []string
}

func newRecordingServer(t *testing.T, h func(w http.ResponseWriter, r *http.Request)) *recordingServer {
	rs := &recordingServer{paths: map[string]int{}}
	rs.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rs.mu.Lock()
		rs.paths[r.URL.Path]++
		rs.bodies = append(rs.bodies, string(b))
		rs.uris = append(rs.uris, r.URL.RequestURI())
		rs.mu.Unlock()
		if h != nil {
			h(w, r)
			return
		}
		io.WriteString(w, `{"ok":true}`)
	}))
	t.Cleanup(rs.Close)
	return rs
}

func TestWeightsHonoured(t *testing.T) {
	srv := newRecordingServer(t, nil)
	sc := &loadgen.Scenario{BaseURL: srv.URL}
	sc.Add(&loadgen.Request{Name: "a", URL: "/a", Weight: 1})
	sc.Add(&loadgen.Request{Name: "b", URL: "/b", Weight: 3})
	sc.Add(&loadgen.Request{Name: "c", URL: "/c", Weight: 6})
	const n = 2000
	res, err := loadgen.Run(context.Background(), loadgen.Config{Scenario: sc, Users: 4, MaxRequests: n})
	if err != nil {
		t.Fatal(err)
	}
	if res.Total.Count != n {
		t.Fatalf("total = %d; want %d", res.Total.Count, n)
	}
	want := map[string]float64{"a": 0.1, "b": 0.3, "c": 0.6}
	for _, s := range res.Requests {
		got := float64(s.Count) / n
		// 5 standard deviations of a binomial proportion: fails by chance
		// about once in 3 million runs.
		tol := 5 * math.Sqrt(want[s.Name]*(1-want[s.Name])/n)
		if math.Abs(got-want[s.Name]) > tol {
			t.Errorf("request %s: share %.3f; want %.2f ± %.3f", s.Name, got, want[s.Name], tol)
		}
		if srv.paths["/"+s.Name] != int(s.Count) {
			t.Errorf("request %s: server saw %d, result says %d", s.Name, srv.paths["/"+s.Name], s.Count)
		}
	}
}

func TestDataFeedingSequentialCSV(t *testing.T) {
	srv := newRecordingServer(t, nil)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "people.csv"), []byte("id,name\n1,ann\n2,bob\n3,cy\n"), 0o644)
	yaml := `base_url: ` + srv.URL + `
data: {file: people.csv}
requests:
  - name: insert
    method: POST
    url: /people/{{.row.id}}?n={{.row.name}}
    headers: {X-Name: "{{.row.name}}"}
    json: {row: {id: "{{.row.id}}", label: "name={{.row.name}}"}}
`
	sc, err := loadgen.ParseScenario([]byte(yaml), dir)
	if err != nil {
		t.Fatal(err)
	}
	res, err := loadgen.Run(context.Background(), loadgen.Config{Scenario: sc, Users: 1, MaxRequests: 6})
	if err != nil {
		t.Fatal(err)
	}
	if res.Total.Count != 6 || res.Total.Failures != 0 {
		t.Fatalf("count %d failures %d (%v); want 6, 0", res.Total.Count, res.Total.Failures, res.Total.Errors)
	}
	wantURIs := []string{"/people/1?n=ann", "/people/2?n=bob", "/people/3?n=cy", "/people/1?n=ann", "/people/2?n=bob", "/people/3?n=cy"}
	for i, u := range srv.uris {
		if u != wantURIs[i] {
			t.Fatalf("request %d URI = %q; want %q (sequential, wrapping)", i, u, wantURIs[i])
		}
	}
	var body map[string]map[string]any
	if err := json.Unmarshal([]byte(srv.bodies[1]), &body); err != nil {
		t.Fatalf("body %q: %v", srv.bodies[1], err)
	}
	// CSV values are strings; "{{.row.id}}" alone keeps the value's type.
	if body["row"]["id"] != "2" || body["row"]["label"] != "name=bob" {
		t.Fatalf("body = %v; want id 2, label name=bob", body)
	}
}

func TestDataFeedingRandomJSONL(t *testing.T) {
	srv := newRecordingServer(t, nil)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "rows.jsonl"), []byte("{\"id\": 7}\n\n{\"id\": 8}\n"), 0o644)
	sc, err := loadgen.ParseScenario([]byte(`data: {file: rows.jsonl, order: random}
requests:
  - method: POST
    url: `+srv.URL+`/x
    json: {id: "{{.row.id}}"}
`), dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := loadgen.Run(context.Background(), loadgen.Config{Scenario: sc, Users: 2, MaxRequests: 200}); err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, b := range srv.bodies {
		seen[b]++
	}
	// JSON numbers stay numbers; both rows appear (random order).
	if len(seen) != 2 || seen[`{"id":7}`] == 0 || seen[`{"id":8}`] == 0 {
		t.Fatalf("bodies seen = %v; want both {\"id\":7} and {\"id\":8}", seen)
	}
}

func TestChecksCountAsErrors(t *testing.T) {
	srv := newRecordingServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/created":
			w.WriteHeader(201)
			io.WriteString(w, `{"ok":true,"rows":[{"id":3}]}`)
		case "/wrong":
			io.WriteString(w, `{"ok":false,"rows":[]}`)
		case "/html":
			io.WriteString(w, `<html>`)
		case "/plain":
			http.Error(w, "database is locked", 503)
		case "/busy":
			w.WriteHeader(503)
			io.WriteString(w, `{"ok":false,"error":"database is locked","status":503,"code":"SQLITE_BUSY_SNAPSHOT","waited_ms":0}`)
		case "/teapot":
			w.WriteHeader(418)
			io.WriteString(w, `{"ok":false,"error":"short and stout","status":418}`)
		}
	})
	yaml := `base_url: ` + srv.URL + `
requests:
  - name: created
    url: /created
    checks: [{status: [200, 201]}, {json: rows.0.id, equals: 3}, {json: ok, equals: true}, {json: error, absent: true}]
  - name: wrong
    url: /wrong
    checks: [{json: ok, equals: true}]
  - name: missing
    url: /wrong
    checks: [{json: rows.0.id}]
  - name: html
    url: /html
    checks: [{json: ok}]
  - name: status
    url: /created
    checks: [{status: 200}]
  - name: teapot-accepted
    url: /teapot
    checks: [{status: 418}]
  - name: teapot
    url: /teapot
  - name: plain
    url: /plain
  - name: busy
    url: /busy
`
	sc, err := loadgen.ParseScenario([]byte(yaml), "")
	if err != nil {
		t.Fatal(err)
	}
	res, err := loadgen.Run(context.Background(), loadgen.Config{Scenario: sc, Users: 2, MaxRequests: 800})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"created":         "",
		"wrong":           "check json ok: got false, want true",
		"missing":         "check json rows.0.id: missing",
		"html":            "check json ok: body is not JSON",
		"status":          "201 Created",
		"teapot-accepted": "",
		"teapot":          "418 short and stout",
		"plain":           "503 database is locked",
		"busy":            "503 database is locked (SQLITE_BUSY_SNAPSHOT)",
	}
	for _, s := range res.Requests {
		if s.Count == 0 {
			t.Fatalf("request %s never ran", s.Name)
		}
		w := want[s.Name]
		if w == "" {
			if s.Failures != 0 {
				t.Errorf("%s: %d failures (%v); want none", s.Name, s.Failures, s.Errors[0].Message)
			}
			continue
		}
		if s.Failures != s.Count || len(s.Errors) != 1 || s.Errors[0].Message != w {
			t.Errorf("%s: failures %d of %d, errors %v; want all failing with %q", s.Name, s.Failures, s.Count, messages(s.Errors), w)
		}
	}
}

func messages(es []*loadgen.ErrorStats) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.Message)
	}
	return out
}

// TestExampleScenario runs testdata/scenario.yaml (the README's example)
// against a server that answers its two requests like Datasette; the
// insert's token comes from the environment.
func TestExampleScenario(t *testing.T) {
	t.Setenv("TOKEN", "tok")
	srv := newRecordingServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			if r.Header.Get("Authorization") != "Bearer tok" {
				w.WriteHeader(403)
				return
			}
			w.WriteHeader(201)
			io.WriteString(w, `{"ok":true,"rows":[{"name":"ann"}]}`)
			return
		}
		io.WriteString(w, `{"ok":true,"rows":[{"pk":1}]}`)
	})
	sc, err := loadgen.ParseScenarioFile("testdata/scenario.yaml")
	if err != nil {
		t.Fatal(err)
	}
	sc.BaseURL = srv.URL
	res, err := loadgen.Run(context.Background(), loadgen.Config{Scenario: sc, Users: 2, MaxRequests: 100})
	if err != nil {
		t.Fatal(err)
	}
	if res.Total.Count != 100 || res.Total.Failures != 0 || len(res.Requests) != 2 {
		t.Fatalf("count %d failures %d %v; want 100 requests of 2 names, no failures", res.Total.Count, res.Total.Failures, messages(res.Total.Errors))
	}
}

// TestScenarioWithoutBaseURL: a scenario of paths parses without
// base_url; Run refuses it until a base URL is given (lode load
// --base-url sets Scenario.BaseURL), then sends to it. path: is a synonym
// of url:.
func TestScenarioWithoutBaseURL(t *testing.T) {
	srv := newRecordingServer(t, nil)
	sc, err := loadgen.ParseScenario([]byte("requests:\n  - url: /a?i={{.iter}}\n  - path: /b\n"), "")
	if err != nil {
		t.Fatalf("ParseScenario without base_url: %v", err)
	}
	_, err = loadgen.Run(context.Background(), loadgen.Config{Scenario: sc, MaxRequests: 1})
	if err == nil || !strings.Contains(err.Error(), "no base_url") || !strings.Contains(err.Error(), "--base-url") {
		t.Fatalf("Run without a base URL: %v; want an error naming base_url and --base-url", err)
	}
	sc.BaseURL = srv.URL
	res, err := loadgen.Run(context.Background(), loadgen.Config{Scenario: sc, Users: 2, MaxRequests: 40})
	if err != nil || res.Total.Count != 40 || res.Total.Failures != 0 {
		t.Fatalf("Run with BaseURL set: %v, %+v", err, res)
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if srv.paths["/a"]+srv.paths["/b"] != 40 || srv.paths["/a"] == 0 || srv.paths["/b"] == 0 {
		t.Fatalf("server saw %v; want 40 requests to /a and /b", srv.paths)
	}
}
