package report_test

import (
	"bytes"
	"encoding/csv"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"lode/internal/report"
)

func sample() *report.Results {
	r := &report.Results{Name: "test study", Command: "lode bench -f m.yaml", Started: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		Duration: "1s", Warmup: "0s", Repeat: 2, Matrix: "cells:\n  - {workload: write}\n",
		Machine: report.Machine{CPU: "Test CPU", Cores: 2, GoVersion: "go1.26", SQLiteVersion: "3.54.1", FsyncMicros: 120}}
	for i, c := range []int{1, 8, 32} {
		cell := report.Cell{ID: i + 1, Target: "lode", JournalMode: "delete", Workload: "write", Concurrency: c, Status: report.StatusOK,
			RPS: float64(100 * (i + 1)), RPSMin: float64(90 * (i + 1)), RPSMax: float64(110 * (i + 1)), OKRPS: float64(90 * (i + 1)),
			P50MS: 1, P99MS: float64(10 * (i + 1)), Requests: 1000, Errors: int64(10 * i), ErrorRate: float64(i) / 100,
			LockErrors: int64(10 * i), ErrorsByMessage: map[string]int64{"503 database is locked": int64(10 * i)},
			Locks:       []report.LockCause{{Cause: "timeout exhausted", Count: int64(10 * i), Buckets: []report.Bucket{{LeMS: 1, Count: 0}, {LeMS: 5000, Count: int64(10 * i)}, {LeMS: -1}}}},
			Percentiles: []report.Percentile{{P: 50, MS: 1}, {P: 90, MS: 3}, {P: 99, MS: 10}, {P: 99.9, MS: 30}},
			Runs:        []report.Run{{RPS: 90}, {RPS: 110}}}
		r.Cells = append(r.Cells, cell)
	}
	r.Cells = append(r.Cells, report.Cell{ID: 4, Target: "datasette", Workload: "read", Concurrency: 8, Status: report.StatusSkipped,
		Message: "datasette: not found in PATH"})
	r.Cells[2].GenCPU, r.Cells[2].ServerCPU, r.Cells[2].GenBound = 80, 115, true
	r.Findings = []report.Finding{{N: 1, Title: "Rollback journal locks <under> load", Verdict: report.Reproduced, Summary: "errors begin at c=8", Cells: []int{1, 2, 3},
		Warning: "Generator-bound: in cells 3 the load generator took CPU"}}
	return r
}

func TestWriteAll(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	index, err := report.WriteAll(dir, sample())
	if err != nil {
		t.Fatal(err)
	}
	if index != filepath.Join(dir, "index.html") {
		t.Errorf("index = %q", index)
	}
	got, err := report.ReadJSON(filepath.Join(dir, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Cells) != 4 || got.Cells[2].P99MS != 30 || got.Findings[0].Verdict != report.Reproduced {
		t.Errorf("results.json round trip lost data: %+v", got.Cells)
	}
	b, err := os.ReadFile(filepath.Join(dir, "results.csv"))
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	col := func(name string) int {
		for i, h := range recs[0] {
			if h == name {
				return i
			}
		}
		t.Fatalf("results.csv has no %s column: %q", name, recs[0])
		return -1
	}
	last := len(recs[0]) - 1
	if len(recs) != 5 || recs[0][0] != "id" || recs[2][1] != "lode" || recs[4][11] != "skipped" || col("engine") != last-1 || col("app") != last-2 ||
		recs[0][last] != "generator_bound" || recs[3][last] != "true" || recs[2][last] != "false" {
		t.Errorf("results.csv = %q", recs)
	}
	html, err := os.ReadFile(index)
	if err != nil {
		t.Fatal(err)
	}
	page := string(html)
	for _, want := range []string{"<svg", "All cells by workload", "Finding 1 — reproduced", "Latency percentiles", "Throughput vs concurrency",
		"Rollback journal locks &lt;under&gt; load", "reproduced", "3.54.1", "lode bench -f m.yaml", "datasette: not found in PATH",
		"timeout exhausted: 20", "1–5000ms: 20", `<div class="warn">⚠ Generator-bound: in cells 3`, "80% ⚠"} {
		if !strings.Contains(page, want) {
			t.Errorf("index.html lacks %q", want)
		}
	}
	if regexp.MustCompile(`(?i)<script|<link|(src|href)="https?:`).MatchString(page) {
		t.Error("index.html refers to external resources or scripts; it must be self-contained")
	}
	if strings.Contains(page, "<?xml") {
		t.Error("index.html embeds an XML declaration inside the page")
	}
}

func TestReadJSONRejectsOtherFiles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.json")
	os.WriteFile(path, []byte(`{"rows": []}`), 0o644)
	if _, err := report.ReadJSON(path); err == nil || !strings.Contains(err.Error(), "not a lode bench results.json") {
		t.Errorf("ReadJSON(other json) = %v; want a 'not a lode bench results.json' error", err)
	}
}

