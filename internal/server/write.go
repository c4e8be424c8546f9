package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"lode/internal/auth"
	"lode/internal/config"
	"lode/internal/query"
	"lode/internal/sqlitedb"
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
	// Secret signs API tokens, the root sign-in cookie and CSRF tokens.
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

// WriteAPI is the write side of a Server: Datasette 1.0's write API,
// canned write queries and write scripts, the root sign-in, and the
// tokens that authenticate them. It owns one sqlitedb.Writer per mutable
// database. Requests reach it through the Server's front door (door.go);
// ServeHTTP is the Server's. Close stops the writers; the Server is closed
// by its owner.
type WriteAPI struct {
	s       *Server
	cfg     WriteConfig
	writers map[string]*sqlitedb.Writer

	rootUsed atomic.Bool // the one-time root sign-in token was used
}

// NewWriteAPI enables writes on s: each mutable database gets a Writer
// over its write connection (in pool mode the write pool is widened to
// PoolWriteConns connections so requests run their own transactions side
// by side), and the gate accepts tokens signed with cfg.Secret. Call it
// before s serves requests.
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
	a := &WriteAPI{s: s, cfg: cfg, writers: map[string]*sqlitedb.Writer{}}
	for _, name := range s.DatabaseNames() {
		db := s.DB(name)
		if db.Immutable() || db.WriteDB() == nil {
			continue
		}
		opts := cfg.Writer
		opts.TxLock = db.Settings().TxLock
		// Before every write transaction: is the file still at its path?
		// (In WAL mode SQLite would write on into a deleted file.)
		opts.Check = db.CheckFile
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
	s.checker = &auth.Checker{Config: cfg.Config, Root: cfg.Root}
	s.secret, s.now, s.api = cfg.Secret, cfg.Now, a
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

// ServeHTTP serves every request through the Server's front door.
func (a *WriteAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.s.ServeHTTP(w, r) }

const actorCookie = "lode_actor"

// write runs fn in a write transaction of rt's database. Its wait for the
// writer ends with the client's context or after the
// write_queue_time_limit_ms setting (a 503);
// once fn started, the outcome is waited for, so an acknowledged write is
// never lost and a failed one never reported as done.
func (a *WriteAPI) write(r *http.Request, rt *route, ddl bool, fn sqlitedb.WriteFunc) error {
	limit := time.Duration(a.s.settings.WriteQueueTimeLimitMS) * time.Millisecond
	ctx, cancel := context.WithTimeout(r.Context(), limit)
	defer cancel()
	err := a.writers[rt.db.Name].Do(ctx, fn)
	if ddl {
		// Later requests must see the new or dropped table or column
		// at once, not after the schema cache's interval.
		rt.db.ExpireSchema()
	}
	if errors.Is(err, context.DeadlineExceeded) && r.Context().Err() == nil {
		return &apiError{Status: http.StatusServiceUnavailable, Msgs: []string{fmt.Sprintf(
			"The write queue did not reach this request within %s: the database is busy with other writes. Try again.", limit)}}
	}
	return err
}

// readBody reads the body under the size limit and decodes it as JSON
// into a map, with Datasette's messages. Numbers stay json.Number.
func (a *WriteAPI) readBody(w http.ResponseWriter, r *http.Request) (map[string]any, error) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, a.cfg.MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, statusError(http.StatusRequestEntityTooLarge,
				fmt.Sprintf("Request body too large: the limit is %d bytes", mbe.Limit))
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

// sqlValue converts a decoded JSON value to what SQLite stores, as
// sqlite-utils does: integers stay integers, other numbers are floats,
// booleans become 0/1, objects and arrays are stored as JSON text. An
// integer beyond 64 bits is refused rather than rounded to a float.
func sqlValue(v any) (any, error) {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i, nil
		}
		if !strings.ContainsAny(x.String(), ".eE") {
			return nil, badRequest(fmt.Sprintf("Integer %s does not fit in 64 bits: send it as a string to store every digit", x))
		}
		// Beyond float64's range this is ±Inf, which SQLite stores as
		// Datasette does.
		f, _ := x.Float64()
		return f, nil
	case bool:
		if x {
			return int64(1), nil
		}
		return int64(0), nil
	case map[string]any, []any:
		b, _ := json.Marshal(x)
		return string(b), nil
	}
	return v, nil
}

