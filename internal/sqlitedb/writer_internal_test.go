package sqlitedb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mattn/go-sqlite3"
)

// openRaw opens a real file with one connection, independent of Open, so the
// writer's tests only depend on the driver.
func openRaw(tb testing.TB, path, journal string, busy time.Duration, extra string) *sql.DB {
	tb.Helper()
	dsn := fmt.Sprintf("file:%s?_journal_mode=%s&_busy_timeout=%d%s", path, journal, busy.Milliseconds(), extra)
	db, err := sql.Open("sqlite3", dsn)
	if err != nil {
		tb.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	tb.Cleanup(func() { db.Close() })
	if err := db.Ping(); err != nil {
		tb.Fatal(err)
	}
	return db
}

func newTestWriter(tb testing.TB, db *sql.DB, opts WriterOptions) *Writer {
	tb.Helper()
	w, err := NewWriter(db, opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { w.Close() })
	return w
}

func insertFn(v string) WriteFunc {
	return func(ctx context.Context, ex Execer) error {
		_, err := ex.ExecContext(ctx, "INSERT INTO t(v) VALUES (?)", v)
		return err
	}
}

// values reads column v of t on a fresh connection (the writer holds the
// only connection of its pool).
func values(tb testing.TB, path string) map[string]bool {
	tb.Helper()
	db := openRaw(tb, path, "WAL", time.Second, "")
	rows, err := db.Query("SELECT v FROM t")
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	got := map[string]bool{}
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			tb.Fatal(err)
		}
		got[v] = true
	}
	if err := rows.Err(); err != nil {
		tb.Fatal(err)
	}
	return got
}

// waitQueued polls until n requests wait in the writer's queue.
func waitQueued(t *testing.T, w *Writer, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for len(w.queue) < n {
		if time.Now().After(deadline) {
			t.Fatalf("queue length %d; want %d", len(w.queue), n)
		}
		time.Sleep(time.Millisecond) // polling, not synchronising
	}
}

// blockWriter occupies the writer with a request that waits on the returned
// channel, so the following requests gather into one batch.
func blockWriter(t *testing.T, w *Writer) (release func(), wait func() error) {
	started := make(chan struct{})
	gate := make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		errc <- w.Do(context.Background(), func(ctx context.Context, ex Execer) error {
			close(started)
			<-gate
			_, err := ex.ExecContext(ctx, "INSERT INTO t(v) VALUES ('first')")
			return err
		})
	}()
	<-started
	return func() { close(gate) }, func() error { return <-errc }
}

func TestWriterGroupCommitIsolatesFailingRequest(t *testing.T) {
	for _, journal := range []string{"WAL", "DELETE"} {
		t.Run(journal, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "w.db")
			db := openRaw(t, path, journal, 5*time.Second, "")
			if _, err := db.Exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT UNIQUE NOT NULL)"); err != nil {
				t.Fatal(err)
			}
			w := newTestWriter(t, db, WriterOptions{})
			release, waitFirst := blockWriter(t, w)

			bad := func(ctx context.Context, ex Execer) error {
				// A first statement that succeeds, then one that fails: the
				// savepoint must undo both.
				if _, err := ex.ExecContext(ctx, "INSERT INTO t(v) VALUES ('bad-partial')"); err != nil {
					return err
				}
				_, err := ex.ExecContext(ctx, "INSERT INTO t(v) VALUES (NULL)")
				return err
			}
			fns := []WriteFunc{insertFn("a"), bad, insertFn("b"), insertFn("a") /* duplicate of a */, insertFn("c")}
			errs := make([]error, len(fns))
			var wg sync.WaitGroup
			for i, fn := range fns {
				wg.Add(1)
				go func() {
					defer wg.Done()
					errs[i] = w.Do(context.Background(), fn)
				}()
				waitQueued(t, w, i+1) // keep the batch order deterministic
			}
			release()
			if err := waitFirst(); err != nil {
				t.Fatalf("first request: %v", err)
			}
			wg.Wait()
			want := []bool{true, false, true, false, true}
			for i, ok := range want {
				if (errs[i] == nil) != ok {
					t.Errorf("request %d: err = %v; want success %v", i, errs[i], ok)
				}
			}
			got := values(t, path)
			for _, v := range []string{"first", "a", "b", "c"} {
				if !got[v] {
					t.Errorf("row %q missing after commit; have %v", v, got)
				}
			}
			if got["bad-partial"] {
				t.Errorf("failing request's first statement was committed")
			}
			if s := w.Stats(); s.Batches != 2 || s.Requests != 6 {
				t.Errorf("Stats() = %+v; want 2 batches, 6 requests", s)
			}
		})
	}
}

