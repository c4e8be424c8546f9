package reliability_test

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// statusCounts counts responses by status, and keeps one body per status.
type statusCounts struct {
	mu     sync.Mutex
	n      map[int]int
	sample map[int]string
}

func (s *statusCounts) add(status int, body []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n == nil {
		s.n, s.sample = map[int]int{}, map[int]string{}
	}
	s.n[status]++
	if _, ok := s.sample[status]; !ok {
		s.sample[status] = string(body[:min(len(body), 300)])
	}
}

func (s *statusCounts) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fmt.Sprint(s.n)
}

// TestFileDescriptorLimit runs lode serve under `ulimit -n 256` and sends
// it 600 clients at once, each with its own connection (3 requests:
// a table page, a ?sql= count, an insert). The read pool's connections
// were all opened at start and client connections are capped below the
// descriptor limit, so SQLite never runs out of descriptors: every
// request succeeds (clients past the cap wait in the listen queue), and
// the start-up log warns that the limit is low.
func TestFileDescriptorLimit(t *testing.T) {
	dir := t.TempDir()
	path := newDB(t, dir, "app.db", "wal",
		"CREATE TABLE items (id INTEGER PRIMARY KEY, k TEXT)",
		"INSERT INTO items (k) VALUES ('a'), ('b')")
	p := startLodeShell(t, "ulimit -n 256", path, "--workers", "1", "--root")
	p.waitStatus("1 ready worker", 60*time.Second, (*workersStatus).ready)
	root := createToken(t, "--actor", "root")
	const clients = 600
	var counts statusCounts
	var transportErrs []string
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tr := &http.Transport{MaxConnsPerHost: 1, MaxIdleConnsPerHost: 1}
			defer tr.CloseIdleConnections()
			c := &http.Client{Transport: tr, Timeout: 60 * time.Second}
			<-start
			for j, req := range []struct{ method, path, body string }{
				{"GET", "app/items.json?_size=5", ""},
				{"GET", "app/-/query.json?sql=" + url.QueryEscape("select count(*) from items"), ""},
				{"POST", "app/items/-/insert", fmt.Sprintf(`{"row": {"k": "c%d"}}`, i)},
			} {
				r, err := http.NewRequest(req.method, p.Base+req.path, strings.NewReader(req.body))
				if err != nil {
					panic(err)
				}
				if req.method == "POST" {
					r.Header.Set("Content-Type", "application/json")
					r.Header.Set("Authorization", "Bearer "+root)
				}
				resp, err := c.Do(r)
				if err != nil {
					mu.Lock()
					transportErrs = append(transportErrs, fmt.Sprintf("client %d request %d: %v", i, j, err))
					mu.Unlock()
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				counts.add(resp.StatusCode, b)
			}
		}()
	}
	t0 := time.Now()
	close(start)
	wg.Wait()
	t.Logf("%d clients x 3 requests under ulimit -n 256 in %v: statuses %s, %d transport errors",
		clients, time.Since(t0).Round(time.Millisecond), counts.String(), len(transportErrs))
	for st, n := range counts.n {
		if st != 200 && st != 201 {
			t.Errorf("%d responses with status %d, e.g. %s", n, st, counts.sample[st])
		}
	}
	for _, e := range transportErrs[:min(len(transportErrs), 5)] {
		t.Errorf("transport error: %s", e)
	}
	out := p.output()
	if !strings.Contains(out, "low file descriptor limit") {
		t.Errorf("no warning about the low descriptor limit at start:\n%.3000s", out)
	}
	if strings.Contains(out, "too many open files") {
		t.Errorf("the server ran out of file descriptors:\n%.3000s", out)
	}
}

