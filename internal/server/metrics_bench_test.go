package server_test

import (
	"context"
	"net/http/httptest"
	"runtime"
	"syscall"
	"testing"
	"time"

	"lode/internal/server"
	"lode/internal/sqlitetest"
)

// BenchmarkRowJSONMetrics measures what the metrics cost a row lookup
// (BenchmarkRowJSON's int-pk case): two servers over copies of the
// fixtures, one with the metrics setting on (the default: request
// counters and the counting VFS) and one with it off, are asked in
// alternating blocks of requests from one goroutine locked to its OS
// thread, so both see the same machine load. It reports each one's time
// and CPU time per request (the thread's, from getrusage: what a request
// costs the thread that serves it, however busy the machine is), and
// on/off, the ratio of their request rates by CPU time (≥ 0.97 is the
// goal).
//
//	go test -tags sqlite_fts5 -run '^$' -bench RowJSONMetrics -benchtime 200000x -count 5 ./internal/server/
func BenchmarkRowJSONMetrics(b *testing.B) {
	var srv [2]*server.Server
	for i, metrics := range []string{"on", "off"} {
		path := sqlitetest.WriteFixtures(b, b.TempDir())
		s, err := server.New(context.Background(), server.Config{Files: []string{path},
			Settings: map[string]string{"metrics": metrics}})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		srv[i] = s
	}
	req := httptest.NewRequest("GET", "/fixtures/cities/7.json", nil)
	for _, s := range srv {
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		if rec.Code != 200 {
			b.Fatalf("GET = %d: %s", rec.Code, rec.Body)
		}
	}
	const block = 500
	var wall, cpu [2]time.Duration
	var n [2]int
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	b.ReportAllocs()
	b.ResetTimer()
	for done, round := 0, 0; done < b.N; round++ {
		v := round % 2
		k := min(block, b.N-done)
		c0, t0 := threadCPU(), time.Now()
		for range k {
			rec := httptest.NewRecorder()
			srv[v].ServeHTTP(rec, req.Clone(req.Context()))
			if rec.Code != 200 {
				b.Fatalf("GET = %d", rec.Code)
			}
		}
		wall[v] += time.Since(t0)
		cpu[v] += threadCPU() - c0
		n[v] += k
		done += k
	}
	b.StopTimer()
	if n[0] == 0 || n[1] == 0 {
		return
	}
	per := func(d time.Duration, n int) float64 { return float64(d.Nanoseconds()) / float64(n) }
	b.ReportMetric(per(wall[0], n[0]), "on-ns/req")
	b.ReportMetric(per(wall[1], n[1]), "off-ns/req")
	b.ReportMetric(per(cpu[0], n[0]), "on-cpu-ns/req")
	b.ReportMetric(per(cpu[1], n[1]), "off-cpu-ns/req")
	b.ReportMetric(per(cpu[1], n[1])/per(cpu[0], n[0]), "on/off")
}

// threadCPU is the calling OS thread's user+system CPU time so far.
func threadCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
