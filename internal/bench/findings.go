package bench

import (
	"fmt"
	"maps"
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
	"SQLite can replace PostgreSQL for the same app: with the right settings it serves the same workloads without errors at ≥ 80% of PostgreSQL's throughput",
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
	// comparableFactor: SQLite "serves as well as" PostgreSQL when its best
	// error-free setting reaches this share of PostgreSQL's successful
	// throughput on the same app, workload, workers and load.
	comparableFactor = 0.80
	// cpuBoundShare: a server that used this share of the machine's cores
	// with its fewest workers had no idle CPU for more workers to use.
	cpuBoundShare = 0.8
)

// judged is one group's verdict within a finding.
type judged struct {
	verdict string // "" for a group shown only for context
	short   string // a few words for the finding's one-line summary
	summary string // the numbers behind the verdict
	cells   []int
	rep     report.Cell // a representative cell, for the group's label
}

// Judge derives the six findings' verdicts from the cells' results. It
// looks cells up by their settings, not by number, so it works on any
// matrix and any target: each finding is judged within every group of cells
// that differ only in the dimension the finding is about (per target and
// fixed settings), and its verdict names each group with its numbers. A
// finding without such a group is inconclusive and says which cells it
// needs.
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
	type finding struct {
		judge func([]report.Cell) []judged
		// varied are the dimensions a finding's groups vary, left out of
		// the group labels; needs is the inconclusive message.
		varied []string
		needs  string
	}
	findings := []finding{
		{judgeJournal, []string{"journal_mode", "load"}, "needs write cells under both the rollback journal (delete) and WAL, at several concurrencies, otherwise alike (for lode: writer=pool)"},
		{judgeTimeout, []string{"busy_timeout"}, "needs rollback-journal write cells that differ only in busy_timeout, one of them ≥ 10s (e.g. 0, 5s, 20s)"},
		{judgeWorkers, []string{"workers"}, "needs cells that differ only in workers (e.g. 1, 2, 4)"},
		{judgeTxLock, []string{"txlock"}, "needs txn cells that differ only in txlock (deferred vs immediate)"},
		{judgeSync, []string{"synchronous"}, "needs write cells with writer=single at synchronous=full and normal or off"},
		{judgeEngines, []string{"target", "journal_mode", "synchronous", "busy_timeout", "txlock", "writer"}, "needs cells of one app (targets with the same app:) on SQLite and on PostgreSQL with the same workload, workers and load"},
	}
	out := make([]report.Finding, len(findings))
	for i, fd := range findings {
		f := combine(fd.judge(ok), fd.varied, fd.needs)
		f.N, f.Title = i+1, findingTitles[i]
		if f.Verdict == report.Inconclusive && len(broken) > 0 {
			f.Summary += fmt.Sprintf(" (Not judged: cells %s, where most requests failed with errors other than lock errors — see the table.)", report.CellList(broken))
		}
		if f.Cells == nil {
			f.Cells = []int{}
		}
		f.Warning = genBoundWarning(&f, ok)
		out[i] = f
	}
	return out
}

// genBoundWarning names the cells of f whose throughput the load
// generator limited (report.Cell.GenBound), and the groups they belong
// to when f has several, or returns "". It also marks each such group
// (FindingGroup.Warning).
func genBoundWarning(f *report.Finding, cells []report.Cell) string {
	bound := map[int]report.Cell{}
	for _, c := range cells {
		if c.GenBound && slices.Contains(f.Cells, c.ID) {
			bound[c.ID] = c
		}
	}
	if len(bound) == 0 {
		return ""
	}
	var labels []string
	for i := range f.Groups {
		g := &f.Groups[i]
		var in []int
		for _, id := range g.Cells {
			if _, ok := bound[id]; ok {
				in = append(in, id)
			}
		}
		if len(in) > 0 {
			g.Warning = fmt.Sprintf("generator-bound: cells %s, whose throughput is a floor", report.CellList(in))
			labels = append(labels, g.Label)
		}
	}
	ids := slices.Sorted(maps.Keys(bound))
	var parts []string
	for _, id := range ids {
		c := bound[id]
		parts = append(parts, fmt.Sprintf("cell %d: generator %.0f%%, server %.0f%%", c.ID, c.GenCPU, c.ServerCPU))
	}
	which := "this verdict"
	if len(f.Groups) > 1 {
		which = "the verdict for " + andList(labels)
	}
	return fmt.Sprintf("Generator-bound: in cells %s the load generator, sharing the machine's cores with the server, took CPU the server could have used (%s; 100%% = one core), so their throughput is a floor, not the server's limit, and %s may change. Generate the load from another machine (lode load there, then compare) before relying on it.",
		report.CellList(ids), strings.Join(parts, "; "), which)
}

