// Package server is Lode's HTTP layer: a Datasette 1.0 compatible read API
// (JSON and CSV) over SQLite databases opened with sqlitedb, with errors
// mapped to statuses in one place (errors.go) and routes registered in one
// place (routes.go).
//
// Handlers gather data into result structs (tableResult, rowResult,
// queryResult, ...) and hand them to a renderer (JSON, CSV, or HTML when
// Config.HTML is set), so other formats can be added without touching the
// data-gathering code.
package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"lode/internal/auth"
	"lode/internal/config"
	"lode/internal/query"
	"lode/internal/sqlitedb"
	"lode/internal/web"
)

// Config describes what a Server serves. Zero fields take defaults.
type Config struct {
	// Files are database files served read-write (the write API may write
	// them); Immutable are served with immutable=1 (no locks, cached counts).
	Files     []string
	Immutable []string
	// DB holds the SQLite settings used for every database in Files
	// (Immutable databases additionally get Immutable=true).
	DB sqlitedb.Settings
	// Settings are Datasette-style settings (--setting NAME VALUE), e.g.
	// "default_page_size": "50". Unknown names are rejected by New.
	Settings map[string]string
	// Logger receives request errors and startup lines; nil discards.
	Logger *slog.Logger
	// Version is reported by /-/versions.json.
	Version string
	// Lode is the parsed lode.yaml (--config), nil without one: its allow
	// blocks decide permissions, and it holds the canned queries.
	Lode *config.Config
	// CORS sends Datasette's CORS headers on every response (datasette
	// serve --cors): any origin may read the JSON API from a browser, and
	// OPTIONS preflights answer 200.
	CORS bool
	// AccessLog, if set, receives one line per request (lode serve
	// --access-log) in AccessLogFormat: AccessLogCombined (default) or
	// AccessLogJSON.
	AccessLog       io.Writer
	AccessLogFormat string
	// MemoryLimit is lode serve's --memory-limit in bytes (0: none). New
	// does not apply it: it is process state, see ApplyProcessLimits.
	MemoryLimit int64
}

// Settings are the parsed Datasette settings the server applies.
type Settings struct {
	DefaultPageSize          int  `json:"default_page_size"`
	MaxReturnedRows          int  `json:"max_returned_rows"`
	SQLTimeLimitMS           int  `json:"sql_time_limit_ms"`
	FacetTimeLimitMS         int  `json:"facet_time_limit_ms"`
	FacetSuggestTimeLimitMS  int  `json:"facet_suggest_time_limit_ms"`
	DefaultFacetSize         int  `json:"default_facet_size"`
	AllowFacet               bool `json:"allow_facet"`
	AllowSQL                 bool `json:"default_allow_sql"`
	AllowDownload            bool `json:"allow_download"`
	AllowCSVStream           bool `json:"allow_csv_stream"`
	SuggestFacets            bool `json:"suggest_facets"`
	MaxCSVMB                 int  `json:"max_csv_mb"`
	DefaultCacheTTL          int  `json:"default_cache_ttl"`
	CountTimeLimitMS         int  `json:"count_time_limit_ms"`
	IndexCountTimeLimitMS    int  `json:"index_count_time_limit_ms"`
	FacetTotalTimeLimitMS    int  `json:"facet_total_time_limit_ms"`
	MaxResponseMB            int  `json:"max_response_mb"`
	WriteQueueTimeLimitMS    int  `json:"write_queue_time_limit_ms"`
	TruncateCells            int  `json:"truncate_cells_html"`
	NumSQLThreads            int  `json:"num_sql_threads"`
	MaxSignedTokensTTL       int  `json:"max_signed_tokens_ttl"`
	AllowSignedTokens        bool `json:"allow_signed_tokens"`
	TemplateDebug            bool `json:"template_debug"`
	TrustedForwardedFor      bool `json:"-"`
	CacheSizeKB              int  `json:"cache_size_kb"`
	FacetSuggestConsiderRows int  `json:"-"`
	// Metrics (Lode's own, default on) serves /-/metrics and counts what
	// it shows; off, requests and SQLite files are not instrumented at all.
	Metrics bool `json:"metrics"`
}

