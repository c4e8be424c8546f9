package bench_test

import (
	"strings"
	"testing"

	"lode/internal/bench"
	"lode/internal/report"
)

func TestParseTolerance(t *testing.T) {
	for in, want := range map[string]float64{"10%": 0.1, "0.1": 0.1, "25": 0.25, "0%": 0} {
		if got, err := bench.ParseTolerance(in); err != nil || got != want {
			t.Errorf("ParseTolerance(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := bench.ParseTolerance("ten"); err == nil || !strings.Contains(err.Error(), "--tolerance") {
		t.Errorf("ParseTolerance(ten) = %v; want an error naming --tolerance", err)
	}
}

func TestCompare(t *testing.T) {
	cell := func(id int, key string, okrps, p99, errRate float64) report.Cell {
		return report.Cell{ID: id, Key: key, Status: report.StatusOK, OKRPS: okrps, P99MS: p99, ErrorRate: errRate}
	}
	base := &report.Results{Cells: []report.Cell{
		cell(1, "a", 1000, 10, 0), cell(2, "b", 1000, 10, 0), cell(3, "c", 1000, 10, 0.01), cell(4, "d", 1000, 10, 0), cell(5, "e", 1000, 10, 0)}}
	cur := &report.Results{Cells: []report.Cell{
		cell(1, "a", 950, 10.5, 0),  // within 10%
		cell(2, "b", 800, 10, 0),    // throughput -20%
		cell(3, "c", 1000, 10, 0.2), // errors up
		cell(4, "d", 1000, 30, 0),   // p99 tripled
		{ID: 5, Key: "e", Status: report.StatusFailed, Message: "boom"},
		cell(6, "new", 1, 1, 0),
	}}
	got := bench.Compare(base, cur, 0.10)
	if got.Compared != 4 || len(got.Missing) != 1 || got.Missing[0] != 6 {
		t.Errorf("compared %d, missing %v; want 4 and [6]", got.Compared, got.Missing)
	}
	var lines []string
	for _, r := range got.Regressions {
		lines = append(lines, r.String())
	}
	text := strings.Join(lines, "\n")
	for _, want := range []string{"cell 2 (b): successful req/s 1000 → 800 (-20%)", "cell 3 (c): error rate 1.00% → 20.00%",
		"cell 4 (d): p99 10.0 → 30.0 ms", "cell 5 (e): ran in the baseline, now failed: boom"} {
		if !strings.Contains(text, want) {
			t.Errorf("regressions lack %q:\n%s", want, text)
		}
	}
	if len(got.Regressions) != 4 {
		t.Errorf("got %d regressions; want 4:\n%s", len(got.Regressions), text)
	}
}
