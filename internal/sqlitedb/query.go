package sqlitedb

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/mattn/go-sqlite3"
)

// Errors returned by the query functions. Callers map them to HTTP statuses.
var (
	// ErrTimeLimit means a statement was interrupted because its time limit
	// (sql_time_limit_ms) passed.
	ErrTimeLimit = errors.New("sqlitedb: query time limit exceeded")
	// ErrNotReadOnly means a statement would write, attach, change a
	// setting or load an extension and was refused on the read pool.
	ErrNotReadOnly = errors.New("sqlitedb: statement is not read-only")
	// ErrNoConnection means every read connection stayed busy for the
	// whole wait (the time limit, or WaitLimit): the statement never ran.
	ErrNoConnection = errors.New("sqlitedb: timed out waiting for a free read connection")
)

// SQLError is an error reported by SQLite for a statement (syntax error,
// no such table, authorizer denial, ...). Its message is SQLite's own and
// safe to show to the user who wrote the SQL.
type SQLError struct {
	Msg string
	Err error
}

func (e *SQLError) Error() string { return e.Msg }
func (e *SQLError) Unwrap() error { return e.Err }

// QueryOptions bound one statement on the read pool.
type QueryOptions struct {
	// MaxRows caps the rows returned; more rows set Result.Truncated.
	// 0 means no cap.
	MaxRows int
	// TimeLimit interrupts the statement (SQLite's sqlite3_interrupt via
	// context cancellation) when it runs longer; 0 means no extra limit.
	TimeLimit time.Duration
	// Prepared reuses a cached prepared statement for this SQL text. Use it
	// only for SQL Lode generates, never for user-written ?sql=.
	Prepared bool
	// CheckReadOnly prepares the statement first and refuses it unless
	// sqlite3_stmt_readonly says it cannot write (catches VACUUM and other
	// statements the authorizer never sees). Use it for user-written SQL.
	CheckReadOnly bool
	// Bounded marks a statement whose cost cannot run away (a lookup by
	// key): it runs without the time-limit watchdog, so neither TimeLimit
	// nor ctx interrupts it; ctx still bounds the wait for a connection.
	Bounded bool
	// WaitLimit bounds the wait for a free connection when it is shorter
	// than TimeLimit or TimeLimit is 0 (a streamed CSV has no time limit,
	// but its wait for a connection must end); 0 means TimeLimit.
	WaitLimit time.Duration
	// MaxBytes bounds the bytes of values Query keeps (0: the database's
	// Settings.MaxResultBytes; negative: no bound). Past it Query stops
	// the statement and returns ErrResultTooLarge. Each ignores it.
	MaxBytes int64
}

// Result is a fully read statement result, bounded by MaxRows. Values are
// int64, float64, string, []byte or nil: never time.Time or bool (see
// wrapSQL).
type Result struct {
	Columns   []string
	Rows      [][]any
	Truncated bool
}

// Query runs a read-only statement on the read pool and returns at most
// opt.MaxRows rows holding at most opt.MaxBytes bytes of values (else
// ErrResultTooLarge and no rows).
func (db *DB) Query(ctx context.Context, q string, args []any, opt QueryOptions) (*Result, error) {
	res := &Result{}
	maxBytes := opt.MaxBytes
	if maxBytes == 0 {
		maxBytes = db.settings.MaxResultBytes
	}
	var size int64
	err := db.Each(ctx, q, args, opt, func(cols []string) error {
		res.Columns = cols
		return nil
	}, func(row []any) error {
		if opt.MaxRows > 0 && len(res.Rows) >= opt.MaxRows {
			res.Truncated = true
			return errStop
		}
		if maxBytes > 0 {
			for _, v := range row {
				size += valueSize(v)
			}
			if size > maxBytes {
				return ErrResultTooLarge
			}
		}
		res.Rows = append(res.Rows, append([]any(nil), row...))
		return nil
	})
	if res.Columns == nil {
		res.Columns = []string{}
	}
	if errors.Is(err, ErrResultTooLarge) {
		res.Rows = nil // let the collector have them now
	}
	return res, err
}

