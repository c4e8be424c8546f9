package main

import (
	"bytes"
	"context"
	"encoding/json"
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

	"lode/internal/sqlitetest"
)

// runMainEnv makes the test binary behave as the lode command, so process
// tests can run it without a separate go build (worker processes the
// prefork master starts inherit it and become lode too).
const runMainEnv = "LODE_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestRewriteSettingArgs(t *testing.T) {
	got, err := rewriteSettingArgs([]string{"a.db", "--setting", "default_page_size", "5", "--setting=allow_sql", "off", "--setting=x=1"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"a.db", "--setting=default_page_size=5", "--setting=allow_sql=off", "--setting=x=1"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("rewriteSettingArgs = %q; want %q", got, want)
	}
	if _, err := rewriteSettingArgs([]string{"--setting", "x"}); err == nil {
		t.Fatal("dangling --setting accepted")
	}
}

func runServeCmd(t *testing.T, args ...string) error {
	t.Helper()
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	// --workers 0: in this process (a master would re-execute the test binary).
	root.SetArgs(append([]string{"serve", "--workers", "0"}, args...))
	return root.ExecuteContext(context.Background())
}

func TestServeUsageErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "no database files"},
		{[]string{filepath.Join(dir, "missing.db")}, "no such file"},
		// The master opens the files itself: no worker crash loop first.
		{[]string{filepath.Join(dir, "missing.db"), "--workers", "2", "--port", "0"}, "no such file"},
		{[]string{"x.db", "--setting", "nope", "1"}, "unknown setting"},
		{[]string{"x.db", "--journal-mode", "sideways"}, "journal mode"},
		{[]string{"x.db", "--bogus"}, "unknown flag"},
		{[]string{"x.db", "--memory-limit", "lots"}, "--memory-limit"},
		{[]string{"x.db", "--memory-limit", "1MiB"}, "want at least 32MiB"},
	} {
		err := runServeCmd(t, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("serve %q = %v; want error containing %q", tc.args, err, tc.want)
		}
	}
}

// TestServeProcess runs lode serve as a real process (this test binary in
// lode mode, see TestMain): it serves on a free port, answers
// JSON with the serving pid in X-Lode-Pid, logs the effective SQLite
// settings, and exits 0 on SIGTERM.
func TestServeProcess(t *testing.T) {
	dir := t.TempDir()
	bin, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	db := sqlitetest.WriteFixtures(t, dir)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := exec.Command(bin, "serve", db, "-p", strconv.Itoa(port) /* Datasette's short flag */, "--setting", "default_page_size", "7")
	cmd.Env = append(os.Environ(), runMainEnv+"=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-done
		}
	})
	url := "http://127.0.0.1:" + strconv.Itoa(port) + "/fixtures/items.json"
	deadline := time.Now().Add(60 * time.Second)
	var resp *http.Response
	for {
		resp, err = http.Get(url)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("server did not answer: %v\n%s", err, stderr.String())
		}
		select {
		case err := <-done:
			t.Fatalf("server exited: %v\n%s", err, stderr.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	var body struct {
		Rows []map[string]any `json:"rows"`
	}
	err = json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if err != nil || len(body.Rows) != 7 {
		t.Fatalf("items.json: %v, %d rows; want 7", err, len(body.Rows))
	}
	// With the default --workers the answer comes from a worker process.
	if pid, err := strconv.Atoi(resp.Header.Get("X-Lode-Pid")); err != nil || pid <= 0 {
		t.Errorf("X-Lode-Pid = %q; want a process id", resp.Header.Get("X-Lode-Pid"))
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, stderr.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatal("server did not stop after SIGTERM")
	}
	if !strings.Contains(stderr.String(), "journal_mode=wal") {
		t.Errorf("startup log lacks the effective settings:\n%s", stderr.String())
	}
	_ = os.Remove(db)
}

// TestServeMistakeIsTheOnlyOutput: a mistake on lode serve's command line
// is reported alone — no root sign-in URL or log line before it, which
// would suggest the server had started.
func TestServeMistakeIsTheOnlyOutput(t *testing.T) {
	bin, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	db := sqlitetest.WriteFixtures(t, dir)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"serve", filepath.Join(dir, "missing.db"), "--root"}, "--create"},
		{[]string{"serve", db, "--root", "--journal-mode", "sideways"}, "journal mode"},
		{[]string{"serve", db, "--root", "--setting", "nope", "1"}, "unknown setting"},
		{[]string{"serve", db, "--root", "--bogus"}, "unknown flag"},
		{[]string{"serve", db, "--root", "--writer", "many"}, "--writer"},
	} {
		cmd := exec.Command(bin, tc.args...)
		cmd.Env = append(os.Environ(), runMainEnv+"=1", "LODE_SECRET=s")
		out, err := cmd.CombinedOutput()
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if err == nil || len(lines) != 1 || !strings.HasPrefix(lines[0], "lode: ") || !strings.Contains(lines[0], tc.want) {
			t.Errorf("lode %q: %v, output:\n%s\nwant one line: lode: ...%s...", tc.args, err, out, tc.want)
		}
	}
}
