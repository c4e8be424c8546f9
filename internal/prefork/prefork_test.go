package prefork_test

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"lode/internal/prefork"
)

// rounds is how many reloads and kills the soak tests do: soakRounds is 5
// by default (each worker start of the race-instrumented test binary costs
// about half a second on 2 cores) and 20, as the issue asks, with -tags stress.
func rounds() int { return soakRounds }

// distinctPids makes fresh connections until n different worker pids have
// answered.
func distinctPids(t *testing.T, base string, n int) map[string]bool {
	t.Helper()
	seen := map[string]bool{}
	deadline := time.Now().Add(20 * time.Second)
	for len(seen) < n && time.Now().Before(deadline) {
		resp, err := statusClient.Get(base + "/")
		if err != nil {
			t.Fatalf("GET /: %v", err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		seen[resp.Header.Get(prefork.PidHeader)] = true
	}
	if len(seen) < n {
		t.Fatalf("saw pids %v within 20s; want %d distinct", seen, n)
	}
	return seen
}

func TestWorkersShareListener(t *testing.T) {
	t.Parallel()
	m := startMaster(t, "PREFORK_TEST_WORKERS=3")
	st := m.waitStatus(30*time.Second, "3 ready workers", func(st *prefork.Status) bool { return serving(st, 3, nil) })
	seen := distinctPids(t, m.base, 3)
	for _, w := range st.Workers {
		if !seen[strconv.Itoa(w.PID)] {
			t.Errorf("worker %d (pid %d) in %s never answered; answered: %v", w.ID, w.PID, prefork.StatusPath, seen)
		}
		// ps shows workers as "prefork-test worker ID ...".
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", w.PID))
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("prefork-test worker %d\x00", w.ID); !strings.HasPrefix(string(cmdline), want) {
			t.Errorf("worker %d cmdline = %q; want prefix %q", w.ID, cmdline, want)
		}
	}
	if st.MasterPID != m.cmd.Process.Pid {
		t.Errorf("master_pid = %d; want %d", st.MasterPID, m.cmd.Process.Pid)
	}
	for id := 1; id <= 3; id++ {
		if want := fmt.Sprintf("[worker %d] test worker up\n", id); !strings.Contains(m.output(false), want) {
			t.Errorf("master stdout lacks %q:\n%s", want, m.output(false))
		}
	}
	m.signal(syscall.SIGTERM)
	if code := m.wait(30 * time.Second); code != 0 {
		t.Errorf("master exit code = %d; want 0", code)
	}
}

func TestReusePort(t *testing.T) {
	t.Parallel()
	m := startMaster(t, "PREFORK_TEST_WORKERS=2", "PREFORK_TEST_REUSEPORT=1")
	st := m.waitStatus(30*time.Second, "2 ready workers", func(st *prefork.Status) bool { return serving(st, 2, nil) })
	if !st.ReusePort {
		t.Error("status reuse_port = false; want true")
	}
	distinctPids(t, m.base, 2)
	m.signal(syscall.SIGTERM)
	if code := m.wait(30 * time.Second); code != 0 {
		t.Errorf("master exit code = %d; want 0", code)
	}
}

// TestRollingReloadUnderLoad: keep-alive clients keep posting while the
// master reloads rounds() times and adds and removes a worker; not one
// request may fail.
func TestRollingReloadUnderLoad(t *testing.T) {
	t.Parallel()
	const n = 2
	m := startMaster(t, fmt.Sprintf("PREFORK_TEST_WORKERS=%d", n))
	st := m.waitStatus(30*time.Second, "ready workers", func(st *prefork.Status) bool { return serving(st, n, nil) })
	l := startLoad(m.base+"/", 8)
	defer l.stop()
	l.waitOK(t, 200, 30*time.Second)
	for i := range rounds() {
		old := pids(st)
		m.signal(syscall.SIGHUP)
		st = m.waitStatus(30*time.Second, fmt.Sprintf("reload %d to replace %v", i+1, old), func(st *prefork.Status) bool {
			return st.Reloads == i+1 && serving(st, n, old)
		})
		l.waitOK(t, 100, 30*time.Second)
	}
	m.signal(syscall.SIGTTIN)
	st = m.waitStatus(30*time.Second, "a third worker", func(st *prefork.Status) bool { return serving(st, n+1, nil) })
	l.waitOK(t, 100, 30*time.Second)
	m.signal(syscall.SIGTTOU)
	m.waitStatus(30*time.Second, "back to 2 workers", func(st *prefork.Status) bool { return serving(st, n, nil) })
	l.waitOK(t, 100, 30*time.Second)
	l.stop()
	failures, distinct := l.snapshot()
	t.Logf("%d reloads + TTIN/TTOU: %d requests ok, %d failed, %d distinct worker pids", rounds(), l.ok.Load(), len(failures), distinct)
	for _, f := range failures {
		t.Errorf("failed request (conn to pid %q, reused %v): %s", f.pid, f.reused, f.err)
	}
	if st.Restarts != 0 {
		t.Errorf("restarts = %d; want 0 (reloads are not crashes)", st.Restarts)
	}
	m.signal(syscall.SIGTERM)
	if code := m.wait(30 * time.Second); code != 0 {
		t.Errorf("master exit code = %d; want 0", code)
	}
	if out := m.output(true); strings.Contains(out, "killing it") {
		t.Errorf("a draining worker had to be killed:\n%s", out)
	}
}

// TestKillWorkersUnderLoad: SIGKILL random workers under load. Only requests
// on a connection the killed worker held may fail (at most one per client
// per kill, since a failed client reconnects); requests on any other
// connection, including every new one, must succeed.
func TestKillWorkersUnderLoad(t *testing.T) {
	t.Parallel()
	const n, clients = 3, 8
	m := startMaster(t, fmt.Sprintf("PREFORK_TEST_WORKERS=%d", n), "PREFORK_TEST_MIN_UPTIME=1ms")
	st := m.waitStatus(30*time.Second, "ready workers", func(st *prefork.Status) bool { return serving(st, n, nil) })
	l := startLoad(m.base+"/", clients)
	defer l.stop()
	l.waitOK(t, 200, 30*time.Second)
	killed := map[string]bool{}
	for i := range rounds() {
		victim := st.Workers[rand.IntN(len(st.Workers))].PID
		if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
			t.Fatalf("kill %d: %v", victim, err)
		}
		killed[strconv.Itoa(victim)] = true
		st = m.waitStatus(30*time.Second, fmt.Sprintf("kill %d: pid %d replaced", i+1, victim), func(st *prefork.Status) bool {
			return serving(st, n, map[int]bool{victim: true}) && st.Restarts == i+1
		})
		l.waitOK(t, 100, 30*time.Second)
	}
	l.stop()
	failures, _ := l.snapshot()
	perPid := map[string]int{}
	for _, f := range failures {
		if !f.reused || !killed[f.pid] {
			t.Errorf("request failed on a connection not held by a killed worker (pid %q, reused %v): %s", f.pid, f.reused, f.err)
			continue
		}
		perPid[f.pid]++
	}
	for pid, c := range perPid {
		if c > clients {
			t.Errorf("%d failures on connections of killed pid %s; want at most %d (one per client)", c, pid, clients)
		}
	}
	t.Logf("%d kills: %d requests ok, %d failed, all on connections of killed workers (bound %d per kill)",
		rounds(), l.ok.Load(), len(failures), clients)
	m.signal(syscall.SIGTERM)
	if code := m.wait(30 * time.Second); code != 0 {
		t.Errorf("master exit code = %d; want 0", code)
	}
}

func TestCrashLoopGivesUp(t *testing.T) {
	t.Parallel()
	start := time.Now()
	m := startMaster(t, "PREFORK_TEST_WORKERS=2", "PREFORK_TEST_CRASH=1")
	code := m.wait(60 * time.Second)
	if code == 0 {
		t.Fatal("master exit code = 0; want non-zero after a crash loop")
	}
	stderr := m.output(true)
	for _, want := range []string{"giving up", "[worker", "test worker: cannot open database: boom", "exit status 3"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("master stderr lacks %q:\n%s", want, stderr)
		}
	}
	if !strings.Contains(stderr, "backoff=") {
		t.Errorf("master did not back off before giving up:\n%s", stderr)
	}
	t.Logf("gave up after %v with exit code %d", time.Since(start).Round(time.Millisecond), code)
}

