package bench_test

import (
	"fmt"
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
	if len(fs) != 6 {
		t.Fatalf("Judge returned %d findings; want 6", len(fs))
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
	text := f.Summary
	for _, g := range f.Groups {
		text += "\n" + g.Label + ": " + g.Verdict + ": " + g.Summary
	}
	for _, s := range substrings {
		if !strings.Contains(text, s) {
			t.Errorf("finding %d lacks %q:\n%s", f.N, s, text)
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
	want(t, f, report.Reproduced, "writer single", "FULL keeps 92% of OFF", "group commit served 3.1x the pool's successful throughput (4600 vs 1500 req/s")
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

// cell builds a synthetic measured cell.
func cell(id int, target, app, engine, workload, journal, txlock, workers string, c int, okRPS, lockRate float64) report.Cell {
	x := report.Cell{ID: id, Target: target, App: app, Engine: engine, Workload: workload, JournalMode: journal, TxLock: txlock,
		Workers: workers, Concurrency: c, Status: report.StatusOK, Requests: 10000, RPS: okRPS / (1 - lockRate), OKRPS: okRPS,
		P50MS: 5, P99MS: 50, MaxMS: 100, ServerCPU: 95}
	x.RPSMin, x.RPSMax = x.RPS*0.97, x.RPS*1.03
	x.LockErrors = int64(lockRate * float64(x.Requests))
	x.Errors = x.LockErrors
	x.ErrorRate = lockRate
	if x.LockErrors > 0 {
		x.ErrorsByMessage = map[string]int64{"500 OperationalError: database is locked": x.LockErrors}
	}
	return x
}

// TestJudgePerTargetGroups judges the matrix shape: a Django app
// (journal modes, transaction modes, workers) on SQLite and PostgreSQL,
// datasette-gunicorn, and lode, side by side. Each finding names every
// group with its own numbers.
func TestJudgePerTargetGroups(t *testing.T) {
	var cells []report.Cell
	id := 0
	add := func(c report.Cell) { id++; c.ID = id; cells = append(cells, c) }
	// Finding 1: django writes, rollback vs WAL across concurrency.
	for _, c := range []int{1, 8, 32} {
		rate := map[int]float64{1: 0, 8: 0.02, 32: 0.08}[c]
		add(cell(0, "django", "django", bench.EngineSQLite, "write", "delete", "deferred", "4", c, 200, rate))
		add(cell(0, "django", "django", bench.EngineSQLite, "write", "wal", "deferred", "4", c, 400, 0))
	}
	// Finding 3: workers for django (rollback and WAL), datasette-gunicorn
	// and lode (already CPU-bound at 1 worker).
	for _, w := range []string{"1", "2", "4"} {
		n := float64(w[0] - '0')
		add(cell(0, "django", "django", bench.EngineSQLite, "read", "wal", "immediate", w, 32, 100*n/2+100, 0))
		add(cell(0, "django", "django", bench.EngineSQLite, "read", "delete", "immediate", w, 32, 100-3*n, 0))
		add(cell(0, "datasette-gunicorn", "datasette", bench.EngineSQLite, "read", "", "", w, 32, 20*n*0.65+20*0.35, 0))
		lc := cell(0, "lode", "lode", bench.EngineSQLite, "read", "", "", w, 32, 3700-100*n, 0)
		lc.ServerCPU = 190
		add(lc)
	}
	// Finding 4: django read-then-write, deferred vs IMMEDIATE.
	add(cell(0, "django", "django", bench.EngineSQLite, "txn", "wal", "deferred", "4", 32, 150, 0.30))
	add(cell(0, "django", "django", bench.EngineSQLite, "txn", "wal", "immediate", "4", 32, 260, 0))
	// Finding 6: the same app on PostgreSQL.
	add(cell(0, "django-pg", "django", bench.EnginePostgres, "txn", "", "", "4", 32, 240, 0))
	add(cell(0, "django-pg", "django", bench.EnginePostgres, "write", "", "", "4", 32, 600, 0))

	fs := bench.Judge(cells)
	want(t, fs[0], report.Reproduced, "rollback journal: c=1 0%, c=8 2.0%, c=32 8.0%", "Errors begin at 8 concurrent writers")
	if fs[0].Groups[0].Label != "django" {
		t.Errorf("finding 1 group label = %q; want django", fs[0].Groups[0].Label)
	}
	want(t, fs[2], report.Partly, "Reproduced for django WAL (2.0x at 4 workers) and datasette-gunicorn (3.0x at 4 workers)",
		"not reproduced for django rollback (delete) (best 0.97x; 1 worker already used 95% CPU) and lode (best 0.97x; 1 worker already used 190% CPU)")
	want(t, fs[3], report.Reproduced, "deferred 30.0% lock errors", "immediate 0%")
	want(t, fs[1], report.Inconclusive, "needs rollback-journal write cells")
	f6 := fs[5]
	want(t, f6, report.Partly, "Reproduced for django txn (SQLite IMMEDIATE 1.08x PostgreSQL, no errors)",
		"not reproduced for django write (best SQLite 0.67x PostgreSQL)",
		"PostgreSQL 240 ok req/s, p99 50 ms, 0% errors; SQLite: IMMEDIATE 260 ok req/s (1.08x), p99 50 ms, 0% errors; deferred 150 ok req/s (0.62x), p99 50 ms, 30.0% errors")
	if len(f6.Groups) != 2 {
		t.Fatalf("finding 6 groups = %+v; want txn and write", f6.Groups)
	}
	// The write group compares PostgreSQL with the WAL and rollback cells
	// at the same workers and load (c=32), not the other concurrencies.
	for _, g := range f6.Groups {
		if g.Label == "django write" && len(g.Cells) != 3 {
			t.Errorf("finding 6 write group cites cells %v; want PostgreSQL + 2 SQLite cells at c=32", g.Cells)
		}
	}

	// Repeats that straddle the 80% bar leave the group undecided.
	noisy := append([]report.Cell(nil), cells...)
	for i := range noisy {
		if noisy[i].Engine == bench.EnginePostgres && noisy[i].Workload == "txn" {
			noisy[i].RPSMin, noisy[i].RPSMax = noisy[i].RPS*0.5, noisy[i].RPS*1.6
		}
	}
	want(t, bench.Judge(noisy)[5], report.NotReproduced, "inconclusive for django txn (SQLite IMMEDIATE 1.08x PostgreSQL, within the spread)",
		"repeats overlap the 80% bar (req/s 252–268 vs 120–384)")

	// No verdict when only one engine ran.
	var lite []report.Cell
	for _, c := range cells {
		if c.Engine == bench.EngineSQLite {
			lite = append(lite, c)
		}
	}
	want(t, bench.Judge(lite)[5], report.Inconclusive, "needs cells of one app")
}

// TestJudgeWarnsGeneratorBoundGroup: in a finding judged per group, the
// groups whose cells the generator limited are marked and named in the
// finding's warning; the other groups are not.
func TestJudgeWarnsGeneratorBoundGroup(t *testing.T) {
	var cells []report.Cell
	id := 0
	add := func(c report.Cell) { id++; c.ID = id; cells = append(cells, c) }
	var boundID int
	for _, w := range []string{"1", "2", "4"} {
		n := float64(w[0] - '0')
		c := cell(0, "django", "django", bench.EngineSQLite, "read", "wal", "immediate", w, 32, 100*n/2+100, 0)
		if w == "4" {
			c.GenCPU, c.ServerCPU, c.GenBound = 85, 110, true
			boundID = id + 1
		}
		add(c)
		add(cell(0, "datasette-gunicorn", "datasette", bench.EngineSQLite, "read", "", "", w, 32, 20*n*0.65+20*0.35, 0))
	}
	f := bench.Judge(cells)[2]
	if len(f.Groups) != 2 {
		t.Fatalf("finding 3 groups = %+v; want django and datasette-gunicorn", f.Groups)
	}
	for _, g := range f.Groups {
		switch g.Label {
		case "django":
			if want := fmt.Sprintf("generator-bound: cells %d", boundID); !strings.Contains(g.Warning, want) {
				t.Errorf("django group warning = %q; want %q", g.Warning, want)
			}
		default:
			if g.Warning != "" {
				t.Errorf("group %s warns %q; none of its cells was generator-bound", g.Label, g.Warning)
			}
		}
	}
	for _, want := range []string{fmt.Sprintf("Generator-bound: in cells %d ", boundID), "generator 85%, server 110%", "the verdict for django may change"} {
		if !strings.Contains(f.Warning, want) {
			t.Errorf("finding 3 warning = %q; want %q", f.Warning, want)
		}
	}
}
