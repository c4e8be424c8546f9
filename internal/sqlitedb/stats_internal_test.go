package sqlitedb

import (
	"context"
	"errors"
	"math"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// openStatsDB opens a real database file through Open (and so through the
// counting VFS) with a table t(v).
func openStatsDB(t *testing.T, path string, s Settings) *DB {
	t.Helper()
	s.Create = true
	db, err := Open(context.Background(), path, s)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if db.vfs == nil {
		t.Fatal("no counting VFS installed")
	}
	if _, err := db.WriteDB().Exec("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v TEXT)"); err != nil {
		t.Fatal(err)
	}
	return db
}

// A batch of known size shows up in the batch-size histogram, every COMMIT
// in the commit histogram, and synchronous=FULL's fsyncs of the WAL (and
// of the journal and database file in rollback mode) in the file stats,
// and a WAL checkpoint in the checkpoint histogram.
func TestStatsGroupCommitAndFsync(t *testing.T) {
	for _, journal := range []string{"wal", "delete"} {
		t.Run(journal, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "s.db")
			db := openStatsDB(t, path, Settings{JournalMode: journal, Synchronous: "full"})
			syncs0 := db.Stats().File.Sync
			w := newTestWriter(t, db.WriteDB(), WriterOptions{})
			release, waitFirst := blockWriter(t, w)
			const n = 5
			var wg sync.WaitGroup
			for i := range n {
				wg.Add(1)
				go func() { defer wg.Done(); _ = w.Do(context.Background(), insertFn("x")) }()
				waitQueued(t, w, i+1)
			}
			if q := w.Stats().Queued; q != n {
				t.Errorf("Queued = %d; want %d", q, n)
			}
			release()
			if err := waitFirst(); err != nil {
				t.Fatal(err)
			}
			wg.Wait()
			ws := w.Stats()
			if ws.BatchSize.Count != 2 || ws.BatchSize.Sum != 1+n {
				t.Errorf("BatchSize count %d sum %v; want 2 batches of 1 and %d", ws.BatchSize.Count, ws.BatchSize.Sum, n)
			}
			// 5 falls in the bucket (4, 8].
			if got := ws.BatchSize.Counts[3]; got != 1 {
				t.Errorf("batches of 5..8 requests = %d; want 1 (buckets %v)", got, ws.BatchSize.Counts)
			}
			if ws.Commit.Count != 2 || ws.Commit.Sum <= 0 {
				t.Errorf("Commit = %+v; want 2 timed commits", ws.Commit)
			}
			if ws.QueueWait.Count != 1+n {
				t.Errorf("QueueWait count = %d; want %d", ws.QueueWait.Count, 1+n)
			}
			fs := db.Stats().File
			synced := func(kind string) uint64 { return fs.Sync[kind].Count - syncs0[kind].Count }
			switch journal {
			case "wal":
				if synced("wal") < 2 {
					t.Errorf("WAL fsyncs during 2 commits = %d; want >= 2 (%+v)", synced("wal"), fs.Sync)
				}
			case "delete":
				if synced("journal") < 2 || synced("db") < 2 {
					t.Errorf("journal/db fsyncs during 2 commits = %d/%d; want >= 2 each", synced("journal"), synced("db"))
				}
			}
			if fs.Sync["wal"].Sum <= 0 && fs.Sync["db"].Sum <= 0 {
				t.Errorf("fsync time not measured: %+v", fs.Sync)
			}
			w.Close()
			if journal == "wal" {
				// The writer's automatic checkpoints (past 1000 WAL pages)
				// take the same lock as this one.
				before := db.Stats().File.Checkpoints.Count
				if _, err := db.WriteDB().Exec("PRAGMA wal_checkpoint(PASSIVE)"); err != nil {
					t.Fatal(err)
				}
				if got := db.Stats().File.Checkpoints.Count; got != before+1 {
					t.Errorf("checkpoints = %d; want %d", got, before+1)
				}
			}
		})
	}
}

