package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"lode/internal/config"
	"lode/internal/prefork"
	"lode/internal/replica"
	"lode/internal/server"
	"lode/internal/sqlitedb"
)

// newServeCmd builds `lode serve`. Datasette's `--setting NAME VALUE` takes
// two values, which pflag cannot express, so the command rewrites it to
// NAME=VALUE before parsing its flags itself.
func newServeCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve [FILES...] [flags]",
		Short: "Serve SQLite databases over HTTP with a Datasette-compatible JSON API",
		Long: `Serve SQLite database files over HTTP: a Datasette 1.0 compatible JSON and CSV API
(/.json, /DB.json, /DB/TABLE.json, /DB/TABLE/PK.json, /DB/-/query.json?sql=, /-/*.json).

Each file is served as a database named after the file (fixtures.db -> /fixtures).
Files given with -i/--immutable are opened with immutable=1: no locking, counts cached.
--create creates missing files. By default files are switched to WAL mode, which SQLite
stores in the file (a log line says so); --journal-mode keep leaves a file's mode alone.
Arbitrary SQL runs on read-only connections behind an authorizer, with a time limit
(--setting sql_time_limit_ms) and a row cap (--setting max_returned_rows).`,
		Example: `  lode serve fixtures.db                                  # http://127.0.0.1:8001/
  lode serve data.db --create --root                      # a new database, writable by root
  lode serve fixtures.db --port 8002 --setting default_page_size 50
  lode serve -i big.db --setting sql_time_limit_ms 3000
  lode serve app.db --journal-mode wal --synchronous normal --busy-timeout 20s
  lode serve data.db --replicate file:///srv/lode-replica/data         # a primary
  lode serve --follow file:///srv/lode-replica/data --as data --primary http://primary:8001   # a replica
  curl 'http://127.0.0.1:8001/fixtures/facetable.json?state=CA&_sort=pk&_size=5'
  curl 'http://127.0.0.1:8001/fixtures/-/query.json?sql=select+*+from+facetable+where+pk>:p&p=3'`,
		DisableFlagParsing: true,
		RunE:               runServe,
	}
	f := cmd.Flags()
	f.String("host", "127.0.0.1", "address to listen on")
	f.IntP("port", "p", 8001, "port to listen on (0 picks a free port)")
	f.StringArrayP("immutable", "i", nil, "database file to serve immutable (repeatable)")
	f.Bool("create", false, "create database files that do not exist")
	f.StringArray("setting", nil, "setting NAME VALUE, e.g. --setting default_page_size 50 (repeatable)")
	f.String("config", "", "lode.yaml with settings, permissions and canned queries")
	f.Bool("cors", false, "send CORS headers so browser apps on any origin can read the JSON API (as datasette serve --cors)")
	f.String("journal-mode", sqlitedb.DefaultJournalMode, "journal mode: wal, delete, truncate, persist or keep")
	f.String("synchronous", sqlitedb.DefaultSynchronous, "synchronous: full, normal or off")
	f.Duration("busy-timeout", sqlitedb.DefaultBusyTimeout, "how long to wait for a lock before 'database is locked'")
	f.String("txlock", sqlitedb.DefaultTxLock, "how write transactions begin: immediate or deferred")
	f.Int("cache-size", 0, "PRAGMA cache_size per connection (negative = KiB; 0 = SQLite default)")
	f.Int64("mmap-size", 0, "PRAGMA mmap_size in bytes (0 = off)")
	f.Int("read-conns", 0, "read-only connections per database (0 = number of CPUs)")
	f.String("memory-limit", "512MiB", "memory budget of each serving process: SQLite heap limit 1/4, Go soft limit 1/2,\n"+
		"largest value a query may read or build 1/16 (0 = no limits)")
	addWorkerFlags(f)  // serve_workers.go: --workers, --reuse-port, --graceful-timeout, ...
	addWriteFlags(f)   // token.go: --writer, --root, --secret
	addReplicaFlags(f) // serve_replica.go: --replicate, --follow, --as, --primary, ...
	addObserveFlags(f) // serve_observe.go: --access-log, --access-log-format
	f.BoolP("help", "h", false, "help for serve")
	return cmd
}

