// Package bench runs Lode's study: a matrix of SQLite settings × workers ×
// workloads × load (matrix.go), each cell against a freshly started target
// server — lode serve, or any external command with its own setup,
// environment, database and services such as a throwaway PostgreSQL
// (target.go, postgres.go) — on a fresh database (a copy of a generated
// demo database, demo.go), driven by the in-process load generator, and
// judges the study's six findings per group of cells (findings*.go). The
// report package writes the files.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"lode/examples"
	"lode/internal/loadgen"
	"lode/internal/report"
)

// RunOverhead is the first guess at per-run time beyond warm-up and
// measurement (copy, start, stop), refined as runs complete, for the ETA.
const RunOverhead = 900 * time.Millisecond

// Config is one study run. Matrix is required; other zero fields default.
type Config struct {
	// Matrix is the study to run.
	Matrix *Matrix
	// WorkDir holds the demo database and per-run copies; default a new
	// temporary directory, removed at the end.
	WorkDir string
	// Lode is the argv prefix that runs the lode binary (before "serve");
	// default the running executable.
	Lode []string
	// Command is the command line that re-runs this study (for the report).
	Command string
	// Progress receives a progress line per run (carriage-return updates
	// when Interactive). Nil means no progress.
	Progress io.Writer
	// Interactive selects one self-overwriting progress line.
	Interactive bool
	// Logger receives debug detail; nil discards.
	Logger *slog.Logger
	// Smoke marks the results as a smoke run (report.Results.Smoke).
	Smoke bool
}

// Run runs every cell of the matrix Repeat times and returns the results
// with the findings judged. A cell that cannot run (its target is missing,
// or the server rejects its settings) is recorded as skipped or failed with
// a message; only setup failures (no work directory, no demo database) and
// cancellation return an error. On cancellation the partial results are
// returned with the error.
func Run(ctx context.Context, cfg Config) (*report.Results, error) {
	m := cfg.Matrix
	if m == nil || len(m.Cells) == 0 {
		return nil, errors.New("bench: no cells to run")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	started := time.Now()
	if cfg.WorkDir == "" {
		dir, err := os.MkdirTemp("", "lode-bench-")
		if err != nil {
			return nil, fmt.Errorf("bench: work directory: %w", err)
		}
		defer os.RemoveAll(dir)
		cfg.WorkDir = dir
	}
	if len(cfg.Lode) == 0 {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("bench: find the lode binary to start `lode serve`: %w", err)
		}
		cfg.Lode = []string{exe}
	}
	res := &report.Results{Name: m.Name, Command: cfg.Command, Started: started, Duration: m.Duration.String(),
		Warmup: m.Warmup.String(), Repeat: m.Repeat, Matrix: m.Source, Smoke: cfg.Smoke}
	res.Machine = DescribeMachine(ctx, cfg.WorkDir)
	if onTmpfs(cfg.WorkDir) {
		note := "warning: the work directory " + cfg.WorkDir + " is tmpfs (RAM): fsync is free there, so synchronous=FULL measures nothing; use --workdir on a real disk"
		res.Notes = append(res.Notes, note)
		cfg.progressf("%s\n", note)
	}

	// The demo database, unless every target brings its own.
	demo := filepath.Join(cfg.WorkDir, DemoDBName+".db")
	needDemo := false
	for _, c := range m.Cells {
		if t := m.Targets[c.Target]; c.Target == LodeTarget || (t != nil && t.Database == DatabaseDemo) {
			needDemo = true
			break
		}
	}
	if needDemo {
		t0 := time.Now()
		if err := GenerateDemo(ctx, demo, 1); err != nil {
			return nil, err
		}
		cfg.progressf("generated demo database (%d posts, FTS4) in %.1fs\n", DemoPosts, time.Since(t0).Seconds())
	}

	// The study's fixed placeholders; lode's example apps are extracted
	// only when a target refers to them.
	study := map[string]string{"workdir": cfg.WorkDir, "examples": filepath.Join(cfg.WorkDir, "examples")}
	for _, t := range m.Targets {
		if t.mentions("examples") {
			if _, err := examples.Extract(study["examples"]); err != nil {
				return nil, fmt.Errorf("bench: %w", err)
			}
			break
		}
	}

	// External targets that cannot run here (program missing, check
	// failed, service unavailable): skip their cells with the reason and
	// the install hint.
	missing := cfg.unavailable(ctx, study)
	names := make([]string, 0, len(missing))
	for name := range missing {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		msg := missing[name]
		var skipped []int
		for _, c := range m.Cells {
			if c.Target == name {
				skipped = append(skipped, c.ID)
			}
		}
		note := fmt.Sprintf("%s; skipped cells %s", strings.TrimPrefix(msg, ErrCommandNotFound.Error()+": "), report.CellList(skipped))
		res.Notes = append(res.Notes, note)
		cfg.progressf("%s\n", note)
	}

	// Services start on first use and stop when the study ends, however
	// it ends.
	svc := &services{study: study, workDir: cfg.WorkDir}
	defer svc.stop()

	total := len(m.Cells) * m.Repeat
	done := 0
	var spent time.Duration // time of completed runs, for the ETA
	var runErr error
	for _, c := range m.Cells {
		rc := c.Report()
		if msg, ok := missing[c.Target]; ok {
			rc.Status, rc.Message = report.StatusSkipped, strings.TrimPrefix(msg, ErrCommandNotFound.Error()+": ")
			res.Cells = append(res.Cells, rc)
			done += m.Repeat
			continue
		}
		var failures []string
		for rep := 1; rep <= m.Repeat; rep++ {
			if ctx.Err() != nil {
				break
			}
			eta := time.Duration(total-done) * (m.Duration + m.Warmup + RunOverhead)
			if done > 0 {
				eta = time.Duration(float64(spent) / float64(done) * float64(total-done))
			}
			cfg.progress(done, total, c, rep, eta)
			runStart := time.Now()
			run, err := runOnce(ctx, cfg, svc, c, demo, rep)
			spent += time.Since(runStart)
			done++
			if err != nil {
				if ctx.Err() != nil {
					break
				}
				log.Debug("cell run failed", "cell", c.ID, "repeat", rep, "err", err)
				failures = append(failures, err.Error())
				if errors.Is(err, ErrCommandNotFound) || errors.Is(err, errRejected) {
					// The same settings will fail the same way: do not
					// spend the other repeats on it.
					done += m.Repeat - rep
					break
				}
				continue
			}
			rc.Runs = append(rc.Runs, *run)
		}
		summarise(&rc)
		switch {
		case len(rc.Runs) > 0 && len(failures) > 0:
			rc.Message = fmt.Sprintf("%d of %d repeats failed: %s", len(failures), len(failures)+len(rc.Runs), failures[0])
		case len(rc.Runs) == 0 && len(failures) > 0:
			rc.Status, rc.Message = report.StatusFailed, failures[0]
		case len(rc.Runs) == 0:
			rc.Status, rc.Message = report.StatusFailed, "interrupted before it ran"
		}
		if msg := brokenMessage(rc); msg != "" {
			rc.Message = strings.TrimPrefix(rc.Message+"; "+msg, "; ")
		}
		res.Cells = append(res.Cells, rc)
		if ctx.Err() != nil {
			runErr = ctx.Err()
			break
		}
	}
	// Cells never reached (interrupted).
	for _, c := range m.Cells[len(res.Cells):] {
		rc := c.Report()
		rc.Status, rc.Message = report.StatusSkipped, "not run: the study was interrupted"
		res.Cells = append(res.Cells, rc)
	}
	cfg.progressDone()
	res.Findings = Judge(res.Cells)
	res.WallSeconds = time.Since(started).Seconds()
	return res, runErr
}