// DefaultSettings returns Datasette's defaults plus Lode's own:
// count_time_limit_ms (the table page's count(*), default 200 ms; past it the
// count is reported as unknown), index_count_time_limit_ms (per-table
// counts on /DB.json and /.json, default 10 ms like Datasette),
// facet_total_time_limit_ms (all facets and facet suggestions of one
// request together, default 1000 ms; each keeps its own limit too) and
// max_response_mb (the largest JSON or non-streamed CSV response, default
// 16; 0 = no limit) and write_queue_time_limit_ms (a write request's wait
// for its turn at the writer, default 30000; past it a 503).
func DefaultSettings() Settings {
	return Settings{
		DefaultPageSize: 100, MaxReturnedRows: 1000, SQLTimeLimitMS: 1000,
		FacetTimeLimitMS: 200, FacetSuggestTimeLimitMS: 50, DefaultFacetSize: 30,
		AllowFacet: true, AllowSQL: true, AllowDownload: true, AllowCSVStream: true,
		SuggestFacets: true, MaxCSVMB: 100, DefaultCacheTTL: 5, CountTimeLimitMS: 200,
		IndexCountTimeLimitMS: 10, FacetTotalTimeLimitMS: 1000, MaxResponseMB: 16,
		TruncateCells: 2048, NumSQLThreads: 3, WriteQueueTimeLimitMS: 30000,
		MaxSignedTokensTTL: 0, AllowSignedTokens: true, Metrics: true,
	}
}

// settingFields maps setting names to pointers into s, for parsing.
func (s *Settings) fields() map[string]any {
	return map[string]any{
		"default_page_size": &s.DefaultPageSize, "max_returned_rows": &s.MaxReturnedRows,
		"sql_time_limit_ms": &s.SQLTimeLimitMS, "facet_time_limit_ms": &s.FacetTimeLimitMS,
		"facet_suggest_time_limit_ms": &s.FacetSuggestTimeLimitMS, "default_facet_size": &s.DefaultFacetSize,
		"allow_facet": &s.AllowFacet, "default_allow_sql": &s.AllowSQL, "allow_download": &s.AllowDownload,
		"allow_csv_stream": &s.AllowCSVStream, "suggest_facets": &s.SuggestFacets, "max_csv_mb": &s.MaxCSVMB,
		"default_cache_ttl": &s.DefaultCacheTTL, "count_time_limit_ms": &s.CountTimeLimitMS,
		"index_count_time_limit_ms": &s.IndexCountTimeLimitMS, "truncate_cells_html": &s.TruncateCells,
		"facet_total_time_limit_ms": &s.FacetTotalTimeLimitMS, "max_response_mb": &s.MaxResponseMB,
		"num_sql_threads": &s.NumSQLThreads, "max_signed_tokens_ttl": &s.MaxSignedTokensTTL,
		"allow_signed_tokens": &s.AllowSignedTokens, "template_debug": &s.TemplateDebug,
		"cache_size_kb": &s.CacheSizeKB, "metrics": &s.Metrics, "write_queue_time_limit_ms": &s.WriteQueueTimeLimitMS,
	}
}

// settingAliases are older names of settings: allow_sql is Datasette
// 0.x's name of default_allow_sql.
var settingAliases = map[string]string{"allow_sql": "default_allow_sql"}

// IsSetting reports whether name is a setting this server understands.
func IsSetting(name string) bool {
	var s Settings
	if a, ok := settingAliases[name]; ok {
		name = a
	}
	_, ok := s.fields()[name]
	return ok
}

// ParseSettings applies NAME=VALUE settings over the defaults. Errors name
// the setting and say what is expected.
func ParseSettings(raw map[string]string) (Settings, error) {
	s := DefaultSettings()
	f := s.fields()
	names := make([]string, 0, len(raw))
	for k := range raw {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, name := range names {
		v := raw[name]
		if a, ok := settingAliases[name]; ok {
			name = a
		}
		p, ok := f[name]
		if !ok {
			known := make([]string, 0, len(f))
			for k := range f {
				known = append(known, k)
			}
			sort.Strings(known)
			return s, fmt.Errorf("unknown setting %q; known settings: %s", name, strings.Join(known, ", "))
		}
		switch p := p.(type) {
		case *int:
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return s, fmt.Errorf("setting %s: %q is not a non-negative integer", name, v)
			}
			*p = n
		case *bool:
			switch strings.ToLower(v) {
			case "1", "true", "on", "yes":
				*p = true
			case "0", "false", "off", "no":
				*p = false
			default:
				return s, fmt.Errorf("setting %s: %q is not a boolean (use on/off, true/false or 1/0)", name, v)
			}
		}
	}
	if s.MaxReturnedRows < 1 {
		return s, fmt.Errorf("setting max_returned_rows: must be at least 1")
	}
	if s.WriteQueueTimeLimitMS < 1 {
		return s, fmt.Errorf("setting write_queue_time_limit_ms: must be at least 1 (a write never waits without a bound)")
	}
	return s, nil
}