func TestGracefulStopWaitsForSlowRequest(t *testing.T) {
	t.Parallel()
	m := startMaster(t, "PREFORK_TEST_WORKERS=1")
	m.waitStatus(30*time.Second, "a ready worker", func(st *prefork.Status) bool { return serving(st, 1, nil) })
	type result struct {
		body string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := http.Get(m.base + "/slow?d=1500ms")
		if err != nil {
			done <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		done <- result{body: string(b), err: err}
	}()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(m.output(false), "[worker 1] slow request started") {
		if time.Now().After(deadline) {
			t.Fatalf("slow request never started:\n%s", m.output(false))
		}
		time.Sleep(10 * time.Millisecond) // poll interval
	}
	m.signal(syscall.SIGTERM)
	r := <-done
	if r.err != nil || r.body != "slow done\n" {
		t.Errorf("slow request = %q, %v; want %q", r.body, r.err, "slow done\n")
	}
	if code := m.wait(30 * time.Second); code != 0 {
		t.Errorf("master exit code = %d; want 0", code)
	}
}

func TestHeartbeatTimeoutReplacesHungWorker(t *testing.T) {
	t.Parallel()
	m := startMaster(t, "PREFORK_TEST_WORKERS=2", "PREFORK_TEST_WORKER_TIMEOUT=3s")
	st := m.waitStatus(30*time.Second, "ready workers", func(st *prefork.Status) bool { return serving(st, 2, nil) })
	hung := st.Workers[0].PID
	if err := syscall.Kill(hung, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	st = m.waitStatus(30*time.Second, "the stopped worker replaced", func(st *prefork.Status) bool {
		return serving(st, 2, map[int]bool{hung: true})
	})
	if st.Restarts < 1 {
		t.Errorf("restarts = %d; want at least 1", st.Restarts)
	}
	if !strings.Contains(m.output(true), "missed its heartbeat") {
		t.Errorf("master did not log the missed heartbeat:\n%s", m.output(true))
	}
}

func TestMaxRequestsRecyclesWithoutFailures(t *testing.T) {
	t.Parallel()
	m := startMaster(t, "PREFORK_TEST_WORKERS=2", "PREFORK_TEST_MAX_REQUESTS=300", "PREFORK_TEST_MAX_REQUESTS_JITTER=100")
	m.waitStatus(30*time.Second, "ready workers", func(st *prefork.Status) bool { return serving(st, 2, nil) })
	l := startLoad(m.base+"/", 8)
	defer l.stop()
	deadline := time.Now().Add(60 * time.Second)
	for {
		_, distinct := l.snapshot()
		if distinct >= 6 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d distinct worker pids after 60s; want recycling to 6", distinct)
		}
		time.Sleep(20 * time.Millisecond) // poll interval
	}
	l.stop()
	st := m.waitStatus(30*time.Second, "2 workers", func(st *prefork.Status) bool { return serving(st, 2, nil) })
	failures, distinct := l.snapshot()
	t.Logf("max-requests recycling: %d requests ok, %d failed, %d distinct pids", l.ok.Load(), len(failures), distinct)
	for _, f := range failures {
		t.Errorf("failed request (conn to pid %q, reused %v): %s", f.pid, f.reused, f.err)
	}
	if st.Restarts != 0 {
		t.Errorf("restarts = %d; want 0 (recycling is not a crash)", st.Restarts)
	}
	for _, w := range st.Workers {
		if w.MaxRequests < 300 || w.MaxRequests > 400 {
			t.Errorf("worker %d max_requests = %d; want 300..400", w.ID, w.MaxRequests)
		}
	}
}

// TestReloadPicksUpNewBinary: the master runs a wrapper script; replacing
// the script at the same path and sending SIGHUP puts the new version in
// service.
func TestReloadPicksUpNewBinary(t *testing.T) {
	t.Parallel()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "worker.sh")
	install := func(version string) {
		tmp := path + ".new"
		crash := ""
		if version == "broken" {
			crash = "PREFORK_TEST_CRASH=1 "
		}
		script := fmt.Sprintf("#!/bin/sh\n%sPREFORK_TEST_VERSION=%s exec %q \"$@\"\n", crash, version, exe)
		if err := os.WriteFile(tmp, []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	install("v1")
	m := startMaster(t, "PREFORK_TEST_WORKERS=2", "PREFORK_TEST_PATH="+path)
	st := m.waitStatus(30*time.Second, "ready workers", func(st *prefork.Status) bool { return serving(st, 2, nil) })
	version := func() string {
		resp, err := statusClient.Get(m.base + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.Header.Get("X-Test-Version")
	}
	if v := version(); v != "v1" {
		t.Fatalf("version = %q; want v1", v)
	}
	install("v2")
	m.signal(syscall.SIGHUP)
	m.waitStatus(30*time.Second, "reloaded workers", func(s *prefork.Status) bool { return serving(s, 2, pids(st)) })
	for range 10 {
		if v := version(); v != "v2" {
			t.Fatalf("version after reload = %q; want v2", v)
		}
	}

	// A broken binary: the reload is aborted and the v2 workers keep serving.
	st = m.waitStatus(30*time.Second, "v2 workers", func(s *prefork.Status) bool { return serving(s, 2, nil) })
	install("broken")
	m.signal(syscall.SIGHUP)
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(m.output(true), "rolling replacement aborted") {
		if time.Now().After(deadline) {
			t.Fatalf("reload with a broken binary was not aborted:\n%s", m.output(true))
		}
		time.Sleep(20 * time.Millisecond) // poll interval
	}
	after := m.waitStatus(30*time.Second, "the v2 workers", func(s *prefork.Status) bool { return serving(s, 2, nil) })
	for _, w := range after.Workers {
		if !pids(st)[w.PID] {
			t.Errorf("worker %d pid %d is new; want the v2 workers %v kept", w.ID, w.PID, pids(st))
		}
	}
	if v := version(); v != "v2" {
		t.Errorf("version after a failed reload = %q; want v2", v)
	}
	if !strings.Contains(m.output(true), "cannot open database: boom") {
		t.Errorf("the abort does not quote the new worker's output:\n%s", m.output(true))
	}
	// The failed start must not leave the shared socket in blocking mode
	// (os/exec's File.Fd does that), which would hang the workers' drain.
	m.signal(syscall.SIGTERM)
	if code := m.wait(30 * time.Second); code != 0 {
		t.Errorf("master exit code = %d; want 0", code)
	}
	if out := m.output(true); strings.Contains(out, "killing it") {
		t.Errorf("workers had to be killed on SIGTERM:\n%s", out)
	}
}

// TestWorkersExitWhenMasterDies: a master killed with SIGKILL cannot stop
// its workers; they notice (Pdeathsig, and EOF on the control channel),
// drain and exit instead of serving on unsupervised.
func TestWorkersExitWhenMasterDies(t *testing.T) {
	t.Parallel()
	m := startMaster(t, "PREFORK_TEST_WORKERS=2")
	st := m.waitStatus(30*time.Second, "ready workers", func(st *prefork.Status) bool { return serving(st, 2, nil) })
	m.signal(syscall.SIGKILL)
	m.wait(30 * time.Second)
	deadline := time.Now().Add(30 * time.Second)
	for _, w := range st.Workers {
		for alive(w.PID) {
			if time.Now().After(deadline) {
				t.Fatalf("worker %d (pid %d) still running 30s after its master died", w.ID, w.PID)
			}
			time.Sleep(20 * time.Millisecond) // poll interval
		}
	}
}

// alive reports whether pid is a running process. The workers of a dead
// master are reparented; if their new parent does not reap them they stay
// zombies, which count as exited.
func alive(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name: "pid (comm) S ...".
	i := strings.LastIndexByte(string(stat), ')')
	return i < 0 || i+2 >= len(stat) || stat[i+2] != 'Z'
}

// TestRollingReloadNewConnections: clients that open a new connection for
// every request (no keep-alive) during reloads. Connections waiting in the
// shared accept queue survive a worker's exit, so none may fail. (With
// --reuse-port the kernel resets those queued on the stopping worker's own
// socket; README "Workers" gives the count.)
func TestRollingReloadNewConnections(t *testing.T) {
	t.Parallel()
	m := startMaster(t, "PREFORK_TEST_WORKERS=2")
	st := m.waitStatus(30*time.Second, "ready workers", func(st *prefork.Status) bool { return serving(st, 2, nil) })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var ok atomic.Int64
	var mu sync.Mutex
	var failures []string
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 30 * time.Second}
			for ctx.Err() == nil {
				resp, err := client.Get(m.base + "/")
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if err == nil && resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				if err != nil {
					if ctx.Err() == nil {
						mu.Lock()
						failures = append(failures, err.Error())
						mu.Unlock()
					}
					continue
				}
				ok.Add(1)
			}
		}()
	}
	reloads := 3 // new connections cost more CPU than keep-alive ones; 20 with -tags stress
	if soakRounds > 5 {
		reloads = soakRounds
	}
	for i := range reloads {
		old := pids(st)
		m.signal(syscall.SIGHUP)
		st = m.waitStatus(30*time.Second, fmt.Sprintf("reload %d", i+1), func(s *prefork.Status) bool {
			return s.Reloads == i+1 && serving(s, 2, old)
		})
	}
	cancel()
	wg.Wait()
	t.Logf("%d reloads, a new connection per request: %d ok, %d failed", reloads, ok.Load(), len(failures))
	if ok.Load() == 0 {
		t.Error("no request succeeded")
	}
	for _, f := range failures {
		t.Errorf("failed request: %s", f)
	}
}