// brokenMessage describes a cell whose requests mostly failed for reasons
// other than locking (an endpoint the target lacks, a permission), which
// the findings then leave out.
func brokenMessage(c report.Cell) string {
	if c.Requests == 0 || otherErrorRate(c) <= maxOtherErrors {
		return ""
	}
	top, n := "", int64(0)
	for m, k := range c.ErrorsByMessage {
		if !isLockError(m) && (k > n || (k == n && m < top)) {
			top, n = m, k
		}
	}
	return fmt.Sprintf("%.0f%% of requests failed with other errors than locks, mostly %q: not judged", 100*otherErrorRate(c), top)
}

// errRejected marks a target that exited before it was ready: usually a
// setting it does not support (an unknown flag), which repeats would hit
// again.
var errRejected = errors.New("server did not start")

// services are the study's shared services, started on first use.
type services struct {
	study   map[string]string
	workDir string
	pg      *pgService
	pgErr   error
}

// postgres returns the study's PostgreSQL server, starting it the first
// time; a failure to start is remembered so later cells fail fast with it.
func (s *services) postgres(ctx context.Context) (*pgService, error) {
	if s.pg == nil && s.pgErr == nil {
		s.pg, s.pgErr = startPostgres(ctx, s.workDir)
		if s.pgErr != nil && ctx.Err() == nil {
			s.pgErr = fmt.Errorf("%w: %w", errRejected, s.pgErr)
		}
	}
	if s.pgErr != nil {
		err := s.pgErr
		if ctx.Err() != nil {
			s.pgErr = nil // interrupted while starting: not the service's fault
		}
		return nil, err
	}
	return s.pg, nil
}