// maxResponseBytes is max_response_mb in bytes (0: no limit).
func (s Settings) maxResponseBytes() int64 { return int64(s.MaxResponseMB) << 20 }

// Server serves the configured databases. It implements http.Handler and
// is safe for concurrent use. Close releases the databases.
type Server struct {
	cfg      Config
	settings Settings
	// explicit holds the settings given on the command line, for
	// /-/config.json.
	explicit  map[string]string
	log       *slog.Logger
	dbs       map[string]*sqlitedb.DB
	dbNames   []string // in the order given
	pidHeader []string // X-Lode-Pid value: this process id

	html        *htmlPages
	static      http.Handler // web.Static() files
	crossOrigin *http.CrossOriginProtection

	// The gate's configuration: permissions, and the secret that signs
	// tokens, sign-in cookies and CSRF tokens (nil: no tokens accepted).
	// NewWriteAPI sets them before the server serves.
	checker *auth.Checker
	secret  []byte
	now     func() time.Time
	api     *WriteAPI // nil: a read-only server

	tablesMu sync.Mutex
	tables   map[*sqlitedb.Table]*query.Table // converted per schema snapshot
	rowStmts map[*query.Table]*rowLookup

	suggested suggestCache // accepted facet suggestions, see suggest_cache.go

	metrics *metricsState // nil: the metrics setting is off (metrics.go)
	obs     *observer     // nil: neither metrics nor an access log

	// statusEndpoints are /-/NAME.json pages the embedding program adds
	// (AddStatusEndpoint): the workers' and the replication status.
	statusEndpoints map[string]http.Handler
}

// AddStatusEndpoint serves h at path, which must be /-/NAME.json, behind
// the same gate as every instance page (view-instance): lode serve adds
// the prefork master's /-/workers.json and the replication status. Call it
// before serving; a page Lode already answers is refused.
func (s *Server) AddStatusEndpoint(path string, h http.Handler) error {
	name, ok := strings.CutPrefix(path, "/-/")
	if ok {
		name, ok = strings.CutSuffix(name, ".json")
	}
	if !ok || name == "" || strings.ContainsAny(name, "/.~%") {
		return fmt.Errorf("status endpoint %q: want /-/NAME.json", path)
	}
	if slices.Contains(instancePages, name) {
		return fmt.Errorf("status endpoint %s: Lode already answers that path", path)
	}
	if s.statusEndpoints == nil {
		s.statusEndpoints = map[string]http.Handler{}
	}
	s.statusEndpoints[name] = h
	return nil
}

// New opens every database and builds the routes. On error, databases
// already opened are closed.
func New(ctx context.Context, cfg Config) (*Server, error) {
	settings, err := ParseSettings(cfg.Settings)
	if err != nil {
		return nil, err
	}
	if err := cfg.DB.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		cfg: cfg, settings: settings, explicit: cfg.Settings, log: log,
		dbs: map[string]*sqlitedb.DB{}, pidHeader: []string{strconv.Itoa(os.Getpid())},
		tables: map[*sqlitedb.Table]*query.Table{},
		static: http.FileServerFS(web.Static()), crossOrigin: http.NewCrossOriginProtection(),
		checker: &auth.Checker{Config: cfg.Lode}, now: time.Now,
	}
	tpl, err := web.New()
	if err != nil {
		// The templates are embedded and covered by tests: a parse error
		// is a build bug, not a runtime condition.
		return nil, fmt.Errorf("parse embedded HTML templates: %w", err)
	}
	s.html = &htmlPages{s: s, tpl: tpl}
	if settings.Metrics {
		s.metrics = newMetricsState(s)
		s.obs = &observer{http: newHTTPMetrics(s.metrics.reg)}
	} else {
		cfg.DB.NoFileStats = true // no VFS shim either
	}
	if cfg.AccessLog != nil {
		al, err := newAccessLog(cfg.AccessLog, cfg.AccessLogFormat, log)
		if err != nil {
			return nil, err
		}
		if s.obs == nil {
			s.obs = &observer{}
		}
		s.obs.log = al
	}
	open := func(path string, st sqlitedb.Settings) error {
		// A query keeps at most max_response_mb of values in memory;
		// the rendered response is checked against it again.
		st.MaxResultBytes = settings.maxResponseBytes()
		if st.MaxResultBytes == 0 {
			st.MaxResultBytes = -1 // max_response_mb 0: no limit
		}
		db, err := sqlitedb.Open(ctx, path, st)
		if err != nil {
			return err
		}
		name := db.Name
		for i := 2; s.dbs[name] != nil; i++ {
			name = fmt.Sprintf("%s_%d", db.Name, i)
		}
		db.Name = name
		s.dbs[name] = db
		s.dbNames = append(s.dbNames, name)
		eff := db.EffectiveSettings()
		log.Info("database opened", "db", name, "path", db.Path, "journal_mode", eff.JournalMode,
			"synchronous", eff.Synchronous, "busy_timeout", eff.BusyTimeout, "txlock", eff.TxLock,
			"cache_size", eff.CacheSize, "mmap_size", eff.MmapSize, "immutable", eff.Immutable, "read_conns", eff.ReadConns,
			"max_value_bytes", eff.MaxValueBytes)
		logFileChange(log, db)
		return nil
	}
	for _, f := range cfg.Files {
		if err := open(f, cfg.DB); err != nil {
			s.Close()
			return nil, err
		}
	}
	for _, f := range cfg.Immutable {
		st := cfg.DB
		st.Immutable = true
		if err := open(f, st); err != nil {
			s.Close()
			return nil, err
		}
	}
	return s, nil
}