// A master that is itself stopped (SIGSTOP, a paused VM) for longer than
// --worker-timeout must not blame its workers for the heartbeats it did
// not read: after SIGCONT it judges silence by its own progress, gives
// every worker a fresh grace period and kills none. Requests go on.
func TestStalledMasterKeepsWorkers(t *testing.T) {
	t.Parallel()
	m := startMaster(t, "PREFORK_TEST_WORKERS=2", "PREFORK_TEST_WORKER_TIMEOUT=1s")
	st := m.waitStatus(30*time.Second, "ready workers", func(st *prefork.Status) bool { return serving(st, 2, nil) })
	before := pids(st)
	l := startLoad(m.base+"/", 4)
	defer l.stop()
	l.waitOK(t, 20, 30*time.Second)
	m.signal(syscall.SIGSTOP)
	stopped := time.Now()
	// The workers keep serving while the master is stopped.
	l.waitOK(t, 20, 30*time.Second)
	for time.Since(stopped) < 3*time.Second { // the fault: 3 worker timeouts without the master
		time.Sleep(50 * time.Millisecond)
	}
	m.signal(syscall.SIGCONT)
	// Watch for 3 more worker timeouts: the same two workers throughout.
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end); {
		st := m.waitStatus(30*time.Second, "status", func(*prefork.Status) bool { return true })
		if got := pids(st); len(got) != 2 || !got[st.Workers[0].PID] || !before[st.Workers[0].PID] || !before[st.Workers[1].PID] {
			t.Fatalf("workers changed after the master's stall: before %v, now %+v\n%s", before, st.Workers, m.output(true))
		}
		time.Sleep(100 * time.Millisecond) // poll interval
	}
	l.waitOK(t, 20, 30*time.Second)
	out := m.output(true)
	if strings.Contains(out, "missed its heartbeat") {
		t.Errorf("the master killed workers for its own stall:\n%s", out)
	}
	if !strings.Contains(out, "did not run for a while") {
		t.Errorf("the master did not log its stall:\n%s", out)
	}
	if f, _ := l.snapshot(); len(f) > 0 {
		t.Errorf("%d requests failed around the master's stall: %v", len(f), f)
	}
}