var errStop = errors.New("stop")

// typesChecked reports whether q is known to return no column whose
// declared type the driver would convert (so ColumnTypes need not be read
// again). The set is bounded like the statement cache.
func (db *DB) typesChecked(q string) bool {
	_, ok := db.checked.Load(q)
	return ok
}

func (db *DB) markTypesChecked(q string) {
	if db.checkedN.Add(1) > maxCachedStmts*4 {
		db.checked.Clear()
		db.checkedN.Store(0)
	}
	db.checked.Store(q, true)
}

func (db *DB) wrapped(q string) string {
	db.wrapMu.Lock()
	defer db.wrapMu.Unlock()
	return db.wrap[q]
}

// wrapSQL rewrites q so that no result column carries a declared type: a
// CTE renames the columns positionally (duplicate names are fine) and
// unary + (a no-op in SQLite for every type) turns each into an
// expression, which has no declared type.
func wrapSQL(q string, cols []string) string {
	var b strings.Builder
	b.WriteString("WITH _lode_raw(")
	for i := range cols {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "c%d", i)
	}
	b.WriteString(") AS (")
	b.WriteString(strings.TrimRight(strings.TrimSpace(q), ";"))
	b.WriteString("\n) SELECT ")
	for i, c := range cols {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "+c%d AS %s", i, QuoteIdent(c))
	}
	b.WriteString(" FROM _lode_raw")
	return b.String()
}