// rewriteSettingArgs turns "--setting NAME VALUE" into "--setting=NAME=VALUE".
func rewriteSettingArgs(args []string) ([]string, error) {
	var out []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--setting" || a == "-s" {
			if i+2 >= len(args) {
				return nil, errors.New("--setting needs a name and a value, e.g. --setting default_page_size 50")
			}
			out = append(out, "--setting="+args[i+1]+"="+args[i+2])
			i += 2
			continue
		}
		if v, ok := strings.CutPrefix(a, "--setting="); ok && !strings.Contains(v, "=") {
			if i+1 >= len(args) {
				return nil, fmt.Errorf("--setting %s needs a value", v)
			}
			out = append(out, a+"="+args[i+1])
			i++
			continue
		}
		out = append(out, a)
	}
	return out, nil
}

func runServe(cmd *cobra.Command, rawArgs []string) error {
	args, err := rewriteSettingArgs(rawArgs)
	if err != nil {
		return err
	}
	f := cmd.Flags()
	if err := f.Parse(args); err != nil {
		return fmt.Errorf("%w (see lode serve --help)", err)
	}
	if help, _ := f.GetBool("help"); help {
		return cmd.Help()
	}
	log, err := newLogger(cmd)
	if err != nil {
		return err
	}
	if os.Getenv("GOGC") == "" {
		// A request allocates a few KiB that die at once; collecting at
		// 4x the live heap instead of 2x cuts the GC's share of CPU per
		// request (about 14% more row lookups per second measured) for a
		// few MiB more memory per process. GOGC in the environment wins.
		debug.SetGCPercent(400)
	}
	host, _ := f.GetString("host")
	port, _ := f.GetInt("port")
	immutable, _ := f.GetStringArray("immutable")
	settingArgs, _ := f.GetStringArray("setting")
	configPath, _ := f.GetString("config")
	cfg := server.Config{Files: f.Args(), Immutable: immutable, Logger: log, Settings: map[string]string{}, Version: lodeVersion()}
	cfg.CORS, _ = f.GetBool("cors")
	cfg.DB.JournalMode, _ = f.GetString("journal-mode")
	cfg.DB.Synchronous, _ = f.GetString("synchronous")
	cfg.DB.BusyTimeout, _ = f.GetDuration("busy-timeout")
	if cfg.DB.BusyTimeout == 0 {
		cfg.DB.BusyTimeout = sqlitedb.NoBusyTimeout // --busy-timeout 0 means no waiting, not the default
	}
	cfg.DB.TxLock, _ = f.GetString("txlock")
	cfg.DB.CacheSize, _ = f.GetInt("cache-size")
	cfg.DB.MmapSize, _ = f.GetInt64("mmap-size")
	cfg.DB.ReadConns, _ = f.GetInt("read-conns")
	cfg.DB.Create, _ = f.GetBool("create")
	memLimit, _ := f.GetString("memory-limit")
	if cfg.MemoryLimit, err = server.ParseSize(memLimit); err != nil {
		return fmt.Errorf("--memory-limit: %w", err)
	}
	if _, err := server.PlanMemory(cfg.MemoryLimit); err != nil {
		return err
	}
	if configPath != "" {
		lc, err := config.Load(configPath)
		if err != nil {
			return fmt.Errorf("--config: %w", err)
		}
		cfg.Lode = lc
		if err := server.ApplyConfigSettings(&cfg, lc.Settings, f.Changed); err != nil {
			return fmt.Errorf("--config %s: %w", configPath, err)
		}
	}
	for _, kv := range settingArgs {
		name, value, ok := strings.Cut(kv, "=")
		if !ok {
			return fmt.Errorf("--setting %s needs a value", kv)
		}
		cfg.Settings[name] = value
	}
	rc, err := replicaConfig(f, cfg) // serve_replica.go: --replicate, --follow, ...
	if err != nil {
		return err
	}
	applyReplicaConfig(rc, &cfg)
	// Every mistake in the command line is reported before anything else
	// is printed (the root sign-in URL, log lines).
	if err := cfg.Check(); err != nil {
		return err
	}
	if err := checkAccessLog(f); err != nil {
		return err
	}
	ctx := cmd.Context()
	signIn, err := server.PrepareWrites(writeOptions(f), net.JoinHostPort(host, strconv.Itoa(port)), log)
	if err != nil {
		return err
	}
	if signIn != "" {
		fmt.Fprintln(os.Stderr, signIn)
		log.Info("root sign-in url printed; API tokens for root: lode token create --actor root")
	}
	side, err := startReplication(ctx, cmd, rc, log)
	if err != nil {
		return err
	}
	if side != nil {
		defer side.Stop() // after the workers drained: the last sync ships the last writes
	}
	if handled, err := serveWorkers(ctx, f, log, cfg, rc, net.JoinHostPort(host, strconv.Itoa(port))); handled {
		return err // a supervised worker, or the master of --workers N
	}
	// Without a master this process answers /-/workers.json itself.
	in := prefork.NewInProcess()
	sv, err := openServing(ctx, f, cfg, rc, log, in.StatusHandler())
	if err != nil {
		return err
	}
	defer sv.close()
	ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return fmt.Errorf("listen on %s:%d: %w (is another server using the port? try --port)", host, port, err)
	}
	ln = server.ServeListener(ln, sv.limits.MaxConns, log)
	log.Info("serving", "url", "http://"+ln.Addr().String()+"/", "databases", strings.Join(sv.srv.DatabaseNames(), ","), "pid", os.Getpid())
	grace, _ := f.GetDuration("graceful-timeout") // checked by serveWorkers
	return server.Serve(ctx, ln, in.Wrap(sv.handler), log, grace)
}

