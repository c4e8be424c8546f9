package reliability_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// steadyLoad is a set of keep-alive clients that read a table page and
// insert rows in a loop, counting successes and failures.
type steadyLoad struct {
	ok, failed atomic.Int64
	mu         sync.Mutex
	failures   []string
	stop       chan struct{}
	wg         sync.WaitGroup
}

func startSteadyLoad(base string, clients int) *steadyLoad {
	l := &steadyLoad{stop: make(chan struct{})}
	for c := 0; c < clients; c++ {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			hc := &http.Client{Timeout: 20 * time.Second}
			for i := 0; ; i++ {
				select {
				case <-l.stop:
					return
				default:
				}
				var resp *http.Response
				var err error
				want := http.StatusOK
				if i%4 == 3 {
					want = http.StatusCreated
					body := fmt.Sprintf(`{"row": {"k": "load-c%d-%d"}}`, c, i)
					resp, err = hc.Post(base+"app/items/-/insert", "application/json", bytes.NewBufferString(body))
				} else {
					resp, err = hc.Get(base + "app/items.json?_size=5&_sort_desc=id")
				}
				if err == nil {
					var b bytes.Buffer
					_, err = b.ReadFrom(resp.Body)
					resp.Body.Close()
					if err == nil && resp.StatusCode != want {
						err = fmt.Errorf("status %d: %s", resp.StatusCode, strings.TrimSpace(b.String()))
					}
				}
				if err != nil {
					l.failed.Add(1)
					l.mu.Lock()
					if len(l.failures) < 20 {
						l.failures = append(l.failures, err.Error())
					}
					l.mu.Unlock()
					continue
				}
				l.ok.Add(1)
			}
		}()
	}
	return l
}

func (l *steadyLoad) finish() {
	close(l.stop)
	l.wg.Wait()
}

// waitRequests waits until n more requests than now succeeded.
func (l *steadyLoad) waitRequests(t *testing.T, n int64) {
	t.Helper()
	target := l.ok.Load() + n
	deadline := time.Now().Add(30 * time.Second)
	for l.ok.Load() < target {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d requests succeeded within 30s", l.ok.Load(), target)
		}
		time.Sleep(2 * time.Millisecond) // poll interval
	}
}

// TestReloadUnderLoad drives `lode serve --workers 2` (real database,
// reads and writes) with 8 keep-alive clients. Rolling reloads (SIGHUP)
// must fail no request. A worker SIGKILL may fail only requests that were
// in flight on the killed worker: each client has at most one request in
// flight, so at most 8 per kill, and each failure must be a cut
// connection, never an HTTP error status.
func TestReloadUnderLoad(t *testing.T) {
	dir := t.TempDir()
	path := newDB(t, dir, "app.db", "wal",
		"CREATE TABLE items (id INTEGER PRIMARY KEY, k TEXT)",
		"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 200) INSERT INTO items (k) SELECT 'seed-' || x FROM c")
	cfg := writeFile(t, dir, "lode.yaml", "permissions:\n  insert-row: true\n")
	const clients = 8
	p := startLode(t, path, "--workers", "2", "--config", cfg, "--graceful-timeout", "10s")
	p.waitStatus("2 ready workers", 60*time.Second, (*workersStatus).ready)

	ld := startSteadyLoad(p.Base, clients)
	ld.waitRequests(t, 50)
	for i := 0; i < reloadRounds; i++ {
		before := p.waitStatus("ready workers", 60*time.Second, (*workersStatus).ready)
		syscall.Kill(p.cmd.Process.Pid, syscall.SIGHUP)
		p.waitStatus(fmt.Sprintf("reload %d to finish", i+1), 60*time.Second, func(st *workersStatus) bool {
			return st.Reloads > before.Reloads && st.ready() && !samePIDs(st, before)
		})
		ld.waitRequests(t, 20)
	}
	reloadOK, reloadFailed := ld.ok.Load(), ld.failed.Load()
	if reloadFailed != 0 {
		ld.finish()
		t.Fatalf("%d of %d requests failed across %d rolling reloads; first: %v\n%s",
			reloadFailed, reloadOK+reloadFailed, reloadRounds, ld.failures, p.output())
	}

	for i := 0; i < reloadRounds; i++ {
		// A worker that dies within 1 s of starting counts as a failed
		// start, and six in a row make the master give up (crash-loop
		// protection), so only workers that have been up 1.5 s are killed.
		before := p.waitStatus("ready workers up 1.5 s", 60*time.Second, func(st *workersStatus) bool {
			if !st.ready() {
				return false
			}
			for _, w := range st.Workers {
				if time.Since(w.Started) < 1500*time.Millisecond {
					return false
				}
			}
			return true
		})
		victim := before.Workers[rand.IntN(len(before.Workers))].PID
		syscall.Kill(victim, syscall.SIGKILL)
		p.waitStatus("a replacement worker", 60*time.Second, func(st *workersStatus) bool {
			return st.Restarts > before.Restarts && st.ready() && !hasPID(st, victim)
		})
		ld.waitRequests(t, 20)
	}
	ld.finish()
	killOK, killFailed := ld.ok.Load()-reloadOK, ld.failed.Load()
	for _, f := range ld.failures {
		if strings.HasPrefix(f, "status ") {
			t.Errorf("a worker SIGKILL produced an HTTP error answer, not a cut connection: %s", f)
		}
	}
	if killFailed > int64(clients*reloadRounds) {
		t.Errorf("%d requests failed across %d worker SIGKILLs; at most %d can have been in flight on the killed workers; first: %v",
			killFailed, reloadRounds, clients*reloadRounds, ld.failures)
	}
	t.Logf("rolling reloads: %d, requests through them: %d, failed: 0", reloadRounds, reloadOK)
	t.Logf("worker SIGKILLs: %d, requests: %d ok, %d failed (bound %d = in flight); failures: %v",
		reloadRounds, killOK, killFailed, clients*reloadRounds, ld.failures)
}

func samePIDs(a, b *workersStatus) bool {
	for _, w := range b.Workers {
		if hasPID(a, w.PID) {
			return true
		}
	}
	return false
}

func hasPID(st *workersStatus, pid int) bool {
	for _, w := range st.Workers {
		if w.PID == pid {
			return true
		}
	}
	return false
}