// TestStalledMaster stops the master (SIGSTOP) for 2.5 worker timeouts
// under load. After SIGCONT it must not kill the workers for the heartbeats
// it did not read itself; they served throughout. (--worker-timeout 2s:
// with 1 s a worker starved on a busy 2-core machine can miss it for
// real.)
func TestStalledMaster(t *testing.T) {
	dir := t.TempDir()
	path := newDB(t, dir, "app.db", "wal", "CREATE TABLE items (id INTEGER PRIMARY KEY, k TEXT)", "INSERT INTO items (k) VALUES ('a')")
	p := startLode(t, path, "--workers", "2", "--worker-timeout", "2s")
	st := p.waitStatus("2 ready workers", 60*time.Second, (*workersStatus).ready)
	before := map[int]bool{}
	for _, w := range st.Workers {
		before[w.PID] = true
	}
	var counts statusCounts
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := newClient()
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := c.Get(p.Base + "app/items.json?_size=1")
				if err != nil {
					counts.add(0, []byte(err.Error()))
					continue
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				counts.add(resp.StatusCode, b)
			}
		}()
	}
	if err := p.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Second) // the fault: 2.5 worker timeouts without the master
	if err := p.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	// Watch for two more worker timeouts.
	for end := time.Now().Add(4 * time.Second); time.Now().Before(end); {
		st := p.waitStatus("status", 20*time.Second, func(*workersStatus) bool { return true })
		for _, w := range st.Workers {
			if !before[w.PID] {
				t.Fatalf("worker %d (pid %d) replaced after the master's stall:\n%s", w.ID, w.PID, p.output())
			}
		}
		time.Sleep(100 * time.Millisecond) // poll interval
	}
	close(stop)
	wg.Wait()
	t.Logf("4 clients through a 5 s master stall (--worker-timeout 2s): statuses %s", counts.String())
	for st, n := range counts.n {
		if st != 200 {
			t.Errorf("%d requests got %d, e.g. %s", n, st, counts.sample[st])
		}
	}
	out := p.output()
	if strings.Contains(out, "missed its heartbeat") {
		t.Errorf("the master killed a worker for its own stall:\n%s", out)
	}
	if !strings.Contains(out, "did not run for a while") {
		t.Errorf("the master did not log its stall:\n%s", out)
	}
}

