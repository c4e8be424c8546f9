package bench_test

import (
	"testing"

	"lode/internal/report"
)

// batches is a batch-size histogram of n transactions of size each.
func batches(n uint64, size float64) report.Hist {
	h := report.Hist{Le: []float64{1, 2, 4, 8, 16, 32, 64, 128}, Counts: make([]uint64, 9), Count: n, Sum: float64(n) * size}
	for i, le := range h.Le {
		if size <= le {
			h.Counts[i] = n
			return h
		}
	}
	h.Counts[8] = n
	return h
}

// Finding 5 cites the batch sizes the single writer's server reported.
func TestJudgeSyncCitesBatchSizes(t *testing.T) {
	cells := synth(func(c *report.Cell) {
		if c.Workload != "write" || c.JournalMode != "wal" || c.Concurrency != 64 {
			return
		}
		c.OKRPS = 5000
		if c.Synchronous != "full" {
			return
		}
		c.Server = &report.ServerStats{Workers: 1, CommitMS: report.Hist{Count: 100, Sum: 150}, FsyncMS: report.Hist{Count: 100, Sum: 90}}
		switch c.Writer {
		case "single":
			c.OKRPS = 4600
			c.Server.BatchSizes = batches(100, 12)
		case "pool":
			c.OKRPS = 1500
			c.Server.BatchSizes = batches(100, 1)
		}
	})
	want(t, finding(t, cells, 5), report.Reproduced,
		"group commit put 12.0 requests per transaction on average (median ≤ 16, 90% ≤ 16; 100 transactions for 1200 write requests)",
		"COMMIT took 1.50 ms on average, with 100 fsyncs of 0.90 ms",
		"against the pool's 1.0 requests per transaction")
}
