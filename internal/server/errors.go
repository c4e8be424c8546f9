package server

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"lode/internal/query"
	"lode/internal/sqlitedb"
)

// apiError is an error with the status and Datasette-style message and
// title to send. Handlers return it for request problems.
type apiError struct {
	Status  int
	Message string
	Title   string
}

func (e *apiError) Error() string { return e.Message }

func notFound(msg string) error   { return &apiError{Status: http.StatusNotFound, Message: msg} }
func badRequest(msg string) error { return &apiError{Status: http.StatusBadRequest, Message: msg} }
func forbidden(msg string) error  { return &apiError{Status: http.StatusForbidden, Message: msg} }

// Messages shared with Datasette.
const (
	msgDatabaseNotFound = "Database not found"
	msgTableNotFound    = "Table not found"
	msgRowNotFound      = "Row not found"
	msgTimeLimit        = "SQL query took too long. The time limit is controlled by the sql_time_limit_ms setting."
)

// errorStatus maps any error to the status, message and title sent to the
// client. It is the only place that decides statuses: request errors are
// 4xx with their own message; SQL errors are 400 with SQLite's message
// (the user wrote the SQL or the filter); refused writes are 403; a time
// limit is 400 "SQL Interrupted" like Datasette; everything else is a 500
// whose details are logged, not sent.
func errorStatus(err error) (status int, msg, title string, internal bool) {
	var ae *apiError
	var qe *query.Error
	var se *sqlitedb.SQLError
	switch {
	case errors.As(err, &ae):
		return ae.Status, ae.Message, ae.Title, false
	case errors.As(err, &qe):
		return qe.Status, qe.Message, qe.Title, false
	case errors.Is(err, sqlitedb.ErrTimeLimit):
		return http.StatusBadRequest, msgTimeLimit, "SQL Interrupted", false
	case errors.As(sqlitedb.AsBusy(err, 0), new(*sqlitedb.BusyError)):
		// A read that met a lock (e.g. a rollback-journal commit in
		// progress) is the server's momentary state, not a bad request.
		return http.StatusServiceUnavailable, "database is locked", "", false
	case errors.Is(err, sqlitedb.ErrNotReadOnly):
		return http.StatusForbidden, "Statement may not write to the database: " + err.Error(), "Invalid SQL", false
	case errors.As(err, &se):
		return http.StatusBadRequest, se.Msg, "Invalid SQL", false
	case errors.Is(err, context.Canceled):
		// The client went away; nobody reads this response.
		return 499, "request cancelled", "", false
	}
	return http.StatusInternalServerError, "Internal server error", "", true
}

// writeError sends err as {"ok": false, "error": ..., "status": N,
// "title": ...} and logs internal errors once.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, msg, title, internal := errorStatus(err)
	if internal {
		s.log.LogAttrs(r.Context(), slog.LevelError, "request failed", slog.String("path", r.URL.Path), slog.String("error", err.Error()))
	}
	var t any
	if title != "" {
		t = title
	}
	body := map[string]any{"ok": false, "error": msg, "status": status, "title": t}
	var be *sqlitedb.BusyError
	if errors.As(sqlitedb.AsBusy(err, 0), &be) {
		// As the write API's lock failures: the code tells a refused
		// upgrade or snapshot conflict from an exhausted busy timeout.
		body["code"] = be.CodeName()
		w.Header().Set("Retry-After", "1")
	}
	writeJSONStatus(w, status, body)
}
