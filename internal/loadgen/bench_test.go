package loadgen_test

import (
	"context"
	"testing"
	"time"

	"lode/internal/loadgen"
)

// BenchmarkClosedLoopHello measures the generator end to end against an
// in-process hello-world server (both share the CPU, so this is a floor;
// compare with wrk and hey as described in README.md).
//
//	go test -tags sqlite_fts5 -run '^$' -bench ClosedLoop ./internal/loadgen/
func BenchmarkClosedLoopHello(b *testing.B) {
	for _, users := range []int{1, 32} {
		b.Run(map[int]string{1: "users=1", 32: "users=32"}[users], func(b *testing.B) {
			srv := helloServer(b)
			b.ReportAllocs()
			b.ResetTimer()
			res, err := loadgen.Run(context.Background(), loadgen.Config{
				Scenario: loadgen.URLScenario(srv.URL), Users: users, MaxRequests: int64(b.N),
			})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(res.Total.RPS, "req/s")
			b.ReportMetric(float64(res.Total.P99.Microseconds()), "p99-µs")
		})
	}
}

// BenchmarkHistogramRecord is the cost of recording one latency.
func BenchmarkHistogramRecord(b *testing.B) {
	h := loadgen.NewHistogram()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		h.Record(1000 + int64ToDuration(i%100000))
	}
}

func int64ToDuration(i int) time.Duration { return time.Duration(i) * time.Microsecond }