// TestDeletedDatabaseFile removes the database file of a WAL database
// while it is served and written. Inserts after the removal must not be
// acknowledged (SQLite would write them into the unreachable file): 503
// and an ERROR log line naming the file; reads go on.
func TestDeletedDatabaseFile(t *testing.T) {
	dir := t.TempDir()
	path := newDB(t, dir, "app.db", "wal", "CREATE TABLE items (id INTEGER PRIMARY KEY, k TEXT)")
	p := startLode(t, path, "--workers", "1", "--root")
	p.waitStatus("1 ready worker", 60*time.Second, (*workersStatus).ready)
	root := createToken(t, "--actor", "root")
	c := newClient()
	insert := func(k string) (int, []byte) {
		st, b, _ := do(t, c, "POST", p.Base+"app/items/-/insert", "application/json",
			strings.NewReader(`{"row": {"k": "`+k+`"}}`), "Authorization", "Bearer "+root)
		return st, b
	}
	for i := range 5 {
		if st, b := insert(fmt.Sprint("before", i)); st != 201 {
			t.Fatalf("insert before the removal: %d %s", st, b)
		}
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	var counts statusCounts
	for i := range 5 {
		st, b := insert(fmt.Sprint("after", i))
		counts.add(st, b)
		var e apiError
		if st != 503 || json.Unmarshal(b, &e) != nil || !strings.Contains(e.Error, "deleted or replaced") {
			t.Errorf("insert after the removal: %d %s; want 503 saying the file was deleted or replaced", st, b)
		}
	}
	st, b, _ := do(t, c, "GET", p.Base+"app/items.json", "", nil)
	t.Logf("inserts after rm: %s; read: %d", counts.String(), st)
	if st != 200 || !bytes.Contains(b, []byte("before4")) {
		t.Errorf("read after the removal: %d %.300s", st, b)
	}
	if out := p.output(); !strings.Contains(out, "level=ERROR") || !strings.Contains(out, path) {
		t.Errorf("no ERROR log naming %s:\n%s", path, out)
	}
}

// TestCorruptDatabase serves a file with a damaged table page: reads of
// it are 500 "The database file is damaged" with an ERROR log naming the
// database, other tables and databases are served, and nothing crashes.
func TestCorruptDatabase(t *testing.T) {
	dir := t.TempDir()
	path := newDB(t, dir, "bad.db", "delete",
		"CREATE TABLE ok (v TEXT)", "INSERT INTO ok VALUES ('fine')",
		"CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)",
		"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2000) INSERT INTO t (v) SELECT printf('%.*c', 100, 'v') FROM c")
	good := newDB(t, dir, "good.db", "wal", "CREATE TABLE g (v TEXT)", "INSERT INTO g VALUES ('g')")
	corruptTable(t, path, "t")
	p := startLode(t, path, good, "--workers", "1")
	p.waitStatus("1 ready worker", 60*time.Second, (*workersStatus).ready)
	c := newClient()
	var counts statusCounts
	for _, u := range []string{"bad/t.json", "bad/t/5.json", "bad/-/query.json?sql=" + url.QueryEscape("select count(*) from t")} {
		st, b, _ := do(t, c, "GET", p.Base+u, "", nil)
		counts.add(st, b)
		var e apiError
		if st != 500 || json.Unmarshal(b, &e) != nil || !strings.Contains(e.Error, "damaged") {
			t.Errorf("GET %s: %d %.300s; want 500 saying the file is damaged", u, st, b)
		}
	}
	for _, u := range []string{"bad/ok.json", "good/g.json"} {
		if st, b, _ := do(t, c, "GET", p.Base+u, "", nil); st != 200 {
			t.Errorf("GET %s next to a damaged table: %d %.300s", u, st, b)
		}
	}
	t.Logf("reads of the damaged table: %s", counts.String())
	if out := p.output(); !strings.Contains(out, "level=ERROR") || !strings.Contains(out, "db=bad") || !strings.Contains(out, path) {
		t.Errorf("no ERROR log naming the database and file:\n%s", out)
	}
}

// corruptTable overwrites the root page of table with garbage.
func corruptTable(t *testing.T, path, table string) {
	t.Helper()
	db, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	var root, pageSize int64
	if err := db.QueryRow("SELECT rootpage FROM sqlite_schema WHERE name = ?", table).Scan(&root); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow("PRAGMA page_size").Scan(&pageSize); err != nil {
		t.Fatal(err)
	}
	db.Close()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(bytes.Repeat([]byte{0xee}, int(pageSize)), (root-1)*pageSize); err != nil {
		t.Fatal(err)
	}
}

// fillWrites makes n inserts of rows with size bytes of padding from
// clients concurrent clients (so that the writer batches them), and
// returns every acknowledged key and the bodies of the failures.
func fillWrites(t *testing.T, base, token, prefix string, n, size, clients int, counts *statusCounts) (acked []string, failed []string) {
	return fillWritesRows(t, base, token, prefix, n, 1, size, clients, counts)
}

// fillWritesRows is fillWrites with rows rows per insert (keys
// prefix+i+"_"+j).
func fillWritesRows(t *testing.T, base, token, prefix string, n, rows, size, clients int, counts *statusCounts) (acked []string, failed []string) {
	t.Helper()
	pad := strings.Repeat("x", size)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := newClient()
			for i := w; i < n; i += clients {
				var keys, objs []string
				for j := range rows {
					k := fmt.Sprintf("%s%d", prefix, i)
					if rows > 1 {
						k = fmt.Sprintf("%s%d_%d", prefix, i, j)
					}
					keys = append(keys, k)
					objs = append(objs, `{"k": "`+k+`", "pad": "`+pad+`"}`)
				}
				st, b, _ := do(t, c, "POST", base+"app/items/-/insert", "application/json",
					strings.NewReader(`{"rows": [`+strings.Join(objs, ", ")+`]}`), "Authorization", "Bearer "+token)
				counts.add(st, b)
				mu.Lock()
				if st == 201 {
					acked = append(acked, keys...)
				} else {
					failed = append(failed, fmt.Sprintf("%d %s", st, b))
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return acked, failed
}

// checkKeys opens the file afresh and checks integrity and that every
// acknowledged key is there.
func checkKeys(t *testing.T, path string, acked []string) {
	t.Helper()
	db, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var ok string
	if err := db.QueryRow("PRAGMA integrity_check").Scan(&ok); err != nil || ok != "ok" {
		t.Errorf("integrity_check = %q, %v", ok, err)
	}
	have := map[string]bool{}
	rows, err := db.Query("SELECT k FROM items")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var k string
		rows.Scan(&k)
		have[k] = true
	}
	missing := 0
	for _, k := range acked {
		if !have[k] {
			missing++
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d acknowledged rows are missing", missing, len(acked))
	}
}

// mountTmpfs mounts a tmpfs of size bytes on a new directory, or skips
// the test when this process may not mount (mounting needs root or
// CAP_SYS_ADMIN; CI runs as root). The mount is removed when the test
// ends.
func mountTmpfs(t *testing.T, size int) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "tmpfs")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d", size)); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v): needs root or CAP_SYS_ADMIN; TestFileSizeLimit covers a failing write without it", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// TestDiskFull serves a database on a 2 MiB tmpfs (a real full disk) and
// inserts 4 KiB rows until the disk is full, in WAL and rollback mode.
// Inserts that do not fit are 507 (never 400, never "no such savepoint"),
// reads go on, every acknowledged row survives, and once space returns
// (a filler file is removed) inserts succeed again.
func TestDiskFull(t *testing.T) {
	for _, journal := range []string{"wal", "delete"} {
		t.Run(journal, func(t *testing.T) {
			dir := mountTmpfs(t, 2<<20)
			path := newDB(t, dir, "app.db", journal, "CREATE TABLE items (id INTEGER PRIMARY KEY, k TEXT, pad TEXT)")
			// Leave about 600 KiB; the filler is freed later.
			filler := filepath.Join(dir, "filler")
			if err := os.WriteFile(filler, make([]byte, 1200<<10), 0o644); err != nil {
				t.Fatal(err)
			}
			p := startLode(t, path, "--workers", "1", "--root", "--journal-mode", journal)
			p.waitStatus("1 ready worker", 60*time.Second, (*workersStatus).ready)
			root := createToken(t, "--actor", "root")
			var counts statusCounts
			acked, failed := fillWrites(t, p.Base, root, "a", 400, 4096, 8, &counts)
			t.Logf("%s: 400 inserts of 4 KiB from 8 clients on a 2 MiB tmpfs: %s", journal, counts.String())
			if len(failed) == 0 {
				t.Fatal("the disk never filled up")
			}
			// Inserts of 3 MB, more than the page cache (2 MB), batched
			// with small ones: SQLite spills pages to the file in the
			// middle of a statement, the disk is full there, and SQLite
			// rolls the whole transaction back itself.
			var wg sync.WaitGroup
			wg.Add(2)
			go func() {
				defer wg.Done()
				fillWritesRows(t, p.Base, root, "big", 16, 100, 30000, 4, &counts)
			}()
			var small []string
			go func() {
				defer wg.Done()
				small, _ = fillWrites(t, p.Base, root, "s", 64, 100, 4, &counts)
			}()
			wg.Wait()
			acked = append(acked, small...)
			t.Logf("%s: then 16 inserts of 3 MB and 64 small ones: %s", journal, counts.String())
			for st, n := range counts.n {
				if st != 201 && st != 507 {
					t.Errorf("%d inserts answered %d, e.g. %s", n, st, counts.sample[st])
				}
			}
			if s := counts.sample[507]; s != "" && !strings.Contains(s, "full") {
				t.Errorf("507 body %s does not say the disk is full", s)
			}
			if strings.Contains(p.output(), "no such savepoint") {
				t.Errorf("'no such savepoint' in the server's log:\n%s", p.output())
			}
			if st, b, _ := do(t, newClient(), "GET", p.Base+"app/items.json?_size=1", "", nil); st != 200 {
				t.Errorf("read on a full disk: %d %.300s", st, b)
			}
			if err := os.Remove(filler); err != nil {
				t.Fatal(err)
			}
			var after statusCounts
			more, failedAfter := fillWrites(t, p.Base, root, "b", 20, 4096, 1, &after)
			if len(failedAfter) > 0 {
				t.Errorf("inserts after space returned: %s, e.g. %s", after.String(), failedAfter[0])
			}
			p.kill()
			checkKeys(t, path, append(acked, more...))
		})
	}
}

// TestFileSizeLimit is a failing write that needs no mount: lode serve
// runs under `ulimit -f` (RLIMIT_FSIZE; Go ignores SIGXFSZ, so a write past
// the limit fails with EFBIG, which SQLite reports as SQLITE_IOERR). Inserts
// past it are 503 with Retry-After, never 400 or "no such savepoint";
// reads go on and every acknowledged row survives.
func TestFileSizeLimit(t *testing.T) {
	dir := t.TempDir()
	path := newDB(t, dir, "app.db", "wal", "CREATE TABLE items (id INTEGER PRIMARY KEY, k TEXT, pad TEXT)")
	// ulimit -f counts 512-byte blocks in dash and bash: 1 MiB files.
	p := startLodeShell(t, "ulimit -f 2048", path, "--workers", "1", "--root", "--journal-mode", "delete")
	p.waitStatus("1 ready worker", 60*time.Second, (*workersStatus).ready)
	root := createToken(t, "--actor", "root")
	var counts statusCounts
	acked, failed := fillWrites(t, p.Base, root, "a", 400, 4096, 8, &counts)
	t.Logf("400 inserts of 4 KiB from 8 clients under ulimit -f 1 MiB: %s", counts.String())
	if len(failed) == 0 {
		t.Fatal("the file size limit was never reached")
	}
	for st, n := range counts.n {
		if st != 201 && st != 503 {
			t.Errorf("%d inserts answered %d, e.g. %s", n, st, counts.sample[st])
		}
	}
	if strings.Contains(p.output(), "no such savepoint") {
		t.Errorf("'no such savepoint' in the server's log:\n%s", p.output())
	}
	if st, b, _ := do(t, newClient(), "GET", p.Base+"app/items.json?_size=1", "", nil); st != 200 {
		t.Errorf("read past the file size limit: %d %.300s", st, b)
	}
	p.kill()
	checkKeys(t, path, acked)
}

// TestReadOnlyFilesystem serves a database from a read-only bind mount of
// its directory (needs root, else skipped; Linux refuses to remount a file
// system read-only while a file on it is open for writing, so the mount is
// read-only from the start, as for a file on read-only media or with mode
// 0444). SQLite opens it read-only: writes are 503 with Retry-After and a
// WARN log, never 400; reads are served.
func TestReadOnlyFilesystem(t *testing.T) {
	src := t.TempDir()
	newDB(t, src, "app.db", "delete", "CREATE TABLE items (id INTEGER PRIMARY KEY, k TEXT, pad TEXT)", "INSERT INTO items (k) VALUES ('a0')")
	dir := filepath.Join(t.TempDir(), "ro")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount(src, dir, "", syscall.MS_BIND, ""); err != nil {
		t.Skipf("cannot bind-mount here (%v): needs root or CAP_SYS_ADMIN", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	if err := syscall.Mount("", dir, "", syscall.MS_REMOUNT|syscall.MS_BIND|syscall.MS_RDONLY, ""); err != nil {
		t.Fatalf("remount the bind mount read-only: %v", err)
	}
	path := filepath.Join(dir, "app.db")
	p := startLode(t, path, "--workers", "1", "--root", "--journal-mode", "delete")
	p.waitStatus("1 ready worker", 60*time.Second, (*workersStatus).ready)
	root := createToken(t, "--actor", "root")
	var counts statusCounts
	_, failed := fillWrites(t, p.Base, root, "b", 3, 10, 1, &counts)
	t.Logf("inserts on a read-only file system: %s, e.g. %s", counts.String(), counts.sample[503])
	if len(failed) != 3 {
		t.Errorf("inserts on a read-only file system: %s; want all refused", counts.String())
	}
	for st, n := range counts.n {
		if st != 503 {
			t.Errorf("%d inserts answered %d, e.g. %s", n, st, counts.sample[st])
		}
	}
	if st, b, _ := do(t, newClient(), "GET", p.Base+"app/items.json", "", nil); st != 200 || !bytes.Contains(b, []byte("a0")) {
		t.Errorf("read on a read-only file system: %d %.300s", st, b)
	}
	if out := p.output(); !strings.Contains(out, "level=WARN") || !strings.Contains(out, "db=app") {
		t.Errorf("no WARN log naming the database:\n%s", out)
	}
}
