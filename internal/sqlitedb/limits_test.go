package sqlitedb_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"lode/internal/sqlitedb"
	"lode/internal/sqlitetest"
)

// One SQL function call runs inside one step of SQLite's VM, where the time
// limit cannot interrupt it: the value limit (SQLITE_LIMIT_LENGTH on read
// connections) must stop it before it allocates, with SQLite's "string or
// blob too big" and the limit in the message. The connection answers the
// next statement.
func TestReadValueLimit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v.db")
	db := sqlitetest.MustOpenDBWith(t, path, sqlitedb.Settings{Create: true, MaxValueBytes: 1 << 20, ReadConns: 1})
	if got := db.EffectiveSettings().MaxValueBytes; got != 1<<20 {
		t.Errorf("effective MaxValueBytes = %d; want %d", got, 1<<20)
	}
	// Writes are not limited: a 2 MB value can be stored ...
	if _, err := db.WriteDB().Exec("CREATE TABLE t (id INTEGER PRIMARY KEY, b BLOB); INSERT INTO t (b) VALUES (zeroblob(2000000)), (x'00')"); err != nil {
		t.Fatal(err)
	}
	opt := sqlitedb.QueryOptions{TimeLimit: 10 * time.Second}
	for _, q := range []string{
		"SELECT length(upper(printf('%.*c', 900000000, 'x')))",
		"SELECT randomblob(1000000000)",
		"SELECT zeroblob(300000000)",
		"SELECT length(replace(printf('%.*c', 600000, 'x'), 'x', 'xyz'))",
		"SELECT b FROM t WHERE id = 1", // ... but not read back
	} {
		start := time.Now()
		_, err := db.Query(context.Background(), q, nil, opt)
		var se *sqlitedb.SQLError
		if !errors.As(err, &se) || !strings.Contains(se.Msg, "string or blob too big") || !strings.Contains(se.Msg, "1 MiB") {
			t.Errorf("Query(%q) = %v; want 'string or blob too big' naming the 1 MiB limit", q, err)
		}
		if code, _ := sqlitedb.ErrorCode(err); code != sqlitedb.CodeTooBig {
			t.Errorf("Query(%q): code %d; want SQLITE_TOOBIG", q, code)
		}
		t.Logf("%s: %v in %v", q, err, time.Since(start).Round(time.Millisecond))
	}
	res, err := db.Query(context.Background(), "SELECT length(b) FROM t WHERE id = 2", nil, opt)
	if err != nil || res.Rows[0][0] != int64(1) {
		t.Fatalf("small value after refusals = %v, %v", res, err)
	}
}

// A result whose values hold more than MaxResultBytes stops with
// ErrResultTooLarge (and no rows); QueryOptions.MaxBytes overrides the
// database's setting, a negative one lifts it.
func TestQueryMaxBytes(t *testing.T) {
	path := sqlitetest.WriteFixtures(t, t.TempDir())
	db := sqlitetest.MustOpenDBWith(t, path, sqlitedb.Settings{MaxResultBytes: 100 << 10})
	const q = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 100) SELECT zeroblob(2000) FROM c"
	ctx := context.Background()
	res, err := db.Query(ctx, q, nil, sqlitedb.QueryOptions{})
	if !errors.Is(err, sqlitedb.ErrResultTooLarge) || len(res.Rows) != 0 {
		t.Errorf("200 kB of values with a 100 kB limit = %d rows, %v; want ErrResultTooLarge", len(res.Rows), err)
	}
	if res, err := db.Query(ctx, q, nil, sqlitedb.QueryOptions{MaxBytes: 1 << 20}); err != nil || len(res.Rows) != 100 {
		t.Errorf("with MaxBytes 1 MiB = %v rows, %v; want 100 rows", len(res.Rows), err)
	}
	if res, err := db.Query(ctx, q, nil, sqlitedb.QueryOptions{MaxBytes: -1}); err != nil || len(res.Rows) != 100 {
		t.Errorf("with MaxBytes -1 = %v rows, %v; want 100 rows", len(res.Rows), err)
	}
	// The row cap comes first: 10 rows fit.
	if res, err := db.Query(ctx, q, nil, sqlitedb.QueryOptions{MaxRows: 10}); err != nil || len(res.Rows) != 10 || !res.Truncated {
		t.Errorf("with MaxRows 10 = %v rows, %v; want 10 truncated rows", len(res.Rows), err)
	}
}

