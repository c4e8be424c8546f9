package server

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"lode/internal/query"
	"lode/internal/sqlitedb"
)

// apiError is an error with the status and Datasette-style messages and
// title to send. Handlers return it for request problems; Msgs has one
// message per problem (the write API lists them all).
type apiError struct {
	Status int
	Msgs   []string
	Title  string
}

func (e *apiError) Error() string { return strings.Join(e.Msgs, "; ") }

func statusError(status int, msg string) error { return &apiError{Status: status, Msgs: []string{msg}} }
func notFound(msg string) error                { return statusError(http.StatusNotFound, msg) }
func badRequest(msg string) error              { return statusError(http.StatusBadRequest, msg) }
func forbidden(msg string) error               { return statusError(http.StatusForbidden, msg) }
func errs400(msgs ...string) error             { return &apiError{Status: http.StatusBadRequest, Msgs: msgs} }

// Messages shared with Datasette.
const (
	msgDatabaseNotFound = "Database not found"
	msgTableNotFound    = "Table not found"
	msgRowNotFound      = "Row not found"
	msgTimeLimit        = "SQL query took too long. The time limit is controlled by the sql_time_limit_ms setting."
	msgTooLarge         = "The response would be larger than the max_response_mb setting allows. Ask for fewer rows (_size=) or columns (_col=, _nocol=), or stream every row as CSV (.csv?_stream=on)."
)

// errResponseTooLarge is a rendered response past max_response_mb.
var errResponseTooLarge = errors.New("response larger than max_response_mb")

// errorInfo is what mapError decided about an error.
type errorInfo struct {
	status int
	msgs   []string
	title  string
	// code is SQLite's extended code name of a lock error (SQLITE_BUSY,
	// SQLITE_BUSY_SNAPSHOT); waited the time the failing write waited.
	code string
	busy *sqlitedb.BusyError
	// sqlFailed marks SQL that SQLite refused to prepare or run (as
	// opposed to SQL Lode refused before): the query API reports it with
	// its rows, as Datasette does.
	sqlFailed bool
	retry     bool // send Retry-After: the condition is momentary
	logged    bool // the server's fault: log the details, send a safe message
	// logLevel is ERROR for damage (a corrupt file) and failures of Lode
	// itself, WARN for the environment (a full or read-only disk).
	logLevel slog.Level
}