func TestWriteTableAndFindings(t *testing.T) {
	var buf bytes.Buffer
	r := sample()
	if err := report.WriteTable(&buf, r); err != nil {
		t.Fatal(err)
	}
	report.WriteFindings(&buf, r)
	out := buf.String()
	for _, want := range []string{"req/s", "±10%", "cell 4 skipped: datasette: not found in PATH", "→ REPRODUCED. errors begin at c=8 (cells 1-3)",
		"80%!", "! the load generator limited this cell", "   ! Generator-bound: in cells 3"} {
		if !strings.Contains(out, want) {
			t.Errorf("table output lacks %q:\n%s", want, out)
		}
	}
}

// TestSmokeRunLabelled: the verdicts of lode bench --quick are labelled as
// a smoke run's, in the terminal, results.json and the HTML report.
func TestSmokeRunLabelled(t *testing.T) {
	r := sample()
	var buf bytes.Buffer
	report.WriteFindings(&buf, r)
	if strings.Contains(buf.String(), "smoke") {
		t.Errorf("a full run's findings mention a smoke run:\n%s", buf.String())
	}
	r.Smoke = true
	buf.Reset()
	report.WriteFindings(&buf, r)
	for _, want := range []string{report.SmokeNote + "\n", "→ REPRODUCED (smoke run). errors begin at c=8"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("smoke run's findings lack %q:\n%s", want, buf.String())
		}
	}
	dir := t.TempDir()
	index, err := report.WriteAll(dir, r)
	if err != nil {
		t.Fatal(err)
	}
	html, _ := os.ReadFile(index)
	if !strings.Contains(string(html), "reproduced (smoke run)") || !strings.Contains(string(html), "SMOKE RUN (--quick") {
		t.Error("index.html of a smoke run does not label its verdicts")
	}
	if got, err := report.ReadJSON(filepath.Join(dir, "results.json")); err != nil || !got.Smoke {
		t.Errorf("results.json: smoke = %v, %v; want true", got != nil && got.Smoke, err)
	}
}

func TestCellList(t *testing.T) {
	for _, tt := range []struct {
		in   []int
		want string
	}{{nil, "none"}, {[]int{3}, "3"}, {[]int{4, 1, 2, 3, 7, 9, 10}, "1-4, 7, 9-10"}} {
		if got := report.CellList(tt.in); got != tt.want {
			t.Errorf("CellList(%v) = %q; want %q", tt.in, got, tt.want)
		}
	}
}

