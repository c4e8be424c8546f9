package bench

import (
	"fmt"
	"strconv"
	"strings"

	"lode/internal/report"
)

// Regression is one cell that got worse than the baseline beyond the
// tolerance.
type Regression struct {
	Cell int    // the new run's cell ID
	Key  string // the cell's settings key
	What string // e.g. "req/s 1200 → 900 (-25%)"
}

func (r Regression) String() string { return fmt.Sprintf("cell %d (%s): %s", r.Cell, r.Key, r.What) }

// Comparison is the outcome of comparing a run with a baseline.
type Comparison struct {
	// Compared counts cells present and measured in both runs.
	Compared int
	// Missing lists new cells that the baseline lacks (not a failure).
	Missing []int
	// Regressions are the cells that got worse beyond the tolerance.
	Regressions []Regression
}

// ParseTolerance parses "10%" or "0.1" into a fraction.
func ParseTolerance(s string) (float64, error) {
	t := strings.TrimSpace(s)
	pct := strings.HasSuffix(t, "%")
	v, err := strconv.ParseFloat(strings.TrimSuffix(t, "%"), 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("--tolerance %q: want a percentage such as 10%% (or a fraction such as 0.1)", s)
	}
	if pct || v > 1 {
		v /= 100
	}
	return v, nil
}

// Compare matches cells by their settings (Key, not number) and reports a
// regression when successful req/s fell by more than tol, p99 rose by more
// than tol (and by at least 1 ms, below which loopback jitter dominates),
// the error rate rose by more than tol relative plus 0.1 percentage point,
// or a cell that ran in the baseline no longer runs.
func Compare(base, cur *report.Results, tol float64) Comparison {
	old := map[string]*report.Cell{}
	for i := range base.Cells {
		old[base.Cells[i].Key] = &base.Cells[i]
	}
	var cmp Comparison
	for i := range cur.Cells {
		c := &cur.Cells[i]
		b, ok := old[c.Key]
		if !ok || b.Status != report.StatusOK {
			cmp.Missing = append(cmp.Missing, c.ID)
			continue
		}
		if c.Status != report.StatusOK {
			cmp.Regressions = append(cmp.Regressions, Regression{c.ID, c.Key, fmt.Sprintf("ran in the baseline, now %s: %s", c.Status, c.Message)})
			continue
		}
		cmp.Compared++
		if b.OKRPS > 0 && c.OKRPS < b.OKRPS*(1-tol) {
			cmp.Regressions = append(cmp.Regressions, Regression{c.ID, c.Key,
				fmt.Sprintf("successful req/s %.0f → %.0f (%+.0f%%)", b.OKRPS, c.OKRPS, 100*(c.OKRPS/b.OKRPS-1))})
		}
		if c.P99MS > b.P99MS*(1+tol) && c.P99MS-b.P99MS >= 1 {
			cmp.Regressions = append(cmp.Regressions, Regression{c.ID, c.Key,
				fmt.Sprintf("p99 %.1f → %.1f ms (%+.0f%%)", b.P99MS, c.P99MS, 100*(c.P99MS/max(b.P99MS, 1e-9)-1))})
		}
		if c.ErrorRate > b.ErrorRate*(1+tol)+0.001 {
			cmp.Regressions = append(cmp.Regressions, Regression{c.ID, c.Key,
				fmt.Sprintf("error rate %.2f%% → %.2f%%", 100*b.ErrorRate, 100*c.ErrorRate)})
		}
	}
	return cmp
}
