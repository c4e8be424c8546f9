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

// Finding titles, in the order the study states them.
var findingTitles = []string{
	"Rollback journal returns \"database is locked\" as write concurrency rises; WAL removes them",
	"A 20 s busy timeout removes most errors even in rollback mode, at a tail-latency cost",
	"More worker processes raise throughput (by how much, on this machine)",
	"Deferred read-then-write transactions fail under concurrency; IMMEDIATE does not",
	"synchronous=FULL costs throughput vs NORMAL/OFF; the single writer's group commit recovers most of it",
}

// Thresholds behind the verdicts. They are deliberately simple so a reader
// can check a verdict against the table by hand.
const (
	// errorFloor is the lock-error rate below which a cell counts as
	// error-free (a handful of errors in thousands of requests).
	errorFloor = 0.001
	// removedFactor: errors are "removed" when they fall to this fraction.
	removedFactor = 0.1
	// deferredFails is the lock-error rate at which deferred transactions
	// count as failing.
	deferredFails = 0.01
	// gainFactor is the throughput ratio that counts as a real gain.
	gainFactor = 1.10
	// recoveredFactor: group commit "recovers most" of the FULL cost when
	// FULL keeps this share of OFF's throughput.
	recoveredFactor = 0.80
)

// Judge derives the five findings' verdicts from the cells' results. It
// looks cells up by their settings, not by number, so it works on any
// matrix: a finding whose cells are missing or failed is inconclusive and
// says which cells it needs.
func Judge(cells []report.Cell) []report.Finding {
	ok := make([]report.Cell, 0, len(cells))
	var broken []int
	for _, c := range cells {
		if c.Status != report.StatusOK || c.Requests == 0 {
			continue
		}
		if otherErrorRate(c) > maxOtherErrors {
			broken = append(broken, c.ID)
			continue
		}
		ok = append(ok, c)
	}
	judges := []func([]report.Cell) report.Finding{judgeJournal, judgeTimeout, judgeWorkers, judgeTxLock, judgeSync}
	out := make([]report.Finding, len(judges))
	for i, j := range judges {
		f := j(ok)
		f.N, f.Title = i+1, findingTitles[i]
		if f.Verdict == report.Inconclusive && len(broken) > 0 {
			f.Summary += fmt.Sprintf(" (Not judged: cells %s, where most requests failed with errors other than lock errors — see the table.)", report.CellList(broken))
		}
		if f.Cells == nil {
			f.Cells = []int{}
		}
		f.Warning = genBoundWarning(f.Cells, ok)
		out[i] = f
	}
	return out
}

// genBoundWarning names the cells among ids whose throughput the load
// generator limited (report.Cell.GenBound), or returns "".
func genBoundWarning(ids []int, cells []report.Cell) string {
	var parts []string
	var bound []int
	for _, c := range cells {
		if c.GenBound && slices.Contains(ids, c.ID) {
			bound = append(bound, c.ID)
			parts = append(parts, fmt.Sprintf("cell %d: generator %.0f%%, server %.0f%%", c.ID, c.GenCPU, c.ServerCPU))
		}
	}
	if len(bound) == 0 {
		return ""
	}
	return fmt.Sprintf("Generator-bound: in cells %s the load generator, sharing the machine's cores with the server, took CPU the server could have used (%s; 100%% = one core), so their throughput is a floor, not the server's limit, and this verdict may change. Generate the load from another machine (lode load there, then compare) before relying on it.",
		report.CellList(bound), strings.Join(parts, "; "))
}

// maxOtherErrors is the share of non-lock failures (404, 405, 500,
// transport errors) above which a cell measured something broken, not
// SQLite locking, and is left out of the verdicts.
const maxOtherErrors = 0.10

func otherErrorRate(c report.Cell) float64 {
	if c.Requests == 0 {
		return 0
	}
	return float64(c.Errors-c.LockErrors) / float64(c.Requests)
}

func lockRate(c report.Cell) float64 {
	if c.Requests == 0 {
		return 0
	}
	return float64(c.LockErrors) / float64(c.Requests)
}

func pct(v float64) string {
	switch {
	case v == 0:
		return "0%"
	case v < 0.001:
		return "<0.1%"
	}
	return strconv.FormatFloat(100*v, 'f', 1, 64) + "%"
}