func (s *services) stop() { s.pg.stop() }

// unavailable returns, by target name, why a target cannot run on this
// machine: its program is missing, its check command fails, or a service
// it needs is not installed.
func (cfg Config) unavailable(ctx context.Context, study map[string]string) map[string]string {
	missing := map[string]string{}
	used := map[string]bool{}
	for _, c := range cfg.Matrix.Cells {
		used[c.Target] = true
	}
	for name, t := range cfg.Matrix.Targets {
		if !used[name] {
			continue
		}
		if err := lookTarget(t, study); err != nil {
			missing[name] = err.Error()
			continue
		}
		if slices.Contains(t.Services, ServicePostgres) {
			if _, err := findPostgres(); err != nil {
				missing[name] = fmt.Sprintf("target %q needs the postgres service: %v", name, err)
				continue
			}
		}
		if err := probeTarget(ctx, t, study, filepath.Join(cfg.WorkDir, "check-"+name+".log")); err != nil {
			missing[name] = err.Error()
		}
	}
	return missing
}

// runOnce measures one repeat of a cell: fresh database (a copy of the demo
// or of the target's file, a fresh PostgreSQL database, or none for the
// target's setup to create), the target's setup, start the target, warm up,
// measure, stop.
func runOnce(ctx context.Context, cfg Config, svc *services, c Cell, demo string, rep int) (*report.Run, error) {
	m := cfg.Matrix
	dir := filepath.Join(cfg.WorkDir, fmt.Sprintf("cell%03d-%d", c.ID, rep))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	var t *Target
	source := demo
	db := filepath.Join(dir, DemoDBName+".db")
	if c.Target != LodeTarget {
		t = m.Targets[c.Target]
		switch t.Database {
		case DatabaseDemo:
		case DatabaseNone:
			source, db = "", filepath.Join(dir, "db.sqlite3")
		default:
			source, db = t.Database, filepath.Join(dir, filepath.Base(t.Database))
		}
	}
	if source != "" {
		if err := copyFile(source, db); err != nil {
			return nil, fmt.Errorf("copy database: %w", err)
		}
	}
	port, err := freePort()
	if err != nil {
		return nil, fmt.Errorf("find a free port: %w", err)
	}
	var argv, env []string
	ready, cwd := "/", dir
	reqs := Workloads[c.Workload]
	headers := map[string]string{}
	var pg *pgService
	if t == nil {
		config := filepath.Join(dir, "lode.yaml")
		if err := os.WriteFile(config, []byte(lodeConfig), 0o644); err != nil {
			return nil, err
		}
		argv = append(slices.Clone(cfg.Lode), lodeArgs(c, db, config, port)...)
		ready = "/-/versions.json"
	} else {
		vals := cellValues(c, db, dir, port)
		for k, v := range svc.study {
			vals[k] = v
		}
		if slices.Contains(t.Services, ServicePostgres) {
			if pg, err = svc.postgres(ctx); err != nil {
				return nil, err
			}
			name := fmt.Sprintf("cell%03d_%d", c.ID, rep)
			if err := pg.createDB(ctx, name); err != nil {
				return nil, err
			}
			// Dropped after the server stopped (defers run last in, first
			// out); an interrupted study removes the whole cluster instead.
			defer func() {
				if ctx.Err() == nil {
					_ = pg.dropDB(ctx, name)
				}
			}()
			for k, v := range pg.placeholders(name) {
				vals[k] = v
			}
		}
		argv = expandArgs(t.Argv, vals)
		env = targetEnv(t, vals)
		if t.Dir != "" {
			cwd = expand(t.Dir, vals)
		}
		ready = t.Ready
		if r, ok := t.Workloads[c.Workload]; ok {
			reqs = r
		}
		if len(t.SetupArgv) > 0 {
			if err := runCommand(ctx, expandArgs(t.SetupArgv, vals), env, cwd, filepath.Join(dir, "setup.log"), setupTimeout); err != nil {
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				return nil, fmt.Errorf("%w: %s setup `%s` failed: %w", errRejected, c.Target, t.Setup, err)
			}
		}
	}
	srv, err := startServer(ctx, argv, env, cwd, port, ready, filepath.Join(dir, "server.log"))
	if err != nil {
		if errors.Is(err, ErrCommandNotFound) {
			return nil, err
		}
		if errors.Is(err, errExited) {
			return nil, fmt.Errorf("%w: %s %w", errRejected, c.Target, err)
		}
		return nil, fmt.Errorf("%s: %w", c.Target, err)
	}
	defer srv.stop()

	sc := scenario(srv.baseURL, reqs, headers)
	// Requests still in flight when the measured time ends get one second
	// to finish and are then counted as unfinished: a cell with a 20 s
	// busy timeout must not stretch the study by the timeout.
	lc := loadgen.Config{Scenario: sc, Users: c.Concurrency, NoHistory: true, Timeout: 60 * time.Second, GracefulStop: time.Second}
	if c.Rate > 0 {
		lc.Rate = loadgen.Schedule{{Rate: c.Rate}}
		lc.MaxInFlight = 2000
	}
	if m.Warmup > 0 {
		wc := lc
		wc.Scenario = scenario(srv.baseURL, reqs, headers)
		wc.Duration = m.Warmup
		wc.GracefulStop = time.Second
		if _, err := loadgen.Run(ctx, wc); err != nil {
			return nil, fmt.Errorf("warm-up: %w", err)
		}
	}
	var stats0 *report.ServerStats
	if c.Target == LodeTarget {
		stats0, err = readServerStats(ctx, srv.baseURL) // evidence.go
		if err != nil {
			cfg.logger().Debug("server metrics unavailable", "cell", c.ID, "err", err)
		}
	}
	// The server's CPU includes the services it uses (PostgreSQL's
	// processes), so engines are compared on all the work they cause.
	cpu0, svcCPU0 := treeCPU(srv.pid), pg.cpu()
	lc.Duration = m.Duration
	res, err := loadgen.Run(ctx, lc)
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	cpu := cpuSince(cpu0, treeCPU(srv.pid)) + cpuSince(svcCPU0, pg.cpu())
	var stats *report.ServerStats
	if stats0 != nil {
		if stats, err = readServerStats(ctx, srv.baseURL); err == nil {
			stats = statsDelta(stats, stats0)
		} else {
			cfg.logger().Debug("server metrics unavailable", "cell", c.ID, "err", err)
		}
	}
	rss := treeRSS(srv.pid)
	if pg != nil {
		rss += treeRSS(pg.pid)
	}
	select {
	case <-srv.done:
		return nil, fmt.Errorf("%s exited during the run: %s", c.Target, srv.tail())
	default:
	}
	if res.Interrupted {
		return nil, ctx.Err()
	}
	run := runResult(res, c, cpu, rss)
	run.Server = stats
	return run, nil
}

