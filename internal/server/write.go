package server

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"lode/internal/auth"
	"lode/internal/config"
	"lode/internal/query"
	"lode/internal/sqlitedb"

	"github.com/mattn/go-sqlite3"
)

// Defaults of the write API.
const (
	// DefaultMaxBodyBytes caps a write request's body; larger bodies get 413.
	DefaultMaxBodyBytes = 10 << 20
	// DefaultMaxInsertRows is Datasette's max_insert_rows default.
	DefaultMaxInsertRows = 100
	// PoolWriteConns is the number of read-write connections in --writer
	// pool mode.
	PoolWriteConns = 16
)

// WriteConfig configures the write API, permissions and canned queries.
type WriteConfig struct {
	// Config is lode.yaml (nil: the Server's Config.Lode).
	Config *config.Config
	// Secret signs API tokens and the root sign-in cookie.
	Secret []byte
	// Root grants the actor "root" every permission (lode serve --root).
	Root bool
	// RootToken, when set, is the one-time sign-in token accepted at
	// /-/auth-token?token=... to become root in a browser.
	RootToken string
	// RootTokenClaim is a file path that the first sign-in with RootToken
	// creates (O_EXCL), so the token works once across all worker
	// processes; "" makes it once per process.
	RootTokenClaim string
	// Writer holds the writer mode and group-commit limits; its TxLock is
	// taken from each database's settings.
	Writer sqlitedb.WriterOptions
	// MaxBodyBytes caps request bodies (default DefaultMaxBodyBytes).
	MaxBodyBytes int64
	// MaxInsertRows caps rows per insert (default: the max_insert_rows
	// setting of lode.yaml, else DefaultMaxInsertRows).
	MaxInsertRows int
	// Now is the clock for token expiry (nil: time.Now).
	Now func() time.Time
}

// WriteAPI is the http.Handler that serves Lode's writes — Datasette 1.0's
// write API, canned queries and write scripts — checks permissions, and
// hands every other request to the read Server. It owns one
// sqlitedb.Writer per mutable database. Close stops the writers; the
// Server is closed by its owner.
type WriteAPI struct {
	s       *Server
	cfg     WriteConfig
	checker *auth.Checker
	writers map[string]*sqlitedb.Writer
	mux     http.Handler // the routes, wrapped by routesHTML

	rootUsed atomic.Bool // the one-time root sign-in token was used
}