// Close closes every database.
func (s *Server) Close() error {
	var errs []error
	for _, db := range s.dbs {
		errs = append(errs, db.Close())
	}
	return errors.Join(errs...)
}

// DB returns the database served as name, or nil. The write API uses it.
func (s *Server) DB(name string) *sqlitedb.DB { return s.dbs[name] }

// DatabaseNames returns the served database names in order.
func (s *Server) DatabaseNames() []string { return append([]string(nil), s.dbNames...) }

// Settings returns the parsed settings.
func (s *Server) Settings() Settings { return s.settings }

// Timeouts of the http.Server built by Serve.
const (
	ReadHeaderTimeout = 10 * time.Second
	ReadTimeout       = 60 * time.Second
	WriteTimeout      = 5 * time.Minute // CSV streams of big tables take a while
	IdleTimeout       = 2 * time.Minute
	MaxHeaderBytes    = 64 << 10
	// ShutdownTimeout bounds the graceful drain after ctx is cancelled.
	ShutdownTimeout = 30 * time.Second
)

// NewHTTPServer is the http.Server that serves h for lode serve, in
// process or in a prefork worker: its timeouts bound slow clients, and
// requests do not see ctx's cancellation (a graceful stop lets them
// finish, bounded by the caller's drain timeout).
func NewHTTPServer(ctx context.Context, h http.Handler, log *slog.Logger) *http.Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
}

// Serve serves h on ln until ctx is cancelled, then shuts down gracefully:
// it stops accepting, lets in-flight requests finish for up to grace
// (0: ShutdownTimeout), closes the connections still open after that
// with a warning, and returns nil.
func Serve(ctx context.Context, ln net.Listener, h http.Handler, log *slog.Logger, grace time.Duration) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if grace <= 0 {
		grace = ShutdownTimeout
	}
	srv := NewHTTPServer(ctx, h, log)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		// Requests still running (a slow client's CSV stream) end here:
		// a stop never waits longer than grace.
		log.Warn("graceful timeout: closing remaining connections", "graceful_timeout", grace, "err", err)
		_ = srv.Close()
	}
	<-errc
	return nil
}

// dbFileSize returns the size of the database file in bytes.
func dbFileSize(db *sqlitedb.DB) int64 {
	fi, err := os.Stat(filepath.Clean(db.Path))
	if err != nil {
		return 0
	}
	return fi.Size()
}

// logFileChange says, once per database, when opening it changed the file
// itself: created it (--create), or switched it into or out of WAL mode,
// which SQLite stores in the file, so it lasts after Lode stops (a
// Datasette user does not expect serving a file to change it). The
// rollback modes are per connection and leave the file as it was.
func logFileChange(log *slog.Logger, db *sqlitedb.DB) {
	file := filepath.Base(db.Path)
	if db.Created() {
		log.Info("database file created", "db", db.Name, "file", file, "path", db.Path)
		return
	}
	from, to := db.PriorJournalMode(), db.EffectiveSettings().JournalMode
	if from == "" || from == to || (from != "wal" && to != "wal") {
		return
	}
	log.Info("journal mode changed (persistent; --journal-mode keep leaves it)", "db", db.Name, "file", file, "from", from, "to", to)
}
