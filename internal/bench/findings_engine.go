package bench

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"lode/internal/report"
)

// judgeEngines: finding 6, the study's own question — can SQLite replace
// PostgreSQL for this app? Cells of one app (targets sharing `app:`) on
// both engines are grouped by workload, workers and load; within a group
// every SQLite setting is set against PostgreSQL. SQLite holds up when its
// best setting without errors (below errorFloor) reaches comparableFactor
// of PostgreSQL's successful throughput. The other SQLite settings (often
// the defaults: rollback journal, deferred transactions) are listed with
// their numbers, because "with the right settings" is half the answer.
func judgeEngines(cells []report.Cell) []judged {
	apps := map[string]map[string]bool{}
	for _, c := range cells {
		if c.App == "" || c.Engine == "" {
			continue
		}
		if apps[c.App] == nil {
			apps[c.App] = map[string]bool{}
		}
		apps[c.App][c.Engine] = true
	}
	var cand []report.Cell
	for _, c := range cells {
		if e := apps[c.App]; e[EngineSQLite] && e[EnginePostgres] {
			cand = append(cand, c)
		}
	}
	groups, order := groupBy(cand, func(c report.Cell) string {
		return strings.Join([]string{c.App, c.Workload, c.Workers, dimValue(c, "load")}, "|")
	})
	var out []judged
	for _, k := range order {
		var pg *report.Cell
		var lite []report.Cell
		for i, c := range groups[k] {
			switch {
			case c.Engine == EngineSQLite:
				lite = append(lite, c)
			case pg == nil || c.OKRPS > pg.OKRPS:
				pg = &groups[k][i]
			}
		}
		if pg == nil || len(lite) == 0 || pg.OKRPS <= 0 {
			continue
		}
		out = append(out, judgeEngineGroup(*pg, lite))
	}
	return out
}

func judgeEngineGroup(pg report.Cell, lite []report.Cell) judged {
	// Best first: error-free settings by throughput, then the rest.
	slices.SortStableFunc(lite, func(a, b report.Cell) int {
		ca, cb := a.ErrorRate < errorFloor, b.ErrorRate < errorFloor
		if ca != cb {
			if ca {
				return -1
			}
			return 1
		}
		return cmp.Compare(b.OKRPS, a.OKRPS)
	})
	names := sqliteSettingNames(lite)
	best := lite[0]
	j := judged{rep: pg, cells: append([]int{pg.ID}, ids(lite)...)}
	var parts []string
	for i, c := range lite {
		parts = append(parts, fmt.Sprintf("%s %.0f ok req/s (%.2fx), p99 %.0f ms, %s errors", names[i], c.OKRPS, c.OKRPS/pg.OKRPS, c.P99MS, pct(c.ErrorRate)))
	}
	j.summary = fmt.Sprintf("%s %s, %s, %s — PostgreSQL %.0f ok req/s, p99 %.0f ms, %s errors; SQLite: %s.",
		pg.App, pg.Workload, settingText("workers", pg.Workers), settingText("load", dimValue(pg, "load")),
		pg.OKRPS, pg.P99MS, pct(pg.ErrorRate), strings.Join(parts, "; "))
	ratio := best.OKRPS / pg.OKRPS
	// The repeats' spread decides whether the medians' side of the 80% bar
	// is settled: the verdict stands only if the worst repeat of the
	// winner against the best repeat of the other side agrees.
	surelyAbove := spreadMin(best) >= comparableFactor*spreadMax(pg)
	surelyBelow := spreadMax(best) < comparableFactor*spreadMin(pg)
	switch {
	case best.ErrorRate >= errorFloor:
		j.verdict = report.NotReproduced
		j.short = fmt.Sprintf("every SQLite setting failed, at best %s", pct(best.ErrorRate))
		j.summary += fmt.Sprintf(" No SQLite setting ran without errors (best: %s with %s).", names[0], pct(best.ErrorRate))
	case ratio >= comparableFactor && surelyAbove:
		j.verdict = report.Reproduced
		j.short = fmt.Sprintf("SQLite %s %.2fx PostgreSQL, no errors", names[0], ratio)
		j.summary += fmt.Sprintf(" SQLite with %s served %.2fx PostgreSQL's successful throughput without errors (p99 %.0f vs %.0f ms).", names[0], ratio, best.P99MS, pg.P99MS)
	case ratio < comparableFactor && surelyBelow:
		j.verdict = report.NotReproduced
		j.short = fmt.Sprintf("best SQLite %.2fx PostgreSQL", ratio)
		j.summary += fmt.Sprintf(" The best error-free SQLite setting (%s) reached only %.2fx PostgreSQL's successful throughput.", names[0], ratio)
	default:
		j.verdict = report.Inconclusive
		j.short = fmt.Sprintf("SQLite %s %.2fx PostgreSQL, within the spread", names[0], ratio)
		j.summary += fmt.Sprintf(" The medians put the best error-free SQLite setting (%s) at %.2fx PostgreSQL, but the repeats overlap the %.0f%% bar (req/s %.0f–%.0f vs %.0f–%.0f): run longer or more repeats.",
			names[0], ratio, 100*comparableFactor, spreadMin(best), spreadMax(best), spreadMin(pg), spreadMax(pg))
	}
	if pg.ErrorRate >= errorFloor {
		j.summary += fmt.Sprintf(" (PostgreSQL itself failed %s of requests.)", pct(pg.ErrorRate))
	}
	return j
}

// sqliteSettingNames names each SQLite cell by the settings that differ
// among them, e.g. "WAL IMMEDIATE" and "rollback (delete) deferred"; a
// single cell by the settings it sets, else by its target.
func sqliteSettingNames(cells []report.Cell) []string {
	out := make([]string, len(cells))
	dims := []string{"target", "journal_mode", "txlock", "busy_timeout", "synchronous", "writer"}
	if len(cells) == 1 {
		for _, d := range dims[1:] {
			if v := dimValue(cells[0], d); v != "" {
				out[0] = strings.TrimSpace(out[0] + " " + settingText(d, v))
			}
		}
	}
	for _, d := range dims {
		differ := false
		for _, c := range cells {
			if dimValue(c, d) != dimValue(cells[0], d) {
				differ = true
				break
			}
		}
		if !differ {
			continue
		}
		for i, c := range cells {
			out[i] = strings.TrimSpace(out[i] + " " + settingText(d, dimValue(c, d)))
		}
	}
	for i, c := range cells {
		if out[i] == "" {
			out[i] = c.Target
		}
	}
	return out
}

// spreadMin and spreadMax are a cell's slowest and fastest repeat in
// successful req/s (the repeats' spread scaled to the median), or the
// median when the cell ran once.
func spreadMin(c report.Cell) float64 {
	if c.RPS <= 0 || c.RPSMin <= 0 {
		return c.OKRPS
	}
	return c.OKRPS * c.RPSMin / c.RPS
}

func spreadMax(c report.Cell) float64 {
	if c.RPS <= 0 || c.RPSMax <= 0 {
		return c.OKRPS
	}
	return c.OKRPS * c.RPSMax / c.RPS
}
