package sqlitedb_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"lode/internal/sqlitedb"
)

// A real full disk (a 2 MiB tmpfs; mounting needs root, else the test is
// skipped) in rollback-journal mode: transactions bigger than the page
// cache spill pages in the middle of a statement, the disk is full there
// and SQLite rolls the whole transaction back, leaving its journal on disk
// while the write connection is in an error state. Every request must be
// answered with SQLITE_FULL, and the read-only connections must read on at
// once, not fail with SQLITE_READONLY_ROLLBACK until the next write.
func TestDiskFullRollbackJournal(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "fs")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=2097152"); err != nil {
		t.Skipf("cannot mount a tmpfs (%v): needs root or CAP_SYS_ADMIN", err)
	}
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
	path := filepath.Join(dir, "x.db")
	db, err := sqlitedb.Open(context.Background(), path, sqlitedb.Settings{Create: true, JournalMode: "delete"})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.WriteDB().Exec("CREATE TABLE t (k TEXT, pad TEXT)"); err != nil {
		t.Fatal(err)
	}
	filler := filepath.Join(dir, "filler")
	if err := os.WriteFile(filler, make([]byte, 1200<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	w, err := sqlitedb.NewWriter(db.WriteDB(), sqlitedb.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	insert := func(rows, size int) error {
		return w.Do(context.Background(), func(ctx context.Context, ex sqlitedb.Execer) error {
			for range rows {
				if _, err := ex.ExecContext(ctx, "INSERT INTO t VALUES ('k', ?)", strings.Repeat("x", size)); err != nil {
					return err
				}
			}
			return nil
		})
	}
	acked := 0
	for range 400 {
		if err := insert(1, 4096); err != nil {
			break
		}
		acked++
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rows, size := 1, 100
			if i%2 == 0 {
				rows, size = 100, 30000 // 3 MB: more than the page cache
			}
			err := insert(rows, size)
			mu.Lock()
			defer mu.Unlock()
			if code, _ := sqlitedb.ErrorCode(err); err == nil {
				acked += rows
			} else if code != sqlitedb.CodeFull {
				t.Errorf("insert of %d rows on a full disk = %v; want SQLITE_FULL", rows, err)
			}
		}()
	}
	wg.Wait()
	res, err := db.Query(context.Background(), "SELECT count(*) FROM t", nil, sqlitedb.QueryOptions{})
	if err != nil || res.Rows[0][0] != int64(acked) {
		t.Fatalf("read after the full disk = %v, %v; want %d rows", res, err, acked)
	}
	if _, err := os.Stat(path + "-journal"); err == nil {
		t.Errorf("the rollback journal is still on disk after the failed transaction")
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if err := insert(1, 100); err != nil {
		t.Errorf("insert once space returned: %v", err)
	}
}
