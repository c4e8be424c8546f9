package server

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"lode/internal/auth"
	"lode/internal/config"
	"lode/internal/sqlitedb"
)

// cannedQuery resolves /{db}/{name}[.json] to a canned query of lode.yaml.
func (a *WriteAPI) cannedQuery(r *http.Request) (dbName, name string, q *config.Query) {
	dbName, err := decodeName(r.PathValue("db"))
	if err != nil || a.s.DB(dbName) == nil {
		return "", "", nil
	}
	seg, format := splitFormat(r.PathValue("name"))
	if format == formatCSV {
		return "", "", nil
	}
	name, err = decodeName(seg)
	if err != nil {
		return "", "", nil
	}
	return dbName, name, a.cfg.Config.Query(dbName, name)
}

// handleCannedRead serves a read canned query, GET /DB/NAME(.json) with
// :named parameters from the query string; anything else goes to the read
// API.
func (a *WriteAPI) handleCannedRead(w http.ResponseWriter, r *http.Request) {
	dbName, name, q := a.cannedQuery(r)
	if q == nil {
		a.handleRead(w, r)
		return
	}
	actor, restr, err := a.requestActor(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if !a.checker.Allowed(actor, restr, auth.ViewQuery, dbName, name) {
		a.fail(w, r, forbidden("You do not have permission to view this query"))
		return
	}
	if q.Write {
		// A write query's page; the write itself needs POST.
		writeJSONStatus(w, http.StatusOK, map[string]any{"ok": true, "database": dbName, "query_name": name,
			"sql": q.SQL, "params": paramNames(q), "write": true, "rows": []any{}})
		return
	}
	// The same path as ?sql=: read-only checks, time limit, row cap,
	// _shape and _extra.
	a.s.serveSQL(w, r, a.s.DB(dbName), formatJSON, q.SQL)
}

// handleCannedWrite runs a write canned query (write: true) on POST. Its
// parameters come from a JSON object or a form body. All its statements
// run in order in one transaction of the writer (a write script), begun
// per --txlock, so a SELECT then UPDATE script behaves as the study's
// read-then-write transaction.
func (a *WriteAPI) handleCannedWrite(w http.ResponseWriter, r *http.Request) {
	dbName, name, q := a.cannedQuery(r)
	if q == nil {
		a.s.ServeHTTP(w, r)
		return
	}
	actor, restr, err := a.requestActor(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if !a.checker.Allowed(actor, restr, auth.ViewQuery, dbName, name) {
		a.fail(w, r, forbidden("Permission denied"))
		return
	}
	if !q.Write {
		a.fail(w, r, &apiError{Status: http.StatusMethodNotAllowed, Message: "Method not allowed: this query is read-only"})
		return
	}
	writer := a.writers[dbName]
	if writer == nil {
		a.fail(w, r, forbidden("Database is immutable"))
		return
	}
	params := url.Values{}
	if isJSON(r) {
		data, err := a.readBody(w, r)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		for k, v := range data {
			params.Set(k, fmt.Sprint(sqlValue(v)))
		}
	} else {
		r.Body = http.MaxBytesReader(w, r.Body, a.cfg.MaxBodyBytes)
		if err := r.ParseForm(); err != nil {
			a.fail(w, r, &apiError{Status: http.StatusRequestEntityTooLarge, Message: "Could not read the form body: " + err.Error()})
			return
		}
		params = r.PostForm
	}
	stmts := SplitStatements(q.SQL)
	var affected int64
	err = writer.Do(r.Context(), func(ctx context.Context, ex sqlitedb.Execer) error {
		// total_changes() counts only rows written; RowsAffected of a
		// SELECT would repeat the previous statement's count.
		var before, after int64
		if err := queryRowScan(ctx, ex, "SELECT total_changes()", nil, &before); err != nil {
			return err
		}
		for _, st := range stmts {
			if _, err := ex.ExecContext(ctx, st, namedArgs(NamedParams(st), params)...); err != nil {
				return err
			}
		}
		if err := queryRowScan(ctx, ex, "SELECT total_changes()", nil, &after); err != nil {
			return err
		}
		affected = after - before
		return nil
	})
	if err != nil {
		if q.OnErrorMessage != "" {
			a.fail(w, r, errs400(q.OnErrorMessage+": "+err.Error()))
			return
		}
		a.fail(w, r, err)
		return
	}
	msg := q.OnSuccessMessage
	if msg == "" {
		msg = fmt.Sprintf("Query executed, %d row%s affected", affected, plural(affected))
	}
	var redirect any
	if q.OnSuccessRedirect != "" {
		redirect = q.OnSuccessRedirect
	}
	writeJSONStatus(w, http.StatusOK, map[string]any{"ok": true, "message": msg, "redirect": redirect})
}

func plural(n int64) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// paramNames returns a canned query's declared params, else those its SQL
// names.
func paramNames(q *config.Query) []string {
	if len(q.Params) > 0 {
		return q.Params
	}
	return NamedParams(q.SQL)
}

// namedArgs binds every name from values; a missing one is bound as ""
// (Datasette binds missing canned-query parameters as empty strings).
func namedArgs(names []string, values url.Values) []any {
	args := make([]any, len(names))
	for i, n := range names {
		args[i] = sql.Named(n, values.Get(n))
	}
	return args
}

// NamedParams returns the :name parameters of a SQL text in order of first
// appearance, skipping string literals, quoted identifiers and comments.
func NamedParams(sqlText string) []string {
	var names []string
	seen := map[string]bool{}
	scanSQL(sqlText, func(i int) int {
		if sqlText[i] != ':' {
			return i + 1
		}
		j := i + 1
		for j < len(sqlText) && (isWord(sqlText[j])) {
			j++
		}
		if j > i+1 {
			n := sqlText[i+1 : j]
			if !seen[n] {
				seen[n] = true
				names = append(names, n)
			}
		}
		return j
	}, nil)
	return names
}

// SplitStatements splits a write script on semicolons that are outside
// string literals, quoted identifiers and comments, dropping empty
// statements. (CREATE TRIGGER bodies, which contain semicolons, are not
// supported in scripts.)
func SplitStatements(sqlText string) []string {
	var out []string
	start := 0
	scanSQL(sqlText, func(i int) int { return i + 1 }, func(i int) {
		if s := strings.TrimSpace(sqlText[start:i]); s != "" {
			out = append(out, s)
		}
		start = i + 1
	})
	if s := strings.TrimSpace(sqlText[start:]); s != "" {
		out = append(out, s)
	}
	return out
}

func isWord(c byte) bool {
	return c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// scanSQL walks SQL text outside quotes and comments: code(i) is called at
// each such byte and returns where to continue; semi(i) at each ';'.
func scanSQL(s string, code func(i int) int, semi func(i int)) {
	for i := 0; i < len(s); {
		switch c := s[i]; {
		case c == '\'' || c == '"' || c == '`':
			j := i + 1
			for j < len(s) {
				if s[j] == c {
					if j+1 < len(s) && s[j+1] == c { // doubled quote
						j += 2
						continue
					}
					break
				}
				j++
			}
			i = j + 1
		case c == '[':
			j := strings.IndexByte(s[i:], ']')
			if j < 0 {
				return
			}
			i += j + 1
		case c == '-' && i+1 < len(s) && s[i+1] == '-':
			j := strings.IndexByte(s[i:], '\n')
			if j < 0 {
				return
			}
			i += j + 1
		case c == '/' && i+1 < len(s) && s[i+1] == '*':
			j := strings.Index(s[i+2:], "*/")
			if j < 0 {
				return
			}
			i += j + 4
		case c == ';':
			if semi != nil {
				semi(i)
			}
			i++
		default:
			i = code(i)
		}
	}
}