// mapError turns any error into its status and messages. It is the only
// place that decides statuses:
//   - request problems are 4xx with their own message: *apiError, the
//     query package's typed errors (invalid 400, not found 404, forbidden
//     403), write validation (*sqlitedb.InvalidError 400,
//     *sqlitedb.NotFoundError 404), SQL that SQLite refuses (400 "Invalid
//     SQL", as the user wrote the SQL or the filter), SQL that would write
//     on the read path (403), the time limit (400 "SQL Interrupted", as
//     Datasette);
//   - a result or response past max_response_mb is 400 (the request
//     asked for too much);
//   - momentary server states are 503 with Retry-After: a lock that
//     outlived the busy timeout (with SQLite's code), a wait for a
//     connection that ran out, a stopping writer, a read-only or
//     unreachable file, SQLite out of memory (its heap limit);
//   - a database file deleted or replaced while open is 503 without
//     Retry-After, logged as an ERROR: writes are refused until an
//     operator acts;
//   - a full disk is 507; a corrupt file and anything unexpected are 500
//     with their details logged, never sent.
func mapError(err error) errorInfo {
	var (
		ae *apiError
		qe *query.Error
		be *sqlitedb.BusyError
		ie *sqlitedb.InvalidError
		ne *sqlitedb.NotFoundError
		se *sqlitedb.SQLError
	)
	switch {
	case errors.As(err, &ae):
		return errorInfo{status: ae.Status, msgs: ae.Msgs, title: ae.Title, retry: ae.Status == http.StatusServiceUnavailable}
	case errors.As(err, &qe):
		status := http.StatusBadRequest
		switch qe.Kind {
		case query.NotFound:
			status = http.StatusNotFound
		case query.Forbidden:
			status = http.StatusForbidden
		}
		return errorInfo{status: status, msgs: []string{qe.Message}, title: qe.Title, sqlFailed: qe.SQL}
	case errors.As(err, &ie):
		return errorInfo{status: http.StatusBadRequest, msgs: ie.Msgs}
	case errors.As(err, &ne):
		return errorInfo{status: http.StatusNotFound, msgs: []string{ne.Msg}}
	case errors.Is(err, sqlitedb.ErrNoConnection):
		return errorInfo{status: http.StatusServiceUnavailable, retry: true,
			msgs: []string{"The server is busy: every read connection of this database stayed in use for the whole time limit (sql_time_limit_ms). Try again."}}
	case errors.Is(err, sqlitedb.ErrResultTooLarge), errors.Is(err, errResponseTooLarge):
		return errorInfo{status: http.StatusBadRequest, title: "Response too large", msgs: []string{msgTooLarge}}
	case errors.Is(err, sqlitedb.ErrFileMoved):
		// Writing on would be acknowledged and lost: SQLite writes into
		// the open file, which no path reaches any more. Waiting does
		// not help, so no Retry-After; an operator must act.
		return errorInfo{status: http.StatusServiceUnavailable, logged: true, logLevel: slog.LevelError,
			msgs: []string{"The database file was deleted or replaced while the server had it open, so writes are refused (they would be lost). Put the file back, or restart lode serve to serve the file now at that path."}}
	case errors.Is(err, sqlitedb.ErrTimeLimit):
		return errorInfo{status: http.StatusBadRequest, msgs: []string{msgTimeLimit}, title: "SQL Interrupted"}
	case errors.As(sqlitedb.AsBusy(err, 0), &be):
		// A lock that outlived the busy timeout (or a refused upgrade of
		// a deferred transaction) is the server's momentary state.
		return errorInfo{status: http.StatusServiceUnavailable, msgs: []string{be.Error()}, code: be.CodeName(), busy: be, retry: true}
	case errors.Is(err, sqlitedb.ErrNotReadOnly):
		return errorInfo{status: http.StatusForbidden, msgs: []string{"Statement may not write to the database: " + err.Error()}, title: "Invalid SQL"}
	case errors.Is(err, sqlitedb.ErrWriterClosed):
		return errorInfo{status: http.StatusServiceUnavailable, msgs: []string{"Server is shutting down"}, retry: true}
	case errors.Is(err, context.Canceled):
		// The client went away; nobody reads this response.
		return errorInfo{status: 499, msgs: []string{"request cancelled"}}
	case errors.Is(err, context.DeadlineExceeded):
		return errorInfo{status: http.StatusServiceUnavailable, retry: true,
			msgs: []string{"The server is busy: timed out waiting for the database. Try again."}}
	}
	code, msg := sqlitedb.ErrorCode(err)
	switch code {
	case sqlitedb.CodeFull:
		return errorInfo{status: http.StatusInsufficientStorage, msgs: []string{msg}, logged: true, logLevel: slog.LevelWarn}
	case sqlitedb.CodeReadOnly, sqlitedb.CodeIOErr, sqlitedb.CodeCantOpen, sqlitedb.CodeNoMem, sqlitedb.CodePerm:
		return errorInfo{status: http.StatusServiceUnavailable, msgs: []string{msg}, retry: true, logged: true, logLevel: slog.LevelWarn}
	case sqlitedb.CodeCorrupt, sqlitedb.CodeNotADB:
		return errorInfo{status: http.StatusInternalServerError, msgs: []string{"The database file is damaged: " + msg}, logged: true, logLevel: slog.LevelError}
	}
	if errors.As(err, &se) {
		return errorInfo{status: http.StatusBadRequest, msgs: []string{se.Msg}, title: "Invalid SQL", sqlFailed: true}
	}
	if code != sqlitedb.CodeOK {
		// SQLite refused a statement of a write: a constraint, a type
		// mismatch in a STRICT table, a bad name. The request's fault.
		return errorInfo{status: http.StatusBadRequest, msgs: []string{msg}}
	}
	return errorInfo{status: http.StatusInternalServerError, msgs: []string{"Internal server error"}, logged: true, logLevel: slog.LevelError}
}

