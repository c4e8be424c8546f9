// Package sqlitedb opens SQLite database files for Lode with explicit,
// verifiable settings: a pool of read-only connections for queries (guarded by
// an authorizer, a time limit and a row cap) and exactly one read-write
// connection for the writer. It also caches schema introspection (tables,
// views, columns, primary and foreign keys, FTS tables, hidden tables) and
// refreshes it when PRAGMA schema_version changes.
//
// The driver is github.com/mattn/go-sqlite3, which compiles SQLite into the
// binary; the system libsqlite3 is never used. Build with -tags sqlite_fts5.
package sqlitedb

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mattn/go-sqlite3"
)

// Defaults applied by Open to zero-valued Settings fields.
const (
	DefaultJournalMode = "wal"
	DefaultSynchronous = "full"
	DefaultBusyTimeout = 5 * time.Second
	// NoBusyTimeout, as Settings.BusyTimeout, sets busy_timeout = 0: a
	// connection that finds the database locked fails at once. It exists
	// because the zero value of BusyTimeout means DefaultBusyTimeout.
	NoBusyTimeout time.Duration = -1
	DefaultTxLock               = "immediate"
	// DefaultSchemaCheckInterval is how long a cached schema is trusted
	// before PRAGMA schema_version is read again (see DB.Schema).
	DefaultSchemaCheckInterval = time.Second
)

// Settings are the per-connection SQLite settings a database is opened
// with. The zero value is usable: Open fills every empty field with the
// Default* constant (WAL, synchronous=FULL, 5 s busy timeout, BEGIN
// IMMEDIATE, one read connection per CPU).
type Settings struct {
	// JournalMode is wal, delete, truncate, persist or keep (leave the
	// file's current mode alone). WAL lets readers and the writer run at the
	// same time; the rollback modes make readers block commits.
	JournalMode string `json:"journal_mode"`
	// Synchronous is full, normal or off. FULL syncs the WAL on every
	// commit (durable on power loss); group commit makes that affordable.
	Synchronous string `json:"synchronous"`
	// BusyTimeout is how long a connection waits for a lock before SQLite
	// returns SQLITE_BUSY ("database is locked").
	BusyTimeout time.Duration `json:"busy_timeout"`
	// TxLock is immediate or deferred: how BeginTx on the write connection
	// starts a transaction. IMMEDIATE takes the write lock up front, so the
	// busy timeout applies and read-then-write upgrades cannot fail.
	TxLock string `json:"txlock"`
	// CacheSize is PRAGMA cache_size (negative = KiB, positive = pages);
	// 0 keeps SQLite's default (-2000, about 2 MB per connection).
	CacheSize int `json:"cache_size"`
	// MmapSize is PRAGMA mmap_size in bytes; 0 disables memory mapping.
	MmapSize int64 `json:"mmap_size"`
	// Immutable opens the file with immutable=1: SQLite takes no locks and
	// assumes nobody changes the file, so counts may be cached. An immutable
	// database has no write connection.
	Immutable bool `json:"immutable"`
	// ReadConns is the size of the read-only pool (default runtime.NumCPU()).
	// Every connection is opened by Open, so a request never needs a new
	// file descriptor (see readPool).
	ReadConns int `json:"read_conns"`
	// MaxValueBytes is SQLITE_LIMIT_LENGTH on read connections: the
	// largest string or blob a read may load or build (default
	// DefaultMaxValueBytes). Larger values fail the statement with
	// "string or blob too big"; that includes stored values, which can
	// then only be read with a higher limit.
	MaxValueBytes int `json:"max_value_bytes"`
	// MaxResultBytes bounds the bytes of values one Query keeps in memory
	// (default DefaultMaxResultBytes; negative: no limit). Past it the
	// statement stops with ErrResultTooLarge.
	MaxResultBytes int64 `json:"max_result_bytes"`
	// Create creates the file when it does not exist (default: Open fails).
	Create bool `json:"-"`
	// ReadOnly opens no write connection and leaves the journal mode alone:
	// another process owns the file's writes (a replica followed by `lode
	// serve --follow`). Unlike Immutable, SQLite still takes its locks and
	// sees every change, so nothing is cached on the assumption that the
	// file stands still.
	ReadOnly bool `json:"read_only,omitempty"`
	// AutoCheckpoint is PRAGMA wal_autocheckpoint on the write connection:
	// 0 keeps SQLite's default (a PASSIVE checkpoint after a commit that
	// leaves 1000 pages in the WAL), negative turns it off. lode serve
	// --replicate turns it off: Litestream checkpoints itself, between its
	// copies of the WAL, so commits do not pay for checkpoints.
	AutoCheckpoint int `json:"-"`
	// SchemaCheckInterval overrides DefaultSchemaCheckInterval (see
	// DB.Schema); a replica uses a short one because its schema changes
	// under it.
	SchemaCheckInterval time.Duration `json:"-"`
	// NoFileStats opens the connections through SQLite's default VFS
	// instead of the counting shim (vfsstat.go), so Stats().File stays
	// zero: for servers with metrics off, and for measuring the shim.
	NoFileStats bool `json:"-"`
}

