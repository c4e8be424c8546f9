package replica_test

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"
)

// lodeBin is the lode binary TestMain builds once (without -race: the
// processes under test are the shipped binary; the race detector covers
// the test's own clients). LODE_REPLICA_BIN names a prebuilt one.
var lodeBin string

func TestMain(m *testing.M) {
	if b := os.Getenv("LODE_REPLICA_BIN"); b != "" {
		lodeBin = b
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "lode-replica-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "replica: temp dir:", err)
		os.Exit(1)
	}
	lodeBin = filepath.Join(dir, "lode")
	build := exec.Command("go", "build", "-tags", "sqlite_fts5", "-o", lodeBin, "lode/cmd/lode")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "replica: go build ./cmd/lode:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const testSecret = "replica-test-secret"

// node is one running `lode serve` (a primary or a replica).
type node struct {
	t    testing.TB
	name string
	args []string
	cmd  *exec.Cmd
	Base string // http://127.0.0.1:PORT

	mu     sync.Mutex
	log    bytes.Buffer
	exited chan struct{}
	err    error
}

var urlRE = regexp.MustCompile(`msg=serving url=(http://[^/\s]+)/`)

// startNode runs `lode serve ARGS --port 0` in dir and waits until it
// serves. It is killed (with its children) when the test ends.
func startNode(t testing.TB, name, dir string, args ...string) *node {
	t.Helper()
	home := t.TempDir()
	cmd := exec.Command(lodeBin, append(append([]string{"serve"}, args...), "--port", "0")...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "LODE_SECRET="+testSecret, "HOME="+home, "XDG_CONFIG_HOME="+home)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = io.Discard
	n := &node{t: t, name: name, args: args, cmd: cmd, exited: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	urlc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		sent := false
		for sc.Scan() {
			line := sc.Text()
			n.mu.Lock()
			if n.log.Len() < 4<<20 {
				n.log.WriteString(line + "\n")
			}
			n.mu.Unlock()
			if m := urlRE.FindStringSubmatch(line); m != nil && !sent {
				urlc <- m[1]
				sent = true
			}
		}
		n.err = cmd.Wait()
		close(n.exited)
	}()
	t.Cleanup(func() { n.kill() })
	select {
	case n.Base = <-urlc:
	case <-n.exited:
		t.Fatalf("%s: lode serve %s exited before serving: %v\n%s", name, strings.Join(args, " "), n.err, n.output())
	case <-time.After(60 * time.Second):
		t.Fatalf("%s: lode serve %s printed no url within 60s:\n%s", name, strings.Join(args, " "), n.output())
	}
	return n
}

func (n *node) output() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.log.String()
}

// kill SIGKILLs the node and every process under it (workers, the
// replication child): a machine's death. It waits until all are gone, so
// none writes into the test's folders while they are removed. The
// processes are found through /proc, not the status page, which the gate
// may refuse.
func (n *node) kill() {
	select {
	case <-n.exited:
		return
	default:
	}
	pids := descendants(n.cmd.Process.Pid)
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	_ = n.cmd.Process.Kill()
	select {
	case <-n.exited:
	case <-time.After(10 * time.Second):
		n.t.Errorf("%s: not gone 10s after SIGKILL", n.name)
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, pid := range pids {
		for !gone(pid) && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond) // poll: a non-child cannot be waited for
		}
		if !gone(pid) {
			n.t.Errorf("%s: process %d not gone 10s after SIGKILL", n.name, pid)
		}
	}
}

// descendants lists the processes under pid (children first, then
// theirs), from the parent pid field of /proc/PID/stat.
func descendants(pid int) []int {
	parent := map[int]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// "PID (COMM) STATE PPID ...": COMM may hold spaces and ')'.
		rest := string(b[strings.LastIndexByte(string(b), ')')+1:])
		if f := strings.Fields(rest); len(f) > 1 {
			if pp, err := strconv.Atoi(f[1]); err == nil {
				parent[p] = pp
			}
		}
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for c, pp := range parent {
			if pp == p {
				out = append(out, c)
				queue = append(queue, c)
			}
		}
	}
	return out
}

// gone reports whether pid no longer runs (or is a zombie, which holds
// no files).
func gone(pid int) bool {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return true
	}
	rest := string(b[strings.LastIndexByte(string(b), ')')+1:])
	f := strings.Fields(rest)
	return len(f) > 0 && f[0] == "Z"
}

// stop sends SIGTERM and waits for a clean exit.
func (n *node) stop() {
	n.t.Helper()
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.exited:
		if n.err != nil {
			n.t.Errorf("%s: exit after SIGTERM: %v\n%s", n.name, n.err, n.output())
		}
	case <-time.After(30 * time.Second):
		n.t.Errorf("%s: still running 30s after SIGTERM", n.name)
		n.kill()
	}
}

var client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 32}}

