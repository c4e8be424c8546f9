package reliability_test

import (
	"bytes"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// loader runs clients that insert uniquely keyed rows through the write
// API and remembers every key whose insert was answered 201.
type loader struct {
	mu     sync.Mutex
	acked  []string
	errs   int // transport errors (connection refused/reset while processes die)
	non2xx map[int]int
	n      atomic.Int64
	stop   chan struct{}
	wg     sync.WaitGroup
}

func startLoader(base, table, prefix string, clients int) *loader {
	l := &loader{non2xx: map[int]int{}, stop: make(chan struct{})}
	for c := 0; c < clients; c++ {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			hc := &http.Client{Timeout: 15 * time.Second}
			for i := 0; ; i++ {
				select {
				case <-l.stop:
					return
				default:
				}
				key := fmt.Sprintf("%s-c%d-%d", prefix, c, i)
				body := fmt.Sprintf(`{"row": {"k": %q, "pad": "%0100d"}}`, key, i)
				resp, err := hc.Post(base+table+"/-/insert", "application/json", bytes.NewBufferString(body))
				if err != nil {
					l.mu.Lock()
					l.errs++
					l.mu.Unlock()
					select {
					case <-l.stop:
						return
					case <-time.After(5 * time.Millisecond): // back off while the server is down
					}
					continue
				}
				resp.Body.Close()
				l.mu.Lock()
				if resp.StatusCode == http.StatusCreated {
					l.acked = append(l.acked, key)
					l.n.Add(1)
				} else {
					l.non2xx[resp.StatusCode]++
				}
				l.mu.Unlock()
			}
		}()
	}
	return l
}

// waitAcks waits until n more inserts than now were acknowledged.
func (l *loader) waitAcks(t *testing.T, n int64, p *lodeProc) {
	t.Helper()
	target := l.n.Load() + n
	deadline := time.Now().Add(30 * time.Second)
	for l.n.Load() < target {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d inserts acknowledged within 30s\n%s", l.n.Load(), target, p.output())
		}
		time.Sleep(2 * time.Millisecond) // poll interval
	}
}

func (l *loader) finish() {
	close(l.stop)
	l.wg.Wait()
}

// TestCrashDurability is issue 10's crash test through the real binary:
// 8 clients insert uniquely keyed rows into `lode serve --workers 2` while
// a worker (the process holding a SQLite writer) or the master is
// SIGKILLed at a random moment. Even rounds kill a random worker, let the
// master replace it, then SIGKILL the master and every worker at once;
// odd rounds SIGKILL only the master, whose workers must drain and exit.
// After each round the file must pass PRAGMA integrity_check and hold
// every row whose insert was answered 201. Each round reopens the same
// file, so it also recovers the previous round's hot WAL or journal.
func TestCrashDurability(t *testing.T) {
	cfg := writeFile(t, t.TempDir(), "lode.yaml", "permissions:\n  insert-row: true\n")
	for _, m := range []struct{ journal, sync string }{{"wal", "full"}, {"wal", "normal"}, {"delete", "full"}} {
		t.Run(m.journal+"+"+m.sync, func(t *testing.T) {
			path := newDB(t, t.TempDir(), "crash.db", m.journal,
				"CREATE TABLE t (id INTEGER PRIMARY KEY, k TEXT UNIQUE NOT NULL, pad TEXT)")
			crashes, rowsChecked, transportErrs := 0, 0, 0
			for round := 0; round < crashRounds; round++ {
				p := startLode(t, path, "--workers", "2", "--journal-mode", m.journal, "--synchronous", m.sync,
					"--config", cfg, "--graceful-timeout", "5s")
				p.waitStatus("2 ready workers", 60*time.Second, (*workersStatus).ready)
				ld := startLoader(p.Base, "crash/t", fmt.Sprintf("r%d", round), 8)
				ld.waitAcks(t, int64(5+rand.IntN(150)), p) // a random moment in the load
				if round%2 == 0 {
					pids := p.workerPIDs()
					if len(pids) == 0 {
						t.Fatalf("round %d: no worker pids\n%s", round, p.output())
					}
					victim := pids[rand.IntN(len(pids))]
					syscall.Kill(victim, syscall.SIGKILL)
					crashes++
					ld.waitAcks(t, int64(5+rand.IntN(100)), p) // served by the survivor (and the replacement)
					// Then everything at once, in the middle of the load, once the
					// replacement is up so that it is killed too.
					p.waitStatus("the replacement worker", 30*time.Second, func(st *workersStatus) bool {
						return st.ready() && !hasPID(st, victim)
					})
					all := p.workerPIDs()
					syscall.Kill(p.cmd.Process.Pid, syscall.SIGKILL)
					for _, pid := range all {
						syscall.Kill(pid, syscall.SIGKILL)
					}
					crashes += 1 + len(all)
					<-p.exited
					waitGone(t, all, 10*time.Second)
				} else {
					pids := p.workerPIDs()
					syscall.Kill(p.cmd.Process.Pid, syscall.SIGKILL)
					crashes++
					<-p.exited
					waitGone(t, pids, 20*time.Second) // they drain, then exit
				}
				ld.finish()
				missing, total, check := verifyRows(t, path, ld.acked)
				if check != "ok" || len(missing) > 0 {
					t.Fatalf("round %d: integrity_check %q; %d of %d acknowledged rows missing (e.g. %v)\n%s",
						round, check, len(missing), len(ld.acked), first(missing, 5), p.output())
				}
				rowsChecked += len(ld.acked)
				transportErrs += ld.errs
				if len(ld.non2xx) > 0 {
					t.Logf("round %d: non-2xx answers by status: %v", round, ld.non2xx)
				}
				t.Logf("round %d: %d acknowledged rows present (%d rows in file)", round, len(ld.acked), total)
			}
			t.Logf("%s+%s: %d rounds, %d processes SIGKILLed, %d acknowledged rows checked, %d transport errors (requests cut by kills), integrity_check ok every round",
				m.journal, m.sync, crashRounds, crashes, rowsChecked, transportErrs)
		})
	}
}

// verifyRows opens the file the way a new process would and returns the
// acknowledged keys that are missing, the row count and integrity_check.
func verifyRows(t *testing.T, path string, acked []string) (missing []string, total int, check string) {
	t.Helper()
	db, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.QueryRow("PRAGMA integrity_check").Scan(&check); err != nil {
		t.Fatalf("integrity_check: %v", err)
	}
	present := map[string]bool{}
	rows, err := db.Query("SELECT k FROM t")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			t.Fatal(err)
		}
		present[k] = true
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	for _, k := range acked {
		if !present[k] {
			missing = append(missing, k)
		}
	}
	return missing, len(present), check
}

func first(s []string, n int) []string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
