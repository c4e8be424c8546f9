package bench

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"lode/internal/report"
)

// The study's five findings about SQLite settings, each judged per group of
// cells that differ only in the finding's dimension, for any target.

// judgeJournal: finding 1. Plain write cells (insert, hot counter) that
// differ only in journal mode and concurrency. Lode's single writer never
// meets SQLite's lock (that is its design), so lode cells count only with
// writer=pool, one connection per request like a threaded app server.
func judgeJournal(cells []report.Cell) []judged {
	var cand []report.Cell
	for _, c := range cells {
		if (c.Workload == "write" || c.Workload == "counter") && c.Rate == 0 && c.JournalMode != "" &&
			(c.Target != LodeTarget || c.Writer == "pool") && c.Engine != EnginePostgres {
			cand = append(cand, c)
		}
	}
	groups, order := groupBy(cand, func(c report.Cell) string { return groupKey(c, "journal_mode", "load") })
	var out []judged
	for _, k := range order {
		var rb, wal []report.Cell
		for _, c := range groups[k] {
			if isRollback(c.JournalMode) {
				rb = append(rb, c)
			} else {
				wal = append(wal, c)
			}
		}
		if len(rb) > 0 && len(wal) > 0 {
			out = append(out, judgeJournalGroup(byConcurrency(rb), byConcurrency(wal)))
		}
	}
	return out
}

func judgeJournalGroup(rb, wal []report.Cell) judged {
	var first *report.Cell
	maxRB, maxWAL := 0.0, 0.0
	for i := range rb {
		r := lockRate(rb[i])
		if first == nil && r >= errorFloor {
			first = &rb[i]
		}
		maxRB = max(maxRB, r)
	}
	for _, c := range wal {
		maxWAL = max(maxWAL, lockRate(c))
	}
	var rbParts, walParts []string
	for _, c := range rb {
		rbParts = append(rbParts, fmt.Sprintf("c=%d %s", c.Concurrency, pct(lockRate(c))))
	}
	for _, c := range wal {
		walParts = append(walParts, fmt.Sprintf("c=%d %s", c.Concurrency, pct(lockRate(c))))
	}
	last := rb[len(rb)-1]
	workers := ""
	if last.Workers != "" {
		// A pre-fork server with N single-threaded workers has at most N
		// connections writing, whatever the number of clients.
		workers = ", " + settingText("workers", last.Workers)
	}
	setting := fmt.Sprintf("(%s%s, busy_timeout %s, txlock %s)", last.Workload, workers, dashIfEmpty(last.BusyTimeout), dashIfEmpty(last.TxLock))
	evidence := fmt.Sprintf("Lock errors %s — rollback journal: %s; WAL: %s.", setting, strings.Join(rbParts, ", "), strings.Join(walParts, ", "))
	j := judged{cells: ids(rb, wal), rep: last}
	switch {
	case first == nil:
		j.verdict = report.NotReproduced
		j.short = fmt.Sprintf("no lock errors up to c=%d", last.Concurrency)
		j.summary = fmt.Sprintf("%s No lock errors in rollback mode up to %d concurrent clients: every lock wait (p99 %.0f ms, max %.0f ms at c=%d) ended within the %s busy timeout.%s",
			evidence, last.Concurrency, last.P99MS, last.MaxMS, last.Concurrency, dashIfEmpty(last.BusyTimeout), walGain(rb, wal))
	case maxWAL <= removedFactor*maxRB:
		j.verdict = report.Reproduced
		j.short = fmt.Sprintf("rollback up to %s from c=%d, WAL %s", pct(maxRB), first.Concurrency, pct(maxWAL))
		j.summary = fmt.Sprintf("%s Errors begin at %d concurrent writers%s; WAL keeps them at most %s.%s", evidence, first.Concurrency, causeNote(last), pct(maxWAL), walGain(rb, wal))
	default:
		j.verdict = report.NotReproduced
		j.short = fmt.Sprintf("WAL still %s", pct(maxWAL))
		j.summary = fmt.Sprintf("%s Errors begin at %d concurrent writers in rollback mode, but WAL does not remove them (up to %s).", evidence, first.Concurrency, pct(maxWAL))
	}
	return j
}

// walGain compares successful throughput at the highest concurrency both
// journal modes ran.
func walGain(rb, wal []report.Cell) string {
	for i := len(rb) - 1; i >= 0; i-- {
		for _, w := range wal {
			if w.Concurrency == rb[i].Concurrency && rb[i].OKRPS > 0 {
				return fmt.Sprintf(" At c=%d WAL served %.0f successful req/s vs %.0f in rollback mode (%.1fx).",
					w.Concurrency, w.OKRPS, rb[i].OKRPS, w.OKRPS/rb[i].OKRPS)
			}
		}
	}
	return ""
}