func ids(cs ...[]report.Cell) []int {
	var out []int
	for _, list := range cs {
		for _, c := range list {
			out = append(out, c.ID)
		}
	}
	return out
}

func isRollback(journal string) bool { return journal != "" && journal != "wal" }

// groupBy buckets cells by a key, keeping first-seen order of keys.
func groupBy(cells []report.Cell, key func(report.Cell) string) (map[string][]report.Cell, []string) {
	m := map[string][]report.Cell{}
	var order []string
	for _, c := range cells {
		k := key(c)
		if _, seen := m[k]; !seen {
			order = append(order, k)
		}
		m[k] = append(m[k], c)
	}
	return m, order
}

func byConcurrency(cs []report.Cell) []report.Cell {
	cs = slices.Clone(cs)
	slices.SortFunc(cs, func(a, b report.Cell) int { return a.Concurrency - b.Concurrency })
	return cs
}

func busy(c report.Cell) time.Duration {
	if c.BusyTimeout == "" {
		return -1
	}
	d, _ := time.ParseDuration(c.BusyTimeout)
	return d
}

// judgeJournal: finding 1. Write cells with one connection per request,
// rollback journal vs WAL, across concurrency.
func judgeJournal(cells []report.Cell) report.Finding {
	var cand []report.Cell
	for _, c := range cells {
		if c.Target == LodeTarget && c.Workload == "write" && c.Writer == "pool" && c.Rate == 0 && c.JournalMode != "" {
			cand = append(cand, c)
		}
	}
	groups, order := groupBy(cand, func(c report.Cell) string {
		return strings.Join([]string{c.Synchronous, c.BusyTimeout, c.TxLock, c.Workers}, "|")
	})
	var best string
	bestN := 0
	for _, k := range order {
		var rb, wal int
		for _, c := range groups[k] {
			if isRollback(c.JournalMode) {
				rb++
			} else {
				wal++
			}
		}
		if rb > 0 && wal > 0 && rb+wal > bestN {
			best, bestN = k, rb+wal
		}
	}
	if best == "" {
		return report.Finding{Verdict: report.Inconclusive, Summary: "needs write cells with writer=pool under both the rollback journal (delete) and WAL, at several concurrencies"}
	}
	var rb, wal []report.Cell
	for _, c := range groups[best] {
		if isRollback(c.JournalMode) {
			rb = append(rb, c)
		} else {
			wal = append(wal, c)
		}
	}
	rb, wal = byConcurrency(rb), byConcurrency(wal)
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
	setting := fmt.Sprintf("(busy_timeout %s, txlock %s)", dashIfEmpty(last.BusyTimeout), dashIfEmpty(last.TxLock))
	evidence := fmt.Sprintf("Lock errors %s — rollback journal: %s; WAL: %s.", setting, strings.Join(rbParts, ", "), strings.Join(walParts, ", "))
	f := report.Finding{Cells: ids(rb, wal)}
	switch {
	case first == nil:
		f.Verdict = report.NotReproduced
		f.Summary = fmt.Sprintf("%s No lock errors in rollback mode up to %d concurrent clients: every lock wait (p99 %.0f ms, max %.0f ms at c=%d) ended within the %s busy timeout.%s",
			evidence, last.Concurrency, last.P99MS, last.MaxMS, last.Concurrency, dashIfEmpty(last.BusyTimeout), walGain(rb, wal))
	case maxWAL <= removedFactor*maxRB:
		f.Verdict = report.Reproduced
		f.Summary = fmt.Sprintf("%s Errors begin at %d concurrent writers%s; WAL keeps them at most %s.%s", evidence, first.Concurrency, causeNote(last), pct(maxWAL), walGain(rb, wal))
	default:
		f.Verdict = report.NotReproduced
		f.Summary = fmt.Sprintf("%s Errors begin at %d concurrent writers in rollback mode, but WAL does not remove them (up to %s).", evidence, first.Concurrency, pct(maxWAL))
	}
	return f
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
// busy timeout; the longest (≥ 10 s) against the shortest.
func judgeTimeout(cells []report.Cell) report.Finding {
	var cand []report.Cell
	for _, c := range cells {
		if c.Target == LodeTarget && writes(c.Workload) && isRollback(c.JournalMode) && c.BusyTimeout != "" && c.Rate == 0 {
			cand = append(cand, c)
		}
	}
	groups, order := groupBy(cand, func(c report.Cell) string {
		return strings.Join([]string{c.Workload, c.JournalMode, c.Synchronous, c.TxLock, c.Writer, c.Workers, strconv.Itoa(c.Concurrency)}, "|")
	})
	var pick []report.Cell
	for _, k := range order {
		g := groups[k]
		slices.SortFunc(g, func(a, b report.Cell) int { return cmp.Compare(busy(a), busy(b)) })
		if len(g) < 2 || busy(g[len(g)-1]) < 10*time.Second {
			continue
		}
		// Prefer write over other workloads, then the highest concurrency.
		if pick == nil || (g[0].Workload == "write" && pick[0].Workload != "write") ||
			(g[0].Workload == pick[0].Workload && g[0].Concurrency > pick[0].Concurrency) {
			pick = g
		}
	}
	if pick == nil {
		return report.Finding{Verdict: report.Inconclusive, Summary: "needs rollback-journal write cells that differ only in busy_timeout, one of them ≥ 10s (e.g. 0, 5s, 20s)"}
	}
	short, long := pick[0], pick[len(pick)-1]
	var parts []string
	for _, c := range pick {
		p := fmt.Sprintf("busy %s: %s lock errors, %.0f ok req/s, p99 %.0f ms, max %.0f ms", c.BusyTimeout, pct(lockRate(c)), c.OKRPS, c.P99MS, c.MaxMS)
		if c.Unfinished > 0 {
			p += fmt.Sprintf(", %d still waiting when the run ended", c.Unfinished)
		}
		parts = append(parts, p)
	}
	evidence := fmt.Sprintf("%s at c=%d, writer=%s — %s.", short.Workload, short.Concurrency, dashIfEmpty(short.Writer), strings.Join(parts, "; "))
	f := report.Finding{Cells: ids(pick)}
	switch {
	case lockRate(short) < errorFloor:
		f.Verdict = report.Inconclusive
		f.Summary = evidence + fmt.Sprintf(" Even busy_timeout %s produced no lock errors here, so there was nothing for a longer timeout to remove.", short.BusyTimeout)
	case lockRate(long) <= removedFactor*lockRate(short):
		f.Verdict = report.Reproduced
		cost := "no visible tail-latency cost"
		if long.P99MS > 1.2*short.P99MS || long.MaxMS > 1.2*short.MaxMS {
			cost = fmt.Sprintf("a tail-latency cost: p99 %.0f → %.0f ms, max %.0f → %.0f ms", short.P99MS, long.P99MS, short.MaxMS, long.MaxMS)
		}
		f.Summary = evidence + fmt.Sprintf(" The %s timeout cut lock errors from %s%s to %s, with %s.", long.BusyTimeout, pct(lockRate(short)), causeNote(short), pct(lockRate(long)), cost)
	default:
		f.Verdict = report.NotReproduced
		why := ""
		if immediateFailures(long) {
			why = " Most remaining failures came at once (refused lock upgrades), which no timeout can help."
		}
		f.Summary = evidence + fmt.Sprintf(" The %s timeout left %s lock errors (vs %s).%s", long.BusyTimeout, pct(lockRate(long)), pct(lockRate(short)), why)
	}
	return f
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

// judgeWorkers: finding 3. Cells that differ only in worker count, per
// target; lode's group decides the verdict, other targets are reported.
func judgeWorkers(cells []report.Cell) report.Finding {
	var cand []report.Cell
	for _, c := range cells {
		if c.Workers != "" {
			cand = append(cand, c)
		}
	}
	groups, order := groupBy(cand, func(c report.Cell) string {
		return strings.Join([]string{c.Target, c.Workload, c.JournalMode, c.Synchronous, c.BusyTimeout, c.TxLock, c.Writer,
			strconv.Itoa(c.Concurrency), strconv.FormatFloat(c.Rate, 'f', -1, 64)}, "|")
	})
	f := report.Finding{Verdict: report.Inconclusive, Summary: "needs cells that differ only in workers (e.g. 1, 2, 4)"}
	var parts []string
	decided := false
	for _, k := range order {
		g := groups[k]
		if len(g) < 2 {
			continue
		}
		slices.SortFunc(g, func(a, b report.Cell) int { return cmp.Compare(workersOf(a), workersOf(b)) })
		base := g[0]
		for _, c := range g {
			if workersOf(c) == 1 {
				base = c
				break
			}
		}
		// The best worker count above the base: a curve that rises then
		// falls (2 workers help, 4 oversubscribe 2 cores) still shows
		// that workers help, and where.
		var top report.Cell
		for _, c := range g {
			if workersOf(c) > workersOf(base) && c.OKRPS > top.OKRPS {
				top = c
			}
		}
		if top.ID == 0 {
			continue
		}
		var line []string
		for _, c := range g {
			ratio := 0.0
			if base.OKRPS > 0 {
				ratio = c.OKRPS / base.OKRPS
			}
			line = append(line, fmt.Sprintf("%s w: %.0f req/s (%.2fx)", c.Workers, c.OKRPS, ratio))
		}
		parts = append(parts, fmt.Sprintf("%s %s c=%d — %s", base.Target, base.Workload, base.Concurrency, strings.Join(line, ", ")))
		f.Cells = append(f.Cells, ids(g)...)
		if decided || base.Target != LodeTarget || base.OKRPS <= 0 {
			continue
		}
		decided = true
		ratio := top.OKRPS / base.OKRPS
		switch {
		case ratio >= gainFactor && top.RPSMin > base.RPSMax:
			f.Verdict = report.Reproduced
			parts[len(parts)-1] += fmt.Sprintf(" — best at %s workers", top.Workers)
		case ratio >= gainFactor:
			f.Verdict = report.Inconclusive
			parts[len(parts)-1] += fmt.Sprintf(" (the gain is within the spread of repeats: %s vs %s)", report.Spread(&top), report.Spread(&base))
		default:
			f.Verdict = report.NotReproduced
			parts[len(parts)-1] += fmt.Sprintf(" — more workers do not help here: with %s worker the server already used %.0f%% CPU (100%% = one core)", base.Workers, base.ServerCPU)
		}
	}
	if len(parts) > 0 {
		f.Summary = strings.Join(parts, ". ") + "."
		if !decided {
			f.Summary += " (No lode cells vary workers, so no verdict.)"
		}
	}
	return f
}

func workersOf(c report.Cell) int {
	n, err := strconv.Atoi(c.Workers)
	if err != nil {
		return -1
	}
	return n
}

// judgeTxLock: finding 4. txn cells, deferred vs immediate, per journal.
func judgeTxLock(cells []report.Cell) report.Finding {
	var cand []report.Cell
	for _, c := range cells {
		if c.Target == LodeTarget && c.Workload == "txn" && c.TxLock != "" {
			cand = append(cand, c)
		}
	}
	groups, order := groupBy(cand, func(c report.Cell) string {
		return strings.Join([]string{c.JournalMode, c.Synchronous, c.BusyTimeout, c.Writer, c.Workers, strconv.Itoa(c.Concurrency)}, "|")
	})
	f := report.Finding{}
	var parts []string
	repro, notRepro := 0, 0
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
		f.Cells = append(f.Cells, def.ID, imm.ID)
		gain := ""
		if def.OKRPS > 0 {
			gain = fmt.Sprintf(", %.1fx the successful throughput", imm.OKRPS/def.OKRPS)
		}
		parts = append(parts, fmt.Sprintf("journal %s, writer %s, c=%d: deferred %s lock errors%s (%.0f ok req/s) vs immediate %s (%.0f ok req/s%s)",
			dashIfEmpty(def.JournalMode), dashIfEmpty(def.Writer), def.Concurrency, pct(lockRate(*def)), causeNote(*def), def.OKRPS, pct(lockRate(*imm)), imm.OKRPS, gain))
		if lockRate(*def) >= deferredFails && lockRate(*imm) <= removedFactor*lockRate(*def) {
			repro++
		} else {
			notRepro++
		}
	}
	switch {
	case repro+notRepro == 0:
		f.Verdict = report.Inconclusive
		f.Summary = "needs txn cells that differ only in txlock (deferred vs immediate)"
		return f
	case notRepro == 0:
		f.Verdict = report.Reproduced
	case repro == 0:
		f.Verdict = report.NotReproduced
	default:
		f.Verdict = report.Reproduced
		parts = append(parts, fmt.Sprintf("reproduced in %d of %d comparisons", repro, repro+notRepro))
	}
	f.Summary = strings.Join(parts, "; ") + "."
	if f.Verdict == report.NotReproduced {
		f.Summary += fmt.Sprintf(" Deferred transactions failed less than %s of the time here.", pct(deferredFails))
	}
	return f
}

// judgeSync: finding 5. Write cells that differ only in synchronous, per
// writer mode.
func judgeSync(cells []report.Cell) report.Finding {
	var cand []report.Cell
	for _, c := range cells {
		if c.Target == LodeTarget && c.Workload == "write" && c.Synchronous != "" && c.Rate == 0 {
			cand = append(cand, c)
		}
	}
	groups, order := groupBy(cand, func(c report.Cell) string {
		return strings.Join([]string{c.Writer, c.JournalMode, c.Workers, strconv.Itoa(c.Concurrency)}, "|")
	})
	type row struct{ full, normal, off *report.Cell }
	rows := map[string]*row{}
	f := report.Finding{}
	var parts []string
	for _, k := range order {
		r := &row{}
		for i, c := range groups[k] {
			switch c.Synchronous {
			case "full":
				r.full = &groups[k][i]
			case "normal":
				r.normal = &groups[k][i]
			case "off":
				r.off = &groups[k][i]
			}
		}
		if r.full == nil || (r.normal == nil && r.off == nil) {
			continue
		}
		w := r.full.Writer
		if _, dup := rows[w]; dup {
			continue
		}
		rows[w] = r
		line := fmt.Sprintf("writer %s (journal %s, c=%d): FULL %.0f ok req/s", dashIfEmpty(w), dashIfEmpty(r.full.JournalMode), r.full.Concurrency, r.full.OKRPS)
		for _, o := range []*report.Cell{r.normal, r.off} {
			if o != nil && o.OKRPS > 0 {
				line += fmt.Sprintf(", %s %.0f (FULL = %.0f%%)", strings.ToUpper(o.Synchronous), o.OKRPS, 100*r.full.OKRPS/o.OKRPS)
			}
			if o != nil {
				f.Cells = append(f.Cells, o.ID)
			}
		}
		f.Cells = append(f.Cells, r.full.ID)
		parts = append(parts, line)
	}
	ref := func(r *row) *report.Cell {
		if r.off != nil {
			return r.off
		}
		return r.normal
	}
	single, pool := rows["single"], rows["pool"]
	if single == nil {
		f.Verdict = report.Inconclusive
		f.Summary = "needs write cells with writer=single at synchronous=full and normal or off"
		if len(parts) > 0 {
			f.Summary += " (" + strings.Join(parts, "; ") + ")"
		}
		return f
	}
	keep := single.full.OKRPS / max(ref(single).OKRPS, 1e-9)
	summary := strings.Join(parts, "; ") + "."
	if pool != nil && pool.full.OKRPS > 0 {
		summary += fmt.Sprintf(" At FULL, group commit served %.1fx the pool's successful throughput (%.0f vs %.0f req/s).",
			single.full.OKRPS/pool.full.OKRPS, single.full.OKRPS, pool.full.OKRPS)
	}
	switch {
	case pool != nil && pool.full.OKRPS/max(ref(pool).OKRPS, 1e-9) > 1/gainFactor:
		f.Verdict = report.NotReproduced
		summary += " FULL costs little even with one connection per request: an fsync is cheap on this disk, so there is little for group commit to recover."
	case keep >= recoveredFactor && (pool == nil || single.full.OKRPS >= pool.full.OKRPS):
		f.Verdict = report.Reproduced
		summary += fmt.Sprintf(" With group commit FULL keeps %.0f%% of %s's throughput.", 100*keep, strings.ToUpper(ref(single).Synchronous))
	default:
		f.Verdict = report.NotReproduced
		summary += fmt.Sprintf(" The single writer at FULL keeps only %.0f%% of %s's throughput.", 100*keep, strings.ToUpper(ref(single).Synchronous))
	}
	f.Summary = summary
	return f
}

func dashIfEmpty(s string) string {
	if s == "" {
		return "default"
	}
	return s
}