// serving is what a serving process runs, alone or as a worker: the server,
// its handler (writes and replica routing included), the process limits it
// applied, and close, which releases all of it in reverse order.
type serving struct {
	srv     *server.Server
	handler http.Handler
	limits  server.ProcessLimits
	closers []func() error
}

func (sv *serving) close() {
	for i := len(sv.closers) - 1; i >= 0; i-- {
		sv.closers[i]()
	}
}

// openServing opens the access log, applies the process limits, opens the
// databases, enables writes and adds status, which answers
// /-/workers.json. On error it releases what it opened.
func openServing(ctx context.Context, f *pflag.FlagSet, cfg server.Config, rc replica.ServeConfig, log *slog.Logger, status http.Handler) (_ *serving, err error) {
	sv := &serving{}
	defer func() {
		if err != nil {
			sv.close()
		}
	}()
	logFile, err := setAccessLog(f, &cfg) // serve_observe.go
	if err != nil {
		return nil, err
	}
	if logFile != nil {
		sv.closers = append(sv.closers, logFile.Close)
	}
	if sv.limits, err = server.ApplyProcessLimits(&cfg, log); err != nil {
		return nil, err
	}
	if sv.srv, err = server.New(ctx, cfg); err != nil {
		return nil, err
	}
	sv.closers = append(sv.closers, sv.srv.Close)
	api, err := server.EnableWrites(sv.srv, writeOptions(f)) // token.go
	if err != nil {
		return nil, err
	}
	sv.closers = append(sv.closers, api.Close)
	if err := sv.srv.AddStatusEndpoint(prefork.StatusPath, status); err != nil {
		return nil, err
	}
	if sv.handler, err = replicaHandler(rc, sv.srv, api); err != nil {
		return nil, err
	}
	return sv, nil
}