func (cfg Config) logger() *slog.Logger {
	if cfg.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return cfg.Logger
}

// lodeConfig is the lode.yaml each lode cell runs with: anyone may write
// (the study measures locking, not auth) and the txn workload's
// read-then-write script.
const lodeConfig = `# Generated by lode bench for one cell.
permissions:
  insert-row: true
  update-row: true
  delete-row: true
  execute-sql: true
databases:
  demo:
    queries:
      ` + TxnQueryName + `:
        write: true
        sql: |-
          SELECT balance FROM accounts WHERE id = :id;
          UPDATE accounts SET balance = balance + 1 WHERE id = :id
`

func scenario(base string, reqs []RequestSpec, headers map[string]string) *loadgen.Scenario {
	sc := &loadgen.Scenario{BaseURL: base, Headers: headers}
	for _, r := range reqs {
		h := map[string]string{}
		for k, v := range r.Headers {
			h[k] = v
		}
		if r.Body != "" && h["Content-Type"] == "" {
			h["Content-Type"] = "application/json"
		}
		sc.Add(&loadgen.Request{Name: r.Name, Weight: r.Weight, Method: r.Method, URL: r.URL, Body: r.Body, Headers: h})
	}
	return sc
}

func (cfg Config) progressf(format string, args ...any) {
	if cfg.Progress == nil {
		return
	}
	if cfg.Interactive {
		fmt.Fprint(cfg.Progress, "\r\033[K")
	}
	fmt.Fprintf(cfg.Progress, format, args...)
}

func (cfg Config) progress(done, total int, c Cell, rep int, eta time.Duration) {
	if cfg.Progress == nil {
		return
	}
	rc := c.Report()
	line := fmt.Sprintf("[%3d%%] cell %d/%d run %d/%d  %s  ETA %s", 100*done/total, c.ID, len(cfg.Matrix.Cells), rep,
		cfg.Matrix.Repeat, rc.Label(), eta.Round(time.Second))
	if cfg.Interactive {
		fmt.Fprint(cfg.Progress, "\r\033[K"+line)
	} else {
		fmt.Fprintln(cfg.Progress, line)
	}
}

func (cfg Config) progressDone() {
	if cfg.Progress != nil && cfg.Interactive {
		fmt.Fprint(cfg.Progress, "\r\033[K")
	}
}
