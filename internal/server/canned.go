package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"lode/internal/config"
	"lode/internal/query"
	"lode/internal/sqlitedb"
	"lode/internal/web"
)

// serveCanned serves a canned query of lode.yaml at /DB/NAME(.json|.csv):
// a GET runs a read query (JSON and CSV through the ?sql= path, the HTML
// page with its parameters and results) or describes a write query (the
// HTML page shows its form); a POST runs a write query with parameters
// from a JSON object or a form. A form post from a browser must carry the
// signed CSRF token of the page's form (see csrf.go).
func (s *Server) serveCanned(w http.ResponseWriter, r *http.Request, rt *route) {
	q := rt.canned
	if r.Method == http.MethodPost {
		s.runCannedWrite(w, r, rt)
		return
	}
	if q.Write {
		if rt.format == formatHTML {
			pg := s.html.cannedPage(rt)
			for i := range pg.Params {
				pg.Params[i].Value = rt.params.Get(pg.Params[i].Name)
			}
			pg.CSRFToken = s.csrfToken(w, r)
			s.html.write(w, r, http.StatusOK, func(b *bytes.Buffer) error { return s.html.tpl.Query(b, pg) })
			return
		}
		// The write itself needs POST; a GET runs nothing and, as in
		// Datasette, answers an empty result in the asked shape (a CSV
		// of it is an error, as there).
		if rt.format == formatCSV {
			s.fail(w, r, rt, badRequest("A write query has no rows: POST to /"+rt.db.Name+"/"+rt.name+" to run it"))
			return
		}
		s.renderRows(w, r, rt, &QueryResult{Database: rt.db.Name}, rowsPage{cols: []string{}, rows: [][]any{}, shape: rt.params.Get("_shape"),
			build: func(o *orderedJSON, extras map[string]bool) {
				if extras["columns"] {
					o.set("columns", []string{})
				}
				if extras["metadata"] {
					o.set("metadata", cannedMetadata(rt))
				}
				s.commonExtras(o, extras, r, rt, scopeQuery, nil)
			}})
		return
	}
	if rt.format != formatHTML {
		// The same path as ?sql=: read-only checks, time limit, row cap,
		// _shape and _extra.
		s.serveSQL(w, r, rt, q.SQL)
		return
	}
	pg := s.html.cannedPage(rt)
	names := make([]string, len(pg.Params))
	for i := range pg.Params {
		pg.Params[i].Value = rt.params.Get(pg.Params[i].Name)
		names[i] = pg.Params[i].Name
	}
	pg.JSONURL = withQuery(tablePath(rt.db.Name, rt.name)+".json", r.URL.RawQuery)
	pg.EditURL = dbPath(rt.db.Name) + "/-/query?" + url.Values{"sql": {q.SQL}}.Encode()
	status := http.StatusOK
	pg.Ran = true
	err := query.ValidateSelect(q.SQL)
	var out *sqlitedb.Result
	if err == nil {
		run, _ := query.FirstStatement(q.SQL)
		out, err = rt.db.Query(r.Context(), run, namedArgs(names, withMagic(r, rt, query.NamedParams(run), rt.params)), sqlitedb.QueryOptions{
			TimeLimit: ms(s.settings.SQLTimeLimitMS), MaxRows: s.settings.MaxReturnedRows, CheckReadOnly: true,
		})
	}
	if err != nil {
		e := mapError(err)
		status, pg.Error = e.status, e.msgs[0]
	} else {
		pg.Columns, pg.Rows, pg.Truncated = out.Columns, htmlRows(out.Rows), out.Truncated
	}
	s.html.write(w, r, status, func(b *bytes.Buffer) error { return s.html.tpl.Query(b, pg) })
}