// TestChartsReadable: bars are labelled by cell, target and the settings
// that differ, grouped under their workload, a panel switches to a log
// scale when its values span more than 10x, and every finding gets its own
// chart next to its verdict and per-group lines.
func TestChartsReadable(t *testing.T) {
	r := &report.Results{Name: "stack", Repeat: 1, Cells: []report.Cell{
		{ID: 1, Target: "django", JournalMode: "delete", Workers: "4", Workload: "write", Concurrency: 32, Status: report.StatusOK, OKRPS: 90, RPS: 100, P99MS: 900, ErrorRate: 0.1, Requests: 100},
		{ID: 2, Target: "django", JournalMode: "wal", Workers: "4", Workload: "write", Concurrency: 32, Status: report.StatusOK, OKRPS: 180, RPS: 180, P99MS: 300, Requests: 100},
		{ID: 3, Target: "lode", Workload: "write", Concurrency: 32, Status: report.StatusOK, OKRPS: 7200, RPS: 7200, P99MS: 9, Requests: 100},
		{ID: 4, Target: "django", JournalMode: "wal", Workers: "4", Workload: "read", Concurrency: 32, Status: report.StatusOK, OKRPS: 150, RPS: 150, P99MS: 200, Requests: 100},
		{ID: 5, Target: "datasette", Workload: "read", Concurrency: 32, Status: report.StatusSkipped, Message: "datasette: not installed"},
	}}
	r.Findings = []report.Finding{{N: 1, Title: "journal", Verdict: report.Partly, Summary: "Reproduced for django; not for lode.", Cells: []int{1, 2, 3},
		Groups: []report.FindingGroup{{Label: "django", Verdict: report.Reproduced, Summary: "rollback 10% → WAL 0%", Cells: []int{1, 2},
			Warning: "generator-bound: cells 2, whose throughput is a floor"},
			{Label: "lode <single>", Verdict: "", Summary: "no errors", Cells: []int{3}}}}}
	charts, err := report.Charts(r)
	if err != nil {
		t.Fatal(err)
	}
	var all, f1 *report.Chart
	for i := range charts {
		switch {
		case charts[i].Title == "All cells by workload":
			all = &charts[i]
		case charts[i].Finding == 1:
			f1 = &charts[i]
		}
	}
	if all == nil || f1 == nil {
		t.Fatalf("charts %v; want the overview and finding 1's chart", charts)
	}
	for _, want := range []string{">#1 django journal=delete workers=4<", ">#3 lode<", ">write<", ">read<", ">skipped<",
		"successful req/s (log scale)", // 90 … 7200 spans 80x
		">7.2k<", "p99 latency, ms (log scale)", "failed requests, %<"} {
		if !strings.Contains(all.SVG, want) {
			t.Errorf("overview chart lacks %q", want)
		}
	}
	// Workloads are grouped: both write rows come before the read header.
	if strings.Index(all.SVG, ">#3 lode<") > strings.Index(all.SVG, ">read<") {
		t.Error("the write cells are not grouped above the read workload")
	}
	if strings.Contains(f1.SVG, "#4 ") || f1.Title != "Finding 1 — partly reproduced" {
		t.Errorf("finding 1's chart shows other cells or lacks its title:\n%s", f1.SVG)
	}
	// Only django cells: 90 and 180 req/s span 2x — a linear scale.
	narrow := &report.Results{Cells: r.Cells[:2], Repeat: 1}
	c, _ := report.Charts(narrow)
	if strings.Contains(c[0].SVG, "successful req/s (log scale)") || !strings.Contains(c[0].SVG, "successful req/s<") {
		t.Errorf("a 2x span is drawn on a log scale:\n%s", c[0].SVG)
	}
	page, err := report.HTML(r)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`class="finding partly"`, "<strong>lode &lt;single&gt;</strong>", `class="verdict context">context`, "rollback 10% → WAL 0%",
		`(cells 1-2)</span> <span class="warn">⚠ generator-bound: cells 2, whose throughput is a floor</span></li>`} {
		if !strings.Contains(string(page), want) {
			t.Errorf("index.html lacks %q", want)
		}
	}
	if strings.Count(string(page), "⚠ generator-bound") != 1 {
		t.Error("index.html marks a group without generator-bound cells")
	}
	var buf bytes.Buffer
	report.WriteFindings(&buf, r)
	if !strings.Contains(buf.String(), "     - django: reproduced. rollback 10% → WAL 0% (cells 1-2)\n       ! generator-bound: cells 2, whose throughput is a floor\n     - lode <single>: context") {
		t.Errorf("text findings lack the group lines:\n%s", buf.String())
	}
}
