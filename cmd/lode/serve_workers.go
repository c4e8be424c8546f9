package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strconv"

	"github.com/spf13/pflag"

	"lode/internal/prefork"
	"lode/internal/replica"
	"lode/internal/server"
)

// defaultWorkers is lode serve's --workers default; README "Workers
// (`--workers`)" gives the measurements behind it.
const defaultWorkers = 1

// addWorkerFlags registers lode serve's pre-fork flags.
func addWorkerFlags(f *pflag.FlagSet) {
	f.Int("workers", defaultWorkers, "worker processes: 0 serves in this process; N >= 1 runs N supervised workers\n"+
		"(SIGHUP rolling reload, SIGTTIN/SIGTTOU one more/fewer, SIGTERM graceful stop)")
	f.Bool("reuse-port", false, "each worker listens on its own SO_REUSEPORT socket instead of the shared one\n"+
		"(kernel balancing, but connections queued on a stopping worker are reset)")
	f.Duration("graceful-timeout", prefork.DefaultGracefulTimeout, "how long a stop (SIGTERM, SIGINT) waits for running requests before closing their connections\n(each worker; with --workers 0, the process)")
	f.Duration("worker-timeout", prefork.DefaultWorkerTimeout, "replace a worker that sends no heartbeat (or is not ready) for this long")
	f.Int("max-requests", 0, "replace a worker (rolling) after it served this many requests; 0 = never")
	f.Int("max-requests-jitter", 0, "add a random 0..N to --max-requests per worker, so workers are not replaced together")
}

// serveWorkers runs the supervised forms of lode serve. In a process
// started by a master it runs the worker and returns handled=true; with
// --workers N >= 1 it runs the master (which re-executes this binary with
// the same arguments for each worker); with --workers 0 it returns
// handled=false and the caller serves in-process.
func serveWorkers(ctx context.Context, f *pflag.FlagSet, log *slog.Logger, cfg server.Config, rc replica.ServeConfig, addr string) (handled bool, err error) {
	if prefork.IsWorker() {
		return true, runWorker(ctx, f, log, cfg, rc)
	}
	workers, _ := f.GetInt("workers")
	reusePort, _ := f.GetBool("reuse-port")
	graceful, _ := f.GetDuration("graceful-timeout")
	timeout, _ := f.GetDuration("worker-timeout")
	maxReq, _ := f.GetInt("max-requests")
	jitter, _ := f.GetInt("max-requests-jitter")
	switch {
	case workers < 0:
		return true, fmt.Errorf("--workers %d: want 0 (in-process) or a number of worker processes", workers)
	case maxReq < 0 || jitter < 0:
		return true, errors.New("--max-requests and --max-requests-jitter must not be negative")
	case graceful <= 0 || timeout <= 0:
		return true, errors.New("--graceful-timeout and --worker-timeout must be positive durations, e.g. 30s")
	case workers == 0:
		if reusePort || maxReq > 0 {
			log.Warn("--reuse-port and --max-requests apply only with --workers 1 or more; ignored")
		}
		return false, nil
	}
	// Configuration errors were caught by cfg.Check. Open the databases
	// once here too, so an unreadable file is reported at once instead of
	// after a worker crash loop's backoff (and --create creates the files
	// before the workers open them).
	// The workers' limits, checked here once (the descriptor limit is
	// inherited); the master itself opens no database for serving.
	probeCfg := cfg
	if _, err := server.ApplyProcessLimits(&probeCfg, slog.New(slog.DiscardHandler)); err != nil {
		return true, err
	}
	probe, err := server.New(ctx, cfg)
	if err != nil {
		return true, err
	}
	probe.Close()
	m := &prefork.Master{
		Workers:           workers,
		Addr:              addr,
		ReusePort:         reusePort,
		Args:              os.Args[1:],
		GracefulTimeout:   graceful,
		WorkerTimeout:     timeout,
		MaxRequests:       maxReq,
		MaxRequestsJitter: jitter,
		Logger:            log.With("role", "master"),
	}
	if path, _ := f.GetString("access-log"); path == "-" {
		// The access log is the workers' standard output: unprefixed, so
		// each request stays one parseable line.
		m.RawStdout = true
	}
	if err := m.Listen(); err != nil {
		return true, fmt.Errorf("%w (is another server using the port? try --port)", err)
	}
	log.Info("serving", "url", "http://"+m.BoundAddr().String()+"/", "workers", workers, "master_pid", os.Getpid())
	return true, m.Run(ctx)
}

// workerProcs is each worker's GOMAXPROCS: the process's default (the CPUs
// it may use) divided among the workers, rounded up.
func workerProcs(procs, workers int) int {
	if workers < 1 {
		return procs
	}
	return max(1, (procs+workers-1)/workers)
}

// runWorker is one worker process: it opens the databases and serves the
// inherited listener until the master stops it.
func runWorker(ctx context.Context, f *pflag.FlagSet, log *slog.Logger, cfg server.Config, rc replica.ServeConfig) error {
	w, err := prefork.NewWorker(ctx)
	if err != nil {
		return err
	}
	log = log.With("worker", w.ID)
	w.Logger = log
	cfg.Logger = log
	if os.Getenv("GOMAXPROCS") == "" {
		// N workers with a scheduler thread per CPU each would run N×CPUs
		// Go threads on CPUs threads: each worker gets its share instead
		// (at least one). With 2 workers on 2 CPUs that served 15% more
		// row lookups per second than GOMAXPROCS=2 each.
		n, _ := f.GetInt("workers")
		runtime.GOMAXPROCS(workerProcs(runtime.GOMAXPROCS(0), n))
	}
	sv, err := openServing(ctx, f, cfg, rc, log, w.StatusHandler())
	if err != nil {
		return err
	}
	defer sv.close()
	w.Listener = server.ServeListener(w.Listener, sv.limits.MaxConns, log)
	if g := sv.srv.Gatherer(); g != nil {
		// The master gathers every worker's metrics for one scrape.
		w.Metrics = g
		sv.srv.SetMetricsGatherer(w.MetricsGatherer())
	}
	// Requests are not cancelled by the drain; GracefulTimeout bounds it.
	hs := server.NewHTTPServer(ctx, sv.handler, log)
	log.Debug("worker serving", "pid", strconv.Itoa(os.Getpid()), "gomaxprocs", runtime.GOMAXPROCS(0))
	return w.Serve(ctx, hs)
}