// NewWriteAPI wraps s. Each mutable database gets a Writer over its write
// connection; in pool mode the write pool is widened to PoolWriteConns
// connections so requests run their own transactions side by side.
func NewWriteAPI(s *Server, cfg WriteConfig) (*WriteAPI, error) {
	if cfg.Config == nil {
		cfg.Config = s.cfg.Lode
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.MaxInsertRows <= 0 {
		cfg.MaxInsertRows = DefaultMaxInsertRows
		if cfg.Config != nil {
			if n, ok := cfg.Config.Settings["max_insert_rows"].(int); ok && n > 0 {
				cfg.MaxInsertRows = n
			}
		}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	a := &WriteAPI{s: s, cfg: cfg, checker: &auth.Checker{Config: cfg.Config, Root: cfg.Root},
		writers: map[string]*sqlitedb.Writer{}}
	for _, name := range s.DatabaseNames() {
		db := s.DB(name)
		if db.Immutable() || db.WriteDB() == nil {
			continue
		}
		opts := cfg.Writer
		opts.TxLock = db.Settings().TxLock
		if opts.Mode == "pool" {
			db.WriteDB().SetMaxOpenConns(PoolWriteConns)
			db.WriteDB().SetMaxIdleConns(PoolWriteConns)
		}
		w, err := sqlitedb.NewWriter(db.WriteDB(), opts)
		if err != nil {
			a.Close()
			return nil, err
		}
		a.writers[name] = w
	}
	a.routes()
	return a, nil
}

// Close stops every writer after its batch in progress.
func (a *WriteAPI) Close() error {
	for _, w := range a.writers {
		w.Close()
	}
	return nil
}

// Writer returns the writer of database name, or nil.
func (a *WriteAPI) Writer(name string) *sqlitedb.Writer { return a.writers[name] }

func (a *WriteAPI) routes() {
	m := http.NewServeMux()
	a.mux = m
	m.HandleFunc("POST /{db}/{table}/-/insert", a.handleInsert)
	m.HandleFunc("POST /{db}/{table}/-/upsert", a.handleInsert)
	m.HandleFunc("POST /{db}/{table}/-/drop", a.handleDrop)
	m.HandleFunc("POST /{db}/{table}/{pk}/-/update", a.handleUpdate)
	m.HandleFunc("POST /{db}/{table}/{pk}/-/delete", a.handleDelete)
	m.HandleFunc("POST /{db}/-/create", a.handleCreate)
	m.HandleFunc("POST /{db}/{name}", a.handleCannedWrite)
	m.HandleFunc("GET /{db}/{name}", a.handleCannedRead)
	m.HandleFunc("GET /-/auth-token", a.handleAuthToken)
	m.HandleFunc("GET /-/actor.json", a.handleActor)
	m.Handle("/", http.HandlerFunc(a.handleRead))
	a.routesHTML() // html_canned.go: canned query pages and their write forms
}

// ServeHTTP serves writes and canned queries and passes reads to Server.
func (a *WriteAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	setPid(w, a.s.pidHeader)
	// A GET of a row (/DB/TABLE/PK, three or more segments) matches no
	// route of the write API or its canned-query pages: skip the match.
	if (r.Method == http.MethodGet || r.Method == http.MethodHead) && strings.Count(r.URL.EscapedPath(), "/") >= 3 &&
		!strings.HasPrefix(r.URL.Path, "/-/") {
		a.handleRead(w, r)
		return
	}
	a.mux.ServeHTTP(w, r)
}

// requestActor returns the request's actor and token restrictions. A
// bearer token that is tampered with or expired is an error (401); no
// token is the anonymous actor (nil).
func (a *WriteAPI) requestActor(r *http.Request) (auth.Actor, *auth.Restrictions, error) {
	h := r.Header.Get("Authorization")
	if h != "" {
		tok, ok := strings.CutPrefix(h, "Bearer ")
		if !ok {
			return nil, nil, &apiError{Status: http.StatusUnauthorized, Message: "Authorization header must be: Bearer TOKEN"}
		}
		actor, restr, err := auth.VerifyToken(a.cfg.Secret, strings.TrimSpace(tok), a.cfg.Now())
		switch {
		case errors.Is(err, auth.ErrTokenExpired):
			return nil, nil, &apiError{Status: http.StatusUnauthorized, Message: "Token has expired"}
		case err != nil:
			return nil, nil, &apiError{Status: http.StatusUnauthorized, Message: "Invalid token"}
		}
		return actor, restr, nil
	}
	if c, err := r.Cookie(actorCookie); err == nil {
		// The sign-in cookie is a signed token too. It only counts for
		// reads and JSON posts, which a cross-site form cannot send.
		if r.Method == http.MethodGet || r.Method == http.MethodHead || isJSON(r) {
			if actor, restr, err := auth.VerifyToken(a.cfg.Secret, c.Value, a.cfg.Now()); err == nil {
				return actor, restr, nil
			}
		}
	}
	return nil, nil, nil
}

const actorCookie = "lode_actor"

func isJSON(r *http.Request) bool {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return mt == "application/json"
}

// writeCtx is what every write handler resolves first.
type writeCtx struct {
	db     *sqlitedb.DB
	writer *sqlitedb.Writer
	name   string // database name
	table  string // "" for database-level endpoints
	actor  auth.Actor
	restr  *auth.Restrictions
}

func (c *writeCtx) allowed(a *WriteAPI, action string) bool {
	return a.checker.Allowed(c.actor, c.restr, action, c.name, c.table)
}

// resolve finds the database (and table, if tableSeg is not ""), the actor
// and the writer, and checks action. Errors are answered and nil returned.
func (a *WriteAPI) resolve(w http.ResponseWriter, r *http.Request, tableSeg string, action string) *writeCtx {
	actor, restr, err := a.requestActor(r)
	if err != nil {
		a.fail(w, r, err)
		return nil
	}
	dbName, err := decodeName(r.PathValue("db"))
	if err != nil {
		a.fail(w, r, err)
		return nil
	}
	db := a.s.DB(dbName)
	if db == nil {
		a.fail(w, r, notFound("Database not found: "+dbName))
		return nil
	}
	c := &writeCtx{db: db, name: dbName, actor: actor, restr: restr, writer: a.writers[dbName]}
	if tableSeg != "" {
		if c.table, err = decodeName(tableSeg); err != nil {
			a.fail(w, r, err)
			return nil
		}
		if ok, err := tableExists(r.Context(), db, c.table); err != nil {
			a.fail(w, r, err)
			return nil
		} else if !ok {
			a.fail(w, r, notFound("Table not found: "+c.table))
			return nil
		}
	}
	if action != "" && !c.allowed(a, action) {
		a.fail(w, r, forbidden("Permission denied"))
		return nil
	}
	if c.writer == nil {
		a.fail(w, r, forbidden("Database is immutable"))
		return nil
	}
	return c
}

// tableExists answers from the cached schema (re-validated at most once a
// second), so the write path does not read the file on every request: in
// a rollback journal every such read would hold a SHARED lock that delays
// the writer's COMMIT. A table missing from the cache (perhaps just
// created) is looked up for real; one dropped since is caught inside the
// write transaction (tableInfo finds no columns).
func tableExists(ctx context.Context, db *sqlitedb.DB, table string) (bool, error) {
	if s, err := db.Schema(ctx); err == nil {
		if t := s.Table(table); t != nil && !t.IsView {
			return true, nil
		}
	}
	var n int
	t := time.Now()
	err := db.ReadDB().QueryRowContext(ctx, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?", table).Scan(&n)
	// A rollback-journal reader can be locked out by a committing writer.
	return n > 0, sqlitedb.AsBusy(err, time.Since(t))
}

// readBody reads the body under the size limit and decodes it as JSON
// into a map, with Datasette's messages.
func (a *WriteAPI) readBody(w http.ResponseWriter, r *http.Request) (map[string]any, error) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, a.cfg.MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, &apiError{Status: http.StatusRequestEntityTooLarge,
				Message: fmt.Sprintf("Request body too large: the limit is %d bytes", mbe.Limit)}
		}
		return nil, badRequest("Could not read request body: " + err.Error())
	}
	if !utf8.Valid(b) {
		// encoding/json would silently store U+FFFD in place of the bad bytes.
		return nil, badRequest("Invalid JSON: the body is not valid UTF-8")
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, badRequest("Invalid JSON: " + err.Error())
	}
	if dec.More() {
		return nil, badRequest("Invalid JSON: extra data after the JSON value")
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, badRequest("JSON must be a dictionary")
	}
	return m, nil
}

