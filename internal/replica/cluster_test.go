package replica_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"lode/internal/replica"
)

// Short intervals keep the tests quick; the defaults are measured by
// BenchmarkReplication.
const (
	testSync   = "100ms"
	testFollow = "100ms"
)

// cluster is a primary replicating to a file destination in a temp dir.
type cluster struct {
	dir, dest, url string
	primary        *node
	token          string
}

func newCluster(t *testing.T, primaryArgs ...string) *cluster {
	t.Helper()
	c := &cluster{dir: t.TempDir()}
	c.dest = filepath.Join(c.dir, "dest")
	c.url = replica.FileURL(c.dest)
	newDB(t, c.dir)
	args := append([]string{"data.db", "--replicate", c.url, "--sync-interval", testSync, "--root"}, primaryArgs...)
	c.primary = startNode(t, "primary", c.dir, args...)
	c.token = rootToken(t)
	return c
}

// follow starts a replica with its own copy in dir/<name>.
func (c *cluster) follow(t *testing.T, name string, extra ...string) *node {
	t.Helper()
	return c.followIn(t, name, filepath.Join(c.dir, name), extra...)
}

func (c *cluster) followIn(t *testing.T, name, dir string, extra ...string) *node {
	t.Helper()
	mkdir(t, dir)
	args := append([]string{"--follow", c.url, "--as", "data", "--follow-dir", dir, "--follow-interval", testFollow,
		"--primary", c.primary.Base}, extra...)
	return startNode(t, name, c.dir, args...)
}

// readLoad reads from the replicas until stop is closed: a table page
// with its count and a row lookup, alternately. Every non-200 answer is a
// failed read.
type readLoad struct {
	ok, failed atomic.Int64
	mu         sync.Mutex
	firstErr   error
	wg         sync.WaitGroup
}

func startReads(bases []string, stop <-chan struct{}) *readLoad {
	rl := &readLoad{}
	for _, b := range bases {
		for w := 0; w < 2; w++ {
			rl.wg.Add(1)
			go func() {
				defer rl.wg.Done()
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					path := "/data/t.json?_size=5&_sort_desc=id&_extra=count"
					if i%2 == 1 {
						path = fmt.Sprintf("/data/t.json?id=%d", i%50+1)
					}
					var v struct {
						OK bool `json:"ok"`
					}
					if err := getJSON(b, path, &v); err != nil || !v.OK {
						rl.failed.Add(1)
						rl.mu.Lock()
						if rl.firstErr == nil {
							rl.firstErr = fmt.Errorf("%s%s: %v", b, path, err)
						}
						rl.mu.Unlock()
						continue
					}
					rl.ok.Add(1)
				}
			}()
		}
	}
	return rl
}

// TestPrimaryAndTwoReplicas inserts rows at a steady rate on the primary
// while two replicas (one in-process, one with a supervised worker) serve
// reads; PRAGMA integrity_check runs on the replicas' files during and
// after; after the primary has synced, every acknowledged row is on both.
// The 5,000-insert run is behind the stress tag (clusterInserts).
func TestPrimaryAndTwoReplicas(t *testing.T) {
	c := newCluster(t, "--workers", "0")
	r1 := c.follow(t, "r1", "--workers", "0")
	r2 := c.follow(t, "r2", "--workers", "1")
	stop := make(chan struct{})
	reads := startReads([]string{r1.Base, r2.Base}, stop)

	var checks, checkErrs atomic.Int64
	var checkWG sync.WaitGroup
	checkWG.Add(1)
	go func() {
		defer checkWG.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(150 * time.Millisecond):
			}
			for _, n := range []string{"r1", "r2"} {
				checks.Add(1)
				if err := integrity(filepath.Join(c.dir, n, "data.db")); err != nil {
					checkErrs.Add(1)
					t.Errorf("%s during the run: %v", n, err)
				}
			}
		}
	}()

	acks := insertAt(t.Context(), t, c.primary.Base, c.token, clusterInserts, clusterRate, "steady")
	close(stop)
	reads.wg.Wait()
	checkWG.Wait()
	if len(acks) != clusterInserts {
		t.Fatalf("%d of %d inserts acknowledged", len(acks), clusterInserts)
	}
	txid := waitSynced(t, c.primary, time.Now(), 30*time.Second)
	for _, r := range []*node{r1, r2} {
		waitApplied(t, r, txid, 30*time.Second)
		path := filepath.Join(c.dir, r.name, "data.db")
		if err := integrity(path); err != nil {
			t.Errorf("%s after the run: %v", r.name, err)
		}
		have := ids(t, path)
		missing := 0
		for _, a := range acks {
			if !have[a.id] {
				missing++
			}
		}
		if missing > 0 {
			t.Errorf("%s: %d of %d acknowledged rows missing after the primary synced (txid %d)", r.name, missing, len(acks), txid)
		}
		var page struct {
			Count int `json:"count"`
		}
		if err := getJSON(r.Base, "/data/t.json?_size=0&_extra=count", &page); err != nil || page.Count != len(acks) {
			t.Errorf("%s: JSON count %d (%v); want %d", r.name, page.Count, err, len(acks))
		}
	}
	if n := reads.failed.Load(); n > 0 {
		t.Errorf("%d of %d reads on the replicas failed during the run; first: %v", n, n+reads.ok.Load(), reads.firstErr)
	}
	if reads.ok.Load() == 0 || checks.Load() == 0 {
		t.Errorf("no reads (%d) or integrity checks (%d) ran during the inserts", reads.ok.Load(), checks.Load())
	}
	t.Logf("%d inserts at %.0f/s; %d reads on the replicas, 0 failed; %d integrity checks during the run", len(acks), clusterRate, reads.ok.Load(), checks.Load())
}

