package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"lode/internal/bench"
	"lode/internal/report"
)

func runLode(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return out.String(), err
}

func TestBenchPrintMatrix(t *testing.T) {
	out, err := runLode(t, "bench", "--print-matrix")
	if err != nil {
		t.Fatal(err)
	}
	m, err := bench.ParseMatrix("printed", []byte(out))
	if err != nil {
		t.Fatalf("--print-matrix output does not parse back: %v", err)
	}
	if len(m.Cells) != len(bench.DefaultMatrix().Cells) {
		t.Errorf("printed matrix has %d cells; want the default study's %d", len(m.Cells), len(bench.DefaultMatrix().Cells))
	}
	out, err = runLode(t, "bench", "--print-matrix", "--study", "seed")
	if err != nil {
		t.Fatal(err)
	}
	if m, err = bench.ParseMatrix("printed", []byte(out)); err != nil || m.Targets["django-pg"] == nil {
		t.Errorf("--print-matrix --study seed = %v; want the seed study with its django-pg target", err)
	}
}

func TestBenchBadInput(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "m.yaml")
	os.WriteFile(bad, []byte("cells:\n  - workload: write\n    journal_mode: wall\n"), 0o644)
	notDir := filepath.Join(dir, "file")
	os.WriteFile(notDir, nil, 0o644)
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"bench", "-f", bad}, `m.yaml:3: journal_mode "wall"`},
		{[]string{"bench", "-f", filepath.Join(dir, "none.yaml")}, "no such file"},
		{[]string{"bench", "--tolerance", "lots"}, `--tolerance "lots"`},
		{[]string{"bench", "--repeat", "-2"}, "--repeat -2"},
		{[]string{"bench", "--target", "datasette serve {db}"}, "no {port} placeholder"},
		{[]string{"bench", "--baseline", bad}, "--baseline"},
		{[]string{"bench", "--study", "nope"}, `--study "nope": want one of default, seed`},
		{[]string{"bench", "--study", "seed", "-f", bad}, "-f and --study both name the matrix"},
		// Checked before the run, not after it.
		{[]string{"bench", "-o", filepath.Join(notDir, "report")}, "-o " + filepath.Join(notDir, "report")},
	} {
		_, err := runLode(t, tt.args...)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("lode %s = %v; want an error containing %q", strings.Join(tt.args, " "), err, tt.want)
		}
	}
}

func TestReportOpen(t *testing.T) {
	dir := t.TempDir()
	if _, err := runLode(t, "report", "open", dir); err == nil || !strings.Contains(err.Error(), "run `lode bench -o") {
		t.Errorf("report open on an empty dir = %v; want advice to run lode bench", err)
	}
	os.WriteFile(filepath.Join(dir, "index.html"), []byte("<html></html>"), 0o644)
	t.Setenv("DISPLAY", "")
	t.Setenv("WAYLAND_DISPLAY", "")
	out, err := runLode(t, "report", "open", dir)
	if err != nil || strings.TrimSpace(out) != filepath.Join(dir, "index.html") {
		t.Errorf("report open = %q, %v; want the index.html path", out, err)
	}
}

// benchExecMain makes this test binary behave as the lode binary when the
// end-to-end test starts it as `lode serve` (the variable is set only for
// that child), so the test runs the real server without a separate build.
const benchExecMain = "LODE_TEST_BENCH_EXEC_MAIN"

func init() {
	if os.Getenv(benchExecMain) == "1" {
		main()
		os.Exit(0)
	}
}

// TestBenchEndToEnd runs `lode bench` on a tiny matrix against real
// `lode serve` processes (this test binary re-executed as lode).
func TestBenchEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts servers")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	matrix := filepath.Join(dir, "tiny.yaml")
	os.WriteFile(matrix, []byte(`
name: tiny
duration: 400ms
warmup: 100ms
repeat: 1
cells:
  - {workload: [read, write], concurrency: 4}
`), 0o644)
	t.Setenv(benchExecMain, "1")
	out := filepath.Join(dir, "report")
	// The child processes inherit the variable; this process is past init.
	stdout, err := runLode(t, "bench", "-f", matrix, "-o", out, "--lode", exe)
	if err != nil {
		t.Fatalf("lode bench: %v\n%s", err, stdout)
	}
	res, err := report.ReadJSON(filepath.Join(out, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range res.Cells {
		if c.Status != report.StatusOK || c.Requests == 0 || c.Errors != 0 {
			t.Errorf("cell %d %s: status %s %q, %d requests, errors %v; want ok without errors\n%s",
				c.ID, c.Workload, c.Status, c.Message, c.Requests, c.ErrorsByMessage, stdout)
		}
	}
	checkServerEvidence(t, res, stdout, filepath.Join(out, "index.html")) // bench_evidence_test.go
	for _, f := range []string{"index.html", "results.csv"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Error(err)
		}
	}
	if !strings.Contains(stdout, "Findings:") || !strings.Contains(stdout, "Report: ") {
		t.Errorf("output lacks the findings or the report path:\n%s", stdout)
	}

	// --baseline: a baseline 100 times faster than this machine makes the
	// write cell regress, and the command fail with exit status 1.
	for i := range res.Cells {
		res.Cells[i].OKRPS *= 100
	}
	baseline := filepath.Join(dir, "fast.json")
	b, _ := json.Marshal(res)
	os.WriteFile(baseline, b, 0o644)
	os.WriteFile(matrix, []byte("duration: 300ms\nwarmup: 0s\nrepeat: 1\ncells:\n  - {workload: write, concurrency: 4}\n"), 0o644)
	stdout, err = runLode(t, "bench", "-f", matrix, "-o", filepath.Join(dir, "again"), "--lode", exe, "--baseline", baseline, "--tolerance", "10%")
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != 1 || !strings.Contains(ee.msg, "1 cells regressed beyond 10%") {
		t.Errorf("bench against a faster baseline = %v; want exit status 1 naming the regression\n%s", err, stdout)
	}
	if !strings.Contains(stdout, "REGRESSION cell 1 (lode|||||||write|c4): successful req/s") {
		t.Errorf("output lacks the regression line:\n%s", stdout)
	}
}
