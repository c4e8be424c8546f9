package examples_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"

	"lode/examples"
)

// python is Debian's interpreter, which sees python3-django and gunicorn
// even when another python3 comes first in PATH.
const python = "/usr/bin/python3"

// requireDjango skips unless Debian's python3-django and gunicorn are
// installed; with LODE_REQUIRE_STUDY=1 (.ci/run installs them) it fails.
func requireDjango(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts Django")
	}
	out, err := exec.Command(python, "-c", "import django, gunicorn").CombinedOutput()
	if err == nil {
		return
	}
	msg := fmt.Sprintf("Django app tests need Debian's python3-django and gunicorn (apt-get install python3-django gunicorn): %v %s", err, out)
	if os.Getenv("LODE_REQUIRE_STUDY") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// extract writes the bundled app into a fresh folder and returns the
// Django app's folder and the path of its SQLite file.
func extract(t *testing.T) (string, string) {
	t.Helper()
	dir, err := examples.Extract(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "django"), filepath.Join(dir, "study.sqlite3")
}

func studyEnv(db string, kv ...string) []string {
	return append(append(os.Environ(), "STUDY_SQLITE_PATH="+db), kv...)
}

func setup(t *testing.T, app string, env []string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, "manage.py", "study_setup")
	cmd.Dir, cmd.Env = app, env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("study_setup: %v\n%s", err, out)
	}
	return string(out)
}

// serve starts the app under gunicorn on a free port and waits for /hello/.
func serve(t *testing.T, app string, env []string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	var log bytes.Buffer
	cmd := exec.Command(python, "-m", "gunicorn", "--workers", "1", "--bind", "127.0.0.1:"+strconv.Itoa(port), "studyapp.wsgi")
	cmd.Dir, cmd.Env = app, env
	cmd.Stdout, cmd.Stderr = &log, &log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	})
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if resp, err := http.Get(base + "/hello/"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return base
			}
		}
		select {
		case <-done:
			t.Fatalf("gunicorn exited: %s", log.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("gunicorn not ready after 30s: %s", log.String())
		}
	}
}