// A second writer on the same file (another worker process, in
// production) waits in SQLite's busy handler while the first holds the
// write lock; its sleeps are counted, and when the busy timeout runs out
// the lock error is counted by its SQLite code.
func TestStatsLockWaitsAndErrors(t *testing.T) {
	path := filepath.Join(t.TempDir(), "l.db")
	a := openStatsDB(t, path, Settings{BusyTimeout: 150 * time.Millisecond})
	b := openStatsDB(t, path, Settings{BusyTimeout: 150 * time.Millisecond})
	wa := newTestWriter(t, a.WriteDB(), WriterOptions{})
	wb := newTestWriter(t, b.WriteDB(), WriterOptions{})
	release, waitFirst := blockWriter(t, wa) // a holds BEGIN IMMEDIATE
	err := wb.Do(context.Background(), insertFn("y"))
	release()
	if err := waitFirst(); err != nil {
		t.Fatal(err)
	}
	var be *BusyError
	if !errors.As(err, &be) {
		t.Fatalf("second writer: err = %v; want a lock error", err)
	}
	bs := b.Stats().File
	if bs.BusySleeps == 0 || bs.BusySleepSeconds < 0.1 {
		t.Errorf("busy sleeps = %d, %.3fs; want several, about the 150ms busy timeout", bs.BusySleeps, bs.BusySleepSeconds)
	}
	if got := wb.Stats().LockErrors["SQLITE_BUSY"]; got != 1 {
		t.Errorf("LockErrors = %v; want SQLITE_BUSY: 1", wb.Stats().LockErrors)
	}
	if as := a.Stats().File; as.BusySleeps != 0 {
		t.Errorf("the lock holder slept %d times; want 0 (counters are per database)", as.BusySleeps)
	}
}

// A statement interrupted by its time limit is counted, and so is a wait
// for a read connection that runs out.
func TestStatsReadInterruptsAndWaits(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.db")
	db := openStatsDB(t, path, Settings{ReadConns: 1})
	slow := "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT count(*) FROM c"
	err := db.Each(context.Background(), slow, nil, QueryOptions{TimeLimit: 20 * time.Millisecond},
		func([]string) error { return nil }, func([]any) error { return nil })
	if !errors.Is(err, ErrTimeLimit) {
		t.Fatalf("slow query: err = %v; want ErrTimeLimit", err)
	}
	if got := db.Stats().TimeLimitInterrupts; got != 1 {
		t.Errorf("TimeLimitInterrupts = %d; want 1", got)
	}
	// Hold the only read connection while another statement waits for it.
	held := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- db.Each(context.Background(), "SELECT 1", nil, QueryOptions{}, func([]string) error {
			close(held)
			time.Sleep(100 * time.Millisecond) // hold the connection, not synchronising
			return nil
		}, func([]any) error { return nil })
	}()
	<-held
	err = db.Each(context.Background(), "SELECT 2", nil, QueryOptions{WaitLimit: 10 * time.Millisecond, TimeLimit: time.Second},
		func([]string) error { return nil }, func([]any) error { return nil })
	if !errors.Is(err, ErrNoConnection) {
		t.Errorf("waiting statement: err = %v; want ErrNoConnection", err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	s := db.Stats()
	if s.ReadWait.Count != 1 || s.ReadWaitTimeouts != 1 || s.ReadWait.Sum < 0.005 {
		t.Errorf("ReadWait %d (%.4fs), timeouts %d; want 1 wait of about 10ms that timed out", s.ReadWait.Count, s.ReadWait.Sum, s.ReadWaitTimeouts)
	}
}

func TestHistogramQuantile(t *testing.T) {
	h := newHistogram(1, batchBounds)
	for _, v := range []int64{1, 1, 3, 5, 6, 7, 200} {
		h.observe(v)
	}
	s := h.snapshot()
	for _, tc := range []struct {
		q    float64
		want float64
	}{{0, 1}, {0.25, 1}, {0.5, 8}, {0.4, 4}, {1, math.Inf(1)}} {
		if got := s.Quantile(tc.q); got != tc.want {
			t.Errorf("Quantile(%v) = %v; want %v (counts %v)", tc.q, got, tc.want, s.Counts)
		}
	}
	if got, want := s.Cumulative(), []uint64{2, 2, 3, 6, 6, 6, 6, 6}; !equalU(got, want) {
		t.Errorf("Cumulative() = %v; want %v", got, want)
	}
	if s.Mean() != 223.0/7 {
		t.Errorf("Mean() = %v", s.Mean())
	}
}

func equalU(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// BenchmarkRowLookupVFS measures the counting VFS's cost on the cheapest
// statement Lode runs, a prepared lookup by key (a WAL read transaction:
// two shared-memory lock calls through the shim).
func BenchmarkRowLookupVFS(b *testing.B) {
	for _, tc := range []struct {
		name string
		off  bool
	}{{"shim", false}, {"default", true}} {
		b.Run(tc.name, func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "b.db")
			db, err := Open(context.Background(), path, Settings{Create: true, NoFileStats: tc.off})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			if _, err := db.WriteDB().Exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t(v) VALUES ('a'), ('b')"); err != nil {
				b.Fatal(err)
			}
			opt := QueryOptions{Prepared: true, Bounded: true}
			noCols := func([]string) error { return nil }
			noRow := func([]any) error { return nil }
			args := []any{int64(1)}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if err := db.Each(context.Background(), "SELECT * FROM t WHERE id = ?", args, opt, noCols, noRow); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