// A COMMIT that fails (here: a deferred foreign key violated by one request,
// which SQLite only reports at COMMIT) must fail every request of the batch.
func TestWriterFailedCommitFailsWholeBatch(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.db")
	db := openRaw(t, path, "WAL", 5*time.Second, "&_foreign_keys=1")
	if _, err := db.Exec(`CREATE TABLE p (id INTEGER PRIMARY KEY);
		CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT, p INTEGER REFERENCES p(id) DEFERRABLE INITIALLY DEFERRED)`); err != nil {
		t.Fatal(err)
	}
	w := newTestWriter(t, db, WriterOptions{})
	release, waitFirst := blockWriter(t, w)
	orphan := func(ctx context.Context, ex Execer) error {
		_, err := ex.ExecContext(ctx, "INSERT INTO t(v, p) VALUES ('orphan', 42)")
		return err
	}
	fns := []WriteFunc{insertFn("x"), orphan}
	errs := make([]error, len(fns))
	var wg sync.WaitGroup
	for i, fn := range fns {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = w.Do(context.Background(), fn) }()
		waitQueued(t, w, i+1)
	}
	release()
	if err := waitFirst(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	for i, err := range errs {
		if err == nil {
			t.Errorf("request %d succeeded although its COMMIT failed", i)
		}
	}
	if got := values(t, path); got["x"] || got["orphan"] {
		t.Errorf("rows of a failed batch were committed: %v", got)
	}
	// The writer keeps working after a failed batch.
	if err := w.Do(context.Background(), insertFn("after")); err != nil {
		t.Fatalf("write after failed batch: %v", err)
	}
}