// TestSchemaChangeReachesReplicas creates a table and adds a column on the
// primary and waits for both in the replica's JSON API: the database's
// table list, the table's columns, and a filter on the new column.
func TestSchemaChangeReachesReplicas(t *testing.T) {
	c := newCluster(t, "--workers", "0")
	r := c.follow(t, "r", "--workers", "1")
	// Warm the replica's schema cache and its prepared statements.
	var page map[string]any
	if err := getJSON(r.Base, "/data/t.json?_extra=columns", &page); err != nil {
		t.Fatal(err)
	}
	code, body, err := postJSON(c.primary.Base+"/data/-/create", c.token, map[string]any{
		"table": "fresh", "columns": []map[string]any{{"name": "id", "type": "integer"}, {"name": "title", "type": "text"}}, "pk": "id"})
	if err != nil || code != http.StatusCreated {
		t.Fatalf("create table: %d %s %v", code, body, err)
	}
	code, body, err = postJSON(c.primary.Base+"/data/t/-/insert", c.token, map[string]any{"row": map[string]any{"v": "x", "n": 1, "added": "yes"}, "alter": true})
	if err != nil || code != http.StatusCreated {
		t.Fatalf("insert with alter: %d %s %v", code, body, err)
	}
	waitFor(t, 15*time.Second, "table fresh on the replica", func() (bool, string) {
		var db struct {
			Tables []struct {
				Name    string   `json:"name"`
				Columns []string `json:"columns"`
			} `json:"tables"`
		}
		if err := getJSON(r.Base, "/data.json", &db); err != nil {
			return false, err.Error()
		}
		for _, tb := range db.Tables {
			if tb.Name == "fresh" && fmt.Sprint(tb.Columns) == "[id title]" {
				return true, ""
			}
		}
		return false, fmt.Sprint(db.Tables)
	})
	waitFor(t, 15*time.Second, "column added on the replica", func() (bool, string) {
		var p struct {
			Columns []string         `json:"columns"`
			Rows    []map[string]any `json:"rows"`
		}
		if err := getJSON(r.Base, "/data/t.json?added=yes&_extra=columns", &p); err != nil {
			return false, err.Error()
		}
		return len(p.Rows) == 1 && p.Rows[0]["added"] == "yes" && fmt.Sprint(p.Columns) == "[id v n added]", fmt.Sprint(p)
	})
}