// sqlRow converts a decoded JSON object to a row of SQLite values.
func sqlRow(m map[string]any) (map[string]any, error) {
	out := make(map[string]any, len(m))
	for k, v := range m {
		sv, err := sqlValue(v)
		if err != nil {
			return nil, err
		}
		out[k] = sv
	}
	return out, nil
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
	case []any:
		return len(x) > 0
	case map[string]any:
		return len(x) > 0
	}
	return true
}

// requireJSON refuses a body that is not declared as JSON, with
// Datasette's message.
func requireJSON(r *http.Request) error {
	if !isJSON(r) {
		return errs400("Invalid content-type, must be application/json")
	}
	return nil
}

// writeResult answers a write with status and its rows, if any.
func writeResult(w http.ResponseWriter, status int, key string, res *sqlitedb.Result, one bool) {
	o := orderedJSON{}
	o.set("ok", true)
	if res != nil {
		if one {
			if len(res.Rows) > 0 {
				o.set(key, rowObject{cols: res.Columns, row: res.Rows[0]})
			}
		} else {
			o.set(key, rawRows{cols: res.Columns, rows: nonNilSlice(res.Rows)})
		}
	}
	buf := getBuf()
	defer putBuf(buf)
	b := append(o.appendTo(buf.Bytes()[:0]), '\n')
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	w.Write(b)
}

// handleInsert serves /DB/TABLE/-/insert (201) and /-/upsert (200).
func (a *WriteAPI) handleInsert(w http.ResponseWriter, r *http.Request, rt *route) {
	upsert := rt.action == "upsert"
	if err := requireJSON(r); err != nil {
		a.s.fail(w, r, rt, err)
		return
	}
	data, err := a.readBody(w, r)
	if err != nil {
		a.s.fail(w, r, rt, err)
		return
	}
	rows, extras, err := a.validateRows(data)
	if err != nil {
		a.s.fail(w, r, rt, err)
		return
	}
	o := sqlitedb.InsertOptions{Upsert: upsert, Ignore: truthy(extras["ignore"]), Replace: truthy(extras["replace"]),
		Alter: truthy(extras["alter"]), Return: truthy(extras["return"])}
	acc := rt.access
	switch {
	case upsert && (o.Ignore || o.Replace):
		err = errs400("Upsert does not support ignore or replace")
	case o.Replace && !acc.allowed(auth.UpdateRow, rt.dbName, rt.name):
		err = forbidden(`Permission denied: need update-row to use "replace"`)
	case o.Alter && !acc.allowed(auth.AlterTable, rt.dbName, rt.name):
		err = forbidden("Permission denied for alter-table")
	}
	if err != nil {
		a.s.fail(w, r, rt, err)
		return
	}
	var returned *sqlitedb.Result
	err = a.write(r, rt, o.Alter, func(ctx context.Context, ex sqlitedb.Execer) error {
		var err error
		returned, err = sqlitedb.InsertRows(ctx, ex, rt.name, rows, o)
		return err
	})
	if err != nil {
		a.s.fail(w, r, rt, err)
		return
	}
	status := http.StatusCreated
	if upsert {
		status = http.StatusOK
	}
	writeResult(w, status, "rows", returned, false)
}

// validateRows applies Datasette's checks on an insert/upsert body and
// converts its rows to SQLite values.
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
		var err error
		if rows[i], err = sqlRow(m); err != nil {
			return nil, nil, err
		}
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

// handleUpdate serves /DB/TABLE/PK/-/update.
func (a *WriteAPI) handleUpdate(w http.ResponseWriter, r *http.Request, rt *route) {
	data, err := a.readBody(w, r)
	if err != nil {
		a.s.fail(w, r, rt, err)
		return
	}
	raw, ok := data["update"].(map[string]any)
	if !ok {
		a.s.fail(w, r, rt, errs400("JSON must contain an update dictionary"))
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
		a.s.fail(w, r, rt, errs400("Invalid keys: "+strings.Join(invalid, ", ")))
		return
	}
	update, err := sqlRow(raw)
	if err != nil {
		a.s.fail(w, r, rt, err)
		return
	}
	alter, ret := truthy(data["alter"]), truthy(data["return"])
	if alter && !rt.access.allowed(auth.AlterTable, rt.dbName, rt.name) {
		a.s.fail(w, r, rt, forbidden("Permission denied for alter-table"))
		return
	}
	var row *sqlitedb.Result
	err = a.write(r, rt, alter, func(ctx context.Context, ex sqlitedb.Execer) error {
		key, err := sqlitedb.FindRow(ctx, ex, rt.name, rt.pk)
		if err != nil {
			return err
		}
		row, err = sqlitedb.UpdateRow(ctx, ex, rt.name, key, update, alter, ret)
		return err
	})
	if err != nil {
		a.s.fail(w, r, rt, err)
		return
	}
	writeResult(w, http.StatusOK, "row", row, true)
}