// status fetches /-/replication.json.
func (n *node) status() (map[string]any, error) {
	resp, err := client.Get(n.Base + "/-/replication.json")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		return nil, err
	}
	return m, nil
}

func num(m map[string]any, k string) uint64 {
	f, _ := m[k].(float64)
	return uint64(f)
}

// getJSON GETs base+path and decodes the body; status != 200 is an error.
func getJSON(base, path string, v any) error {
	resp, err := client.Get(base + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	return json.Unmarshal(b, v)
}

// postJSON POSTs body with the root token; it returns status and body.
func postJSON(url, token string, body any) (int, []byte, error) {
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	rb, err := io.ReadAll(resp.Body)
	return resp.StatusCode, rb, err
}

// rootToken creates an API token for root with the test secret.
func rootToken(t testing.TB) string {
	t.Helper()
	cmd := exec.Command(lodeBin, "token", "create", "--actor", "root")
	cmd.Env = append(os.Environ(), "LODE_SECRET="+testSecret)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("lode token create: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// newDB creates dir/data.db with the table t the tests insert into.
func newDB(t testing.TB, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "data.db")
	db, err := sql.Open("sqlite3", p)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`PRAGMA journal_mode=wal; CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL, n INTEGER)`); err != nil {
		t.Fatal(err)
	}
	return p
}

// waitFor polls cond every 20 ms until it holds or d passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(d)
	last := ""
	for {
		ok, info := cond()
		if ok {
			return
		}
		last = info
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s (last: %s)", what, d, last)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitSynced waits until the primary's destination holds everything the
// primary committed before since, and returns the destination's
// transaction id then.
func waitSynced(t testing.TB, p *node, since time.Time, d time.Duration) uint64 {
	t.Helper()
	var txid uint64
	waitFor(t, d, "primary synced", func() (bool, string) {
		st, err := p.status()
		if err != nil {
			return false, err.Error()
		}
		txid = num(st, "replicated_txid")
		sb, _ := st["shipped_before"].(string)
		at, err := time.Parse(time.RFC3339Nano, sb)
		return err == nil && at.After(since) && txid == num(st, "txid"), fmt.Sprint(st)
	})
	return txid
}

// waitApplied waits until a replica has applied txid.
func waitApplied(t testing.TB, r *node, txid uint64, d time.Duration) {
	t.Helper()
	waitFor(t, d, r.name+" applied txid "+fmt.Sprint(txid), func() (bool, string) {
		st, err := r.status()
		if err != nil {
			return false, err.Error()
		}
		return num(st, "txid") >= txid, fmt.Sprint(st)
	})
}

// integrity runs PRAGMA integrity_check on a replica's file through a
// read-only connection of this (third) process, as a reader would.
func integrity(path string) error {
	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro")
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

// ids returns the ids of t in a database file.
func ids(t testing.TB, path string) map[int64]bool {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query("SELECT id FROM t")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[int64]bool{}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		out[id] = true
	}
	return out
}

// ack is one insert the primary acknowledged.
type ack struct {
	id int64
	at time.Time // when the 2xx arrived
}

// insertAt inserts n rows into base's t at rate per second with a few
// concurrent clients, and returns the acknowledged ones. A failed insert
// fails the test.
func insertAt(ctx context.Context, t testing.TB, base, token string, n int, rate float64, label string) []ack {
	t.Helper()
	acks, failed, err := insertRows(ctx, base, token, n, rate, label)
	if failed > 0 {
		t.Errorf("insert into %s: %d failed; first: %v", base, failed, err)
	}
	return acks
}

// insertRows is insertAt for callers that expect failures (a primary
// killed mid-run): it returns the acknowledged inserts, how many failed
// and the first failure.
func insertRows(ctx context.Context, base, token string, n int, rate float64, label string) (acks []ack, failed int, firstErr error) {
	var mu sync.Mutex
	jobs := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < 32; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				code, body, err := postJSON(base+"/data/t/-/insert", token, map[string]any{"row": map[string]any{"v": fmt.Sprintf("%s-%d", label, i), "n": i}})
				at := time.Now()
				var res struct {
					Rows []struct {
						ID int64 `json:"id"`
					} `json:"rows"`
				}
				if err == nil && code == http.StatusCreated {
					err = json.Unmarshal(body, &res)
				} else if err == nil {
					err = fmt.Errorf("insert: %d %s", code, body)
				}
				mu.Lock()
				if err != nil {
					failed++
					if firstErr == nil {
						firstErr = err
					}
				} else if len(res.Rows) == 1 {
					acks = append(acks, ack{id: res.Rows[0].ID, at: at})
				}
				mu.Unlock()
			}
		}()
	}
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer tick.Stop()
	for i := 0; i < n; i++ {
		select {
		case <-ctx.Done():
			i = n
			continue
		case <-tick.C:
		}
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	return acks, failed, firstErr
}