// TestLateAndRestartedReplicas starts a replica after rows exist (it
// restores a snapshot) and SIGKILLs another mid-stream and restarts it on
// the same directory (it resumes from its last applied transaction).
func TestLateAndRestartedReplicas(t *testing.T) {
	c := newCluster(t, "--workers", "0")
	early := c.follow(t, "early", "--workers", "0")
	acks := insertAt(t.Context(), t, c.primary.Base, c.token, 150, 300, "before")
	late := c.follow(t, "late", "--workers", "0")

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		acks = append(acks, insertAt(context.Background(), t, c.primary.Base, c.token, 300, 300, "during")...)
	}()
	time.Sleep(400 * time.Millisecond)
	before := num(must(early.status()), "txid")
	early.kill()
	if err := integrity(filepath.Join(c.dir, "early", "data.db")); err != nil {
		t.Errorf("early, killed mid-stream: %v", err)
	}
	time.Sleep(200 * time.Millisecond)
	early = c.follow(t, "early", "--workers", "0")
	if !contains(early.output(), "resuming replica") {
		t.Errorf("restarted replica did not resume:\n%s", early.output())
	}
	if after := num(must(early.status()), "txid"); after < before {
		t.Errorf("restarted replica at txid %d, before the kill it had %d", after, before)
	}
	wg.Wait()
	txid := waitSynced(t, c.primary, time.Now(), 30*time.Second)
	for _, r := range []*node{early, late} {
		waitApplied(t, r, txid, 30*time.Second)
		have := ids(t, filepath.Join(c.dir, r.name, "data.db"))
		for _, a := range acks {
			if !have[a.id] {
				t.Errorf("%s: acknowledged row %d missing", r.name, a.id)
				break
			}
		}
		if err := integrity(filepath.Join(c.dir, r.name, "data.db")); err != nil {
			t.Errorf("%s: %v", r.name, err)
		}
	}
}

// TestWriteToReplica sends writes to replicas: proxied (the default) they
// reach the primary and later show on the replica; in redirect mode the
// replica answers 307 with the primary's URL, and a client that follows
// it (Go's, which keeps the Authorization header on the same host) gets
// the insert done; without --primary the replica refuses with 405.
func TestWriteToReplica(t *testing.T) {
	c := newCluster(t, "--workers", "0")
	proxied := c.follow(t, "proxied", "--workers", "1")
	code, body, err := postJSON(proxied.Base+"/data/t/-/insert", c.token, map[string]any{"row": map[string]any{"v": "via-replica"}})
	if err != nil || code != http.StatusCreated {
		t.Fatalf("insert through the replica: %d %s %v", code, body, err)
	}
	var res struct {
		Rows []map[string]any `json:"rows"`
	}
	if err := json.Unmarshal(body, &res); err != nil || len(res.Rows) != 1 {
		t.Fatalf("insert answer %s: %v", body, err)
	}
	id := res.Rows[0]["id"]
	var onPrimary struct {
		Rows []map[string]any `json:"rows"`
	}
	if err := getJSON(c.primary.Base, fmt.Sprintf("/data/t.json?id=%v", id), &onPrimary); err != nil || len(onPrimary.Rows) != 1 {
		t.Fatalf("row %v not on the primary right after the write: %v %v", id, onPrimary, err)
	}
	waitFor(t, 15*time.Second, "proxied write visible on the replica", func() (bool, string) {
		var p struct {
			Rows []map[string]any `json:"rows"`
		}
		err := getJSON(proxied.Base, fmt.Sprintf("/data/t.json?id=%v", id), &p)
		return err == nil && len(p.Rows) == 1 && p.Rows[0]["v"] == "via-replica", fmt.Sprint(p, err)
	})
	// Without a token the primary's answer comes back unchanged.
	code, body, _ = postJSON(proxied.Base+"/data/t/-/insert", "nope", map[string]any{"row": map[string]any{"v": "x"}})
	if code != http.StatusUnauthorized && code != http.StatusForbidden {
		t.Errorf("insert with a bad token through the replica: %d %s; want the primary's 401/403", code, body)
	}

	redirect := c.follow(t, "redirect", "--workers", "0", "--primary-mode", "redirect")
	noFollow := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequest(http.MethodPost, redirect.Base+"/data/t/-/insert?x=1", nil)
	resp, err := noFollow.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTemporaryRedirect || resp.Header.Get("Location") != c.primary.Base+"/data/t/-/insert?x=1" {
		t.Errorf("redirect mode: %d Location %q; want 307 to the primary", resp.StatusCode, resp.Header.Get("Location"))
	}
	code, body, err = postJSON(redirect.Base+"/data/t/-/insert", c.token, map[string]any{"row": map[string]any{"v": "via-redirect"}})
	if err != nil || code != http.StatusCreated {
		t.Errorf("insert following the 307: %d %s %v", code, body, err)
	}

	readOnly := startNode(t, "readonly", c.dir, "--follow", c.url, "--as", "data", "--follow-dir", mkdir(t, filepath.Join(c.dir, "ro")), "--workers", "0")
	code, body, _ = postJSON(readOnly.Base+"/data/t/-/insert", c.token, map[string]any{"row": map[string]any{"v": "x"}})
	if code != http.StatusMethodNotAllowed || !contains(string(body), "read-only replica") {
		t.Errorf("write to a replica without --primary: %d %s; want 405 naming the replica", code, body)
	}
}