func call(t *testing.T, method, url, body string) (int, string) {
	t.Helper()
	code, b, err := request(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	return code, b
}

func request(method, url, body string) (int, string, error) {
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	client := &http.Client{Timeout: 30 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", fmt.Errorf("%s %s: %w", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

func queryInt(t *testing.T, db, q string) int {
	t.Helper()
	conn, err := sql.Open("sqlite3", "file:"+db+"?_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var n int
	if err := conn.QueryRow(q).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// TestDjangoAppEndpoints runs the study's Django app on SQLite with WAL,
// a 2 s busy timeout and IMMEDIATE transactions set through the
// environment, and checks every endpoint against the database file.
func TestDjangoAppEndpoints(t *testing.T) {
	requireDjango(t)
	app, db := extract(t)
	env := studyEnv(db, "STUDY_SQLITE_JOURNAL_MODE=wal", "STUDY_SQLITE_BUSY_TIMEOUT_MS=2000", "STUDY_SQLITE_TXLOCK=immediate")
	if out := setup(t, app, env); !strings.Contains(out, "seeded 10000 posts") {
		t.Errorf("study_setup output = %q; want it to seed 10000 posts", out)
	}
	base := serve(t, app, env)

	if code, body := call(t, "GET", base+"/hello/", ""); code != 200 || body != "Hello, world\n" {
		t.Errorf("GET /hello/ = %d %q", code, body)
	}
	code, body := call(t, "GET", base+"/config/", "")
	var cfg map[string]any
	if err := json.Unmarshal([]byte(body), &cfg); code != 200 || err != nil {
		t.Fatalf("GET /config/ = %d %q", code, body)
	}
	if cfg["journal_mode"] != "wal" || cfg["busy_timeout"] != 2000.0 || cfg["txlock"] != "immediate" || cfg["engine"] != "sqlite" {
		t.Errorf("config = %v; want journal_mode wal, busy_timeout 2000, txlock immediate on sqlite", cfg)
	}
	if code, body := call(t, "POST", base+"/write/", `{"post_id": 5, "kind": "like"}`); code != 201 || !strings.Contains(body, `"ok": true`) {
		t.Errorf("POST /write/ = %d %q", code, body)
	}
	if n := queryInt(t, db, "SELECT count(*) FROM studyapp_event WHERE post_id = 5 AND kind = 'like'"); n != 1 {
		t.Errorf("events after one write = %d; want 1", n)
	}
	for _, bad := range []string{`nope`, `{"post_id": "x"}`, `[1]`} {
		if code, body := call(t, "POST", base+"/write/", bad); code != 400 || !strings.Contains(body, `"error"`) {
			t.Errorf("POST /write/ %s = %d %q; want a 400 JSON error", bad, code, body)
		}
	}
	if code, _ := call(t, "GET", base+"/write/", ""); code != 405 {
		t.Errorf("GET /write/ = %d; want 405", code)
	}
	if code, body := call(t, "POST", base+"/write_after_read/", `{"id": 7}`); code != 200 || !strings.Contains(body, `"balance": 1001`) {
		t.Errorf("POST /write_after_read/ = %d %q", code, body)
	}
	if code, _ := call(t, "POST", base+"/write_after_read/", `{"id": 100000}`); code != 400 {
		t.Errorf("POST /write_after_read/ with an unknown account = %d; want 400", code)
	}
	if n := queryInt(t, db, "SELECT balance FROM studyapp_account WHERE id = 7"); n != 1001 {
		t.Errorf("account 7 balance = %d; want 1001", n)
	}
	code, body = call(t, "GET", base+"/read/?author=3", "")
	if code != 200 || !strings.Contains(body, "Latest posts by author 3") || strings.Count(body, "<li>") != 20 {
		t.Errorf("GET /read/?author=3 = %d with %d posts; want 200 with 20", code, strings.Count(body, "<li>"))
	}
	for range 2 {
		if code, body := call(t, "POST", base+"/counter/hot/", ""); code != 200 {
			t.Errorf("POST /counter/hot/ = %d %q", code, body)
		}
	}
	if n := queryInt(t, db, "SELECT count FROM studyapp_counter WHERE slug = 'hot'"); n != 2 {
		t.Errorf("hot counter = %d; want 2", n)
	}
	if code, _ := call(t, "POST", base+"/counter/none/", ""); code != 404 {
		t.Errorf("POST /counter/none/ = %d; want 404", code)
	}
}

// TestDjangoTransactionMode holds SQLite's write lock from Go while the
// app runs a read-then-write atomic() block. Deferred (Django's default)
// must upgrade its read lock, which SQLite refuses at once: a 500 whose
// first line is "OperationalError: database is locked". IMMEDIATE takes
// the write lock first, waits in the busy handler and succeeds once the
// lock is released.
func TestDjangoTransactionMode(t *testing.T) {
	requireDjango(t)
	app, db := extract(t)
	setup(t, app, studyEnv(db))
	deferred := serve(t, app, studyEnv(db, "STUDY_SQLITE_JOURNAL_MODE=truncate", "STUDY_SQLITE_BUSY_TIMEOUT_MS=5000"))
	immediate := serve(t, app, studyEnv(db, "STUDY_SQLITE_TXLOCK=immediate", "STUDY_SQLITE_BUSY_TIMEOUT_MS=5000"))
	if _, body := call(t, "GET", deferred+"/config/", ""); !strings.Contains(body, `"journal_mode": "truncate"`) || !strings.Contains(body, `"txlock": "deferred"`) {
		t.Errorf("config = %s; want journal_mode truncate (set per connection) and txlock deferred", body)
	}

	conn, err := sql.Open("sqlite3", "file:"+db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx := context.Background()
	lock, err := conn.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	hold := func() {
		t.Helper()
		if _, err := lock.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
			t.Fatal(err)
		}
	}
	release := func() {
		if _, err := lock.ExecContext(ctx, "ROLLBACK"); err != nil {
			t.Error(err)
		}
	}

	hold()
	code, body := call(t, "POST", deferred+"/write_after_read/", `{"id": 1}`)
	release()
	if code != 500 || strings.SplitN(body, "\n", 2)[0] != "OperationalError: database is locked" {
		t.Errorf("deferred read-then-write under a held lock = %d %q; want 500 with first line \"OperationalError: database is locked\"", code, body)
	}

	hold()
	type result struct {
		code int
		body string
		err  error
	}
	got := make(chan result, 1)
	go func() {
		code, body, err := request("POST", immediate+"/write_after_read/", `{"id": 1}`)
		got <- result{code, body, err}
	}()
	// The request waits in SQLite's busy handler while the lock is held;
	// release it and the transaction goes through.
	select {
	case r := <-got:
		t.Errorf("IMMEDIATE answered %d %q (%v) while the write lock was held; want it to wait", r.code, r.body, r.err)
	case <-time.After(500 * time.Millisecond):
	}
	release()
	select {
	case r := <-got:
		if r.err != nil || r.code != 200 {
			t.Errorf("IMMEDIATE read-then-write after the lock was released = %d %q, %v; want 200", r.code, r.body, r.err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("IMMEDIATE request did not finish")
	}
}

// TestDjangoSettingsRejected: a bad setting stops the app with a message
// that names the variable, before any request.
func TestDjangoSettingsRejected(t *testing.T) {
	requireDjango(t)
	app, db := extract(t)
	cmd := exec.Command(python, "manage.py", "study_setup")
	cmd.Dir, cmd.Env = app, studyEnv(db, "STUDY_SQLITE_JOURNAL_MODE=wall")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || !strings.Contains(string(out), "STUDY_SQLITE_JOURNAL_MODE='wall': want one of delete, truncate, persist, wal") {
		t.Errorf("study_setup with a bad journal mode = %v\n%s\nwant a non-zero exit naming the variable", err, out)
	}
}