// QuoteIdent quotes an SQL identifier with double quotes.
func QuoteIdent(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

// normalize maps driver values to int64, float64, string, []byte or nil.
func normalize(v any) any {
	switch x := v.(type) {
	case nil, int64, float64, string, []byte:
		return v
	case time.Time:
		return x.Format("2006-01-02 15:04:05")
	case bool:
		if x {
			return int64(1)
		}
		return int64(0)
	case int:
		return int64(x)
	default:
		return fmt.Sprint(x)
	}
}

// mapErr turns driver errors into ErrTimeLimit, ErrNotReadOnly or *SQLError.
func (db *DB) mapErr(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, ErrNotReadOnly) || errors.Is(err, ErrTimeLimit) {
		return err
	}
	var se *SQLError
	if errors.As(err, &se) {
		return err
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return ErrTimeLimit
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	var sqErr sqlite3.Error
	if errors.As(err, &sqErr) {
		switch sqErr.Code {
		case sqlite3.ErrInterrupt:
			return ErrTimeLimit
		case sqlite3.ErrAuth:
			return fmt.Errorf("%w: %s", ErrNotReadOnly, sqErr.Error())
		case sqlite3.ErrReadonly:
			if sqErr.ExtendedCode != sqlite3.ErrNoExtended(sqlite3.ErrReadonly) {
				// SQLITE_READONLY_ROLLBACK, _RECOVERY, _CANTLOCK ...: the
				// read-only connection cannot recover a hot journal or
				// WAL another connection left (after a failed write); not
				// the statement's fault.
				return err
			}
			return fmt.Errorf("%w: %s", ErrNotReadOnly, sqErr.Error())
		case sqlite3.ErrTooBig:
			return &SQLError{Msg: fmt.Sprintf("%s: a query may read or build strings and blobs of at most %s (the server's value limit)",
				sqErr.Error(), formatBytes(int64(db.settings.MaxValueBytes))), Err: err}
		}
		return &SQLError{Msg: sqErr.Error(), Err: err}
	}
	return err
}

// Count runs a count query under its own time limit. ok is false when the
// limit passed (the count is unknown); err is set for real errors. For
// immutable databases the count is cached, since the file cannot change.
func (db *DB) Count(ctx context.Context, q string, args []any, limit time.Duration) (n int64, ok bool, err error) {
	key := ""
	if db.settings.Immutable {
		key = q + "\x00" + fmt.Sprint(args...)
		db.countMu.Lock()
		n, hit := db.counts[key]
		db.countMu.Unlock()
		if hit {
			return n, true, nil
		}
	}
	res, err := db.Query(ctx, q, args, QueryOptions{TimeLimit: limit, Prepared: true, MaxRows: 1})
	if errors.Is(err, ErrTimeLimit) || errors.Is(err, ErrNoConnection) {
		return 0, false, nil // not counted within the limit: unknown
	}
	if err != nil {
		return 0, false, err
	}
	if len(res.Rows) == 0 || len(res.Rows[0]) == 0 {
		return 0, false, fmt.Errorf("count: no result")
	}
	switch v := res.Rows[0][0].(type) {
	case int64:
		n = v
	case float64:
		n = int64(v)
	case string:
		n, _ = strconv.ParseInt(v, 10, 64)
	}
	if key != "" {
		db.countMu.Lock()
		db.counts[key] = n
		db.countMu.Unlock()
	}
	return n, true, nil
}

// IsFinite reports whether f can be written as a JSON number.
func IsFinite(f float64) bool { return !math.IsInf(f, 0) && !math.IsNaN(f) }

// Authorizer action codes missing from mattn/go-sqlite3's constants.
const (
	sqliteRecursive = 33
	sqliteInsert    = 18
	sqliteUpdate    = 23
	sqliteDelete    = 9
)

// readPragmasWithArg may be called with an argument on the read pool: they
// take a table or index name and only read.
var readPragmasWithArg = map[string]bool{
	"table_info": true, "table_xinfo": true, "index_list": true, "index_info": true,
	"index_xinfo": true, "foreign_key_list": true, "table_list": true,
}

// readPragmas may be called without an argument (a read of the setting).
var readPragmas = map[string]bool{
	"schema_version": true, "user_version": true, "application_id": true, "page_size": true,
	"page_count": true, "freelist_count": true, "journal_mode": true, "synchronous": true,
	"busy_timeout": true, "cache_size": true, "mmap_size": true, "query_only": true,
	"encoding": true, "foreign_keys": true, "data_version": true, "database_list": true,
	"function_list": true, "module_list": true, "pragma_list": true, "collation_list": true,
	"compile_options": true, "table_list": true, "auto_vacuum": true, "max_page_count": true,
	"temp_store": true, "wal_autocheckpoint": true, "journal_size_limit": true, "locking_mode": true,
}

// deniedFunctions are SQL functions a read-only query may never call.
var deniedFunctions = map[string]bool{
	"load_extension": true, "fts3_tokenizer": true, "readfile": true, "writefile": true, "edit": true,
}

// authorizeRead is the authorizer installed on every read connection. It is
// the second line of defence after mode=ro and query_only=1: it allows
// reading, selecting, recursive CTEs and harmless transaction statements,
// read-only PRAGMAs and ordinary functions, and denies everything else:
// ATTACH/DETACH, PRAGMA assignments, load_extension, any write or DDL.
func authorizeRead(op int, arg1, arg2, _ string) int {
	switch op {
	case sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqliteRecursive, sqlite3.SQLITE_TRANSACTION:
		return sqlite3.SQLITE_OK
	case sqlite3.SQLITE_FUNCTION:
		if deniedFunctions[strings.ToLower(arg2)] {
			return sqlite3.SQLITE_DENY
		}
		return sqlite3.SQLITE_OK
	case sqlite3.SQLITE_PRAGMA:
		name := strings.ToLower(arg1)
		if readPragmasWithArg[name] || (arg2 == "" && readPragmas[name]) {
			return sqlite3.SQLITE_OK
		}
		return sqlite3.SQLITE_DENY
	default:
		return sqlite3.SQLITE_DENY
	}
}

// formatBytes writes n as MiB when it is a whole number of them.
func formatBytes(n int64) string {
	if n >= 1<<20 && n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}