// TestPrimaryKilled SIGKILLs the primary and its replicator while rows
// are being inserted. The replica keeps serving what it had; a new primary
// restored from the destination (lode replica restore) has every row
// acknowledged more than the loss window (2 × --sync-interval plus upload
// time, README) before the kill.
func TestPrimaryKilled(t *testing.T) {
	c := newCluster(t, "--workers", "1")
	r := c.follow(t, "r", "--workers", "0")
	ctx, cancel := context.WithCancel(t.Context())
	var acks []ack
	done := make(chan struct{})
	go func() {
		defer close(done)
		// Inserts in flight when the primary dies fail; they were never
		// acknowledged, so they are not counted.
		acks, _, _ = insertRows(ctx, c.primary.Base, c.token, 100000, 200, "kill")
	}()
	time.Sleep(1500 * time.Millisecond)
	killedAt := time.Now()
	c.primary.kill()
	cancel()
	<-done
	if len(acks) == 0 {
		t.Fatal("no insert acknowledged before the kill")
	}
	// The replica still serves: reads succeed and see a prefix of the rows.
	var before struct {
		Count int `json:"count"`
	}
	for i := 0; i < 20; i++ {
		var p struct {
			Count int `json:"count"`
		}
		if err := getJSON(r.Base, "/data/t.json?_size=1&_extra=count", &p); err != nil {
			t.Fatalf("replica after the primary died: %v", err)
		}
		before = p
		time.Sleep(20 * time.Millisecond)
	}
	restored := filepath.Join(c.dir, "restored.db")
	out, err := runLode(t, "replica", "restore", c.url, "-o", restored)
	if err != nil {
		t.Fatalf("lode replica restore: %v\n%s", err, out)
	}
	have := ids(t, restored)
	window := 2*100*time.Millisecond + 500*time.Millisecond
	var lost, lostOld int
	var oldestLost time.Duration // age at the kill of the oldest lost row
	for _, a := range acks {
		if have[a.id] {
			continue
		}
		lost++
		age := killedAt.Sub(a.at)
		oldestLost = max(oldestLost, age)
		if age > window {
			lostOld++
		}
	}
	if lostOld > 0 {
		t.Errorf("%d acknowledged rows older than the %s window lost (oldest %s before the kill)", lostOld, window, oldestLost)
	}
	if err := integrity(restored); err != nil {
		t.Error(err)
	}
	t.Logf("%d acknowledged, %d in the restored primary, %d lost (the oldest acknowledged %s before the kill; window %s); the replica served %d rows", len(acks), len(have), lost, oldestLost.Round(time.Millisecond), window, before.Count)
	// The restored file serves as the new primary and replicates on.
	np := startNode(t, "new-primary", c.dir, "restored.db", "--replicate", c.url, "--sync-interval", testSync, "--root", "--workers", "0")
	code, body, err := postJSON(np.Base+"/restored/t/-/insert", c.token, map[string]any{"row": map[string]any{"v": "after-promotion"}})
	if err != nil || code != http.StatusCreated {
		t.Fatalf("insert on the new primary: %d %s %v", code, body, err)
	}
	waitFor(t, 15*time.Second, "write on the new primary reaches the replica", func() (bool, string) {
		var p struct {
			Rows []map[string]any `json:"rows"`
		}
		err := getJSON(r.Base, "/data/t.json?v=after-promotion", &p)
		return err == nil && len(p.Rows) == 1, fmt.Sprint(p, err)
	})
}