// judgeTimeout: finding 2. Rollback-journal write cells that differ only in
// busy timeout, the longest ≥ 10 s; the longest against the shortest.
func judgeTimeout(cells []report.Cell) []judged {
	var cand []report.Cell
	for _, c := range cells {
		if writes(c.Workload) && isRollback(c.JournalMode) && c.BusyTimeout != "" && c.Rate == 0 {
			cand = append(cand, c)
		}
	}
	groups, order := groupBy(cand, func(c report.Cell) string { return groupKey(c, "busy_timeout") })
	var out []judged
	for _, k := range order {
		g := groups[k]
		slices.SortFunc(g, func(a, b report.Cell) int { return cmp.Compare(busy(a), busy(b)) })
		if len(g) < 2 || busy(g[len(g)-1]) < 10*time.Second {
			continue
		}
		out = append(out, judgeTimeoutGroup(g))
	}
	return out
}

func judgeTimeoutGroup(g []report.Cell) judged {
	short, long := g[0], g[len(g)-1]
	var parts []string
	for _, c := range g {
		p := fmt.Sprintf("busy %s: %s lock errors, %.0f ok req/s, p99 %.0f ms, max %.0f ms", c.BusyTimeout, pct(lockRate(c)), c.OKRPS, c.P99MS, c.MaxMS)
		if c.Unfinished > 0 {
			p += fmt.Sprintf(", %d still waiting when the run ended", c.Unfinished)
		}
		parts = append(parts, p)
	}
	evidence := fmt.Sprintf("%s at c=%d, writer=%s — %s.", short.Workload, short.Concurrency, dashIfEmpty(short.Writer), strings.Join(parts, "; "))
	j := judged{cells: ids(g), rep: long,
		short: fmt.Sprintf("busy %s %s → %s %s", short.BusyTimeout, pct(lockRate(short)), long.BusyTimeout, pct(lockRate(long)))}
	switch {
	case lockRate(short) < errorFloor:
		j.verdict = report.Inconclusive
		j.short = fmt.Sprintf("no lock errors even at busy %s", short.BusyTimeout)
		j.summary = evidence + fmt.Sprintf(" Even busy_timeout %s produced no lock errors here, so there was nothing for a longer timeout to remove.", short.BusyTimeout)
	case lockRate(long) <= removedFactor*lockRate(short):
		j.verdict = report.Reproduced
		cost := "no visible tail-latency cost"
		if long.P99MS > 1.2*short.P99MS || long.MaxMS > 1.2*short.MaxMS {
			cost = fmt.Sprintf("a tail-latency cost: p99 %.0f → %.0f ms, max %.0f → %.0f ms", short.P99MS, long.P99MS, short.MaxMS, long.MaxMS)
		}
		j.summary = evidence + fmt.Sprintf(" The %s timeout cut lock errors from %s%s to %s, with %s.", long.BusyTimeout, pct(lockRate(short)), causeNote(short), pct(lockRate(long)), cost)
	default:
		j.verdict = report.NotReproduced
		why := ""
		if immediateFailures(long) {
			why = " Most remaining failures came at once (refused lock upgrades), which no timeout can help."
		}
		j.summary = evidence + fmt.Sprintf(" The %s timeout left %s lock errors (vs %s).%s", long.BusyTimeout, pct(lockRate(long)), pct(lockRate(short)), why)
	}
	return j
}

// causeNote summarises a cell's lock failures by cause, e.g. " (92% without
// waiting for the lock)"; empty when it had none.
func causeNote(c report.Cell) string {
	var noWait, timeout, all int64
	for _, l := range c.Locks {
		all += l.Count
		switch l.Cause {
		case CauseUpgrade, CauseAtOnceWAL, CauseSnapshot:
			noWait += l.Count
		case CauseTimeout:
			timeout += l.Count
		}
	}
	switch {
	case all == 0:
		return ""
	case noWait*10 >= all*9:
		return fmt.Sprintf(" (%.0f%% without waiting for the lock: refused upgrades%s)", 100*float64(noWait)/float64(all), walSnap(c))
	case timeout*10 >= all*9:
		return fmt.Sprintf(" (%.0f%% after exhausting the busy timeout)", 100*float64(timeout)/float64(all))
	}
	return fmt.Sprintf(" (%d without waiting, %d after the busy timeout, %d other)", noWait, timeout, all-noWait-timeout)
}

func walSnap(c report.Cell) string {
	if c.JournalMode == "wal" {
		return " or stale snapshots"
	}
	return ""
}