// writeErr is one or more Datasette validation messages.
type writeErr struct {
	status int
	msgs   []string
}

func (e *writeErr) Error() string { return strings.Join(e.msgs, "; ") }

func errs400(msgs ...string) error { return &writeErr{status: http.StatusBadRequest, msgs: msgs} }

// fail answers err as {"ok": false, "error": ..., "errors": [...],
// "status": N}. "errors" is Datasette's list form of the same messages.
// Lock failures are 503 with Retry-After, SQLite's extended code and the
// time waited, so clients and load tests can tell them apart.
func (a *WriteAPI) fail(w http.ResponseWriter, r *http.Request, err error) {
	var (
		we *writeErr
		ae *apiError
		be *sqlitedb.BusyError
		se *sqlitedb.SQLError
	)
	// Lock failures from reads (no wait measured) are 503s too.
	err = sqlitedb.AsBusy(err, 0)
	body := map[string]any{"ok": false}
	status := http.StatusBadRequest
	var msgs []string
	switch {
	case errors.As(err, &be):
		status = http.StatusServiceUnavailable
		msgs = []string{be.Error()}
		body["code"] = be.CodeName()
		body["waited_ms"] = float64(be.Waited.Microseconds()) / 1000
		w.Header().Set("Retry-After", "1")
	case errors.As(err, &we):
		status, msgs = we.status, we.msgs
	case errors.As(err, &ae):
		status, msgs = ae.Status, []string{ae.Message}
		if status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Bearer realm="lode"`)
		}
	case errors.Is(err, sqlitedb.ErrWriterClosed):
		status, msgs = http.StatusServiceUnavailable, []string{"Server is shutting down"}
		w.Header().Set("Retry-After", "1")
	case errors.Is(err, context.Canceled):
		status, msgs = 499, []string{"request cancelled"}
	case errors.As(err, &se):
		msgs = []string{se.Msg}
	default:
		if isSQLiteErr(err) {
			msgs = []string{sqliteMessage(err)}
		} else {
			status = http.StatusInternalServerError
			msgs = []string{"Internal server error"}
			a.s.log.Error("write failed", "path", r.URL.Path, "error", err.Error())
		}
	}
	body["error"] = strings.Join(msgs, "; ")
	body["errors"] = msgs
	body["status"] = status
	writeJSONStatus(w, status, body)
}

// sqliteMessage is SQLite's message without the writer's "commit: "
// context, which the client does not need.
func sqliteMessage(err error) string {
	return strings.TrimPrefix(err.Error(), "commit: ")
}

func isSQLiteErr(err error) bool {
	var se sqlite3.Error
	return errors.As(err, &se)
}

// tableInfo returns the columns and primary keys of table, read inside the
// write transaction so it is current even after a concurrent ALTER.
func tableInfo(ctx context.Context, ex sqlitedb.Execer, table string) (cols []string, pks []string, err error) {
	rows, err := ex.QueryContext(ctx, "SELECT name, pk FROM pragma_table_info(?) ORDER BY cid", table)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	type pkCol struct {
		name string
		n    int
	}
	var pkc []pkCol
	for rows.Next() {
		var name string
		var pk int
		if err := rows.Scan(&name, &pk); err != nil {
			return nil, nil, err
		}
		cols = append(cols, name)
		if pk > 0 {
			pkc = append(pkc, pkCol{name, pk})
		}
	}
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	if len(cols) == 0 {
		return nil, nil, notFound("Table not found: " + table)
	}
	sort.Slice(pkc, func(i, j int) bool { return pkc[i].n < pkc[j].n })
	for _, p := range pkc {
		pks = append(pks, p.name)
	}
	return cols, pks, nil
}

// sqlValue converts a decoded JSON value to what SQLite stores, as
// sqlite-utils does: integers stay integers, booleans become 0/1, objects
// and arrays are stored as JSON text.
func sqlValue(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		f, _ := x.Float64()
		return f
	case bool:
		if x {
			return int64(1)
		}
		return int64(0)
	case map[string]any, []any:
		b, _ := json.Marshal(x)
		return string(b)
	}
	return v
}

// sqlType infers a column type for a JSON value (for create and alter).
func sqlType(v any) string {
	switch x := v.(type) {
	case json.Number:
		if _, err := x.Int64(); err == nil {
			return "INTEGER"
		}
		return "FLOAT"
	case bool:
		return "INTEGER"
	}
	return "TEXT"
}

// jsonValue renders a scanned SQLite value for JSON: blobs as Datasette's
// {"$base64": true, "encoded": ...}, non-finite floats as null.
func jsonValue(v any) any {
	switch x := v.(type) {
	case []byte:
		return map[string]any{"$base64": true, "encoded": base64.StdEncoding.EncodeToString(x)}
	case float64:
		if math.IsInf(x, 0) || math.IsNaN(x) {
			return nil
		}
	}
	return v
}

// scanRows reads rows as ordered JSON objects.
func scanRows(rows *sql.Rows) ([]orderedRow, error) {
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	var out []orderedRow
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		row := orderedRow{cols: cols, vals: make([]any, len(cols))}
		for i, v := range vals {
			row.vals[i] = jsonValue(v)
		}
		out = append(out, row)
	}
	return out, rows.Err()
}

// orderedRow is a JSON object that keeps SQLite's column order.
type orderedRow struct {
	cols []string
	vals []any
}

// MarshalJSON writes the columns in order.
func (o orderedRow) MarshalJSON() ([]byte, error) {
	var b strings.Builder
	b.WriteByte('{')
	for i, c := range o.cols {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(c)
		v, err := json.Marshal(o.vals[i])
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return []byte(b.String()), nil
}

func quote(s string) string { return sqlitedb.QuoteIdent(s) }

// pkWhere builds "a = ? AND b = ?" for the key columns.
func pkWhere(pks []string) string {
	parts := make([]string, len(pks))
	for i, p := range pks {
		parts[i] = quote(p) + " = ?"
	}
	return strings.Join(parts, " AND ")
}

func truthy(v any) bool {
	switch x := v.(type) {
	case bool:
		return x
	case json.Number:
		return x.String() != "0"
	case string:
		return x != ""
	case nil:
		return false
	}
	return true
}

// handleInsert serves /-/insert (201) and /-/upsert (200).
func (a *WriteAPI) handleInsert(w http.ResponseWriter, r *http.Request) {
	upsert := strings.HasSuffix(r.URL.Path, "/-/upsert")
	c := a.resolve(w, r, r.PathValue("table"), "")
	if c == nil {
		return
	}
	if upsert {
		if !c.allowed(a, auth.InsertRow) || !c.allowed(a, auth.UpdateRow) {
			a.fail(w, r, forbidden("Permission denied: need both insert-row and update-row"))
			return
		}
	} else if !c.allowed(a, auth.InsertRow) {
		a.fail(w, r, forbidden("Permission denied"))
		return
	}
	if !isJSON(r) {
		a.fail(w, r, errs400("Invalid content-type, must be application/json"))
		return
	}
	data, err := a.readBody(w, r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	rows, extras, err := a.validateRows(data)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	ignore, replace, alter := truthy(extras["ignore"]), truthy(extras["replace"]), truthy(extras["alter"])
	shouldReturn := truthy(extras["return"])
	if upsert && (ignore || replace) {
		a.fail(w, r, errs400("Upsert does not support ignore or replace"))
		return
	}
	if replace && !c.allowed(a, auth.UpdateRow) {
		a.fail(w, r, forbidden(`Permission denied: need update-row to use "replace"`))
		return
	}
	if alter && !c.allowed(a, auth.AlterTable) {
		a.fail(w, r, forbidden("Permission denied for alter-table"))
		return
	}
	var returned []orderedRow
	err = c.writer.Do(r.Context(), func(ctx context.Context, ex sqlitedb.Execer) error {
		cols, pks, err := tableInfo(ctx, ex, c.table)
		if err != nil {
			return err
		}
		rowid := len(pks) == 0
		keyCols := pks
		if rowid {
			keyCols = []string{"rowid"}
		}
		known := map[string]bool{}
		for _, col := range append(cols, keyCols...) {
			known[col] = true
		}
		var verrs []string
		for i, row := range rows {
			if upsert {
				var missing, null []string
				for _, pk := range keyCols {
					v, ok := row[pk]
					if !ok {
						missing = append(missing, pk)
					} else if v == nil {
						null = append(null, pk)
					}
				}
				if len(missing) > 0 {
					verrs = append(verrs, fmt.Sprintf(`Row %d is missing primary key column(s): "%s"`, i, strings.Join(missing, `", "`)))
				}
				if len(null) > 0 {
					verrs = append(verrs, fmt.Sprintf(`Row %d has null primary key column(s): "%s"`, i, strings.Join(null, `", "`)))
				}
			}
			var invalid []string
			for k := range row {
				if !known[k] {
					invalid = append(invalid, k)
				}
			}
			if len(invalid) > 0 && !alter {
				sort.Strings(invalid)
				verrs = append(verrs, fmt.Sprintf("Row %d has invalid columns: %s", i, strings.Join(invalid, ", ")))
			}
		}
		if len(verrs) > 0 {
			return errs400(verrs...)
		}
		if alter {
			if err := addColumns(ctx, ex, c.table, known, rows); err != nil {
				return err
			}
		}
		verb := "INSERT"
		switch {
		case ignore:
			verb = "INSERT OR IGNORE"
		case replace:
			verb = "INSERT OR REPLACE"
		}
		var rowids []any
		for _, row := range rows {
			keys := sortedKeys(row)
			args := make([]any, len(keys))
			for i, k := range keys {
				args[i] = sqlValue(row[k])
			}
			if upsert {
				id, err := upsertRow(ctx, ex, c.table, keyCols, keys, args, row)
				if err != nil {
					return err
				}
				rowids = append(rowids, id)
				continue
			}
			q := insertSQL(verb, c.table, keys)
			res, err := ex.ExecContext(ctx, q, args...)
			if err != nil {
				return err
			}
			if shouldReturn {
				if n, _ := res.RowsAffected(); n > 0 {
					id, _ := res.LastInsertId()
					rowids = append(rowids, id)
				}
			}
		}
		if shouldReturn {
			sel := "*"
			if rowid {
				sel = "rowid, *"
			}
			// One query per row keeps the order the rows were sent in.
			q := fmt.Sprintf("SELECT %s FROM %s WHERE rowid = ?", sel, quote(c.table))
			for _, id := range rowids {
				rs, err := ex.QueryContext(ctx, q, id)
				if err != nil {
					return err
				}
				got, err := scanRows(rs)
				if err != nil {
					return err
				}
				returned = append(returned, got...)
			}
		}
		return nil
	})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	result := map[string]any{"ok": true}
	if shouldReturn {
		if returned == nil {
			returned = []orderedRow{}
		}
		result["rows"] = returned
	}
	status := http.StatusCreated
	if upsert {
		status = http.StatusOK
	}
	writeJSONStatus(w, status, result)
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?,", n), ",")
}

func sortedKeys(row map[string]any) []string {
	keys := make([]string, 0, len(row))
	for k := range row {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func insertSQL(verb, table string, keys []string) string {
	if len(keys) == 0 {
		return fmt.Sprintf("%s INTO %s DEFAULT VALUES", verb, quote(table))
	}
	qc := make([]string, len(keys))
	for i, k := range keys {
		qc[i] = quote(k)
	}
	return fmt.Sprintf("%s INTO %s (%s) VALUES (%s)", verb, quote(table), strings.Join(qc, ", "), placeholders(len(keys)))
}

// upsertRow updates the row with the row's key values, or inserts it when
// there is none; both in the caller's transaction, so the pair is atomic.
// It returns the row's rowid.
func upsertRow(ctx context.Context, ex sqlitedb.Execer, table string, keyCols, keys []string, args []any, row map[string]any) (int64, error) {
	isKey := map[string]bool{}
	for _, k := range keyCols {
		isKey[k] = true
	}
	var sets []string
	var setArgs []any
	for i, k := range keys {
		if !isKey[k] {
			sets = append(sets, quote(k)+" = ?")
			setArgs = append(setArgs, args[i])
		}
	}
	keyArgs := make([]any, len(keyCols))
	for i, k := range keyCols {
		keyArgs[i] = sqlValue(row[k])
	}
	where := pkWhere(keyCols)
	var id int64
	err := queryRowScan(ctx, ex, fmt.Sprintf("SELECT rowid FROM %s WHERE %s", quote(table), where), keyArgs, &id)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		res, err := ex.ExecContext(ctx, insertSQL("INSERT", table, keys), args...)
		if err != nil {
			return 0, err
		}
		return res.LastInsertId()
	case err != nil:
		return 0, err
	}
	if len(sets) > 0 {
		q := fmt.Sprintf("UPDATE %s SET %s WHERE rowid = ?", quote(table), strings.Join(sets, ", "))
		if _, err := ex.ExecContext(ctx, q, append(setArgs, id)...); err != nil {
			return 0, err
		}
	}
	return id, nil
}

// queryRowScan runs a one-row query through an Execer.
func queryRowScan(ctx context.Context, ex sqlitedb.Execer, q string, args []any, dest ...any) error {
	rows, err := ex.QueryContext(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return err
		}
		return sql.ErrNoRows
	}
	if err := rows.Scan(dest...); err != nil {
		return err
	}
	return rows.Close()
}

// addColumns adds the columns rows use that the table lacks (alter: true),
// typed from the first non-null value.
func addColumns(ctx context.Context, ex sqlitedb.Execer, table string, known map[string]bool, rows []map[string]any) error {
	added := map[string]bool{}
	for _, row := range rows {
		for _, k := range sortedKeys(row) {
			if known[k] || added[k] {
				continue
			}
			typ := "TEXT"
			for _, r := range rows {
				if v, ok := r[k]; ok && v != nil {
					typ = sqlType(v)
					break
				}
			}
			if _, err := ex.ExecContext(ctx, fmt.Sprintf("ALTER TABLE %s ADD COLUMN %s %s", quote(table), quote(k), typ)); err != nil {
				return err
			}
			added[k] = true
		}
	}
	return nil
}

// validateRows applies Datasette's checks on an insert/upsert body.
func (a *WriteAPI) validateRows(data map[string]any) ([]map[string]any, map[string]any, error) {
	_, hasRow := data["row"]
	_, hasRows := data["rows"]
	if !hasRow && !hasRows {
		return nil, nil, errs400(`JSON must have one or other of "row" or "rows"`)
	}
	var raw []any
	if hasRow {
		if hasRows {
			return nil, nil, errs400(`Cannot use "row" and "rows" at the same time`)
		}
		row, ok := data["row"].(map[string]any)
		if !ok {
			return nil, nil, errs400(`"row" must be a dictionary`)
		}
		raw = []any{row}
		data["return"] = true
	} else {
		list, ok := data["rows"].([]any)
		if !ok {
			return nil, nil, errs400(`"rows" must be a list`)
		}
		raw = list
	}
	rows := make([]map[string]any, len(raw))
	for i, v := range raw {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, nil, errs400(`"rows" must be a list of dictionaries`)
		}
		rows[i] = m
	}
	if len(rows) > a.cfg.MaxInsertRows {
		return nil, nil, errs400(fmt.Sprintf("Too many rows, maximum allowed is %d", a.cfg.MaxInsertRows))
	}
	extras := map[string]any{}
	var invalid []string
	for k, v := range data {
		switch k {
		case "row", "rows":
		case "return", "ignore", "replace", "alter":
			extras[k] = v
		default:
			invalid = append(invalid, k)
		}
	}
	if len(invalid) > 0 {
		sort.Strings(invalid)
		return nil, nil, errs400(fmt.Sprintf(`Invalid parameter: "%s"`, strings.Join(invalid, `", "`)))
	}
	if truthy(extras["ignore"]) && truthy(extras["replace"]) {
		return nil, nil, errs400(`Cannot use "ignore" and "replace" at the same time`)
	}
	return rows, extras, nil
}

// rowTarget resolves the {pk} segment of a row URL inside the write
// transaction: key columns and their values.
func rowTarget(ctx context.Context, ex sqlitedb.Execer, table, pkSeg string) (keyCols []string, args []any, err error) {
	vals, err := query.ParseRowPath(pkSeg)
	if err != nil {
		return nil, nil, notFound("Record not found: " + pyList([]string{pkSeg}))
	}
	_, pks, err := tableInfo(ctx, ex, table)
	if err != nil {
		return nil, nil, err
	}
	keyCols = pks
	if len(pks) == 0 {
		keyCols = []string{"rowid"}
	}
	if len(vals) != len(keyCols) {
		return nil, nil, notFound("Record not found: " + pyList(vals))
	}
	args = make([]any, len(vals))
	for i, v := range vals {
		args[i] = v
		if keyCols[i] == "rowid" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return nil, nil, notFound("Record not found: " + pyList(vals))
			}
			args[i] = n
		}
	}
	var one int
	err = queryRowScan(ctx, ex, fmt.Sprintf("SELECT 1 FROM %s WHERE %s", quote(table), pkWhere(keyCols)), args, &one)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil, notFound("Record not found: " + pyList(vals))
	}
	return keyCols, args, err
}

// pyList formats values like Python's repr of a list of strings, as
// Datasette's "Record not found: ['1']" does.
func pyList(vals []string) string {
	q := make([]string, len(vals))
	for i, v := range vals {
		q[i] = "'" + strings.ReplaceAll(v, "'", `\'`) + "'"
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// handleUpdate serves /DB/TABLE/PK/-/update.
func (a *WriteAPI) handleUpdate(w http.ResponseWriter, r *http.Request) {
	c := a.resolve(w, r, r.PathValue("table"), auth.UpdateRow)
	if c == nil {
		return
	}
	data, err := a.readBody(w, r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	update, ok := data["update"].(map[string]any)
	if !ok {
		a.fail(w, r, errs400("JSON must contain an update dictionary"))
		return
	}
	var invalid []string
	for k := range data {
		if k != "update" && k != "return" && k != "alter" {
			invalid = append(invalid, k)
		}
	}
	if len(invalid) > 0 {
		sort.Strings(invalid)
		a.fail(w, r, errs400("Invalid keys: "+strings.Join(invalid, ", ")))
		return
	}
	alter := truthy(data["alter"])
	if alter && !c.allowed(a, auth.AlterTable) {
		a.fail(w, r, forbidden("Permission denied for alter-table"))
		return
	}
	var row []orderedRow
	err = c.writer.Do(r.Context(), func(ctx context.Context, ex sqlitedb.Execer) error {
		keyCols, keyArgs, err := rowTarget(ctx, ex, c.table, r.PathValue("pk"))
		if err != nil {
			return err
		}
		if alter {
			cols, _, err := tableInfo(ctx, ex, c.table)
			if err != nil {
				return err
			}
			known := map[string]bool{}
			for _, col := range cols {
				known[col] = true
			}
			if err := addColumns(ctx, ex, c.table, known, []map[string]any{update}); err != nil {
				return err
			}
		}
		keys := sortedKeys(update)
		if len(keys) > 0 {
			sets := make([]string, len(keys))
			args := make([]any, 0, len(keys)+len(keyArgs))
			for i, k := range keys {
				sets[i] = quote(k) + " = ?"
				args = append(args, sqlValue(update[k]))
			}
			q := fmt.Sprintf("UPDATE %s SET %s WHERE %s", quote(c.table), strings.Join(sets, ", "), pkWhere(keyCols))
			if _, err := ex.ExecContext(ctx, q, append(args, keyArgs...)...); err != nil {
				return err
			}
		}
		if truthy(data["return"]) {
			sel := "*"
			if keyCols[0] == "rowid" {
				sel = "rowid, *"
			}
			// The key may have been updated too: re-read by rowid.
			rs, err := ex.QueryContext(ctx, fmt.Sprintf("SELECT %s FROM %s WHERE %s", sel, quote(c.table), pkWhere(keyCols)), newKeyArgs(keyCols, keyArgs, update)...)
			if err != nil {
				return err
			}
			row, err = scanRows(rs)
			return err
		}
		return nil
	})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	result := map[string]any{"ok": true}
	if len(row) > 0 {
		result["row"] = row[0]
	}
	writeJSONStatus(w, http.StatusOK, result)
}

func newKeyArgs(keyCols []string, keyArgs []any, update map[string]any) []any {
	out := append([]any(nil), keyArgs...)
	for i, k := range keyCols {
		if v, ok := update[k]; ok {
			out[i] = sqlValue(v)
		}
	}
	return out
}

// handleDelete serves /DB/TABLE/PK/-/delete.
func (a *WriteAPI) handleDelete(w http.ResponseWriter, r *http.Request) {
	c := a.resolve(w, r, r.PathValue("table"), auth.DeleteRow)
	if c == nil {
		return
	}
	err := c.writer.Do(r.Context(), func(ctx context.Context, ex sqlitedb.Execer) error {
		keyCols, keyArgs, err := rowTarget(ctx, ex, c.table, r.PathValue("pk"))
		if err != nil {
			return err
		}
		_, err = ex.ExecContext(ctx, fmt.Sprintf("DELETE FROM %s WHERE %s", quote(c.table), pkWhere(keyCols)), keyArgs...)
		return err
	})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSONStatus(w, http.StatusOK, map[string]any{"ok": true})
}

// handleDrop serves /DB/TABLE/-/drop: without "confirm" it only reports
// the row count, as Datasette does.
func (a *WriteAPI) handleDrop(w http.ResponseWriter, r *http.Request) {
	c := a.resolve(w, r, r.PathValue("table"), auth.DropTable)
	if c == nil {
		return
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, a.cfg.MaxBodyBytes))
	if err != nil {
		a.fail(w, r, &apiError{Status: http.StatusRequestEntityTooLarge, Message: "Request body too large"})
		return
	}
	var data map[string]any
	_ = json.Unmarshal(b, &data) // invalid JSON means "not confirmed", as in Datasette
	if !truthy(data["confirm"]) {
		var n int64
		err := c.db.ReadDB().QueryRowContext(r.Context(), "SELECT count(*) FROM "+quote(c.table)).Scan(&n)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		writeJSONStatus(w, http.StatusOK, map[string]any{"ok": true, "database": c.name, "table": c.table,
			"row_count": n, "message": `Pass "confirm": true to confirm`})
		return
	}
	err = c.writer.Do(r.Context(), func(ctx context.Context, ex sqlitedb.Execer) error {
		_, err := ex.ExecContext(ctx, "DROP TABLE "+quote(c.table))
		return err
	})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSONStatus(w, http.StatusOK, map[string]any{"ok": true})
}

var tableNameRE = regexp.MustCompile(`^[^\n]+$`)

// handleCreate serves /DB/-/create.
func (a *WriteAPI) handleCreate(w http.ResponseWriter, r *http.Request) {
	c := a.resolve(w, r, "", auth.CreateTable)
	if c == nil {
		return
	}
	data, err := a.readBody(w, r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	valid := map[string]bool{"table": true, "rows": true, "row": true, "columns": true, "pk": true, "pks": true, "ignore": true, "replace": true, "alter": true}
	var invalid []string
	for k := range data {
		if !valid[k] {
			invalid = append(invalid, k)
		}
	}
	if len(invalid) > 0 {
		sort.Strings(invalid)
		a.fail(w, r, errs400("Invalid keys: "+strings.Join(invalid, ", ")))
		return
	}
	ignore, replace := truthy(data["ignore"]), truthy(data["replace"])
	_, hasIgnore := data["ignore"]
	_, hasReplace := data["replace"]
	if ignore && replace {
		a.fail(w, r, errs400("ignore and replace are mutually exclusive"))
		return
	}
	if hasIgnore || hasReplace {
		if data["row"] == nil && data["rows"] == nil {
			a.fail(w, r, errs400("ignore and replace require row or rows"))
			return
		}
		if data["pk"] == nil && data["pks"] == nil {
			a.fail(w, r, errs400("ignore and replace require pk or pks"))
			return
		}
	}
	if replace && !c.allowed(a, auth.UpdateRow) {
		a.fail(w, r, forbidden("Permission denied: need update-row"))
		return
	}
	table, _ := data["table"].(string)
	if table == "" {
		a.fail(w, r, errs400("Table is required"))
		return
	}
	if !tableNameRE.MatchString(table) || strings.HasPrefix(table, "sqlite_") {
		a.fail(w, r, errs400("Invalid table name"))
		return
	}
	columnsRaw, hasCols := data["columns"]
	if !hasCols && data["rows"] == nil && data["row"] == nil {
		a.fail(w, r, errs400("columns, rows or row is required"))
		return
	}
	if data["rows"] != nil && data["row"] != nil {
		a.fail(w, r, errs400("Cannot specify both rows and row"))
		return
	}
	var rows []map[string]any
	if data["rows"] != nil || data["row"] != nil {
		if !c.allowed(a, auth.InsertRow) {
			a.fail(w, r, forbidden("Permission denied: need insert-row"))
			return
		}
		if hasCols {
			a.fail(w, r, errs400("Cannot specify columns with rows or row"))
			return
		}
		raw := []any{data["row"]}
		if data["rows"] != nil {
			list, ok := data["rows"].([]any)
			if !ok {
				a.fail(w, r, errs400("rows must be a list"))
				return
			}
			raw = list
		}
		for _, v := range raw {
			m, ok := v.(map[string]any)
			if !ok {
				a.fail(w, r, errs400("rows must be a list of objects"))
				return
			}
			rows = append(rows, m)
		}
		if len(rows) > a.cfg.MaxInsertRows {
			a.fail(w, r, errs400(fmt.Sprintf("Too many rows, maximum allowed is %d", a.cfg.MaxInsertRows)))
			return
		}
	}
	type column struct{ name, typ string }
	var columns []column
	if hasCols {
		list, ok := columnsRaw.([]any)
		if !ok {
			a.fail(w, r, errs400("columns must be a list"))
			return
		}
		seen := map[string]bool{}
		for _, v := range list {
			m, ok := v.(map[string]any)
			if !ok {
				a.fail(w, r, errs400("columns must be a list of objects"))
				return
			}
			name, _ := m["name"].(string)
			if name == "" {
				a.fail(w, r, errs400("Column name is required"))
				return
			}
			typ, _ := m["type"].(string)
			if typ == "" {
				typ = "text"
			}
			switch typ {
			case "text", "integer", "float", "blob":
			default:
				a.fail(w, r, errs400("Unsupported column type: "+typ))
				return
			}
			if seen[name] {
				a.fail(w, r, errs400("Duplicate column name: "+name))
				return
			}
			seen[name] = true
			columns = append(columns, column{name, strings.ToUpper(typ)})
		}
	}
	var pks []string
	if pk, ok := data["pk"]; ok && pk != nil {
		s, ok := pk.(string)
		if !ok {
			a.fail(w, r, errs400("pk must be a string"))
			return
		}
		pks = []string{s}
		if data["pks"] != nil {
			a.fail(w, r, errs400("Cannot specify both pk and pks"))
			return
		}
	} else if raw, ok := data["pks"]; ok && raw != nil {
		list, ok := raw.([]any)
		if !ok {
			a.fail(w, r, errs400("pks must be a list"))
			return
		}
		for _, v := range list {
			s, ok := v.(string)
			if !ok {
				a.fail(w, r, errs400("pks must be a list of strings"))
				return
			}
			pks = append(pks, s)
		}
	}
	var schema string
	err = c.writer.Do(r.Context(), func(ctx context.Context, ex sqlitedb.Execer) error {
		var n int
		if err := queryRowScan(ctx, ex, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?", []any{table}, &n); err != nil {
			return err
		}
		exists := n > 0
		if exists {
			_, actual, err := tableInfo(ctx, ex, table)
			if err != nil {
				return err
			}
			if len(pks) > 0 && !sameSet(pks, actual) {
				return errs400("pk cannot be changed for existing table")
			}
			if len(rows) == 0 {
				return errs400(fmt.Sprintf("Table %s already exists", table))
			}
		} else {
			if len(rows) > 0 {
				columns = nil
				seen := map[string]bool{}
				for _, row := range rows {
					for _, k := range sortedKeys(row) {
						if seen[k] {
							continue
						}
						seen[k] = true
						typ := "TEXT"
						for _, r := range rows {
							if v, ok := r[k]; ok && v != nil {
								typ = sqlType(v)
								break
							}
						}
						columns = append(columns, column{k, typ})
					}
				}
			}
			defs := make([]string, 0, len(columns)+1)
			// Key columns come first, as sqlite-utils orders them.
			ordered := append([]column(nil), columns...)
			sort.SliceStable(ordered, func(i, j int) bool {
				return slicesIndex(pks, ordered[i].name) >= 0 && slicesIndex(pks, ordered[j].name) < 0
			})
			for _, col := range ordered {
				d := "   " + quote(col.name) + " " + col.typ
				if len(pks) == 1 && col.name == pks[0] {
					d += " PRIMARY KEY"
				}
				defs = append(defs, d)
			}
			for _, pk := range pks {
				found := false
				for _, col := range columns {
					found = found || col.name == pk
				}
				if !found {
					return errs400(fmt.Sprintf("pk column %s is not one of the columns", pk))
				}
			}
			if len(pks) > 1 {
				q := make([]string, len(pks))
				for i, p := range pks {
					q[i] = quote(p)
				}
				defs = append(defs, "   PRIMARY KEY ("+strings.Join(q, ", ")+")")
			}
			stmt := fmt.Sprintf("CREATE TABLE %s (\n%s\n)", quote(table), strings.Join(defs, ",\n"))
			if _, err := ex.ExecContext(ctx, stmt); err != nil {
				return err
			}
		}
		verb := "INSERT"
		if ignore {
			verb = "INSERT OR IGNORE"
		} else if replace {
			verb = "INSERT OR REPLACE"
		}
		for _, row := range rows {
			keys := sortedKeys(row)
			args := make([]any, len(keys))
			for i, k := range keys {
				args[i] = sqlValue(row[k])
			}
			if _, err := ex.ExecContext(ctx, insertSQL(verb, table, keys), args...); err != nil {
				return err
			}
		}
		return queryRowScan(ctx, ex, "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", []any{table}, &schema)
	})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	base := "http://" + r.Host
	tpath := "/" + query.TildeEncode(c.name) + "/" + query.TildeEncode(table)
	res := map[string]any{"ok": true, "database": c.name, "table": table,
		"table_url": base + tpath, "table_api_url": base + tpath + ".json", "schema": schema}
	if len(rows) > 0 {
		res["row_count"] = len(rows)
	}
	writeJSONStatus(w, http.StatusCreated, res)
}

func slicesIndex(list []string, s string) int {
	for i, v := range list {
		if v == s {
			return i
		}
	}
	return -1
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		if slicesIndex(b, x) < 0 {
			return false
		}
	}
	return true
}
