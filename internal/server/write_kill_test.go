package server_test

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"lode/internal/config"
	"lode/internal/server"
	"lode/internal/sqlitedb"
)

// Environment of the re-executed test binary that plays the server.
const (
	childEnvDB   = "LODE_WRITE_CHILD_DB"
	childEnvSync = "LODE_WRITE_CHILD_SYNC"
)

// TestWriteChildProcess is not a test: it is the server process of
// TestSIGKILLDurability, run by re-executing the test binary. It serves
// the write API on 127.0.0.1:0, prints the address and serves until killed.
func TestWriteChildProcess(t *testing.T) {
	path := os.Getenv(childEnvDB)
	if path == "" {
		t.Skip("only runs as the child of TestSIGKILLDurability")
	}
	lc, err := config.Parse([]byte("permissions:\n  insert-row: true\n"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	srv, err := server.New(ctx, server.Config{Files: []string{path}, Lode: lc,
		DB: sqlitedb.Settings{Synchronous: os.Getenv(childEnvSync)}})
	if err != nil {
		t.Fatal(err)
	}
	api, err := server.NewWriteAPI(srv, server.WriteConfig{Secret: []byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("ADDR %s\n", ln.Addr())
	os.Stdout.Sync()
	http.Serve(ln, api) // until SIGKILL
}

// TestSIGKILLDurability inserts rows from many clients, kills the server
// process with SIGKILL in the middle of the load, reopens the file and
// checks that every row whose insert was answered 2xx is there. Several
// rounds run on the same file, so each round also recovers the previous
// round's hot WAL.
func TestSIGKILLDurability(t *testing.T) {
	if testing.Short() {
		t.Skip("starts server processes")
	}
	rounds, clients := 3, 16
	for _, syncMode := range []string{"full", "normal"} {
		t.Run("synchronous="+syncMode, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "kill.db")
			raw, err := sql.Open("sqlite3", path)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := raw.Exec("PRAGMA journal_mode=wal; CREATE TABLE t (id INTEGER PRIMARY KEY, k TEXT UNIQUE NOT NULL)"); err != nil {
				t.Fatal(err)
			}
			raw.Close()
			for round := 0; round < rounds; round++ {
				acked := killRound(t, path, syncMode, round, clients)
				db, err := sql.Open("sqlite3", path)
				if err != nil {
					t.Fatal(err)
				}
				present := map[string]bool{}
				rows, err := db.Query("SELECT k FROM t")
				if err != nil {
					t.Fatal(err)
				}
				for rows.Next() {
					var k string
					rows.Scan(&k)
					present[k] = true
				}
				rows.Close()
				var check string
				db.QueryRow("PRAGMA integrity_check").Scan(&check)
				db.Close()
				missing := 0
				for _, k := range acked {
					if !present[k] {
						missing++
					}
				}
				if missing > 0 || check != "ok" {
					t.Fatalf("round %d: %d of %d acknowledged rows missing after SIGKILL; integrity_check %q", round, missing, len(acked), check)
				}
				t.Logf("round %d: %d acknowledged rows all present (%d rows in file)", round, len(acked), len(present))
			}
		})
	}
}

// killRound runs one server process, loads it, kills it, and returns the
// keys whose inserts got a 2xx answer.
func killRound(t *testing.T, path, syncMode string, round, clients int) []string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestWriteChildProcess$")
	cmd.Env = append(os.Environ(), childEnvDB+"="+path, childEnvSync+"="+syncMode)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	defer func() {
		if !killed {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()
	addrc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "ADDR "); ok {
				addrc <- a
				break
			}
		}
		io.Copy(io.Discard, out)
	}()
	var addr string
	select {
	case addr = <-addrc:
	case <-time.After(60 * time.Second):
		t.Fatal("child server did not start")
	}
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	var (
		mu    sync.Mutex
		acked []string
		wg    sync.WaitGroup
	)
	stop := make(chan struct{})
	const perClient = 2000 // bound: the kill comes long before this
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perClient; i++ {
				select {
				case <-stop:
					return
				default:
				}
				k := fmt.Sprintf("r%d-c%d-%d", round, c, i)
				res, err := client.Post("http://"+addr+"/kill/t/-/insert", "application/json",
					strings.NewReader(`{"row": {"k": "`+k+`"}}`))
				if err != nil {
					return // the server is gone
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode/100 == 2 {
					mu.Lock()
					acked = append(acked, k)
					mu.Unlock()
				} else if res.StatusCode != 503 {
					t.Errorf("insert %s: status %d", k, res.StatusCode)
					return
				}
			}
		}()
	}
	// Kill once a few hundred rows are acknowledged, mid-load.
	deadline := time.Now().Add(60 * time.Second)
	for {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 300 || time.Now().After(deadline) {
			break
		}
		time.Sleep(2 * time.Millisecond) // polling the counter, not synchronising
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed = true
	cmd.Wait()
	close(stop)
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if len(acked) == 0 {
		t.Fatal("no insert was acknowledged before the kill")
	}
	return append([]string(nil), acked...)
}
