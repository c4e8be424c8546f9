package bench_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"lode/internal/bench"
	"lode/internal/report"
)

// TestMain lets the test binary act as a target server: the end-to-end
// tests start it as a subprocess (an "external" target, and a stand-in
// `lode serve` that rejects the flags it does not know), so the runner is
// exercised with real processes, ports and signals without building lode.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "bench-helper-serve": // bench-helper-serve DB PORT
			os.Exit(helperServe(os.Args[2], os.Args[3]))
		case "bench-helper-record": // bench-helper-record DB PORT ARGS...: note ARGS, then serve
			if f := os.Getenv("LODE_TEST_RECORD"); f != "" {
				os.WriteFile(f+".tmp", []byte(strings.Join(os.Args[4:], "\n")), 0o644)
				os.Rename(f+".tmp", f)
			}
			os.Exit(helperServe(os.Args[2], os.Args[3]))
		case "bench-helper-lode": // bench-helper-lode serve DB --port P [flags]
			fs := flag.NewFlagSet("serve", flag.ContinueOnError)
			port := fs.String("port", "", "")
			fs.String("host", "", "")
			fs.String("config", "", "")
			fs.String("journal-mode", "", "")
			if err := fs.Parse(os.Args[4:]); err != nil {
				os.Exit(2)
			}
			os.Exit(helperServe(os.Args[3], *port))
		}
	}
	os.Exit(m.Run())
}

// helperServe serves the read and write workloads' URLs over db.
func helperServe(dbPath, port string) int {
	db, err := sql.Open("sqlite3", "file:"+dbPath+"?_busy_timeout=5000")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	db.SetMaxOpenConns(1)
	fail := func(w http.ResponseWriter, err error) {
		w.WriteHeader(500)
		json.NewEncoder(w).Encode(map[string]any{"ok": false, "error": err.Error(), "status": 500})
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) })
	mux.HandleFunc("GET /-/versions.json", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{}`)) })
	mux.HandleFunc("GET /demo/posts.json", func(w http.ResponseWriter, r *http.Request) {
		rows, err := db.QueryContext(r.Context(), "SELECT id, title FROM posts WHERE author_id = ? LIMIT 20", r.URL.Query().Get("author_id"))
		if err != nil {
			fail(w, err)
			return
		}
		defer rows.Close()
		var out []any
		for rows.Next() {
			var id int
			var title string
			rows.Scan(&id, &title)
			out = append(out, map[string]any{"id": id, "title": title})
		}
		json.NewEncoder(w).Encode(map[string]any{"ok": true, "rows": out})
	})
	mux.HandleFunc("POST /demo/events/-/insert", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Row struct {
				PostID int    `json:"post_id"`
				Kind   string `json:"kind"`
			} `json:"row"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.Row.Kind == "" {
			w.WriteHeader(400)
			w.Write([]byte(`{"ok":false,"error":"bad body","status":400}`))
			return
		}
		if _, err := db.ExecContext(r.Context(), "INSERT INTO events (post_id, kind) VALUES (?, ?)", body.Row.PostID, body.Row.Kind); err != nil {
			fail(w, err)
			return
		}
		w.WriteHeader(201)
		w.Write([]byte(`{"ok":true}`))
	})
	l, err := net.Listen("tcp", "127.0.0.1:"+port)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	srv := &http.Server{Handler: mux}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	srv.Serve(l)
	return 0
}

func TestRunEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts servers")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	m, err := bench.ParseMatrix("tiny.yaml", []byte(fmt.Sprintf(`
name: tiny
duration: 300ms
warmup: 100ms
repeat: 2
targets:
  helper:
    command: %s bench-helper-serve {db} {port}
    workloads:
      read:
        - {path: "/demo/posts.json?author_id={{randInt 1 50}}&_size=20"}
      write:
        - name: write
          method: POST
          url: /demo/events/-/insert
          body: '{"row": {"post_id": {{randInt 1 100}}, "kind": "view"}}'
  ghost:
    command: lode-no-such-binary-xyz serve {db} --port {port}
cells:
  - {target: helper, workload: [read, write], concurrency: 4}
  - {target: ghost, workload: read}
  - {workload: read, journal_mode: wal}
  - {workload: read, writer: pool}
`, exe)))
	if err != nil {
		t.Fatal(err)
	}
	var progress bytes.Buffer
	res, err := bench.Run(context.Background(), bench.Config{Matrix: m, WorkDir: t.TempDir(),
		Lode: []string{exe, "bench-helper-lode"}, Command: "lode bench -f tiny.yaml", Progress: &progress})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Cells) != 5 {
		t.Fatalf("got %d cells; want 5", len(res.Cells))
	}
	for _, c := range res.Cells[:2] {
		if c.Status != report.StatusOK || len(c.Runs) != 2 || c.Requests == 0 || c.RPS <= 0 || c.P99MS <= 0 {
			t.Errorf("cell %d (%s) = status %q %q, %d runs, %d requests, %.0f req/s; want ok with 2 runs of load",
				c.ID, c.Key, c.Status, c.Message, len(c.Runs), c.Requests, c.RPS)
		}
		if c.Errors != 0 {
			t.Errorf("cell %d errors: %v", c.ID, c.ErrorsByMessage)
		}
		if c.ServerCPU <= 0 || c.ServerRSSMB <= 0 {
			t.Errorf("cell %d server cpu %.1f%%, rss %.1f MB; want both measured from /proc", c.ID, c.ServerCPU, c.ServerRSSMB)
		}
	}
	if c := res.Cells[2]; c.Status != report.StatusSkipped || !strings.Contains(c.Message, `"lode-no-such-binary-xyz"`) || !strings.Contains(c.Message, "not installed") {
		t.Errorf("missing external binary: cell 3 = %q %q; want skipped with a message naming the program", c.Status, c.Message)
	}
	if len(res.Notes) != 1 || !strings.Contains(res.Notes[0], "skipped cells 3") {
		t.Errorf("notes = %q; want one saying cell 3 was skipped", res.Notes)
	}
	// The stand-in lode accepts --journal-mode but not --writer: the
	// first lode cell runs, the second fails alone with the server's words.
	if c := res.Cells[3]; c.Status != report.StatusOK || c.Requests == 0 {
		t.Errorf("lode cell 4 = %q %q; want ok", c.Status, c.Message)
	}
	if c := res.Cells[4]; c.Status != report.StatusFailed || !strings.Contains(c.Message, "writer") || len(c.Runs) != 0 {
		t.Errorf("lode cell 5 (unsupported --writer) = %q %q; want failed naming the flag", c.Status, c.Message)
	}
	if len(res.Findings) != 6 || res.Machine.Cores == 0 || !strings.Contains(res.Machine.SQLiteVersion, "3.") {
		t.Errorf("findings %d, machine %+v", len(res.Findings), res.Machine)
	}
	if !strings.Contains(progress.String(), "cell 2/5 run 2/2") || !strings.Contains(progress.String(), "ETA") {
		t.Errorf("progress output lacks cell/run/ETA lines:\n%s", progress.String())
	}

	var table bytes.Buffer
	report.WriteTable(&table, res)
	t.Logf("progress:\n%s\ntable:\n%s", progress.String(), table.String())
	dir := filepath.Join(t.TempDir(), "lode-report")
	if _, err := report.WriteAll(dir, res); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"index.html", "results.json", "results.csv"} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
	back, err := report.ReadJSON(filepath.Join(dir, "results.json"))
	if err != nil || len(back.Cells) != 5 {
		t.Fatalf("results.json read back: %v", err)
	}
}