// isBrowserForm reports a POST that a browser's HTML form may have sent:
// a body that is not JSON (urlencoded, multipart, text/plain: the bodies
// a cross-site form sends without a CORS preflight; Lode reads any
// non-JSON body as a form) and no Authorization header (which a form
// cannot set). Such a post must carry the page's CSRF token.
func isBrowserForm(r *http.Request) bool {
	return r.Method == http.MethodPost && !isJSON(r) && r.Header.Get("Authorization") == ""
}

// runCannedWrite runs a write canned query (write: true) on POST. All its
// statements run in order in one transaction of the writer (a write
// script), begun per --txlock, so a SELECT then UPDATE script behaves as
// the study's read-then-write transaction. A browser's form post (a form
// body without an Authorization header) must repeat the page's CSRF token;
// its answer is the query's HTML page with the outcome as a message, or
// the query's on_success_redirect / on_error_redirect.
func (s *Server) runCannedWrite(w http.ResponseWriter, r *http.Request, rt *route) {
	q := rt.canned
	browserForm := isBrowserForm(r)
	htmlPage := browserForm && rt.format == formatHTML
	fail := func(err error) {
		if htmlPage {
			s.html.cannedOutcome(w, r, rt, mapError(err), "")
			return
		}
		s.fail(w, r, rt, err)
	}
	if !q.Write {
		fail(statusError(http.StatusMethodNotAllowed, "Method not allowed: this query is read-only"))
		return
	}
	if s.api == nil || s.api.writers[rt.db.Name] == nil {
		fail(forbidden("Database is immutable"))
		return
	}
	params := url.Values{}
	if isJSON(r) {
		data, err := s.api.readBody(w, r)
		if err != nil {
			fail(err)
			return
		}
		for k, v := range data {
			// Text as Datasette binds it, Python's str(): 1.0 stays
			// "1.0", true is "True", null "None"; lists and objects
			// are their JSON.
			sv, err := sqlValue(v)
			if err != nil {
				fail(err)
				return
			}
			switch v.(type) {
			case bool, nil:
				sv = v
			}
			if n, ok := v.(json.Number); ok && strings.ContainsAny(n.String(), ".eE") {
				f, _ := n.Float64()
				sv = f
			}
			params.Set(k, query.PyStr(sv))
		}
	} else {
		r.Body = http.MaxBytesReader(w, r.Body, s.api.cfg.MaxBodyBytes)
		mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		var err error
		if mt == "multipart/form-data" {
			err = r.ParseMultipartForm(1 << 20)
		} else {
			err = r.ParseForm()
		}
		if err != nil {
			fail(statusError(http.StatusRequestEntityTooLarge, "Could not read the form body: "+err.Error()))
			return
		}
		if browserForm {
			if err := s.checkCSRF(r); err != nil {
				fail(forbidden(err.Error()))
				return
			}
		}
		params = r.PostForm
	}
	stmts := query.SplitStatements(q.SQL)
	script := make([]sqlitedb.Statement, len(stmts))
	for i, st := range stmts {
		names := query.NamedParams(st)
		bind := withMagic(r, rt, names, params)
		if n := missingParam(names, bind); n != "" {
			// Datasette's words; a missing value is not an empty one.
			fail(errs400("You did not supply a value for binding parameter :" + n + "."))
			return
		}
		script[i] = sqlitedb.Statement{SQL: st, Args: namedArgs(names, bind)}
	}
	var changed int64
	var sqlMessage any
	msgSQL, _ := q.Extra["on_success_message_sql"].(string)
	// A script with DDL expires the schema cache after it.
	err := s.api.write(r, rt, mayChangeSchema(q.SQL), func(ctx context.Context, ex sqlitedb.Execer) error {
		var err error
		if changed, err = sqlitedb.RunScript(ctx, ex, script); err != nil || msgSQL == "" {
			return err
		}
		// on_success_message_sql: the first value of its first row is the
		// message, read in the write's transaction, so it sees the write.
		names := query.NamedParams(msgSQL)
		rows, err := ex.QueryContext(ctx, msgSQL, namedArgs(names, withMagic(r, rt, names, params))...)
		if err != nil {
			return err
		}
		defer rows.Close()
		if cols, _ := rows.Columns(); len(cols) > 0 && rows.Next() {
			dest := make([]any, len(cols))
			for i := range dest {
				dest[i] = new(any)
			}
			if err := rows.Scan(dest...); err != nil {
				return err
			}
			sqlMessage = *dest[0].(*any)
		}
		return rows.Err()
	})
	if err != nil {
		if q.OnErrorMessage != "" {
			err = errs400(q.OnErrorMessage + ": " + mapError(err).msgs[0])
		}
		fail(err)
		return
	}
	msg := q.OnSuccessMessage
	if sqlMessage != nil {
		msg = query.PyStr(sqlMessage)
	}
	if msg == "" {
		msg = fmt.Sprintf("Query executed, %d row%s affected", changed, plural(changed))
	}
	if htmlPage {
		s.html.cannedOutcome(w, r, rt, errorInfo{status: http.StatusOK}, msg)
		return
	}
	var redirect any
	if q.OnSuccessRedirect != "" {
		redirect = q.OnSuccessRedirect
	}
	writeJSONStatus(w, http.StatusOK, map[string]any{"ok": true, "message": msg, "redirect": redirect})
}