// When every worker goes silent at once the master kills them one at a
// time: the second only after the first one's replacement is ready, so a
// mistaken verdict never empties the server.
func TestSilentWorkersAreKilledOneAtATime(t *testing.T) {
	t.Parallel()
	// A timeout well above a worker's start-up time on a busy machine.
	m := startMaster(t, "PREFORK_TEST_WORKERS=2", "PREFORK_TEST_WORKER_TIMEOUT=3s")
	st := m.waitStatus(30*time.Second, "ready workers", func(st *prefork.Status) bool { return serving(st, 2, nil) })
	frozen := pids(st)
	for pid := range frozen {
		if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
	}
	m.waitStatus(60*time.Second, "both frozen workers replaced", func(st *prefork.Status) bool { return serving(st, 2, frozen) })
	// In the master's log: kill, a replacement ready, then the next kill.
	var events []string
	for _, line := range strings.Split(m.output(true), "\n") {
		switch {
		case strings.Contains(line, "missed its heartbeat"):
			events = append(events, "kill")
		case strings.Contains(line, "worker ready") && len(events) > 0:
			events = append(events, "ready")
		}
	}
	if len(events) < 3 || events[0] != "kill" || events[1] != "ready" || events[2] != "kill" {
		t.Errorf("kills and replacements in the master's log: %v; want kill, ready, kill\n%s", events, m.output(true))
	}
}