// withDefaults returns s with every zero field set to its default.
func (s Settings) withDefaults() Settings {
	if s.JournalMode == "" {
		s.JournalMode = DefaultJournalMode
	}
	if s.Synchronous == "" {
		s.Synchronous = DefaultSynchronous
	}
	if s.BusyTimeout == 0 {
		s.BusyTimeout = DefaultBusyTimeout
	}
	if s.TxLock == "" {
		s.TxLock = DefaultTxLock
	}
	if s.ReadConns <= 0 {
		s.ReadConns = runtime.NumCPU()
	}
	if s.ReadOnly {
		s.JournalMode = "keep" // the owner of the writes decides it
	}
	if s.MaxValueBytes <= 0 {
		s.MaxValueBytes = DefaultMaxValueBytes
	}
	if s.MaxResultBytes == 0 {
		s.MaxResultBytes = DefaultMaxResultBytes
	}
	s.JournalMode = strings.ToLower(s.JournalMode)
	s.Synchronous = strings.ToLower(s.Synchronous)
	s.TxLock = strings.ToLower(s.TxLock)
	return s
}

// Validate reports the first invalid field, in words a user can act on.
func (s Settings) Validate() error {
	s = s.withDefaults()
	switch s.JournalMode {
	case "wal", "delete", "truncate", "persist", "keep":
	default:
		return fmt.Errorf("journal mode %q: want wal, delete, truncate, persist or keep", s.JournalMode)
	}
	switch s.Synchronous {
	case "full", "normal", "off":
	default:
		return fmt.Errorf("synchronous %q: want full, normal or off", s.Synchronous)
	}
	switch s.TxLock {
	case "immediate", "deferred":
	default:
		return fmt.Errorf("txlock %q: want immediate or deferred", s.TxLock)
	}
	if s.BusyTimeout < 0 && s.BusyTimeout != NoBusyTimeout {
		return fmt.Errorf("busy timeout %s: must not be negative", s.BusyTimeout)
	}
	if s.MmapSize < 0 {
		return fmt.Errorf("mmap size %d: must not be negative", s.MmapSize)
	}
	return nil
}

// DB is one SQLite database file opened for serving. It is safe for
// concurrent use by multiple goroutines. Close releases both pools.
type DB struct {
	// Name is the database name used in URLs (the file name without its
	// extension unless set otherwise by the caller).
	Name string
	// Path is the absolute file path; GivenPath the path as the caller
	// gave it (lode serve shows it as Datasette does).
	Path      string
	GivenPath string
	settings  Settings

	read  *sql.DB // read-only pool: mode=ro, query_only=1, authorizer
	write *sql.DB // one read-write connection; nil when immutable

	pool *readPool // read-only connections for Each/Query (readpool.go)

	schemaMu        sync.Mutex
	schema          *Schema
	schemaCheckedAt time.Time
	// SchemaCheckInterval overrides DefaultSchemaCheckInterval; set it before
	// serving requests.
	SchemaCheckInterval time.Duration

	countMu sync.Mutex
	counts  map[string]int64 // immutable databases only: cached counts by SQL+args

	wrapMu sync.Mutex
	wrap   map[string]string // SQL -> SQL rewritten to avoid driver type conversion

	checked  sync.Map     // SQL whose result columns need no rewriting
	checkedN atomic.Int64 // entries in checked, to bound it

	effective Settings // read back from SQLite once, at Open

	vfs   *statsVFS // the counting VFS every connection opens through (nil: none)
	stats dbStats   // read-side counters (stats.go)

	file os.FileInfo // the database file as Open found it (CheckFile)

	// priorJournalMode is the journal mode the file had when the write
	// connection first opened it, before writeHook set the configured one;
	// created is set when Open created the file (Settings.Create).
	priorOnce        sync.Once
	priorJournalMode string
	created          bool
}

// readDBConns is the size of the database/sql read pool (schema reads).
const readDBConns = 2