// handleDelete serves /DB/TABLE/PK/-/delete.
func (a *WriteAPI) handleDelete(w http.ResponseWriter, r *http.Request, rt *route) {
	err := a.write(r, rt, false, func(ctx context.Context, ex sqlitedb.Execer) error {
		key, err := sqlitedb.FindRow(ctx, ex, rt.name, rt.pk)
		if err != nil {
			return err
		}
		return sqlitedb.DeleteRow(ctx, ex, rt.name, key)
	})
	if err != nil {
		a.s.fail(w, r, rt, err)
		return
	}
	writeResult(w, http.StatusOK, "", nil, false)
}

// handleDrop serves /DB/TABLE/-/drop: without {"confirm": true} it only
// reports the row count, as Datasette does. Only the JSON value true
// confirms.
func (a *WriteAPI) handleDrop(w http.ResponseWriter, r *http.Request, rt *route) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, a.cfg.MaxBodyBytes))
	if err != nil {
		a.s.fail(w, r, rt, statusError(http.StatusRequestEntityTooLarge, "Request body too large"))
		return
	}
	var data map[string]any
	_ = json.Unmarshal(b, &data) // invalid JSON means "not confirmed", as in Datasette
	if confirm, _ := data["confirm"].(bool); !confirm {
		n, ok, err := rt.db.Count(r.Context(), "SELECT count(*) FROM "+sqlitedb.QuoteIdent(rt.name), nil, ms(a.s.settings.SQLTimeLimitMS))
		if err != nil {
			a.s.fail(w, r, rt, err)
			return
		}
		var count any
		if ok {
			count = n
		}
		writeJSONStatus(w, http.StatusOK, map[string]any{"ok": true, "database": rt.db.Name, "table": rt.name,
			"row_count": count, "message": `Pass "confirm": true to confirm`})
		return
	}
	err = a.write(r, rt, true, func(ctx context.Context, ex sqlitedb.Execer) error {
		return sqlitedb.DropTable(ctx, ex, rt.name)
	})
	if err != nil {
		a.s.fail(w, r, rt, err)
		return
	}
	writeResult(w, http.StatusOK, "", nil, false)
}

var tableNameRE = regexp.MustCompile(`^[^\n]+$`)

