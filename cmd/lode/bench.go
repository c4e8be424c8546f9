package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"lode/internal/bench"
	"lode/internal/report"
)

// benchOptions are `lode bench`'s flags.
type benchOptions struct {
	file        string
	study       string
	out         string
	quick       bool
	repeat      int
	duration    time.Duration
	warmup      time.Duration
	targets     []string
	concurrency int
	baseline    string
	tolerance   string
	printMatrix bool
	lode        string
	keep        bool
	workdir     string
}

func newBenchCmd() *cobra.Command {
	var o benchOptions
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Run the SQLite settings × workers × workload study and write an HTML report",
		Long: `Bench generates a demo database (100k rows, FTS4, foreign keys), then runs each cell of a
matrix — journal mode, synchronous, busy timeout, txlock, writer, workers, workload,
concurrency or rate, target — against a freshly started server on a fresh copy of the
database: warm-up, then a fixed measured time, repeated (default 3 times, spread shown).
It prints a table and the study's six findings with verdicts (reproduced / partly
reproduced / not reproduced / inconclusive), each judged per group of cells that differ only
in the finding's dimension (per target), and writes DIR/index.html, results.json and
results.csv.

Without -f it runs the default study (20 cells, under 3 minutes on 2 cores). --study seed
runs the 2022 study on its own stack: Lode's Django reference app under Gunicorn on SQLite
(rollback/WAL, deferred/IMMEDIATE, 1/2/4 workers) and on a throwaway PostgreSQL, Datasette,
datasette gunicorn and lode on the same workloads (about 10 minutes). --target adds an
external server, started from a command template with {db}, {port} and optionally
{workers}; it is compared with lode on the read workloads. A target whose program is not
installed is skipped with its install line.`,
		Example: `  lode bench                                   # the default study → lode-report/
  lode bench --quick                           # smoke run: one 1 s repeat per cell (under a minute)
  lode bench --study seed                      # Django on SQLite vs PostgreSQL, Datasette, lode
  lode bench --target 'datasette serve {db} -p {port}'
  lode bench -f matrix.yaml -o out --repeat 5
  lode bench --print-matrix > matrix.yaml      # start from the default study
  lode bench --baseline old/results.json --tolerance 10%   # non-zero exit on regression`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runBench(cmd, o)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.file, "file", "f", "", "matrix file (YAML) to run instead of a shipped study")
	f.StringVar(&o.study, "study", "default", "shipped study to run: "+strings.Join(bench.StudyNames(), " or ")+" (seed: Django on SQLite and PostgreSQL, Datasette and lode)")
	f.StringVarP(&o.out, "output", "o", "lode-report", "directory for index.html, results.json and results.csv")
	f.BoolVar(&o.quick, "quick", false, "smoke run: one repeat of 1 s per cell with a short warm-up; verdicts are labelled indicative")
	f.IntVar(&o.repeat, "repeat", 0, "runs per cell, each on a fresh database copy (default 3, or the matrix's repeat)")
	f.DurationVar(&o.duration, "duration", 0, "measured time per run (default 1s, or the matrix's duration)")
	f.DurationVar(&o.warmup, "warmup", 0, "warm-up per run before measuring (default 300ms, or the matrix's warmup)")
	f.StringArrayVar(&o.targets, "target", nil, "external server command template, e.g. 'datasette serve {db} -p {port}' (repeatable)")
	f.IntVar(&o.concurrency, "target-concurrency", 32, "concurrent users for the cells --target adds")
	f.StringVar(&o.baseline, "baseline", "", "results.json of an earlier run: exit non-zero if a cell regressed beyond --tolerance")
	f.StringVar(&o.tolerance, "tolerance", "10%", "allowed regression against --baseline (req/s, p99, error rate)")
	f.BoolVar(&o.printMatrix, "print-matrix", false, "print the study's matrix file (see --study) and exit")
	f.StringVar(&o.lode, "lode", "", "path of the lode binary whose serve command the lode cells start (default: this executable)")
	f.BoolVar(&o.keep, "keep", false, "keep the work directory (databases, server logs) and print its path")
	f.StringVar(&o.workdir, "workdir", "", "directory for the database copies: put it on the disk you want to measure (default: a new temporary directory; /tmp may be RAM)")
	return cmd
}