// immediateFailures reports whether most lock errors failed within 10 ms.
func immediateFailures(c report.Cell) bool {
	var fast, all int64
	for _, l := range c.Locks {
		for _, b := range l.Buckets {
			all += b.Count
			if b.LeMS >= 0 && b.LeMS <= 10 {
				fast += b.Count
			}
		}
	}
	return all > 0 && fast*2 > all
}

// judgeWorkers: finding 3. Cells that differ only in worker count, for
// every target.
func judgeWorkers(cells []report.Cell) []judged {
	var cand []report.Cell
	for _, c := range cells {
		if c.Workers != "" {
			cand = append(cand, c)
		}
	}
	groups, order := groupBy(cand, func(c report.Cell) string { return groupKey(c, "workers") })
	var out []judged
	for _, k := range order {
		g := groups[k]
		if len(g) < 2 {
			continue
		}
		if j, ok := judgeWorkersGroup(g); ok {
			out = append(out, j)
		}
	}
	return out
}

func judgeWorkersGroup(g []report.Cell) (judged, bool) {
	slices.SortFunc(g, func(a, b report.Cell) int { return cmp.Compare(workersOf(a), workersOf(b)) })
	base := g[0]
	for _, c := range g {
		if workersOf(c) == 1 {
			base = c
			break
		}
	}
	// The best worker count above the base: a curve that rises then falls
	// (2 workers help, 4 oversubscribe 2 cores) still shows that workers
	// help, and where.
	var top report.Cell
	for _, c := range g {
		if workersOf(c) > workersOf(base) && c.OKRPS > top.OKRPS {
			top = c
		}
	}
	if top.ID == 0 || base.OKRPS <= 0 {
		return judged{}, false
	}
	var line []string
	for _, c := range g {
		line = append(line, fmt.Sprintf("%s w: %.0f req/s (%.2fx)", c.Workers, c.OKRPS, c.OKRPS/base.OKRPS))
	}
	j := judged{cells: ids(g), rep: base}
	summary := fmt.Sprintf("%s %s c=%d — %s", base.Target, base.Workload, base.Concurrency, strings.Join(line, ", "))
	ratio := top.OKRPS / base.OKRPS
	switch {
	case ratio >= gainFactor && top.RPSMin > base.RPSMax:
		j.verdict = report.Reproduced
		j.short = fmt.Sprintf("%.1fx at %s workers", ratio, top.Workers)
		summary += fmt.Sprintf(" — best at %s workers", top.Workers)
	case ratio >= gainFactor:
		j.verdict = report.Inconclusive
		j.short = fmt.Sprintf("%.1fx at %s workers, within the spread", ratio, top.Workers)
		summary += fmt.Sprintf(" (the gain is within the spread of repeats: %s vs %s)", report.Spread(&top), report.Spread(&base))
	default:
		j.verdict = report.NotReproduced
		j.short = fmt.Sprintf("best %.2fx; %s worker already used %.0f%% CPU", ratio, base.Workers, base.ServerCPU)
		summary += fmt.Sprintf(" — more workers do not help here: with %s worker the server already used %.0f%% CPU (100%% = one core)", base.Workers, base.ServerCPU)
	}
	j.summary = summary + "."
	return j, true
}

func workersOf(c report.Cell) int {
	n, err := strconv.Atoi(c.Workers)
	if err != nil {
		return -1
	}
	return n
}

// judgeTxLock: finding 4. txn cells that differ only in txlock.
func judgeTxLock(cells []report.Cell) []judged {
	var cand []report.Cell
	for _, c := range cells {
		if c.Workload == "txn" && c.TxLock != "" {
			cand = append(cand, c)
		}
	}
	groups, order := groupBy(cand, func(c report.Cell) string { return groupKey(c, "txlock") })
	var out []judged
	for _, k := range order {
		var def, imm *report.Cell
		for i, c := range groups[k] {
			if c.TxLock == "deferred" {
				def = &groups[k][i]
			} else {
				imm = &groups[k][i]
			}
		}
		if def == nil || imm == nil {
			continue
		}
		j := judged{cells: []int{def.ID, imm.ID}, rep: *def,
			short: fmt.Sprintf("deferred %s vs IMMEDIATE %s lock errors", pct(lockRate(*def)), pct(lockRate(*imm)))}
		gain := ""
		if def.OKRPS > 0 {
			gain = fmt.Sprintf(", %.1fx the successful throughput", imm.OKRPS/def.OKRPS)
		}
		j.summary = fmt.Sprintf("journal %s, writer %s, c=%d: deferred %s lock errors%s (%.0f ok req/s) vs immediate %s (%.0f ok req/s%s).",
			dashIfEmpty(def.JournalMode), dashIfEmpty(def.Writer), def.Concurrency, pct(lockRate(*def)), causeNote(*def), def.OKRPS, pct(lockRate(*imm)), imm.OKRPS, gain)
		if lockRate(*def) >= deferredFails && lockRate(*imm) <= removedFactor*lockRate(*def) {
			j.verdict = report.Reproduced
		} else {
			j.verdict = report.NotReproduced
			if lockRate(*def) < deferredFails {
				j.summary += fmt.Sprintf(" Deferred transactions failed less than %s of the time here.", pct(deferredFails))
			}
		}
		out = append(out, j)
	}
	return out
}