// combine turns the groups' verdicts into one finding: reproduced when
// every judged group reproduces it, not reproduced when none does, partly
// reproduced otherwise; inconclusive when no group could be judged.
func combine(groups []judged, varied []string, needs string) report.Finding {
	f := report.Finding{Verdict: report.Inconclusive, Summary: needs}
	if len(groups) == 0 {
		return f
	}
	reps := make([]report.Cell, len(groups))
	for i, g := range groups {
		reps[i] = g.rep
	}
	labels := groupLabels(reps, varied)
	by := map[string][]string{}
	for i, g := range groups {
		f.Cells = append(f.Cells, g.cells...)
		f.Groups = append(f.Groups, report.FindingGroup{Label: labels[i], Verdict: g.verdict, Summary: g.summary, Cells: g.cells})
		by[g.verdict] = append(by[g.verdict], labels[i]+" ("+g.short+")")
	}
	slices.Sort(f.Cells)
	f.Cells = slices.Compact(f.Cells)
	yes, no := len(by[report.Reproduced]), len(by[report.NotReproduced])
	switch {
	case yes > 0 && no == 0:
		f.Verdict = report.Reproduced
	case yes == 0 && no > 0:
		f.Verdict = report.NotReproduced
	case yes > 0:
		f.Verdict = report.Partly
	}
	judgedAny := yes+no+len(by[report.Inconclusive]) > 0
	if len(groups) == 1 && judgedAny {
		f.Summary = groups[0].summary
		return f
	}
	var parts []string
	for _, v := range []struct{ verdict, words string }{
		{report.Reproduced, "Reproduced for "}, {report.NotReproduced, "not reproduced for "},
		{report.Inconclusive, "inconclusive for "}, {"", "for context: "},
	} {
		if list := by[v.verdict]; len(list) > 0 {
			parts = append(parts, v.words+andList(list))
		}
	}
	s := strings.Join(parts, "; ") + "."
	f.Summary = strings.ToUpper(s[:1]) + s[1:]
	if !judgedAny {
		f.Summary = needs + ". " + f.Summary
	}
	return f
}

func andList(items []string) string {
	switch len(items) {
	case 0:
		return ""
	case 1:
		return items[0]
	}
	return strings.Join(items[:len(items)-1], ", ") + " and " + items[len(items)-1]
}

// groupDims are the dimensions that identify a group of cells, in label
// order.
var groupDims = []string{"target", "workload", "journal_mode", "synchronous", "busy_timeout", "txlock", "writer", "workers", "load"}

func dimValue(c report.Cell, dim string) string {
	switch dim {
	case "target":
		return c.Target
	case "app":
		return c.App
	case "workload":
		return c.Workload
	case "journal_mode":
		return c.JournalMode
	case "synchronous":
		return c.Synchronous
	case "busy_timeout":
		return c.BusyTimeout
	case "txlock":
		return c.TxLock
	case "writer":
		return c.Writer
	case "workers":
		return c.Workers
	case "load":
		if c.Rate > 0 {
			return "r" + strconv.FormatFloat(c.Rate, 'f', -1, 64)
		}
		return "c" + strconv.Itoa(c.Concurrency)
	}
	return ""
}

// groupKey is the cell's value in every grouping dimension but except.
func groupKey(c report.Cell, except ...string) string {
	var parts []string
	for _, d := range groupDims {
		if !slices.Contains(except, d) {
			parts = append(parts, dimValue(c, d))
		}
	}
	return strings.Join(parts, "|")
}

// settingText names one setting for people: "WAL", "rollback (delete)",
// "IMMEDIATE", "4 workers", "busy 5s", "c=32".
func settingText(dim, v string) string {
	if v == "" && dim != "target" && dim != "workload" {
		return strings.ReplaceAll(dim, "_", " ") + " default"
	}
	switch dim {
	case "journal_mode":
		if v == "wal" {
			return "WAL"
		}
		return "rollback (" + v + ")"
	case "synchronous":
		return "synchronous=" + v
	case "busy_timeout":
		return "busy " + v
	case "txlock":
		if v == "immediate" {
			return "IMMEDIATE"
		}
		return v
	case "writer":
		return "writer=" + v
	case "workers":
		if v == "1" {
			return "1 worker"
		}
		return v + " workers"
	case "load":
		if rate, ok := strings.CutPrefix(v, "r"); ok {
			return rate + "/s"
		}
		return "c=" + strings.TrimPrefix(v, "c")
	}
	return v
}

// groupLabels names groups by their target (app, when targets are what
// the finding compares) and the settings that tell a target's groups apart;
// the varied dimensions are the same within each group and left out.
func groupLabels(reps []report.Cell, varied []string) []string {
	owner := func(c report.Cell) string {
		if slices.Contains(varied, "target") {
			return c.App
		}
		return c.Target
	}
	out := make([]string, len(reps))
	for i, c := range reps {
		out[i] = owner(c)
	}
	for _, d := range groupDims[1:] {
		if slices.Contains(varied, d) {
			continue
		}
		for i, c := range reps {
			for _, o := range reps {
				if owner(o) == owner(c) && dimValue(o, d) != dimValue(c, d) {
					out[i] += " " + settingText(d, dimValue(c, d))
					break
				}
			}
		}
	}
	return out
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

func dashIfEmpty(s string) string {
	if s == "" {
		return "default"
	}
	return s
}