// TestWriterBusyClassification builds both lock failures with two real
// connections on one file.
func TestWriterBusyClassification(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.db")
	other := openRaw(t, path, "WAL", 0, "")
	if _, err := other.Exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t(v) VALUES ('seed')"); err != nil {
		t.Fatal(err)
	}

	t.Run("timeout exhausted", func(t *testing.T) {
		const timeout = 200 * time.Millisecond
		db := openRaw(t, path, "WAL", timeout, "")
		w := newTestWriter(t, db, WriterOptions{})
		ctx := context.Background()
		hold, err := other.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer hold.Close()
		if _, err := hold.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
			t.Fatal(err)
		}
		err = w.Do(ctx, insertFn("blocked"))
		if _, rerr := hold.ExecContext(ctx, "ROLLBACK"); rerr != nil {
			t.Fatal(rerr)
		}
		var be *BusyError
		if !errors.As(err, &be) {
			t.Fatalf("Do = %v; want *BusyError", err)
		}
		if be.CodeName() != "SQLITE_BUSY" || be.Error() != "database is locked" {
			t.Errorf("code %s, message %q; want SQLITE_BUSY, database is locked", be.CodeName(), be.Error())
		}
		// The busy handler only gives up once the timeout has passed.
		if be.Waited < timeout {
			t.Errorf("Waited = %v; want at least the busy timeout %v", be.Waited, timeout)
		}
	})

	t.Run("deferred upgrade refused at once", func(t *testing.T) {
		const timeout = 30 * time.Second
		db := openRaw(t, path, "WAL", timeout, "")
		w := newTestWriter(t, db, WriterOptions{TxLock: "deferred"})
		err := w.Do(context.Background(), func(ctx context.Context, ex Execer) error {
			rows, err := ex.QueryContext(ctx, "SELECT count(*) FROM t")
			if err != nil {
				return err
			}
			for rows.Next() {
			}
			rows.Close()
			// Another connection commits after our snapshot was taken.
			if _, err := other.Exec("INSERT INTO t(v) VALUES ('other')"); err != nil {
				t.Errorf("other writer: %v", err)
			}
			_, err = ex.ExecContext(ctx, "UPDATE t SET v = 'mine' WHERE id = 1")
			return err
		})
		var be *BusyError
		if !errors.As(err, &be) {
			t.Fatalf("Do = %v; want *BusyError", err)
		}
		if be.CodeName() != "SQLITE_BUSY_SNAPSHOT" {
			t.Errorf("code %s; want SQLITE_BUSY_SNAPSHOT", be.CodeName())
		}
		// Not a timing measurement: with a 30 s timeout, anything far below
		// it proves the busy handler never ran.
		if be.Waited >= timeout/3 {
			t.Errorf("Waited = %v; a refused upgrade must not wait for the %v timeout", be.Waited, timeout)
		}
	})

	t.Run("immediate never refuses the upgrade", func(t *testing.T) {
		db := openRaw(t, path, "WAL", 5*time.Second, "")
		w := newTestWriter(t, db, WriterOptions{TxLock: "immediate"})
		err := w.Do(context.Background(), func(ctx context.Context, ex Execer) error {
			rows, err := ex.QueryContext(ctx, "SELECT count(*) FROM t")
			if err != nil {
				return err
			}
			for rows.Next() {
			}
			rows.Close()
			_, err = ex.ExecContext(ctx, "UPDATE t SET v = 'mine' WHERE id = 1")
			return err
		})
		if err != nil {
			t.Fatalf("read-then-write under BEGIN IMMEDIATE: %v", err)
		}
	})

	t.Run("pool mode reports busy", func(t *testing.T) {
		db := openRaw(t, path, "WAL", 0, "")
		db.SetMaxOpenConns(4)
		w := newTestWriter(t, db, WriterOptions{Mode: "pool"})
		ctx := context.Background()
		hold, err := other.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer hold.Close()
		if _, err := hold.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
			t.Fatal(err)
		}
		err = w.Do(ctx, insertFn("pool"))
		if _, rerr := hold.ExecContext(ctx, "ROLLBACK"); rerr != nil {
			t.Fatal(rerr)
		}
		var be *BusyError
		if !errors.As(err, &be) || be.Code != sqlite3.ErrNoExtended(sqlite3.ErrBusy) {
			t.Fatalf("Do = %v; want *BusyError SQLITE_BUSY", err)
		}
		if err := w.Do(ctx, insertFn("pool")); err != nil {
			t.Fatalf("pool write once the lock is free: %v", err)
		}
	})
}

func TestWriterCancelledWhileQueuedNeverRuns(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.db")
	db := openRaw(t, path, "WAL", time.Second, "")
	if _, err := db.Exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"); err != nil {
		t.Fatal(err)
	}
	w := newTestWriter(t, db, WriterOptions{})
	release, waitFirst := blockWriter(t, w)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- w.Do(ctx, insertFn("cancelled")) }()
	waitQueued(t, w, 1)
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("Do = %v; want context.Canceled", err)
	}
	release()
	if err := waitFirst(); err != nil {
		t.Fatal(err)
	}
	if err := w.Do(context.Background(), insertFn("later")); err != nil {
		t.Fatal(err)
	}
	if got := values(t, path); got["cancelled"] || !got["later"] {
		t.Errorf("rows = %v; want 'later' and not 'cancelled'", got)
	}
}

func TestWriterClosed(t *testing.T) {
	db := openRaw(t, filepath.Join(t.TempDir(), "w.db"), "WAL", time.Second, "")
	if _, err := db.Exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []string{"single", "pool"} {
		w, err := NewWriter(db, WriterOptions{Mode: mode})
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Do(context.Background(), insertFn(mode)); err != nil {
			t.Fatal(err)
		}
		w.Close()
		if err := w.Do(context.Background(), insertFn("late")); !errors.Is(err, ErrWriterClosed) {
			t.Errorf("%s: Do after Close = %v; want ErrWriterClosed", mode, err)
		}
	}
}

func TestNewWriterRejectsBadOptions(t *testing.T) {
	db := openRaw(t, filepath.Join(t.TempDir(), "w.db"), "WAL", time.Second, "")
	for _, o := range []WriterOptions{{Mode: "many"}, {TxLock: "exclusive"}} {
		if _, err := NewWriter(db, o); err == nil {
			t.Errorf("NewWriter(%+v) = nil error; want an error", o)
		}
	}
}

