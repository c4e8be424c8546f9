package server

import (
	"net/http"
	"strings"
	"time"

	"lode/internal/query"
	"lode/internal/sqlitedb"
)

// QueryResult is the data of an arbitrary SQL query page (/DB/-/query).
type QueryResult struct {
	Database  string
	SQL       string
	Params    map[string]string
	Columns   []string
	Rows      [][]any
	Truncated bool
	QueryMS   float64
}

// serveQuery serves /DB/-/query(.json|.csv)?sql=: one read-only statement.
// The SQL editor's page without ?sql= is the HTML renderer's.
func (s *Server) serveQuery(w http.ResponseWriter, r *http.Request, rt *route) {
	if !s.settings.AllowSQL {
		s.fail(w, r, rt, forbidden("Permission denied: execute-sql (the allow_sql setting is off)"))
		return
	}
	q := rt.params.Get("sql")
	if strings.TrimSpace(q) == "" {
		if rt.format == formatHTML {
			s.html.serveEditor(w, r, rt)
			return
		}
		// No SQL, no rows (as Datasette).
		s.renderRows(w, r, rt, &QueryResult{Database: rt.db.Name}, rowsPage{cols: []string{}, rows: [][]any{}, shape: rt.params.Get("_shape")})
		return
	}
	s.serveSQL(w, r, rt, q)
}

// serveSQL runs the read-only statement q (from ?sql= or a canned read
// query) with its :named parameters taken from the query string, under the
// SQL time limit and row cap, and renders it in the route's format with
// the request's _shape and _extra.
func (s *Server) serveSQL(w http.ResponseWriter, r *http.Request, rt *route, q string) {
	params, db := rt.params, rt.db
	if err := query.ValidateSelect(q); err != nil {
		s.fail(w, r, rt, err)
		return
	}
	res := &QueryResult{Database: db.Name, SQL: q, Params: map[string]string{}}
	names := query.NamedParams(q)
	for _, name := range names {
		res.Params[name] = params.Get(name)
	}
	if rt.canned != nil {
		// A canned query's declared params show even when its SQL
		// does not use them, as in Datasette.
		for _, name := range rt.canned.Params {
			res.Params[name] = params.Get(name)
		}
	}
	bind := params
	if rt.canned != nil {
		bind = withMagic(r, rt, names, params) // shown params stay the request's
	}
	args := namedArgs(names, bind)
	opt := sqlitedb.QueryOptions{
		TimeLimit:     ms(s.settings.SQLTimeLimitMS),
		CheckReadOnly: true,
	}
	// Only the statement runs, without what follows its semicolon
	// (ValidateSelect allowed only whitespace and comments there): the
	// driver would otherwise run that tail as an empty statement and
	// answer with its empty result.
	run, _ := query.FirstStatement(q)
	if rt.format == formatCSV {
		stream := isTrue(params.Get("_stream")) && s.settings.AllowCSVStream
		filename := db.Name + ".csv"
		if rt.canned != nil {
			filename = rt.name + ".csv"
		}
		s.writeCSV(w, r, rt, run, args, opt, stream, filename)
		return
	}
	opt.MaxRows = s.settings.MaxReturnedRows
	start := time.Now()
	out, err := db.Query(r.Context(), run, args, opt)
	if err != nil {
		s.fail(w, r, rt, err)
		return
	}
	res.QueryMS = float64(time.Since(start).Microseconds()) / 1000
	res.Columns, res.Rows, res.Truncated = out.Columns, out.Rows, out.Truncated
	shape := params.Get("_shape")
	if shape == "object" {
		// Datasette's answer, 200 included.
		writeJSONStatus(w, http.StatusOK, map[string]any{"ok": false, "error": "_shape=object is only available on tables"})
		return
	}
	s.renderRows(w, r, rt, res, rowsPage{
		cols: res.Columns, rows: res.Rows, truncated: res.Truncated, shape: shape, jsonCols: true,
		build: func(o *orderedJSON, extras map[string]bool) {
			if extras["columns"] {
				o.set("columns", res.Columns)
			}
			if extras["query"] {
				o.set("query", map[string]any{"sql": res.SQL, "params": res.Params})
			}
			if extras["query_ms"] {
				o.set("query_ms", res.QueryMS)
			}
			if extras["metadata"] {
				o.set("metadata", cannedMetadata(rt))
			}
			if extras["private"] {
				o.set("private", rt.access.privateDatabase(rt.db.Name) || rt.canned != nil && rt.access.privateQuery(rt.db.Name, rt.name))
			}
			if extras["debug"] {
				o.set("debug", map[string]any{"url_vars": urlVars(rt)})
			}
			s.commonExtras(o, extras, r, rt, scopeQuery, res.Rows)
		},
	})
}

// cannedMetadata is a query's "metadata" block: a canned query's
// definition as Datasette shows it (its listing's fields, without source
// and private), {} for ?sql=.
func cannedMetadata(rt *route) any {
	if rt.canned == nil {
		return map[string]any{}
	}
	return storedQueryJSON(rt.db.Name, DatabaseQuery{Name: rt.name, Query: rt.canned,
		Private: rt.access.privateQuery(rt.db.Name, rt.name)}, false)
}

// isTrue reports a true query-string flag: Datasette's value_as_boolean
// (on, true, 1, yes; any case).
func isTrue(v string) bool {
	switch strings.ToLower(v) {
	case "on", "true", "1", "yes":
		return true
	}
	return false
}