// mayChangeSchema reports SQL that may hold DDL (CREATE, ALTER, DROP).
func mayChangeSchema(sqlText string) bool {
	low := strings.ToLower(sqlText)
	return strings.Contains(low, "create") || strings.Contains(low, "alter") || strings.Contains(low, "drop")
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
	return query.NamedParams(q.SQL)
}

// cannedPage is the page of the route's canned query, without results.
func (p *htmlPages) cannedPage(rt *route) *web.QueryPage {
	q, dbName, name := rt.canned, rt.db.Name, rt.name
	heading := q.Title
	if heading == "" {
		heading = name
	}
	path := tablePath(dbName, name)
	pg := &web.QueryPage{
		Chrome: web.Chrome{
			Title: heading + ": " + dbName, Heading: heading,
			Crumbs: []web.Link{{Label: dbName, URL: dbPath(dbName)}},
		},
		Database: dbName, Action: path, Method: "get", SQL: q.SQL,
		Canned: &web.CannedLink{Name: name, Title: q.Title, URL: path, Description: q.Description, Write: q.Write},
	}
	if q.Write {
		pg.Method = "post"
	}
	for _, n := range paramNames(q) {
		pg.Params = append(pg.Params, web.Param{Name: n})
	}
	return pg
}

// cannedOutcome shows the outcome of a canned write form on the query's
// page: msg on success (e.status 200), else e's message, keeping what was
// typed so it can be corrected; after a success the form starts empty, so
// a second click is a deliberate one. on_success_redirect and
// on_error_redirect redirect instead.
func (p *htmlPages) cannedOutcome(w http.ResponseWriter, r *http.Request, rt *route, e errorInfo, msg string) {
	q := rt.canned
	ok := e.status == http.StatusOK
	if ok && q.OnSuccessRedirect != "" {
		http.Redirect(w, r, q.OnSuccessRedirect, http.StatusFound)
		return
	}
	if !ok && q.OnErrorRedirect != "" {
		http.Redirect(w, r, q.OnErrorRedirect, http.StatusFound)
		return
	}
	pg := p.cannedPage(rt)
	if !ok {
		for i := range pg.Params {
			pg.Params[i].Value = r.PostFormValue(pg.Params[i].Name)
		}
		msg = e.msgs[0]
		if len(e.msgs) > 1 {
			msg = fmt.Sprint(e.msgs)
		}
	}
	pg.CSRFToken = p.s.csrfToken(w, r)
	pg.Message, pg.MessageError = msg, !ok
	p.write(w, r, e.status, func(b *bytes.Buffer) error { return p.tpl.Query(b, pg) })
}
