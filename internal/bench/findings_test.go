package bench_test

import (
	"strings"
	"testing"

	"lode/internal/bench"
	"lode/internal/report"
)

// synth fills every default-study cell with results from fn, as a run
// would, so each test states only the numbers its finding looks at.
func synth(fn func(c *report.Cell)) []report.Cell {
	var out []report.Cell
	for _, mc := range bench.DefaultMatrix().Cells {
		c := mc.Report()
		c.Status = report.StatusOK
		c.Requests = 10000
		c.RPS, c.OKRPS, c.RPSMin, c.RPSMax = 1000, 1000, 950, 1050
		c.P50MS, c.P99MS, c.MaxMS = 2, 10, 20
		fn(&c)
		out = append(out, c)
	}
	return out
}

func locked(c *report.Cell, rate float64) {
	c.LockErrors = int64(rate * float64(c.Requests))
	c.Errors = c.LockErrors
	c.ErrorRate = rate
	c.OKRPS = c.RPS * (1 - rate)
}

func finding(t *testing.T, cells []report.Cell, n int) report.Finding {
	t.Helper()
	fs := bench.Judge(cells)
	if len(fs) != 5 {
		t.Fatalf("Judge returned %d findings; want 5", len(fs))
	}
	f := fs[n-1]
	if f.N != n || f.Title == "" {
		t.Fatalf("finding %d = %+v", n, f)
	}
	return f
}

func want(t *testing.T, f report.Finding, verdict string, substrings ...string) {
	t.Helper()
	if f.Verdict != verdict {
		t.Errorf("finding %d verdict = %q; want %q (summary: %s)", f.N, f.Verdict, verdict, f.Summary)
	}
	for _, s := range substrings {
		if !strings.Contains(f.Summary, s) {
			t.Errorf("finding %d summary lacks %q: %s", f.N, s, f.Summary)
		}
	}
}

func isF1(c *report.Cell) bool {
	return c.Workload == "write" && c.Writer == "pool" && c.BusyTimeout == "5s" && c.Synchronous == "full" && c.TxLock == "immediate"
}

func TestJudgeJournal(t *testing.T) {
	cells := synth(func(c *report.Cell) {
		if isF1(c) && c.JournalMode == "delete" && c.Concurrency >= 8 {
			locked(c, 0.0005*float64(c.Concurrency))
		}
	})
	f := finding(t, cells, 1)
	want(t, f, report.Reproduced, "Errors begin at 8 concurrent writers", "c=64 3.2%")
	if len(f.Cells) != 6 {
		t.Errorf("finding 1 cites cells %v; want the 6 journal × concurrency cells", f.Cells)
	}

	cells = synth(func(c *report.Cell) {
		if isF1(c) && c.Concurrency >= 8 {
			locked(c, 0.05)
		}
	})
	want(t, finding(t, cells, 1), report.NotReproduced, "WAL does not remove them")

	cells = synth(func(c *report.Cell) {})
	want(t, finding(t, cells, 1), report.NotReproduced, "No lock errors in rollback mode up to 64", "within the 5s busy timeout", "At c=64 WAL served 1000 successful req/s vs 1000")

	cells = synth(func(c *report.Cell) {
		if isF1(c) && c.JournalMode == "wal" {
			c.Status = report.StatusFailed
		}
	})
	want(t, finding(t, cells, 1), report.Inconclusive, "needs write cells")
}

func TestJudgeTimeout(t *testing.T) {
	f2 := func(c *report.Cell) bool {
		return c.Workload == "write" && c.Writer == "pool" && c.JournalMode == "delete" && c.Concurrency == 64
	}
	cells := synth(func(c *report.Cell) {
		if f2(c) {
			switch c.BusyTimeout {
			case "100ms":
				locked(c, 0.30)
			case "5s":
				locked(c, 0.02)
			case "20s":
				c.P99MS, c.MaxMS = 900, 4000
			}
		}
	})
	f := finding(t, cells, 2)
	want(t, f, report.Reproduced, "cut lock errors from 30.0% to 0%", "p99 10 → 900 ms")
	if len(f.Cells) != 3 {
		t.Errorf("finding 2 cites %v; want the 100ms, 5s and 20s cells", f.Cells)
	}

	cells = synth(func(c *report.Cell) {
		if f2(c) {
			locked(c, 0.2)
			c.Locks = []report.LockCause{{Cause: "upgrade refused", Count: c.LockErrors, Buckets: []report.Bucket{{LeMS: 1, Count: c.LockErrors}}}}
		}
	})
	want(t, finding(t, cells, 2), report.NotReproduced, "left 20.0% lock errors", "refused lock upgrades")

	want(t, finding(t, synth(func(c *report.Cell) {}), 2), report.Inconclusive, "nothing for a longer timeout to remove")
}

