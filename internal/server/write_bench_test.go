package server_test

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"lode/internal/sqlitedb"
)

// BenchmarkWriteHTTP drives POST /data/docs/-/insert over real HTTP
// (loopback, in-process server) with 1, 16 and 64 concurrent clients and
// reports successful inserts per second, p99 latency and the number of
// failed requests (503 "database is locked"). Run it as
//
//	go test -tags sqlite_fts5 -run '^$' -bench WriteHTTP -benchtime 3000x ./internal/server/
//
// Cells: synchronous full vs off with the single writer; single vs pool
// writer; WAL vs DELETE journal with busy timeout ~0 (1 ms: a zero
// timeout means "default" in sqlitedb.Settings) vs 5 s, in both writer
// modes.
func BenchmarkWriteHTTP(b *testing.B) {
	type cell struct {
		name string
		db   sqlitedb.Settings
		mode string
	}
	var cells []cell
	for _, syncMode := range []string{"full", "off"} {
		cells = append(cells, cell{"single/wal/sync=" + syncMode + "/busy=5s", sqlitedb.Settings{Synchronous: syncMode}, "single"})
	}
	for _, mode := range []string{"single", "pool"} {
		for _, journal := range []string{"wal", "delete"} {
			for _, busy := range []time.Duration{time.Millisecond, 5 * time.Second} {
				if mode == "single" && journal == "wal" && busy == 5*time.Second {
					continue // the sync=full cell above
				}
				cells = append(cells, cell{fmt.Sprintf("%s/%s/sync=full/busy=%s", mode, journal, busy),
					sqlitedb.Settings{JournalMode: journal, BusyTimeout: busy}, mode})
			}
		}
	}
	for _, c := range cells {
		for _, clients := range []int{1, 16, 64} {
			b.Run(fmt.Sprintf("%s/clients=%d", c.name, clients), func(b *testing.B) {
				e := newWriteEnv(b, envOpts{db: c.db, mode: c.mode, yaml: "permissions:\n  insert-row: true\n"})
				client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients}}
				defer client.CloseIdleConnections()
				var (
					next     atomic.Int64
					okN      atomic.Int64
					errN     atomic.Int64
					mu       sync.Mutex
					lat      []time.Duration
					wg       sync.WaitGroup
					otherErr atomic.Value
				)
				body := `{"row": {"title": "bench", "score": 1.5}}`
				b.ResetTimer()
				start := time.Now()
				for range clients {
					wg.Add(1)
					go func() {
						defer wg.Done()
						var mine []time.Duration
						for next.Add(1) <= int64(b.N) {
							t0 := time.Now()
							res, err := client.Post(e.url+"/data/docs/-/insert", "application/json", strings.NewReader(body))
							if err != nil {
								otherErr.Store(err.Error())
								errN.Add(1)
								continue
							}
							io.Copy(io.Discard, res.Body)
							res.Body.Close()
							mine = append(mine, time.Since(t0))
							switch res.StatusCode {
							case http.StatusCreated:
								okN.Add(1)
							case http.StatusServiceUnavailable:
								errN.Add(1)
							default:
								otherErr.Store(fmt.Sprintf("status %d", res.StatusCode))
								errN.Add(1)
							}
						}
						mu.Lock()
						lat = append(lat, mine...)
						mu.Unlock()
					}()
				}
				wg.Wait()
				elapsed := time.Since(start)
				b.StopTimer()
				if v := otherErr.Load(); v != nil {
					b.Fatalf("unexpected failure: %v", v)
				}
				slices.Sort(lat)
				p99 := lat[min(len(lat)-1, len(lat)*99/100)]
				b.ReportMetric(float64(okN.Load())/elapsed.Seconds(), "ok/s")
				b.ReportMetric(float64(p99.Microseconds())/1000, "p99-ms")
				b.ReportMetric(float64(errN.Load()), "errors")
				if w := e.api.Writer("data"); w != nil && c.mode == "single" {
					s := w.Stats()
					if s.Batches > 0 {
						b.ReportMetric(float64(s.Requests)/float64(s.Batches), "req/batch")
					}
				}
			})
		}
	}
}