func BenchmarkWriterInsert(b *testing.B) {
	for _, sync := range []string{"FULL", "OFF"} {
		for _, mode := range []string{"single", "pool"} {
			b.Run(sync+"/"+mode, func(b *testing.B) {
				path := filepath.Join(b.TempDir(), "w.db")
				db := openRaw(b, path, "WAL", 5*time.Second, "&_synchronous="+sync)
				if _, err := db.Exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"); err != nil {
					b.Fatal(err)
				}
				if mode == "pool" {
					db.SetMaxOpenConns(8)
				}
				w := newTestWriter(b, db, WriterOptions{Mode: mode})
				b.ReportAllocs()
				b.SetParallelism(16)
				var busy atomic.Int64
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						err := w.Do(context.Background(), insertFn("x"))
						var be *BusyError
						switch {
						case errors.As(err, &be):
							busy.Add(1) // pool mode: the study's lock errors
						case err != nil:
							b.Error(err)
							return
						}
					}
				})
				b.ReportMetric(float64(busy.Load()), "busy-errors")
				if s := w.Stats(); mode == "single" && s.Batches > 0 {
					b.ReportMetric(float64(s.Requests)/float64(s.Batches), "req/batch")
				}
			})
		}
	}
}

// A request that fills the disk (SQLITE_FULL, here from max_page_count) can
// make SQLite roll back the whole batch transaction on its own, closing
// every savepoint. The writer must notice instead of failing the batch
// with "rollback to savepoint: no such savepoint": every request is
// answered either with success (and its row is there) or with the full
// disk's own error (and its row is not), and the writer goes on.
func TestWriterDiskFullKeepsItsAnswersTrue(t *testing.T) {
	for _, journal := range []string{"WAL", "DELETE"} {
		t.Run(journal, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "w.db")
			db := openRaw(t, path, journal, 5*time.Second, "")
			if _, err := db.Exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"); err != nil {
				t.Fatal(err)
			}
			var pages int
			if err := db.QueryRow("PRAGMA page_count").Scan(&pages); err != nil {
				t.Fatal(err)
			}
			// Room for small rows, not for a 1 MB one.
			if _, err := db.Exec(fmt.Sprintf("PRAGMA max_page_count = %d", pages+20)); err != nil {
				t.Fatal(err)
			}
			w := newTestWriter(t, db, WriterOptions{})
			big := func(ctx context.Context, ex Execer) error {
				_, err := ex.ExecContext(ctx, "INSERT INTO t(v) VALUES (zeroblob(1000000))")
				return err
			}
			for round := range 3 {
				release, waitFirst := blockWriter(t, w)
				names := []string{fmt.Sprint("a", round), "", fmt.Sprint("c", round)}
				fns := []WriteFunc{insertFn(names[0]), big, insertFn(names[2])}
				errs := make([]error, len(fns))
				var wg sync.WaitGroup
				for i, fn := range fns {
					wg.Add(1)
					go func() { defer wg.Done(); errs[i] = w.Do(context.Background(), fn) }()
					waitQueued(t, w, i+1)
				}
				release()
				firstErr := waitFirst()
				wg.Wait()
				got := values(t, path)
				if code, _ := ErrorCode(errs[1]); code != CodeFull {
					t.Fatalf("round %d: the 1 MB insert = %v; want SQLITE_FULL", round, errs[1])
				}
				check := func(name string, err error) {
					switch {
					case err == nil && !got[name]:
						t.Errorf("round %d: %q was acknowledged but is not in the table", round, name)
					case err != nil && got[name]:
						t.Errorf("round %d: %q failed (%v) but is in the table", round, name, err)
					case err != nil:
						if code, _ := ErrorCode(err); code != CodeFull {
							t.Errorf("round %d: %q failed with %v; want the full disk's error", round, name, err)
						}
					}
				}
				if round == 0 { // blockWriter always inserts "first"
					check("first", firstErr)
				}
				check(names[0], errs[0])
				check(names[2], errs[2])
				t.Logf("round %d: first=%v a=%v big=%v c=%v", round, firstErr, errs[0], errs[1], errs[2])
			}
			if err := w.Do(context.Background(), insertFn("after")); err != nil {
				t.Fatalf("write after a full disk: %v", err)
			}
		})
	}
}
