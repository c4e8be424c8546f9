package reliability_test

import (
	"encoding/json"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestResourceLimits checks the limits a public server relies on: a query
// past sql_time_limit_ms is interrupted (400, and the server answers the
// next request), results are cut at max_returned_rows, request bodies past
// 10 MiB get 413 on the write API and on canned write queries, and 200
// slow clients (slowloris-style: some idle, some trickling header bytes)
// do not stop the server from answering others.
func TestResourceLimits(t *testing.T) {
	dir := t.TempDir()
	path := newDB(t, dir, "app.db", "wal",
		"CREATE TABLE items (id INTEGER PRIMARY KEY, k TEXT)",
		"INSERT INTO items (k) VALUES ('a'), ('b')")
	cfg := writeFile(t, dir, "lode.yaml", `databases:
  app:
    queries:
      add:
        sql: INSERT INTO items (k) VALUES (:k)
        write: true
`)
	p := startLode(t, path, "--workers", "2", "--config", cfg, "--root",
		"--setting", "sql_time_limit_ms", "200", "--setting", "max_returned_rows", "100")
	p.waitStatus("2 ready workers", 60*time.Second, (*workersStatus).ready)
	root := createToken(t, "--actor", "root")
	c := newClient()

	t.Run("time limit", func(t *testing.T) {
		q := "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT count(*) FROM c"
		st, b, _ := do(t, c, "GET", p.Base+"app/-/query.json?sql="+url.QueryEscape(q), "", nil)
		var e apiError
		if err := json.Unmarshal(b, &e); err != nil || st != 400 || !strings.Contains(e.Error, "sql_time_limit_ms") {
			t.Fatalf("endless query: status %d %.300s; want 400 naming sql_time_limit_ms", st, b)
		}
		st, b, _ = do(t, c, "GET", p.Base+"app/-/query.json?sql=select+42+as+x", "", nil)
		if st != 200 || !strings.Contains(string(b), "42") {
			t.Fatalf("after an interrupted query: %d %.300s", st, b)
		}
	})

	t.Run("max_returned_rows", func(t *testing.T) {
		q := "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 5000) SELECT x FROM c"
		st, b, _ := do(t, c, "GET", p.Base+"app/-/query.json?sql="+url.QueryEscape(q), "", nil)
		var res struct {
			Rows      []map[string]any `json:"rows"`
			Truncated bool             `json:"truncated"`
		}
		if err := json.Unmarshal(b, &res); err != nil || st != 200 || len(res.Rows) != 100 || !res.Truncated {
			t.Fatalf("5000-row query: status %d, %d rows, truncated %v; want 100 rows, truncated", st, len(res.Rows), res.Truncated)
		}
	})

	t.Run("body limits", func(t *testing.T) {
		big := `{"k": "` + strings.Repeat("x", 11<<20) + `"}`
		for _, path := range []string{"app/add", "app/items/-/insert"} {
			body := big
			if strings.HasSuffix(path, "insert") {
				body = `{"row": ` + big + `}`
			}
			st, b, _ := do(t, c, "POST", p.Base+path, "application/json", strings.NewReader(body), "Authorization", "Bearer "+root)
			var e apiError
			if err := json.Unmarshal(b, &e); err != nil || st != 413 || e.Status != 413 {
				t.Errorf("POST %s with 11 MiB: status %d %.300s; want a 413 JSON error", path, st, b)
			}
		}
	})

	t.Run("slow clients", func(t *testing.T) {
		addr := strings.TrimSuffix(strings.TrimPrefix(p.Base, "http://"), "/")
		const slow = 200
		var wg sync.WaitGroup
		stop := make(chan struct{})
		opened := 0
		var conns []net.Conn
		for i := 0; i < slow; i++ {
			conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err != nil {
				t.Logf("slow connection %d: %v", i, err)
				continue
			}
			opened++
			conns = append(conns, conn)
			if i%2 == 0 {
				continue // idle: connected, sends nothing
			}
			wg.Add(1)
			go func() { // trickles one header byte every 100 ms
				defer wg.Done()
				conn.Write([]byte("GET /app/items.json HTTP/1.1\r\nHost: x\r\n"))
				for j := 0; j < 40; j++ {
					select {
					case <-stop:
						return
					case <-time.After(100 * time.Millisecond):
					}
					if _, err := conn.Write([]byte("X")); err != nil {
						return
					}
				}
			}()
		}
		defer func() {
			close(stop)
			wg.Wait()
			for _, c := range conns {
				c.Close()
			}
		}()
		// While they hold their connections, others are served.
		fresh := newClient()
		served := 0
		for end := time.Now().Add(3 * time.Second); time.Now().Before(end); served++ {
			st, b, _ := do(t, fresh, "GET", p.Base+"app/items.json?_size=1", "", nil)
			if st != 200 {
				t.Fatalf("request %d during %d slow connections: %d %.200s", served, opened, st, b)
			}
			time.Sleep(20 * time.Millisecond) // pacing of the other client, not synchronisation
		}
		t.Logf("%d slow connections (half idle, half trickling headers) for 3 s: %d other requests answered", opened, served)
	})
}