// SetHeapLimits changes process state, so it runs in a child process (this
// test binary again): past the hard limit an allocation fails with
// SQLITE_NOMEM, on every connection of the process.
func TestHeapLimits(t *testing.T) {
	if os.Getenv("SQLITEDB_HEAP_CHILD") == "1" {
		heapLimitsChild(t)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestHeapLimits$", "-test.v")
	cmd.Env = append(os.Environ(), "SQLITEDB_HEAP_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestHeapLimits") {
		t.Fatalf("child: %v\n%s", err, out)
	}
}

func heapLimitsChild(t *testing.T) {
	got, err := sqlitedb.SetHeapLimits(sqlitedb.HeapLimits{Soft: 8 << 20, Hard: 24 << 20})
	if err != nil || got.Soft != 8<<20 || got.Hard != 24<<20 {
		t.Fatalf("SetHeapLimits = %+v, %v", got, err)
	}
	if !got.Malloc {
		t.Logf("the C library is not glibc: malloc thresholds left alone")
	}
	if cur, err := sqlitedb.CurrentHeapLimits(); err != nil || cur.Soft != got.Soft || cur.Hard != got.Hard {
		t.Fatalf("CurrentHeapLimits = %+v, %v; want %+v", cur, err, got)
	}
	// A hard limit is only ever lowered.
	if got, _ := sqlitedb.SetHeapLimits(sqlitedb.HeapLimits{Soft: 8 << 20, Hard: 48 << 20}); got.Hard != 24<<20 {
		t.Errorf("raising the hard limit gave %+v; want it kept at 24 MiB", got)
	}
	path := sqlitetest.WriteFixtures(t, t.TempDir())
	db := sqlitetest.MustOpenDBWith(t, path, sqlitedb.Settings{ReadConns: 1})
	// Three 10 MB values alive in one row: 30 MB > 24 MB.
	_, err = db.Query(context.Background(), "SELECT zeroblob(10000000) || x'01', zeroblob(10000000) || x'02', zeroblob(10000000) || x'03'", nil, sqlitedb.QueryOptions{})
	if code, _ := sqlitedb.ErrorCode(err); code != sqlitedb.CodeNoMem {
		t.Fatalf("30 MB in one row under a 24 MB hard heap limit = %v; want SQLITE_NOMEM", err)
	}
	if res, err := db.Query(context.Background(), "SELECT count(*) FROM items", nil, sqlitedb.QueryOptions{}); err != nil || res.Rows[0][0] != int64(sqlitetest.ItemsRows) {
		t.Fatalf("after NOMEM: %v, %v", res, err)
	}
}

// A database file deleted or replaced while open: SQLite in WAL mode goes
// on writing into the unreachable file without an error. With
// DB.CheckFile as the writer's Check every write transaction is refused
// with ErrFileMoved instead, and reads go on from the open file.
func TestWriterRefusesMovedFile(t *testing.T) {
	for _, how := range []string{"deleted", "renamed", "replaced"} {
		t.Run(how, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "m.db")
			db := sqlitetest.MustOpenDBWith(t, path, sqlitedb.Settings{Create: true})
			if _, err := db.WriteDB().Exec("CREATE TABLE t (v TEXT)"); err != nil {
				t.Fatal(err)
			}
			for _, mode := range []string{"single", "pool"} {
				w, err := sqlitedb.NewWriter(db.WriteDB(), sqlitedb.WriterOptions{Mode: mode, Check: db.CheckFile})
				if err != nil {
					t.Fatal(err)
				}
				insert := func(v string) error {
					return w.Do(context.Background(), func(ctx context.Context, ex sqlitedb.Execer) error {
						_, err := ex.ExecContext(ctx, "INSERT INTO t VALUES (?)", v)
						return err
					})
				}
				if err := insert("before-" + mode); err != nil {
					t.Fatalf("%s: insert before: %v", mode, err)
				}
				w.Close()
			}
			if err := db.CheckFile(); err != nil {
				t.Fatalf("CheckFile on the file = %v", err)
			}
			switch how {
			case "deleted":
				err := os.Remove(path)
				if err != nil {
					t.Fatal(err)
				}
			case "renamed":
				if err := os.Rename(path, filepath.Join(dir, "other.db")); err != nil {
					t.Fatal(err)
				}
			case "replaced":
				b, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path+".new", b, 0o644); err != nil {
					t.Fatal(err)
				}
				if err := os.Rename(path+".new", path); err != nil {
					t.Fatal(err)
				}
			}
			if err := db.CheckFile(); !errors.Is(err, sqlitedb.ErrFileMoved) || !strings.Contains(err.Error(), path) {
				t.Fatalf("CheckFile after the file was %s = %v; want ErrFileMoved naming %s", how, err, path)
			}
			for _, mode := range []string{"single", "pool"} {
				w, err := sqlitedb.NewWriter(db.WriteDB(), sqlitedb.WriterOptions{Mode: mode, Check: db.CheckFile})
				if err != nil {
					t.Fatal(err)
				}
				ran := false
				err = w.Do(context.Background(), func(ctx context.Context, ex sqlitedb.Execer) error {
					ran = true
					return nil
				})
				w.Close()
				if !errors.Is(err, sqlitedb.ErrFileMoved) || ran {
					t.Errorf("%s writer after the file was %s: ran=%v, %v; want ErrFileMoved without running", mode, how, ran, err)
				}
			}
			res, err := db.Query(context.Background(), "SELECT count(*) FROM t", nil, sqlitedb.QueryOptions{})
			if err != nil || res.Rows[0][0] != int64(2) {
				t.Errorf("read after the file was %s = %v, %v; want 2 rows from the open file", how, res, err)
			}
		})
	}
}
