package replica_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/file"

	"lode/internal/replica"
)

// TestFollowerCatchesUpAfterPruning runs Litestream and the follower in
// this process (both on modernc.org/sqlite, the only SQLite library that
// touches these files here) and prunes the destination while the follower
// is stopped, as Litestream's retention does to a replica that was away:
// first level 0 only (the follower continues from the level-1 file that
// compacted it), then the compacted history too (it applies the latest
// snapshot). Each time every row is on the replica afterwards.
func TestFollowerCatchesUpAfterPruning(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	primary := filepath.Join(dir, "p.db")
	dest := filepath.Join(dir, "dest")
	w, err := sql.Open("sqlite", "file:"+primary+"?_pragma=journal_mode(wal)&_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.Exec(`CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)`); err != nil {
		t.Fatal(err)
	}
	db := litestream.NewDB(primary)
	db.MonitorInterval = 0 // synced by hand below
	client := file.NewReplicaClient(dest)
	r := litestream.NewReplicaWithClient(db, client)
	r.MonitorEnabled = false
	db.Replica = r
	store := litestream.NewStore([]*litestream.DB{db}, litestream.CompactionLevels{{Level: 0}, {Level: 1, Interval: time.Hour}})
	store.CompactionMonitorEnabled = false
	if err := store.Open(ctx); err != nil {
		t.Fatal(err)
	}
	defer store.Close(ctx)
	n := 0
	insert := func(k int) {
		t.Helper()
		for i := 0; i < k; i++ {
			n++
			if _, err := w.Exec(`INSERT INTO t (v) VALUES (?)`, fmt.Sprint("row-", n)); err != nil {
				t.Fatal(err)
			}
			if i%10 == 9 || i == k-1 {
				if err := db.SyncAndWait(ctx); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	insert(20)
	if _, err := db.Snapshot(ctx); err != nil {
		t.Fatal(err)
	}

	copyPath := filepath.Join(dir, "r", "data.db")
	mkdir(t, filepath.Dir(copyPath))
	var logs syncBuffer
	follow := func(wantLog string) {
		t.Helper()
		fctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() {
			done <- replica.Follow(fctx, replica.FollowConfig{URL: replica.FileURL(dest), Path: copyPath, Name: "data", Interval: 20 * time.Millisecond,
				Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		}()
		want := n
		deadline := time.Now().Add(20 * time.Second)
		for {
			st, _ := replica.ReadStatus(replica.StatusPath(copyPath))
			if got := countRows(t, copyPath); got == want && st != nil && st.Ready {
				break
			} else if time.Now().After(deadline) {
				t.Fatalf("replica has %d rows, want %d; status %+v", got, want, st)
			}
			select {
			case err := <-done:
				t.Fatalf("follower stopped: %v", err)
			case <-time.After(20 * time.Millisecond):
			}
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("follower: %v", err)
		}
		if !strings.Contains(logs.String(), wantLog) {
			t.Errorf("the follower did not log %q:\n%s", wantLog, logs.String())
		}
		logs.Reset()
	}
	follow("msg=restored")

	// Away: more transactions, compacted into level 1, level 0 pruned
	// except for a file after the gap.
	insert(30)
	if _, err := db.Compact(ctx, 1); err != nil {
		t.Fatal(err)
	}
	removeLevel(t, client, 0)
	insert(5)
	follow("continuing from a compacted level")

	// Away longer: the compacted history is gone as well; only a new
	// snapshot and a later level-0 file remain.
	insert(30)
	if _, err := db.Snapshot(ctx); err != nil {
		t.Fatal(err)
	}
	removeLevel(t, client, 0)
	removeLevel(t, client, 1)
	insert(5)
	follow("applying the latest snapshot")
	if err := integrityModernc(copyPath); err != nil {
		t.Error(err)
	}
}

// syncBuffer is a bytes.Buffer safe for the follower's goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (s *syncBuffer) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b.Reset()
}

// removeLevel deletes a level's files from a file destination.
func removeLevel(t *testing.T, c *file.ReplicaClient, level int) {
	t.Helper()
	ents, err := os.ReadDir(c.LTXLevelDir(level))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	for _, e := range ents {
		if err := os.Remove(filepath.Join(c.LTXLevelDir(level), e.Name())); err != nil {
			t.Fatal(err)
		}
	}
}

// countRows counts t in a replica copy through modernc.org/sqlite (this
// test's only SQLite library on these files), 0 if it is not there yet.
func countRows(t *testing.T, path string) int {
	if _, err := os.Stat(path); err != nil {
		return 0
	}
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var c int
	if err := db.QueryRow("SELECT count(*) FROM t").Scan(&c); err != nil {
		return 0
	}
	return c
}

func integrityModernc(path string) error {
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		return err
	}
	defer db.Close()
	var res string
	if err := db.QueryRow("PRAGMA integrity_check").Scan(&res); err != nil {
		return err
	}
	if res != "ok" {
		return fmt.Errorf("integrity_check: %s", res)
	}
	return nil
}