// writeErrorJSON sends an error in Datasette's JSON shape for rt's API
// family: the read API's {"ok": false, "error": ..., "status": N, "title":
// ...}; the write API's {"ok": false, "error": ..., "errors": [...],
// "status": N}; the query API's {"ok": false, "rows": [], "error": ...,
// "truncated": false} for SQL that SQLite refused; the schema pages'
// {"ok": false, "error": ...}. Lock errors carry SQLite's code (and, from
// the write path, "waited_ms").
func writeErrorJSON(w http.ResponseWriter, rt *route, e errorInfo) {
	h := w.Header()
	if e.retry {
		h.Set("Retry-After", "1")
	}
	if e.status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", `Bearer realm="lode"`)
	}
	o := orderedJSON{}
	o.set("ok", false)
	switch {
	case rt != nil && rt.isSchema():
		if rt.format != formatJSON {
			h.Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(e.status)
			w.Write([]byte(strings.Join(e.msgs, "; ")))
			return
		}
		o.set("error", strings.Join(e.msgs, "; "))
	case rt != nil && e.sqlFailed && (rt.queryEditor() || rt.canned != nil):
		o.set("rows", []any{})
		o.set("error", strings.Join(e.msgs, "; "))
		o.set("truncated", false)
	case rt != nil && (rt.isWrite() || rt.canned != nil && rt.canned.Write):
		if q := rt.canned; q != nil {
			// A canned write's outcome in Datasette's keys too: the
			// message (on_error_message if set) and where to go next.
			o.set("message", cmp.Or(q.OnErrorMessage, strings.Join(e.msgs, "; ")))
			if q.OnErrorRedirect != "" {
				o.set("redirect", q.OnErrorRedirect)
			} else {
				o.set("redirect", nil)
			}
		}
		o.set("error", strings.Join(e.msgs, "; "))
		o.set("errors", e.msgs)
		o.set("status", e.status)
		if e.busy != nil {
			o.set("code", e.code)
			o.set("waited_ms", float64(e.busy.Waited.Microseconds())/1000)
		}
	default:
		o.set("error", strings.Join(e.msgs, "; "))
		o.set("status", e.status)
		if e.title != "" {
			o.set("title", e.title)
		} else {
			o.set("title", nil)
		}
		if e.code != "" {
			o.set("code", e.code)
		}
	}
	buf := getBuf()
	defer putBuf(buf)
	b := append(o.appendTo(buf.Bytes()[:0]), '\n')
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Del("Content-Length")
	w.WriteHeader(e.status)
	w.Write(b)
}

// fail answers err for route rt (nil before a route is known): an HTML
// error page for HTML pages, JSON otherwise. It logs what is the server's
// fault, once. A 404 for a path with '%' in it is redirected to the path's
// tilde-encoded form, as Datasette does: /db/a%2Fb finds nothing (it names
// "a%2Fb"), /db/a~2Fb names "a/b".
func (s *Server) fail(w http.ResponseWriter, r *http.Request, rt *route, err error) {
	e := mapError(err)
	if e.logged {
		attrs := []slog.Attr{slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Int("status", e.status), slog.String("error", err.Error())}
		if rt != nil && rt.db != nil {
			attrs = append(attrs, slog.String("db", rt.db.Name), slog.String("file", rt.db.Path))
		}
		s.log.LogAttrs(r.Context(), e.logLevel, "request failed", attrs...)
	}
	if e.status == http.StatusNotFound && (r.Method == http.MethodGet || r.Method == http.MethodHead) && rt != nil && strings.Contains(rt.escaped, "%") {
		// Datasette's replacements, except that a .json or .csv format
		// stays a format (Datasette would make it part of the name).
		p, ext := rt.escaped, ""
		if rt.format == formatJSON || rt.format == formatCSV {
			p, ext = strings.TrimSuffix(p, "."+rt.format), "."+rt.format
		}
		target := strings.NewReplacer("~", "~7E", "%", "~", ".", "~2E").Replace(p) + ext
		if r.URL.RawQuery != "" {
			target += "?" + r.URL.RawQuery
		}
		w.Header().Set("Location", target)
		w.WriteHeader(http.StatusFound)
		return
	}
	if rt != nil && rt.isPage() && (r.Method != http.MethodPost || rt.canned != nil && isBrowserForm(r)) {
		s.html.errorPage(w, r, rt, e.status, strings.Join(e.msgs, "; "), e.title)
		return
	}
	writeErrorJSON(w, rt, e)
}
