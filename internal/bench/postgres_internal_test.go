package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// requireStudyTools skips a test whose external programs (PostgreSQL,
// Debian's python3-django, gunicorn) are missing, or fails it when
// LODE_REQUIRE_STUDY=1 (set by .ci/run, which installs them).
func requireStudyTools(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if os.Getenv("LODE_REQUIRE_STUDY") == "1" {
		t.Fatalf("LODE_REQUIRE_STUDY=1 but: %v", err)
	}
	t.Skip(err)
}

// studyTempDir is a fresh directory that an unprivileged PostgreSQL user
// can reach when the test runs as root (t.TempDir's parent is private).
func studyTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "lode-bench-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o711); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestPostgresService starts the throwaway PostgreSQL, creates, uses and
// drops a run's database, and stops it: no process left, port free.
func TestPostgresService(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL")
	}
	bin, err := findPostgres()
	requireStudyTools(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	base := studyTempDir(t)
	p, err := startPostgres(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	defer p.stop()
	if os.Geteuid() == 0 {
		st, err := os.Stat(p.dataDir)
		if err != nil || st.Sys().(*syscall.Stat_t).Uid == 0 {
			t.Errorf("running as root, the data directory %s must belong to the unprivileged user (stat: %v)", p.dataDir, err)
		}
	}
	if err := p.createDB(ctx, "cell001_1"); err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(ctx, filepath.Join(bin, "psql"), append(p.hostArgs(), "-d", "cell001_1", "-qtAc",
		"CREATE TABLE t (x int); INSERT INTO t VALUES (41); SELECT x + 1, current_database() FROM t")...).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "42|cell001_1" {
		t.Errorf("psql on the run's database = %q, %v; want 42|cell001_1", out, err)
	}
	if v := p.placeholders("cell001_1"); v["pg_url"] != "postgresql://lode@127.0.0.1:"+strconv.Itoa(p.port)+"/cell001_1" || v["pg_db"] != "cell001_1" {
		t.Errorf("placeholders = %v", v)
	}
	if err := p.dropDB(ctx, "cell001_1"); err != nil {
		t.Fatal(err)
	}
	if cpu := p.cpu(); len(cpu) < 2 {
		t.Errorf("the server's process tree has %d processes; want the postmaster and its helpers", len(cpu))
	}
	pid, port := p.pid, p.port
	p.stop()
	p.stop() // idempotent
	checkGone(t, pid, port, p.dataDir)
}

// checkGone asserts that a stopped server left no process behind (none in
// its process group, none naming its data directory) and freed its port.
func checkGone(t *testing.T, pid, port int, dataDir string) {
	t.Helper()
	if pid > 0 {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("postmaster %d still exists after stop (kill 0: %v)", pid, err)
		}
		if err := syscall.Kill(-pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("process group %d still has processes after stop (kill 0: %v)", pid, err)
		}
	}
	if dataDir != "" {
		if pids := processesMentioning(dataDir); len(pids) > 0 {
			t.Errorf("processes %v still name %s", pids, dataDir)
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Errorf("port %d not free after stop: %v", port, err)
	} else {
		l.Close()
	}
}

// processesMentioning lists processes whose command line contains s.
func processesMentioning(s string) []int {
	var out []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(string(b), s) {
			out = append(out, pid)
		}
	}
	return out
}

// TestPostgresUnreachableWorkDir: as root, a work directory the
// unprivileged user cannot reach is refused with advice, before initdb.
func TestPostgresUnreachableWorkDir(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("only root hands PostgreSQL to another user")
	}
	_, err := findPostgres()
	requireStudyTools(t, err)
	private := filepath.Join(studyTempDir(t), "private")
	os.Mkdir(private, 0o700)
	base := filepath.Join(private, "work")
	os.Mkdir(base, 0o755)
	_, err = startPostgres(context.Background(), base)
	if err == nil || !strings.Contains(err.Error(), "cannot reach "+private) || !strings.Contains(err.Error(), "--workdir") {
		t.Errorf("startPostgres in a private directory = %v; want an error naming %s and --workdir", err, private)
	}
}

