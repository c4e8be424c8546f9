package reliability_test

import (
	"bufio"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"
)

// lodeBin is the lode binary TestMain builds once for every test.
var lodeBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "lode-reliability-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "reliability: temp dir:", err)
		os.Exit(1)
	}
	lodeBin = filepath.Join(dir, "lode")
	if prebuilt := os.Getenv("LODE_RELIABILITY_BIN"); prebuilt != "" {
		// A binary built by hand, to skip the link (about a minute on a
		// loaded machine) while iterating on the tests.
		lodeBin = prebuilt
		code := m.Run()
		os.RemoveAll(dir)
		os.Exit(code)
	}
	// No -race: the server under test is the shipped binary; the race
	// detector still covers the test's own clients.
	build := exec.Command("go", "build", "-tags", "sqlite_fts5", "-o", lodeBin, "lode/cmd/lode")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "reliability: go build ./cmd/lode:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// lodeProc is one running `lode serve` (a master, or a single process with
// --workers 0).
type lodeProc struct {
	t    *testing.T
	cmd  *exec.Cmd
	Base string // http://127.0.0.1:PORT/

	mu     sync.Mutex
	log    strings.Builder
	exited chan struct{}
	err    error
}

var urlRE = regexp.MustCompile(`url=(http://\S+/)`)

// startLode runs `lode serve ARGS... --port 0` and waits until it prints
// its URL. The process is killed (with its workers) when the test ends.
func startLode(t *testing.T, args ...string) *lodeProc {
	t.Helper()
	return startLodeShell(t, "", args...)
}

// startLodeShell is startLode with a shell command run first in the same
// process (e.g. "ulimit -n 256"), which lode serve then replaces (exec);
// "" runs lode serve directly.
func startLodeShell(t *testing.T, shell string, args ...string) *lodeProc {
	t.Helper()
	home := t.TempDir()
	argv := append(append([]string{"serve"}, args...), "--port", "0")
	cmd := exec.Command(lodeBin, argv...)
	if shell != "" {
		cmd = exec.Command("/bin/sh", append([]string{"-c", shell + ` && exec "$0" "$@"`, lodeBin}, argv...)...)
	}
	cmd.Env = append(os.Environ(), "LODE_SECRET=reliability-secret", "HOME="+home, "XDG_CONFIG_HOME="+home)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = io.Discard
	p := &lodeProc{t: t, cmd: cmd, exited: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	urlc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		sent := false
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			if p.log.Len() < 1<<20 {
				p.log.WriteString(line + "\n")
			}
			p.mu.Unlock()
			if m := urlRE.FindStringSubmatch(line); m != nil && !sent {
				urlc <- m[1]
				sent = true
			}
		}
		p.err = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() { p.kill() })
	select {
	case p.Base = <-urlc:
	case <-p.exited:
		t.Fatalf("lode serve %s exited before serving: %v\n%s", strings.Join(args, " "), p.err, p.output())
	case <-time.After(60 * time.Second):
		t.Fatalf("lode serve %s printed no url within 60s:\n%s", strings.Join(args, " "), p.output())
	}
	return p
}

func (p *lodeProc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

// kill SIGKILLs the master and any workers it still has, and reaps them.
func (p *lodeProc) kill() {
	pids := p.workerPIDs()
	p.cmd.Process.Kill()
	for _, pid := range pids {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	<-p.exited
	waitGone(p.t, pids, 10*time.Second)
}

// status reads /-/workers.json.
func (p *lodeProc) status() (*workersStatus, error) {
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(p.Base + "-/workers.json")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var st workersStatus
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return nil, err
	}
	return &st, nil
}

// workerPIDs returns the pids of the workers the master knows of (none
// when the master does not answer).
func (p *lodeProc) workerPIDs() []int {
	select {
	case <-p.exited:
		return nil
	default:
	}
	st, err := p.status()
	if err != nil {
		return nil
	}
	var pids []int
	for _, w := range st.Workers {
		if w.PID != p.cmd.Process.Pid {
			pids = append(pids, w.PID)
		}
	}
	return pids
}

// waitStatus polls /-/workers.json until cond holds.
func (p *lodeProc) waitStatus(what string, timeout time.Duration, cond func(*workersStatus) bool) *workersStatus {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if st, err := p.status(); err == nil && cond(st) {
			return st
		}
		time.Sleep(20 * time.Millisecond) // poll interval, not synchronisation
	}
	p.t.Fatalf("timed out after %v waiting for %s\n%s", timeout, what, p.output())
	return nil
}

type workersStatus struct {
	MasterPID     int `json:"master_pid"`
	TargetWorkers int `json:"target_workers"`
	Restarts      int `json:"restarts"`
	Reloads       int `json:"reloads"`
	Workers       []struct {
		ID      int       `json:"id"`
		PID     int       `json:"pid"`
		State   string    `json:"state"`
		Started time.Time `json:"started"`
	} `json:"workers"`
}

// ready reports whether every target worker is up and none is starting or
// draining.
func (st *workersStatus) ready() bool {
	if len(st.Workers) != st.TargetWorkers {
		return false
	}
	for _, w := range st.Workers {
		if w.State != "idle" && w.State != "busy" {
			return false
		}
	}
	return true
}

// alive reports whether pid is a running (not zombie) process. Orphaned
// workers are reparented, so their parent may reap them late.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return syscall.Kill(pid, 0) == nil
	}
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z' && s[i+2] != 'X'
	}
	return true
}

// waitGone waits until every pid has exited, SIGKILLing any left after timeout.
func waitGone(t *testing.T, pids []int, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for _, pid := range pids {
		for alive(pid) && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond) // poll interval
		}
		if alive(pid) {
			t.Logf("pid %d still running after %v; SIGKILL", pid, timeout)
			syscall.Kill(pid, syscall.SIGKILL)
			for i := 0; i < 500 && alive(pid); i++ {
				time.Sleep(10 * time.Millisecond) // poll interval
			}
		}
	}
}

// newDB creates a database file with the given journal mode and SQL.
func newDB(t *testing.T, dir, name, journal string, stmts ...string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	db, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("PRAGMA journal_mode=" + journal); err != nil {
		t.Fatal(err)
	}
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	return path
}

// writeFile writes a small file into dir and returns its path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// apiError is the JSON error body every endpoint must answer with.
type apiError struct {
	OK     *bool  `json:"ok"`
	Error  string `json:"error"`
	Status int    `json:"status"`
}

// getJSON does one request and decodes a JSON error body when there is one.
func do(t *testing.T, c *http.Client, method, url, ctype string, body io.Reader, hdr ...string) (int, []byte, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, url, err)
	}
	return resp.StatusCode, b, resp.Header
}

func newClient() *http.Client {
	return &http.Client{Timeout: 30 * time.Second}
}