func TestJudgeWorkers(t *testing.T) {
	scale := func(gain float64) []report.Cell {
		return synth(func(c *report.Cell) {
			if c.Workers != "" {
				w := float64(c.Workers[0] - '0')
				c.RPS = 1000 * (1 + gain*(w-1))
				c.OKRPS, c.RPSMin, c.RPSMax = c.RPS, c.RPS*0.97, c.RPS*1.03
				c.ServerCPU = 190
			}
		})
	}
	want(t, finding(t, scale(0.3), 3), report.Reproduced, "4 w: 1900 req/s (1.90x)")
	want(t, finding(t, scale(0), 3), report.NotReproduced, "more workers do not help", "190% CPU")
	// Rises then falls: 2 workers help, 4 oversubscribe.
	peak := synth(func(c *report.Cell) {
		if c.Workers != "" {
			c.RPS = map[string]float64{"1": 1000, "2": 2000, "4": 800}[c.Workers]
			c.OKRPS, c.RPSMin, c.RPSMax = c.RPS, c.RPS*0.97, c.RPS*1.03
		}
	})
	want(t, finding(t, peak, 3), report.Reproduced, "best at 2 workers", "4 w: 800 req/s (0.80x)")
	noisy := synth(func(c *report.Cell) {
		if c.Workers != "" {
			w := float64(c.Workers[0] - '0')
			c.RPS = 1000 * (1 + 0.05*(w-1))
			c.OKRPS, c.RPSMin, c.RPSMax = c.RPS, c.RPS*0.7, c.RPS*1.3
		}
	})
	want(t, finding(t, noisy, 3), report.Inconclusive, "within the spread")
	// An external target's workers are reported next to lode's.
	cells := scale(0.3)
	for _, w := range []string{"1", "2", "4"} {
		cells = append(cells, report.Cell{ID: 100, Target: "datasette", Workers: w, Workload: "read", Concurrency: 32,
			Status: report.StatusOK, Requests: 100, OKRPS: 20 * float64(w[0]-'0'), RPS: 20 * float64(w[0]-'0')})
	}
	want(t, finding(t, cells, 3), report.Reproduced, "datasette read c=32 — 1 w: 20 req/s (1.00x), 2 w: 40 req/s (2.00x)")
}

func TestJudgeTxLock(t *testing.T) {
	cells := synth(func(c *report.Cell) {
		if c.Workload == "txn" && c.TxLock == "deferred" {
			locked(c, 0.4)
			c.Locks = []report.LockCause{{Cause: bench.CauseUpgrade, Count: c.LockErrors}}
		}
	})
	want(t, finding(t, cells, 4), report.Reproduced, "deferred 40.0% lock errors (100% without waiting for the lock: refused upgrades)",
		"immediate 0%", "1.7x the successful throughput")

	cells = synth(func(c *report.Cell) {
		if c.Workload == "txn" {
			locked(c, 0.3)
		}
	})
	want(t, finding(t, cells, 4), report.NotReproduced)

	cells = synth(func(c *report.Cell) {
		if c.Workload == "txn" && c.TxLock == "immediate" {
			c.Status = report.StatusFailed
		}
	})
	want(t, finding(t, cells, 4), report.Inconclusive, "needs txn cells")
}

func TestJudgeSync(t *testing.T) {
	cells := func(singleFull, poolFull float64) []report.Cell {
		return synth(func(c *report.Cell) {
			if c.Workload != "write" || c.JournalMode != "wal" || c.Concurrency != 64 {
				return
			}
			c.OKRPS = 5000
			if c.Synchronous == "full" && c.Writer == "single" {
				c.OKRPS = singleFull
			}
			if c.Synchronous == "full" && c.Writer == "pool" {
				c.OKRPS = poolFull
			}
		})
	}
	f := finding(t, cells(4600, 1500), 5)
	want(t, f, report.Reproduced, "writer single", "FULL keeps 92% of OFF", "group commit served 3.1x the pool's successful throughput (4600 vs 1500 req/s)")
	if len(f.Cells) != 6 {
		t.Errorf("finding 5 cites %v; want 6 cells", f.Cells)
	}
	want(t, finding(t, cells(2000, 1500), 5), report.NotReproduced, "keeps only 40% of OFF")
	want(t, finding(t, cells(5000, 4900), 5), report.NotReproduced, "FULL costs little")
	want(t, finding(t, nil, 5), report.Inconclusive)
}

func TestJudgeSkipsBrokenCells(t *testing.T) {
	cells := synth(func(c *report.Cell) {
		if c.Workload == "txn" {
			c.Errors, c.ErrorRate, c.OKRPS = c.Requests, 1, 0
			c.ErrorsByMessage = map[string]int64{"405 Method not allowed: POST": c.Requests}
		}
	})
	want(t, finding(t, cells, 4), report.Inconclusive, "needs txn cells", "Not judged: cells 12-15")
}

// TestJudgeWarnsGeneratorBound: a verdict resting on cells the load
// generator limited says so and names them; other verdicts do not.
func TestJudgeWarnsGeneratorBound(t *testing.T) {
	cells := synth(func(c *report.Cell) {
		c.GenCPU, c.ServerCPU = 40, 100
		if c.Workers == "2" || c.Workers == "4" {
			c.GenCPU, c.ServerCPU, c.GenBound = 80, 110, true
		}
	})
	fs := bench.Judge(cells)
	var bound []int
	for _, c := range cells {
		if c.GenBound {
			bound = append(bound, c.ID)
		}
	}
	w := fs[2].Warning
	if !strings.Contains(w, "Generator-bound: in cells "+report.CellList(bound)) || !strings.Contains(w, "generator 80%, server 110%") || !strings.Contains(w, "floor") {
		t.Errorf("finding 3 warning = %q; want it to name cells %v with their CPU", w, bound)
	}
	for _, f := range fs {
		if f.N != 3 && f.Warning != "" {
			t.Errorf("finding %d warns %q; none of its cells was generator-bound", f.N, f.Warning)
		}
	}
}