func runBench(cmd *cobra.Command, o benchOptions) error {
	stdout, stderr := cmd.OutOrStdout(), cmd.ErrOrStderr()
	if o.file != "" && cmd.Flags().Changed("study") {
		return errors.New("-f and --study both name the matrix to run: give one")
	}
	studyYAML, err := bench.StudyYAML(o.study)
	if err != nil {
		return err
	}
	if o.printMatrix {
		_, err := stdout.Write(studyYAML)
		return err
	}
	logger, err := newLogger(cmd)
	if err != nil {
		return err
	}
	m, err := bench.Study(o.study)
	if err != nil {
		return err
	}
	if o.file != "" {
		if m, err = bench.LoadMatrix(o.file); err != nil {
			return err
		}
	}
	if o.quick {
		m.Repeat, m.Duration, m.Warmup = 1, time.Second, 200*time.Millisecond
	}
	if o.repeat != 0 {
		if o.repeat < 1 || o.repeat > 100 {
			return fmt.Errorf("--repeat %d: want 1 to 100", o.repeat)
		}
		m.Repeat = o.repeat
	}
	if o.duration < 0 {
		return fmt.Errorf("--duration %s: want a positive duration such as 2s", o.duration)
	}
	if o.duration > 0 {
		m.Duration = o.duration
	}
	if cmd.Flags().Changed("warmup") {
		if o.warmup < 0 {
			return fmt.Errorf("--warmup %s: want 0 or a positive duration", o.warmup)
		}
		m.Warmup = o.warmup
	}
	for _, t := range o.targets {
		if err := m.AddTarget(t, o.concurrency); err != nil {
			return err
		}
	}
	tol, err := bench.ParseTolerance(o.tolerance)
	if err != nil {
		return err
	}
	var base *report.Results
	if o.baseline != "" {
		if base, err = report.ReadJSON(o.baseline); err != nil {
			return fmt.Errorf("--baseline: %w", err)
		}
	}
	if err := report.PrepareDir(o.out); err != nil {
		return fmt.Errorf("-o %s: %w", o.out, err)
	}
	cfg := bench.Config{Matrix: m, Command: rerunCommand(), Progress: stderr, Logger: logger, Smoke: o.quick}
	if st, err := os.Stderr.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 && stderr == os.Stderr {
		cfg.Interactive = true
	}
	if o.lode != "" {
		p, err := exec.LookPath(o.lode)
		if err != nil {
			return fmt.Errorf("--lode %q: %w", o.lode, err)
		}
		cfg.Lode = []string{p}
	}
	if o.keep || o.workdir != "" {
		if o.workdir != "" {
			if err := os.MkdirAll(o.workdir, 0o755); err != nil {
				return fmt.Errorf("--workdir: %w", err)
			}
		}
		if cfg.WorkDir, err = os.MkdirTemp(o.workdir, "lode-bench-"); err != nil {
			return fmt.Errorf("--workdir: %w", err)
		}
		if o.keep {
			fmt.Fprintf(stderr, "work directory (kept): %s\n", cfg.WorkDir)
		} else {
			defer os.RemoveAll(cfg.WorkDir)
		}
	}
	est := time.Duration(len(m.Cells)*m.Repeat) * (m.Duration + m.Warmup + bench.RunOverhead)
	smoke := ""
	if o.quick {
		smoke = " — a smoke run: it checks that every cell runs; its verdicts are indicative"
	}
	fmt.Fprintf(stderr, "lode bench: %s — %d cells × %d repeats × %s (+%s warm-up), about %s%s\n",
		m.Name, len(m.Cells), m.Repeat, m.Duration, m.Warmup, est.Round(time.Second), smoke)
	res, runErr := bench.Run(cmd.Context(), cfg)
	if res == nil {
		return runErr
	}
	if err := report.WriteTable(stdout, res); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "\nFindings:")
	report.WriteFindings(stdout, res)
	index, err := report.WriteAll(o.out, res)
	if err != nil {
		return err
	}
	if abs, err := filepath.Abs(index); err == nil {
		index = abs
	}
	fmt.Fprintf(stdout, "\nWall time %.0f s. Report: %s (lode report open %s)\n", res.WallSeconds, index, o.out)
	if runErr != nil {
		return &exitError{code: 130, msg: "interrupted: the report covers the cells that ran"}
	}
	if base != nil {
		c := bench.Compare(base, res, tol)
		regressed := map[int]bool{}
		for _, r := range c.Regressions {
			regressed[r.Cell] = true
		}
		fmt.Fprintf(stdout, "\nBaseline %s: %d cells compared, %d new, %d regressed beyond %s.\n",
			o.baseline, c.Compared, len(c.Missing), len(regressed), o.tolerance)
		for _, r := range c.Regressions {
			fmt.Fprintln(stdout, "  REGRESSION", r)
		}
		if len(regressed) > 0 {
			return &exitError{code: 1, msg: fmt.Sprintf("%d cells regressed beyond %s against %s", len(regressed), o.tolerance, o.baseline)}
		}
		if c.Compared == 0 {
			return &exitError{code: 1, msg: fmt.Sprintf("no cell of this run matches a measured cell of %s: compare runs of the same matrix", o.baseline)}
		}
	}
	return nil
}

// rerunCommand is the command line that repeats this run, for the report.
func rerunCommand() string {
	parts := []string{"lode"}
	for _, a := range os.Args[1:] {
		if strings.ContainsAny(a, " '\"{}$*?") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		parts = append(parts, a)
	}
	return strings.Join(parts, " ")
}

func newReportOpenCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "open [DIR]",
		Short: "Open a lode bench report (DIR/index.html, default lode-report) in a browser, or print its path",
		Example: `  lode report open
  lode report open out`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := "lode-report"
			if len(args) == 1 {
				dir = args[0]
			}
			index, err := filepath.Abs(filepath.Join(dir, "index.html"))
			if err != nil {
				return err
			}
			if _, err := os.Stat(index); err != nil {
				if errors.Is(err, os.ErrNotExist) {
					return fmt.Errorf("no report at %s: run `lode bench -o %s` first", index, dir)
				}
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), index)
			opener, err := exec.LookPath("xdg-open")
			if err != nil || (os.Getenv("DISPLAY") == "" && os.Getenv("WAYLAND_DISPLAY") == "") {
				return nil // no desktop: the printed path is the answer
			}
			c := exec.Command(opener, index)
			if err := c.Start(); err != nil {
				return fmt.Errorf("xdg-open %s: %w", index, err)
			}
			return c.Process.Release()
		},
	}
}