// judgeSync: finding 5. Write cells that differ only in synchronous. The
// claim is about lode's single writer (group commit), so lode's
// writer=single groups get the verdict — set against the pool's cost at
// the same settings when the matrix has it — and other groups are shown
// for context with their FULL cost.
func judgeSync(cells []report.Cell) []judged {
	var cand []report.Cell
	for _, c := range cells {
		if c.Workload == "write" && c.Synchronous != "" && c.Rate == 0 {
			cand = append(cand, c)
		}
	}
	type row struct {
		full, ref *report.Cell
		keep      float64 // FULL's share of the faster of NORMAL/OFF
		cells     []int
	}
	groups, order := groupBy(cand, func(c report.Cell) string { return groupKey(c, "synchronous") })
	rows := map[string]*row{}
	for _, k := range order {
		r := &row{}
		var normal, off *report.Cell
		for i, c := range groups[k] {
			r.cells = append(r.cells, c.ID)
			switch c.Synchronous {
			case "full":
				r.full = &groups[k][i]
			case "normal":
				normal = &groups[k][i]
			case "off":
				off = &groups[k][i]
			}
		}
		r.ref = off
		if r.ref == nil {
			r.ref = normal
		}
		if r.full == nil || r.ref == nil {
			continue
		}
		r.keep = r.full.OKRPS / max(r.ref.OKRPS, 1e-9)
		rows[k] = r
	}
	var out []judged
	for _, k := range order {
		r := rows[k]
		if r == nil {
			continue
		}
		f := *r.full
		j := judged{cells: r.cells, rep: f, short: fmt.Sprintf("FULL keeps %.0f%% of %s", 100*r.keep, strings.ToUpper(r.ref.Synchronous))}
		j.summary = fmt.Sprintf("writer %s (journal %s, c=%d): FULL %.0f ok req/s, %s %.0f (FULL = %.0f%%).", dashIfEmpty(f.Writer),
			dashIfEmpty(f.JournalMode), f.Concurrency, f.OKRPS, strings.ToUpper(r.ref.Synchronous), r.ref.OKRPS, 100*r.keep)
		if f.Target == LodeTarget && f.Writer == "single" {
			pc := f
			pc.Writer = "pool"
			pool := rows[groupKey(pc, "synchronous")]
			if pool != nil && pool.full.OKRPS > 0 {
				j.summary += fmt.Sprintf(" At FULL, group commit served %.1fx the pool's successful throughput (%.0f vs %.0f req/s; the pool's FULL = %.0f%% of %s).",
					f.OKRPS/pool.full.OKRPS, f.OKRPS, pool.full.OKRPS, 100*pool.keep, strings.ToUpper(pool.ref.Synchronous))
				j.cells = append(j.cells, pool.cells...)
			}
			var poolFull *report.Cell
			if pool != nil {
				poolFull = pool.full
			}
			j.summary += groupCommitEvidence(&f, poolFull) // evidence.go
			switch {
			case pool != nil && pool.keep > 1/gainFactor:
				j.verdict = report.NotReproduced
				j.summary += " FULL costs little even with one connection per request: an fsync is cheap on this disk, so there is little for group commit to recover."
			case r.keep >= recoveredFactor && (pool == nil || f.OKRPS >= pool.full.OKRPS):
				j.verdict = report.Reproduced
				j.summary += fmt.Sprintf(" With group commit FULL keeps %.0f%% of %s's throughput.", 100*r.keep, strings.ToUpper(r.ref.Synchronous))
			default:
				j.verdict = report.NotReproduced
				j.summary += fmt.Sprintf(" The single writer at FULL keeps only %.0f%% of %s's throughput.", 100*r.keep, strings.ToUpper(r.ref.Synchronous))
			}
		}
		out = append(out, j)
	}
	// The pool groups already quoted by a single-writer group are not
	// repeated.
	quoted := map[int]bool{}
	for _, j := range out {
		if j.verdict != "" {
			for _, id := range j.cells {
				quoted[id] = true
			}
		}
	}
	return slices.DeleteFunc(out, func(j judged) bool { return j.verdict == "" && quoted[j.cells[0]] })
}