// TestRunInterruptedStopsPostgres interrupts a study while a cell that
// uses the postgres service is being measured: Run returns, and the
// server is gone — no process, port free, work directory removed.
func TestRunInterruptedStopsPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL")
	}
	_, err := findPostgres()
	requireStudyTools(t, err)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	m, err := ParseMatrix("pg.yaml", []byte(`
duration: 20s
warmup: 0s
repeat: 2
targets:
  app:
    services: [postgres]
    command: '`+exe+` bench-helper-record {db} {port} {workdir} {pg_url} {pg_port}'
cells:
  - {target: app, workload: read, concurrency: 2}
`))
	if err != nil {
		t.Fatal(err)
	}
	record := filepath.Join(t.TempDir(), "record")
	t.Setenv("LODE_TEST_RECORD", record)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		// Interrupt once the target has started with its database, i.e.
		// while the cell is being measured (bounded by the test's time).
		for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if _, err := os.Stat(record); err == nil {
				time.Sleep(300 * time.Millisecond)
				break
			}
		}
		cancel()
	}()
	res, err := Run(ctx, Config{Matrix: m, Lode: []string{exe}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v; want context.Canceled", err)
	}
	b, rerr := os.ReadFile(record)
	if rerr != nil {
		t.Fatalf("the target never started: %v (results %+v)", rerr, res)
	}
	args := strings.Split(string(b), "\n")
	workdir, pgURL, port := args[0], args[1], args[2]
	if !strings.HasPrefix(pgURL, "postgresql://lode@127.0.0.1:"+port+"/cell001_1") {
		t.Errorf("{pg_url} = %q; want the run's database cell001_1 on port %s", pgURL, port)
	}
	n, _ := strconv.Atoi(port)
	checkGone(t, 0, n, filepath.Join(workdir, "postgres"))
	if _, err := os.Stat(workdir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("work directory %s still exists after the interrupted run (%v)", workdir, err)
	}
	if len(res.Cells) != 1 || res.Cells[0].Status == "ok" {
		t.Errorf("cells = %+v; want the interrupted cell not counted as measured", res.Cells)
	}
}

// TestRunDjangoOnBothEngines runs the seed study's Django targets on a
// tiny matrix: the app on SQLite (deferred and IMMEDIATE) and on the
// throwaway PostgreSQL, end to end through Run, and judges finding 6.
func TestRunDjangoOnBothEngines(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Django and PostgreSQL")
	}
	_, err := findPostgres()
	requireStudyTools(t, err)
	if out, err := exec.Command("/usr/bin/python3", "-c", "import django, gunicorn, psycopg2").CombinedOutput(); err != nil {
		requireStudyTools(t, fmt.Errorf("Debian's python3-django, gunicorn and python3-psycopg2: %v %s", err, out))
	}
	src := string(SeedMatrixYAML)
	src = src[:strings.Index(src, "\ncells:")] + `
cells:
  - {target: django, workload: txn, workers: 2, busy_timeout: 5s, journal_mode: wal, txlock: [deferred, immediate], concurrency: 4}
  - {target: django-pg, workload: txn, workers: 2, concurrency: 4}
`
	m, err := ParseMatrix("django.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	m.Duration, m.Warmup, m.Repeat = 700*time.Millisecond, 0, 1
	exe, _ := os.Executable()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	res, err := Run(ctx, Config{Matrix: m, Lode: []string{exe}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range res.Cells {
		if c.Status != "ok" || c.Requests == 0 {
			t.Fatalf("cell %d %s: %s %q; want it measured", c.ID, c.Key, c.Status, c.Message)
		}
		for msg := range c.ErrorsByMessage {
			if !isLockError(msg) {
				t.Errorf("cell %d failed with %q; the only failures expected are lock errors", c.ID, msg)
			} else if !strings.Contains(msg, "OperationalError: database is locked") {
				t.Errorf("cell %d lock error message = %q; want Django's exception from the body", c.ID, msg)
			}
		}
	}
	if c := res.Cells[2]; c.Engine != EnginePostgres || c.App != "django" || c.LockErrors != 0 {
		t.Errorf("django-pg cell = engine %q app %q, %d lock errors; want postgresql, django, none", c.Engine, c.App, c.LockErrors)
	}
	if c := res.Cells[1]; c.LockErrors != 0 {
		t.Errorf("IMMEDIATE cell had %d lock errors: %v", c.LockErrors, c.ErrorsByMessage)
	}
	f6 := res.Findings[5]
	if len(f6.Groups) != 1 || f6.Groups[0].Label != "django" || f6.Groups[0].Verdict == "" || len(f6.Groups[0].Cells) != 3 {
		t.Errorf("finding 6 = %+v; want one judged group comparing the 3 cells", f6)
	}
	t.Logf("finding 6: %s — %s", f6.Verdict, f6.Summary)
}
