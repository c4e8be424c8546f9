package server

import (
	"bytes"
	"encoding/json"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"lode/internal/auth"
	"lode/internal/config"
	"lode/internal/sqlitedb"
	"lode/internal/web"
)

// routesHTML puts the HTML pages of canned queries in front of the write
// API's routes: GET /DB/NAME shows a canned query's page (a read query's
// form and results, a write query's form) and a form POST to a write
// query checks its CSRF token, runs it through the write API's own
// handler and shows the outcome on the page. JSON requests are untouched.
func (a *WriteAPI) routesHTML() {
	p, ok := a.s.cfg.HTML.(*htmlPages)
	if !ok {
		return
	}
	inner := a.mux
	a.mux = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !p.serveCanned(a, w, r) {
			inner.ServeHTTP(w, r)
		}
	})
}

// isFormPost reports a POST whose body is an HTML form sent by a browser.
// A request with an Authorization header is an API client (a cross-site
// form cannot set that header), so it goes to the JSON API without the
// CSRF check, as Datasette's asgi-csrf skips it.
func isFormPost(r *http.Request) bool {
	if r.Method != http.MethodPost || r.Header.Get("Authorization") != "" {
		return false
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return mt == "application/x-www-form-urlencoded" || mt == "multipart/form-data"
}

// serveCanned serves r when it is an HTML request for a canned query's
// page and reports whether it did.
func (p *htmlPages) serveCanned(a *WriteAPI, w http.ResponseWriter, r *http.Request) bool {
	formPost := isFormPost(r)
	if !formPost && !htmlRequest(r) {
		return false
	}
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/"), "/")
	if len(parts) != 2 {
		return false
	}
	if _, format := splitFormat(parts[1]); format != formatHTML {
		return false
	}
	// The write API's handlers read the names from the path values that
	// their own mux pattern /{db}/{name} would have set.
	r.SetPathValue("db", parts[0])
	r.SetPathValue("name", parts[1])
	dbName, name, q := a.cannedQuery(r)
	if q == nil {
		return false
	}
	actor, restr, err := a.requestActor(r)
	if err != nil {
		p.writeError(w, r, err)
		return true
	}
	if !a.checker.Allowed(actor, restr, auth.ViewQuery, dbName, name) {
		p.writeError(w, r, forbidden("You do not have permission to view this query"))
		return true
	}
	pg := p.cannedPage(dbName, name, q)
	if formPost {
		if !q.Write {
			p.writeError(w, r, &apiError{Status: http.StatusMethodNotAllowed, Message: "Method not allowed: this query is read-only"})
			return true
		}
		if err := htmlCheckCSRF(r); err != nil {
			p.writeError(w, r, forbidden(err.Error()))
			return true
		}
		p.runCannedWrite(a, w, r, q, pg)
		return true
	}
	params := r.URL.Query()
	for i := range pg.Params {
		pg.Params[i].Value = params.Get(pg.Params[i].Name)
	}
	if q.Write {
		pg.CSRFToken = htmlCSRFToken(w, r)
		p.write(w, r, http.StatusOK, func(b *bytes.Buffer) error { return p.tpl.Query(b, pg) })
		return true
	}
	pg.JSONURL = withQuery(tablePath(dbName, name)+".json", r.URL.RawQuery)
	pg.EditURL = dbPath(dbName) + "/-/query?" + url.Values{"sql": {q.SQL}}.Encode()
	names := make([]string, len(pg.Params))
	for i, prm := range pg.Params {
		names[i] = prm.Name
	}
	out, err := a.s.DB(dbName).Query(r.Context(), q.SQL, namedArgs(names, params), sqlitedb.QueryOptions{
		TimeLimit: ms(a.s.settings.SQLTimeLimitMS), MaxRows: a.s.settings.MaxReturnedRows, CheckReadOnly: true,
	})
	status := http.StatusOK
	pg.Ran = true
	if err != nil {
		var msg string
		status, msg, _, _ = errorStatus(err)
		pg.Error = msg
	} else {
		pg.Columns, pg.Rows, pg.Truncated = out.Columns, htmlRows(out.Rows), out.Truncated
	}
	p.write(w, r, status, func(b *bytes.Buffer) error { return p.tpl.Query(b, pg) })
	return true
}

// cannedPage is the page of canned query name, without results.
func (p *htmlPages) cannedPage(dbName, name string, q *config.Query) *web.QueryPage {
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

// runCannedWrite runs a write query through the write API's handler (so
// permissions, the writer, messages and errors are exactly the JSON API's)
// and renders its answer as a message on the query's page. A success with
// on_success_redirect redirects there instead.
func (p *htmlPages) runCannedWrite(a *WriteAPI, w http.ResponseWriter, r *http.Request, q *config.Query, pg *web.QueryPage) {
	rec := &htmlRecorder{header: http.Header{}}
	a.handleCannedWrite(rec, r)
	var res struct {
		OK      bool   `json:"ok"`
		Message string `json:"message"`
		Error   string `json:"error"`
	}
	if err := json.Unmarshal(rec.body.Bytes(), &res); err != nil {
		res.Error = http.StatusText(rec.status)
	}
	if res.OK && q.OnSuccessRedirect != "" {
		http.Redirect(w, r, q.OnSuccessRedirect, http.StatusFound)
		return
	}
	if !res.OK && q.OnErrorRedirect != "" {
		http.Redirect(w, r, q.OnErrorRedirect, http.StatusFound)
		return
	}
	if !res.OK {
		// Keep what was typed so it can be corrected; after a success
		// the form starts empty, so a second click is a deliberate one.
		for i := range pg.Params {
			pg.Params[i].Value = r.PostFormValue(pg.Params[i].Name)
		}
	}
	pg.CSRFToken = htmlCSRFToken(w, r)
	pg.Message, pg.MessageError = res.Message, !res.OK
	if !res.OK {
		pg.Message = res.Error
	}
	p.write(w, r, rec.status, func(b *bytes.Buffer) error { return p.tpl.Query(b, pg) })
}

// htmlRecorder keeps the write API's JSON answer for runCannedWrite.
type htmlRecorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (h *htmlRecorder) Header() http.Header { return h.header }

func (h *htmlRecorder) WriteHeader(code int) {
	if h.status == 0 {
		h.status = code
	}
}

func (h *htmlRecorder) Write(b []byte) (int, error) {
	h.WriteHeader(http.StatusOK)
	return h.body.Write(b)
}

// writeError sends err as an HTML error page, with the status and message
// errorStatus gives it for JSON.
func (p *htmlPages) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, msg, title, internal := errorStatus(err)
	if internal {
		p.s.log.Error("request failed", "path", r.URL.Path, "error", err.Error())
	}
	p.errorPage(w, r, status, msg, title)
}
