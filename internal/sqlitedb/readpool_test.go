package sqlitedb_test

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"lode/internal/sqlitedb"
	"lode/internal/sqlitetest"
)

const runaway = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"

func openOneConn(t *testing.T) *sqlitedb.DB {
	t.Helper()
	path := sqlitetest.WriteFixtures(t, t.TempDir())
	return sqlitetest.MustOpenDBWith(t, path, sqlitedb.Settings{ReadConns: 1})
}

// A cancelled request interrupts its statement (the client went away), and
// the connection answers the next statement.
func TestEachCancelInterrupts(t *testing.T) {
	db := openOneConn(t)
	for _, prepared := range []bool{false, true} {
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(50*time.Millisecond, cancel)
		start := time.Now()
		_, err := db.Query(ctx, runaway, nil, sqlitedb.QueryOptions{Prepared: prepared})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("prepared=%v: cancelled runaway = %v; want context.Canceled", prepared, err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("prepared=%v: interrupt took %v", prepared, d)
		}
		res, err := db.Query(context.Background(), "SELECT count(*) FROM items", nil, sqlitedb.QueryOptions{TimeLimit: time.Second})
		if err != nil || res.Rows[0][0] != int64(sqlitetest.ItemsRows) {
			t.Fatalf("prepared=%v: count after cancel = %v, %v", prepared, res, err)
		}
	}
}

// The time limit also bounds the wait for a connection when every one is
// busy, and a cancelled request stops waiting.
func TestEachWaitsForConnection(t *testing.T) {
	db := openOneConn(t)
	release := make(chan struct{})
	holding := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		err := db.Each(context.Background(), "SELECT 1", nil, sqlitedb.QueryOptions{}, func([]string) error { return nil },
			func([]any) error {
				close(holding)
				<-release
				return nil
			})
		if err != nil {
			t.Errorf("holding query: %v", err)
		}
	}()
	<-holding
	if _, err := db.Query(context.Background(), "SELECT 2", nil, sqlitedb.QueryOptions{TimeLimit: 50 * time.Millisecond}); !errors.Is(err, sqlitedb.ErrNoConnection) {
		t.Errorf("query while the only connection is busy = %v; want ErrNoConnection", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := db.Query(ctx, "SELECT 2", nil, sqlitedb.QueryOptions{}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("query with an expiring context = %v; want context.DeadlineExceeded", err)
	}
	close(release)
	wg.Wait()
	if res, err := db.Query(context.Background(), "SELECT 3", nil, sqlitedb.QueryOptions{}); err != nil || res.Rows[0][0] != int64(3) {
		t.Fatalf("query after release = %v, %v", res, err)
	}
}

// Statements on the query pool: read-only connections, named and
// positional arguments, several statements (the last one's rows), and a
// prepared statement that sees the schema change under it.
func TestEachStatements(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	db := sqlitetest.MustOpenDBWith(t, path, sqlitedb.Settings{Create: true})
	ctx := context.Background()
	if _, err := db.WriteDB().Exec("CREATE TABLE t (a INTEGER PRIMARY KEY, b TEXT); INSERT INTO t VALUES (1, 'one'), (2, 'two')"); err != nil {
		t.Fatal(err)
	}
	q := func(sqlText string, args []any, opt sqlitedb.QueryOptions) [][]any {
		t.Helper()
		res, err := db.Query(ctx, sqlText, args, opt)
		if err != nil {
			t.Fatalf("Query(%q): %v", sqlText, err)
		}
		return res.Rows
	}
	if got := q("PRAGMA query_only", nil, sqlitedb.QueryOptions{}); got[0][0] != int64(1) {
		t.Errorf("query_only on the query pool = %v; want 1", got)
	}
	if got := q("SELECT b FROM t WHERE a = :a", []any{sql.Named("a", 2)}, sqlitedb.QueryOptions{}); len(got) != 1 || got[0][0] != "two" {
		t.Errorf("named argument: %v", got)
	}
	if got := q("SELECT 1; SELECT 2", nil, sqlitedb.QueryOptions{}); len(got) != 1 || got[0][0] != int64(2) {
		t.Errorf("two statements: %v; want the last one's row", got)
	}
	prep := sqlitedb.QueryOptions{Prepared: true}
	if got := q("SELECT * FROM t WHERE a = ?", []any{1}, prep); len(got[0]) != 2 {
		t.Fatalf("prepared: %v", got)
	}
	if _, err := db.WriteDB().Exec("ALTER TABLE t ADD COLUMN c TEXT DEFAULT 'x'"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.RefreshSchema(ctx); err != nil {
		t.Fatal(err)
	}
	if got := q("SELECT * FROM t WHERE a = ?", []any{1}, prep); len(got[0]) != 3 || got[0][2] != "x" {
		t.Errorf("prepared after ALTER TABLE = %v; want the new column", got)
	}
}

// Close refuses new statements instead of hanging.
func TestEachAfterClose(t *testing.T) {
	path := sqlitetest.WriteFixtures(t, t.TempDir())
	db, err := sqlitedb.Open(context.Background(), path, sqlitedb.Settings{})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	done := make(chan error, 1)
	go func() {
		_, err := db.Query(context.Background(), "SELECT 1", nil, sqlitedb.QueryOptions{})
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("query after Close succeeded")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("query after Close hangs")
	}
}

// Every read connection is opened by Open: statements never open one, so
// they neither fail when the process runs out of file descriptors nor when
// the file is moved away. Here the path is gone while three statements
// hold all three connections at once.
func TestPoolOpensEveryConnectionAtStart(t *testing.T) {
	dir := t.TempDir()
	path := sqlitetest.WriteFixtures(t, dir)
	const n = 3
	db := sqlitetest.MustOpenDBWith(t, path, sqlitedb.Settings{ReadConns: n})
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if err := os.Rename(path+suffix, filepath.Join(dir, "moved.db"+suffix)); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}
	var held, wg sync.WaitGroup
	held.Add(n)
	release := make(chan struct{})
	errs := make(chan error, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			holding := false
			err := db.Each(context.Background(), "SELECT count(*) FROM items", nil, sqlitedb.QueryOptions{TimeLimit: 10 * time.Second},
				func([]string) error { return nil },
				func([]any) error {
					holding = true
					held.Done()
					<-release
					return nil
				})
			if !holding {
				held.Done() // failed before holding its connection
			}
			errs <- err
		}()
	}
	held.Wait() // all n connections in use at the same time
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("statement on a pre-opened connection after the file moved: %v", err)
		}
	}
}

// Bounded statements run without the watchdog: the time limit interrupts
// the same statement only when it is not marked Bounded.
func TestEachBounded(t *testing.T) {
	db := openOneConn(t)
	const slow = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 3000000) SELECT count(*) FROM c"
	if _, err := db.Query(context.Background(), slow, nil, sqlitedb.QueryOptions{TimeLimit: time.Millisecond}); !errors.Is(err, sqlitedb.ErrTimeLimit) {
		t.Fatalf("slow statement with a 1 ms limit = %v; want ErrTimeLimit", err)
	}
	res, err := db.Query(context.Background(), slow, nil, sqlitedb.QueryOptions{TimeLimit: time.Millisecond, Bounded: true})
	if err != nil || res.Rows[0][0] != int64(3000000) {
		t.Fatalf("Bounded slow statement = %v, %v; want 3000000", res, err)
	}
}