// handleCreate serves /DB/-/create.
func (a *WriteAPI) handleCreate(w http.ResponseWriter, r *http.Request, rt *route) {
	fail := func(err error) { a.s.fail(w, r, rt, err) }
	if err := requireJSON(r); err != nil {
		fail(err)
		return
	}
	data, err := a.readBody(w, r)
	if err != nil {
		fail(err)
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
		fail(errs400("Invalid keys: " + strings.Join(invalid, ", ")))
		return
	}
	acc := rt.access
	o := sqlitedb.CreateOptions{Ignore: truthy(data["ignore"]), Replace: truthy(data["replace"])}
	_, hasIgnore := data["ignore"]
	_, hasReplace := data["replace"]
	if o.Ignore && o.Replace {
		fail(errs400("ignore and replace are mutually exclusive"))
		return
	}
	// Datasette tests these keys for truth: an empty list, object or
	// string counts as absent.
	hasCols, hasRows, hasRow := truthy(data["columns"]), truthy(data["rows"]), truthy(data["row"])
	if hasIgnore || hasReplace {
		if !hasRow && !hasRows {
			fail(errs400("ignore and replace require row or rows"))
			return
		}
		if !truthy(data["pk"]) && !truthy(data["pks"]) {
			fail(errs400("ignore and replace require pk or pks"))
			return
		}
	}
	if o.Replace && !acc.allowed(auth.UpdateRow, rt.dbName, "") {
		fail(forbidden("Permission denied: need update-row"))
		return
	}
	o.Table, _ = data["table"].(string)
	if o.Table == "" {
		fail(errs400("Table is required"))
		return
	}
	if !tableNameRE.MatchString(o.Table) || strings.HasPrefix(o.Table, "sqlite_") {
		fail(errs400("Invalid table name"))
		return
	}
	if !hasCols && !hasRows && !hasRow {
		fail(errs400("columns, rows or row is required"))
		return
	}
	if hasRows && hasRow {
		fail(errs400("Cannot specify both rows and row"))
		return
	}
	if hasRows || hasRow {
		if !acc.allowed(auth.InsertRow, rt.dbName, "") {
			fail(forbidden("Permission denied: need insert-row"))
			return
		}
		if hasCols {
			fail(errs400("Cannot specify columns with rows or row"))
			return
		}
		raw := []any{data["row"]}
		if hasRows {
			list, ok := data["rows"].([]any)
			if !ok {
				fail(errs400("rows must be a list"))
				return
			}
			raw = list
		}
		for _, v := range raw {
			m, ok := v.(map[string]any)
			if !ok {
				fail(errs400("rows must be a list of objects"))
				return
			}
			row, err := sqlRow(m)
			if err != nil {
				fail(err)
				return
			}
			o.Rows = append(o.Rows, row)
		}
		if len(o.Rows) > a.cfg.MaxInsertRows {
			fail(errs400(fmt.Sprintf("Too many rows, maximum allowed is %d", a.cfg.MaxInsertRows)))
			return
		}
	}
	if hasCols {
		if o.Columns, err = parseColumns(data["columns"]); err != nil {
			fail(err)
			return
		}
	}
	if pk := data["pk"]; truthy(pk) {
		if truthy(data["pks"]) {
			fail(errs400("Cannot specify both pk and pks"))
			return
		}
		s, ok := pk.(string)
		if !ok {
			fail(errs400("pk must be a string"))
			return
		}
		o.PKs = []string{s}
	} else if raw := data["pks"]; truthy(raw) {
		list, ok := raw.([]any)
		if !ok {
			fail(errs400("pks must be a list"))
			return
		}
		for _, v := range list {
			s, ok := v.(string)
			if !ok {
				fail(errs400("pks must be a list of strings"))
				return
			}
			o.PKs = append(o.PKs, s)
		}
	}
	var schema string
	err = a.write(r, rt, true, func(ctx context.Context, ex sqlitedb.Execer) error {
		var err error
		schema, err = sqlitedb.CreateTable(ctx, ex, o)
		return err
	})
	if err != nil {
		fail(err)
		return
	}
	base := "http://" + r.Host
	tpath := "/" + query.TildeEncode(rt.db.Name) + "/" + query.TildeEncode(o.Table)
	res := map[string]any{"ok": true, "database": rt.db.Name, "table": o.Table,
		"table_url": base + tpath, "table_api_url": base + tpath + ".json", "schema": schema}
	if len(o.Rows) > 0 {
		res["row_count"] = len(o.Rows)
	}
	writeJSONStatus(w, http.StatusCreated, res)
}

// parseColumns reads /-/create's "columns": a list of {"name", "type"}
// with type text (default), integer, float or blob.
func parseColumns(raw any) ([]sqlitedb.ColumnDef, error) {
	list, ok := raw.([]any)
	if !ok {
		return nil, errs400("columns must be a list")
	}
	var cols []sqlitedb.ColumnDef
	seen := map[string]bool{}
	for _, v := range list {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, errs400("columns must be a list of objects")
		}
		name, _ := m["name"].(string)
		if name == "" {
			return nil, errs400("Column name is required")
		}
		typ, _ := m["type"].(string)
		if typ == "" {
			typ = "text"
		}
		switch typ {
		case "text", "integer", "float", "blob":
		default:
			return nil, errs400("Unsupported column type: " + typ)
		}
		if seen[name] {
			return nil, errs400("Duplicate column name: " + name)
		}
		seen[name] = true
		cols = append(cols, sqlitedb.ColumnDef{Name: name, Type: strings.ToUpper(typ)})
	}
	return cols, nil
}