// openAll opens n connections of p at once and returns them to its idle
// list, where they stay (no lifetime or idle limit is set).
func openAll(ctx context.Context, p *sql.DB, n int) error {
	conns := make([]*sql.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range n {
		c, err := p.Conn(ctx)
		if err != nil {
			return err
		}
		conns = append(conns, c)
		// A first read opens the WAL file too (SQLite opens it lazily).
		if _, err := c.ExecContext(ctx, "SELECT count(*) FROM sqlite_schema"); err != nil {
			return err
		}
	}
	return nil
}

// Open opens the database file at path with settings s (zero fields take
// the defaults). The write connection is opened first so that it can set
// the journal mode before any reader attaches; readers then open with
// mode=ro. ctx bounds the time spent opening and reading the schema.
func Open(ctx context.Context, path string, s Settings) (*DB, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	s = s.withDefaults()
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("resolve path %q: %w", path, err)
	}
	created := false
	if _, err := os.Stat(abs); err != nil {
		if !errors.Is(err, os.ErrNotExist) || !s.Create || s.Immutable {
			return nil, fmt.Errorf("open database %q: %w", path, err)
		}
		// SQLite would say only "unable to open database file".
		if dir := filepath.Dir(abs); !isDir(dir) {
			return nil, fmt.Errorf("create database %q: folder %s does not exist", path, dir)
		}
		created = true
	}
	db := &DB{
		Name:                strings.TrimSuffix(filepath.Base(abs), filepath.Ext(abs)),
		Path:                abs,
		GivenPath:           path,
		settings:            s,
		counts:              map[string]int64{},
		wrap:                map[string]string{},
		SchemaCheckInterval: s.SchemaCheckInterval,
		created:             created,
	}
	if !s.NoFileStats {
		db.vfs = newStatsVFS()
	}
	if !s.Immutable && !s.ReadOnly {
		db.write = sql.OpenDB(&connector{dsn: db.dsn(false), hook: db.writeHook})
		// One writer per process: SQLite allows one writer per file anyway,
		// and a single connection turns lock waits into an in-process queue.
		db.write.SetMaxOpenConns(1)
		db.write.SetMaxIdleConns(1)
		db.write.SetConnMaxLifetime(0)
		if err := db.write.PingContext(ctx); err != nil {
			db.write.Close()
			return nil, fmt.Errorf("open database %q for writing: %w", path, err)
		}
	}
	// The file the connections opened: CheckFile compares the path with
	// it before every write transaction.
	if db.file, err = os.Stat(abs); err != nil {
		db.Close()
		return nil, fmt.Errorf("open database %q: %w", path, err)
	}
	readConn := &connector{dsn: db.dsn(true), hook: db.readHook}
	// Every read connection is opened now, not on demand: a request must
	// never need a new file descriptor, which fails when the process is
	// out of them ("too many open files") or the file was moved.
	db.pool, err = openReadPool(s.ReadConns, func() (*sqlite3.SQLiteConn, error) {
		c, err := readConn.Connect(context.Background())
		if err != nil {
			return nil, err
		}
		return c.(*sqlite3.SQLiteConn), nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open database %q for reading: %w", path, err)
	}
	// database/sql's pool serves the schema reads and ReadDB; statements
	// of Each and Query run on db.pool. Both of its connections are
	// opened now too (idle connections are kept for ever).
	db.read = sql.OpenDB(readConn)
	db.read.SetMaxOpenConns(readDBConns)
	db.read.SetMaxIdleConns(readDBConns)
	db.read.SetConnMaxLifetime(0)
	if err := openAll(ctx, db.read, readDBConns); err != nil {
		db.Close()
		return nil, fmt.Errorf("open database %q for reading: %w", path, err)
	}
	schema, err := db.refreshSchema(ctx)
	if err != nil {
		db.Close()
		return nil, err
	}
	if err := checkModules(schema, func() bool { return compiledFTS5(ctx, db) }); err != nil {
		db.Close()
		return nil, fmt.Errorf("database %q: %w", path, err)
	}
	// Read back now, while nothing else holds the write connection: once a
	// Writer owns it, asking it for PRAGMAs would wait for the Writer.
	if db.effective, err = db.readEffectiveSettings(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// dsn builds the file: URI. Only URI parameters SQLite itself understands
// go here; every PRAGMA is set in a connect hook so it is explicit and
// per connection.
func (db *DB) dsn(readOnly bool) string {
	u := url.URL{Path: db.Path}
	q := url.Values{}
	switch {
	case db.settings.Immutable:
		q.Set("mode", "ro")
		q.Set("immutable", "1")
	case readOnly:
		q.Set("mode", "ro")
	case db.settings.Create:
		q.Set("mode", "rwc")
	default:
		q.Set("mode", "rw")
	}
	if db.vfs != nil {
		q.Set("vfs", db.vfs.name) // SQLite's own URI parameter
	}
	if !readOnly {
		// mattn/go-sqlite3 reads _txlock to decide how BeginTx starts.
		q.Set("_txlock", db.settings.TxLock)
	}
	return "file:" + u.EscapedPath() + "?" + q.Encode()
}

// commonPragmas are set on every connection, read or write.
func (db *DB) commonPragmas() []string {
	s := db.settings
	p := []string{fmt.Sprintf("PRAGMA busy_timeout = %d", max(s.BusyTimeout, 0).Milliseconds())}
	if s.CacheSize != 0 {
		p = append(p, fmt.Sprintf("PRAGMA cache_size = %d", s.CacheSize))
	}
	p = append(p, fmt.Sprintf("PRAGMA mmap_size = %d", s.MmapSize))
	return p
}

func (db *DB) writeHook(c *sqlite3.SQLiteConn) error {
	// Remember the file's own journal mode, so that the server can say
	// when serving the file changes it (WAL is stored in the file).
	var err error
	db.priorOnce.Do(func() { db.priorJournalMode, err = journalMode(c) })
	if err != nil {
		return err
	}
	p := db.commonPragmas()
	if db.settings.JournalMode != "keep" {
		p = append(p, "PRAGMA journal_mode = "+db.settings.JournalMode)
	}
	p = append(p, "PRAGMA synchronous = "+db.settings.Synchronous, "PRAGMA foreign_keys = ON")
	if n := db.settings.AutoCheckpoint; n != 0 {
		p = append(p, fmt.Sprintf("PRAGMA wal_autocheckpoint = %d", max(n, 0)))
	}
	return execAll(c, p)
}

func (db *DB) readHook(c *sqlite3.SQLiteConn) error {
	p := db.commonPragmas()
	// synchronous matters only to writers, but setting it keeps
	// EffectiveSettings truthful whichever pool it reads from.
	p = append(p, "PRAGMA synchronous = "+db.settings.Synchronous, "PRAGMA query_only = 1")
	if err := execAll(c, p); err != nil {
		return err
	}
	setReadLimits(c, db.settings.MaxValueBytes)
	// The authorizer goes last so the PRAGMAs above are not subject to it.
	c.RegisterAuthorizer(authorizeRead)
	return nil
}

// journalMode reads PRAGMA journal_mode on c.
func journalMode(c *sqlite3.SQLiteConn) (string, error) {
	rows, err := c.Query("PRAGMA journal_mode", nil)
	if err != nil {
		return "", fmt.Errorf("PRAGMA journal_mode: %w", err)
	}
	defer rows.Close()
	dest := []driver.Value{nil}
	if err := rows.Next(dest); err != nil {
		return "", fmt.Errorf("PRAGMA journal_mode: %w", err)
	}
	switch v := dest[0].(type) {
	case string:
		return strings.ToLower(v), nil
	case []byte:
		return strings.ToLower(string(v)), nil
	}
	return "", fmt.Errorf("PRAGMA journal_mode: unexpected %T", dest[0])
}

func isDir(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.IsDir()
}

func execAll(c *sqlite3.SQLiteConn, stmts []string) error {
	for _, q := range stmts {
		if _, err := c.Exec(q, nil); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	return nil
}

// connector opens mattn/go-sqlite3 connections with a per-database connect
// hook without registering a global driver name.
type connector struct {
	dsn  string
	hook func(*sqlite3.SQLiteConn) error
}

func (c *connector) Connect(context.Context) (driver.Conn, error) {
	d := &sqlite3.SQLiteDriver{ConnectHook: c.hook}
	return d.Open(c.dsn)
}

func (c *connector) Driver() driver.Driver { return &sqlite3.SQLiteDriver{ConnectHook: c.hook} }

// Settings returns the settings the database was opened with (defaults
// filled in). EffectiveSettings reads them back from SQLite.
func (db *DB) Settings() Settings { return db.settings }

// PriorJournalMode is the journal mode the file had before Open set the
// configured one ("" for an immutable database, which is never changed).
// WAL is a property of the file, so going to or from "wal" outlasts the
// server; the rollback modes (delete, truncate, persist) are per connection.
func (db *DB) PriorJournalMode() string { return db.priorJournalMode }

// Created reports whether Open created the file (Settings.Create).
func (db *DB) Created() bool { return db.created }

// Immutable reports whether the database was opened with immutable=1.
func (db *DB) Immutable() bool { return db.settings.Immutable }

// ReadOnly reports whether the database was opened without a write
// connection because another process writes it (Settings.ReadOnly).
func (db *DB) ReadOnly() bool { return db.settings.ReadOnly }

// ReadDB returns a small (two connection) database/sql pool for occasional
// reads outside Query and Each. Statements on it cannot write: the
// connections are opened with mode=ro, PRAGMA query_only=1 and an
// authorizer that denies writes, ATTACH, PRAGMA assignments and
// load_extension.
func (db *DB) ReadDB() *sql.DB { return db.read }

// WriteDB returns the single read-write connection pool
// (SetMaxOpenConns(1)); BeginTx on it uses the configured TxLock. It is nil
// for immutable databases. The group-commit Writer owns it: nothing else
// should write through it while a Writer runs.
func (db *DB) WriteDB() *sql.DB { return db.write }

// Close closes both pools and prepared statements.
func (db *DB) Close() error {
	if db.pool != nil {
		db.pool.close()
	}
	var errs []error
	if db.read != nil {
		errs = append(errs, db.read.Close())
	}
	if db.write != nil {
		errs = append(errs, db.write.Close())
	}
	if db.vfs != nil {
		db.vfs.close()
	}
	return errors.Join(errs...)
}

// EffectiveSettings returns the settings as SQLite reported them when the
// database was opened: journal mode, synchronous, busy timeout, cache and
// mmap size read back from PRAGMAs of the write connection (the one that
// matters for durability; a read connection for immutable databases), and
// the value limit (SQLITE_LIMIT_LENGTH) of a read connection.
// TxLock, Immutable and ReadConns are not PRAGMAs and are copied. It never
// waits: the connections are per-process and keep these settings.
func (db *DB) EffectiveSettings() Settings { return db.effective }

// readEffectiveSettings reads the settings back from SQLite PRAGMAs.
func (db *DB) readEffectiveSettings(ctx context.Context) (Settings, error) {
	out := db.settings
	src := db.write
	if src == nil {
		src = db.read
	}
	var jm string
	var syncN, busy, cache int
	var mmap int64
	conn, err := src.Conn(ctx)
	if err != nil {
		return out, fmt.Errorf("effective settings: %w", err)
	}
	defer conn.Close()
	for _, p := range []struct {
		q   string
		dst any
	}{
		{"PRAGMA journal_mode", &jm},
		{"PRAGMA synchronous", &syncN},
		{"PRAGMA busy_timeout", &busy},
		{"PRAGMA cache_size", &cache},
		{"PRAGMA mmap_size", &mmap},
	} {
		if err := conn.QueryRowContext(ctx, p.q).Scan(p.dst); err != nil && !errors.Is(err, sql.ErrNoRows) {
			return out, fmt.Errorf("effective settings: %s: %w", p.q, err)
		}
	}
	out.JournalMode = strings.ToLower(jm)
	out.Synchronous = map[int]string{0: "off", 1: "normal", 2: "full", 3: "extra"}[syncN]
	out.BusyTimeout = time.Duration(busy) * time.Millisecond
	out.CacheSize = cache
	out.MmapSize = mmap
	rc, err := db.pool.get(ctx, 0)
	if err != nil {
		return out, fmt.Errorf("effective settings: %w", err)
	}
	out.MaxValueBytes = rc.c.GetLimit(sqlite3.SQLITE_LIMIT_LENGTH)
	db.pool.put(rc)
	return out, nil
}

// InvalidateStatements drops every cached prepared statement (after a schema
// change SQLite re-prepares them anyway, but statements for dropped tables
// would otherwise linger until the connection closes).
func (db *DB) InvalidateStatements() { db.pool.gen.Add(1) }

// ErrFileMoved means the database file is no longer at its path: it was
// deleted, renamed or replaced by another file while the server had it
// open. SQLite would go on writing to the open (now unreachable) file, in
// WAL mode without any error, so every write would be acknowledged and
// then lost at the next restart; the writer refuses writes instead.
var ErrFileMoved = errors.New("sqlitedb: the database file was deleted, moved or replaced while open")

// CheckFile reports ErrFileMoved (wrapped with the path) when the path no
// longer names the file Open opened: it is gone, or another file (another
// inode) took its place. This is what SQLite's SQLITE_FCNTL_HAS_MOVED
// checks, which mattn/go-sqlite3 cannot return. One stat call; the writer
// runs it before every write transaction.
func (db *DB) CheckFile() error {
	fi, err := os.Stat(db.Path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("%w: %s no longer exists", ErrFileMoved, db.Path)
	case err != nil:
		// Not knowing is not proof of a move: let SQLite report what it
		// finds (a permission or I/O error).
		return nil
	case !os.SameFile(fi, db.file):
		return fmt.Errorf("%w: %s is now another file", ErrFileMoved, db.Path)
	}
	return nil
}
