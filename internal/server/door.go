package server

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"lode/internal/auth"
	"lode/internal/query"
	"lode/internal/sqlitedb"
	"lode/internal/web"
)

// The front door: every request passes here once, in this order.
//
//  1. parseRoute reads the escaped path into a route (route.go); paths Go's
//     ServeMux would clean, and trailing slashes, are redirected.
//  2. resolve finds the route's database, table, view or canned query
//     (a table wins over a canned query of the same name, as in Datasette).
//  3. authorize (the gate) decides permission on the resolved route, and
//     checks that a browser's state-changing request is not cross-site.
//  4. dispatch hands the route to its handler by kind and method.
//
// Any error on the way, and any error a handler returns, goes through fail
// (errors.go), the one place that maps errors to statuses.

// ServeHTTP serves one request through the front door. With metrics or
// an access log the observer (metrics.go) times and records it around
// serve.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.obs != nil {
		s.obs.observe(s, w, r)
		return
	}
	var rt route
	s.serve(w, r, &rt)
}

// serve is the front door. It stamps X-Lode-Pid (the serving process id,
// which the prefork tests use to see which worker answered) and leaves the
// parsed route in rt for the observer.
func (s *Server) serve(w http.ResponseWriter, r *http.Request, rt *route) {
	setPid(w, s.pidHeader)
	if s.cfg.CORS {
		h := w.Header()
		for k, v := range corsHeaders {
			h[k] = v
		}
	}
	if r.Method == http.MethodOptions {
		// A CORS preflight (or a client asking what it may do): the
		// headers above are the answer.
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok"))
		return
	}
	escaped := r.URL.EscapedPath()
	var redirect string
	var err error
	*rt, redirect, err = parseRoute(escaped)
	if err != nil {
		s.fail(w, r, rt, err)
		return
	}
	if redirect != "" {
		code := http.StatusFound // a trailing slash, as Datasette
		if cleanPath(escaped) != escaped {
			code = http.StatusMovedPermanently // as ServeMux
		}
		if r.URL.RawQuery != "" {
			redirect += "?" + r.URL.RawQuery
		}
		w.Header().Set("Location", redirect)
		w.WriteHeader(code)
		return
	}
	if rt.kind == routeStatic {
		s.serveStatic(w, r, rt)
		return
	}
	if rt.kind == routeNone {
		s.fail(w, r, rt, s.noRoute(r))
		return
	}
	if r.URL.RawQuery != "" {
		rt.params = query.ParseQuery(r.URL.RawQuery) // nil (empty) without one: reads work
	}
	if err := s.checkMethod(w, r, rt); err != nil {
		s.fail(w, r, rt, err)
		return
	}
	if r.Method == http.MethodPost && !bearerOnly(r) {
		// A browser's state-changing request must come from a page of
		// this server (Sec-Fetch-Site, else Origin), whatever its content
		// type; clients that send neither header (curl, API clients) are
		// not browsers and pass (Go's http.CrossOriginProtection, the
		// check Datasette 1.0 adopted).
		if err := s.crossOrigin.Check(r); err != nil {
			s.fail(w, r, rt, forbidden("Cross-site request refused: "+err.Error()+". Send it from a page of this server, or from a non-browser client with a token."))
			return
		}
	}
	if err := s.resolve(r.Context(), rt); err != nil {
		s.fail(w, r, rt, err)
		return
	}
	if err := s.authorize(r, rt); err != nil {
		s.fail(w, r, rt, err)
		return
	}
	s.dispatch(w, r, rt)
}

// bearerOnly reports a request authenticated by a bearer token alone,
// without cookies: as in Datasette, it skips the cross-origin check. A
// page on another site cannot make a browser add the header without a
// CORS preflight (which only --cors answers), and without cookies it
// carries no ambient credential to abuse: the token is the credential,
// as for a browser app that --cors serves.
func bearerOnly(r *http.Request) bool {
	a := r.Header.Get("Authorization")
	return len(a) > 7 && strings.EqualFold(a[:7], "bearer ") && r.Header.Get("Cookie") == ""
}

// corsHeaders are Datasette's CORS headers (--cors): any origin may read
// the API; Link (the next page) is readable by scripts.
var corsHeaders = http.Header{
	"Access-Control-Allow-Origin":   {"*"},
	"Access-Control-Allow-Headers":  {"Authorization, Content-Type"},
	"Access-Control-Expose-Headers": {"Link"},
	"Access-Control-Allow-Methods":  {"GET, POST, HEAD, OPTIONS"},
	"Access-Control-Max-Age":        {"3600"},
}

// noRoute is the error for a path no route matches.
func (s *Server) noRoute(r *http.Request) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return statusError(http.StatusMethodNotAllowed, "Method not allowed: "+r.Method)
	}
	return notFound("Not found: " + r.URL.Path)
}

// checkMethod refuses methods a route does not take: pages and data are
// GET (and HEAD), writes are POST, a canned query takes both. A 405 names
// the methods that the page takes in Allow.
func (s *Server) checkMethod(w http.ResponseWriter, r *http.Request, rt *route) error {
	get, post := true, false
	switch rt.kind {
	case routeTableAction, routeRowAction:
		if !knownAction(rt) {
			// Whatever the method: an unknown action is a missing page.
			return notFound("Not found: unknown action " + rt.action + " (a table has insert, upsert, drop and schema; a row has update and delete)")
		}
		get, post = rt.isSchema(), !rt.isSchema()
	case routeDatabaseAction:
		if rt.action == "create" {
			get, post = false, true
		}
	case routeTable:
		post = true // only for a canned write query; see dispatch
	}
	switch {
	case get && (r.Method == http.MethodGet || r.Method == http.MethodHead), post && r.Method == http.MethodPost:
		return nil
	case get && post:
		w.Header().Set("Allow", "GET, HEAD, POST")
	case get:
		w.Header().Set("Allow", "GET, HEAD")
	default:
		w.Header().Set("Allow", "POST")
	}
	return statusError(http.StatusMethodNotAllowed, "Method not allowed: "+r.Method)
}

// knownAction reports whether a table or row route names an action Lode
// has: /DB/TABLE/-/{insert,upsert,drop,schema}, /DB/TABLE/PK/-/{update,delete}.
func knownAction(rt *route) bool {
	switch rt.action {
	case "insert", "upsert", "drop", "schema":
		return rt.kind == routeTableAction
	case "update", "delete":
		return rt.kind == routeRowAction
	}
	return false
}

// serveStatic serves the stylesheet and script.
func (s *Server) serveStatic(w http.ResponseWriter, r *http.Request, rt *route) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		s.fail(w, r, rt, statusError(http.StatusMethodNotAllowed, "Method not allowed: "+r.Method))
		return
	}
	if _, err := web.Static().Open(rt.file); err != nil {
		s.fail(w, r, rt, notFound("Not found: "+r.URL.Path))
		return
	}
	w.Header().Set("Cache-Control", "public, max-age=300")
	r2 := new(http.Request)
	*r2 = *r
	u := *r.URL
	u.Path, u.RawPath = "/"+rt.file, ""
	r2.URL = &u
	s.static.ServeHTTP(w, r2)
}

// resolve looks up the route's database and its table, view or canned
// query. A name missing from the cached schema triggers one schema_version
// check, so tables created since the cache was filled are found. Reading
// the schema waits at most the SQL time limit.
func (s *Server) resolve(ctx context.Context, rt *route) error {
	switch rt.kind {
	case routeIndex, routeInstance:
		return nil
	}
	rt.db = s.dbs[rt.dbName]
	if rt.db == nil {
		if rt.isWrite() {
			// Named, which Datasette does for update and delete only.
			return notFound(msgDatabaseNotFound + ": " + rt.dbName)
		}
		return notFound(msgDatabaseNotFound)
	}
	switch rt.kind {
	case routeTable, routeRow, routeTableAction, routeRowAction:
	default:
		return nil
	}
	if rt.isSchema() {
		// Datasette's schema page reads sqlite_master for any named
		// object with SQL; a missing one is its own 404 (schema.go).
		return nil
	}
	sch := rt.db.CachedSchema()
	var t *sqlitedb.Table
	if sch != nil {
		t = sch.Table(rt.name)
	}
	if t == nil {
		// A stale cache, or a name it lacks: one bounded read.
		ctx, cancel := context.WithTimeout(ctx, ms(s.settings.SQLTimeLimitMS))
		defer cancel()
		var err error
		if sch, err = rt.db.RefreshSchema(ctx); err != nil {
			return err
		}
		t = sch.Table(rt.name)
	}
	rt.schema, rt.table = sch, t
	if rt.isWrite() {
		if t == nil || t.IsView {
			rt.table = nil
			// Named, which Datasette does for update and delete (and
			// for a view) but not for insert, upsert or drop.
			return notFound(msgTableNotFound + ": " + rt.name)
		}
		return nil
	}
	if t == nil && rt.kind == routeTable {
		if q := s.cfg.Lode.Query(rt.db.Name, rt.name); q != nil {
			rt.canned = q
			return nil
		}
	}
	if t == nil {
		return notFound(msgTableNotFound)
	}
	return nil
}

// schemaOf returns db's schema: the cached one while it is trusted, else
// read again, waiting at most the SQL time limit for a connection.
func (s *Server) schemaOf(ctx context.Context, db *sqlitedb.DB) (*sqlitedb.Schema, error) {
	if sch := db.CachedSchema(); sch != nil {
		return sch, nil
	}
	ctx, cancel := context.WithTimeout(ctx, ms(s.settings.SQLTimeLimitMS))
	defer cancel()
	return db.Schema(ctx)
}

// authorize is the gate: the one place that decides whether the request's
// actor may do what the route asks, from the route alone (never from the
// path again). Reads need view-instance, view-database and view-table (or
// view-query for a canned query); ?sql=, /DB/-/query and _where= need
// execute-sql too; writes need their action (insert-row, ...). The
// decision is kept in rt.access for the handlers' own questions: which
// tables a listing shows, whose labels a page may read.
func (s *Server) authorize(r *http.Request, rt *route) error {
	rt.acc = access{checker: s.checker}
	rt.access = &rt.acc
	acc := rt.access
	if err := s.requestAccess(r, acc); err != nil {
		return err
	}
	deny := func(what string) error {
		return &apiError{Status: http.StatusForbidden, Msgs: []string{"You do not have permission to view this " + what}, Title: "Forbidden"}
	}
	needSQL := func() error {
		if !acc.allowed(auth.ExecuteSQL, rt.dbName, "") {
			return &apiError{Status: http.StatusForbidden, Msgs: []string{"You do not have permission to execute SQL"}, Title: "Forbidden"}
		}
		return nil
	}
	if rt.isWrite() {
		return s.authorizeWrite(rt)
	}
	if rt.kind == routeInstance && (rt.action == "actor" || rt.action == "auth-token") {
		return nil // who am I, and signing in, need no permission
	}
	// The message names what was asked for, whichever level refused it,
	// as Datasette's does.
	asked := "database"
	switch {
	case rt.kind == routeIndex || rt.kind == routeInstance:
		asked = "instance"
	case rt.canned != nil:
		asked = "query"
	case rt.kind == routeTable || rt.kind == routeRow || rt.kind == routeTableAction:
		asked = "table"
	}
	if !acc.allowed(auth.ViewInstance, "", "") {
		return deny(asked)
	}
	if rt.kind == routeIndex || rt.kind == routeInstance {
		return nil
	}
	if !acc.allowed(auth.ViewDatabase, rt.dbName, "") {
		return deny(asked)
	}
	switch rt.kind {
	case routeTableAction: // the table's schema page
		if !acc.allowed(auth.ViewTable, rt.dbName, rt.name) {
			return deny("table")
		}
	case routeDatabase:
		if rt.params.Has("sql") {
			return needSQL()
		}
	case routeDatabaseAction:
		if rt.queryEditor() {
			return needSQL()
		}
	case routeTable, routeRow:
		if rt.canned != nil {
			if !acc.allowed(auth.ViewQuery, rt.dbName, rt.name) {
				if r.Method == http.MethodPost {
					return forbidden("Permission denied")
				}
				return deny("query")
			}
			return nil
		}
		if !acc.allowed(auth.ViewTable, rt.dbName, rt.name) {
			return deny("table")
		}
		if rt.kind == routeTable && rt.params.Has("_where") && needSQL() != nil {
			// _where= pastes SQL into the table's query: as powerful as
			// ?sql=, so it needs the same permission (Datasette's words).
			return &apiError{Status: http.StatusForbidden, Msgs: []string{"_where= is not allowed"}}
		}
	}
	return nil
}

// authorizeWrite decides the write routes: the action the route names
// (upsert needs both insert-row and update-row), and a writable database.
// Body-dependent permissions (alter-table for "alter", update-row for
// "replace") are asked by the handlers through rt.access.
func (s *Server) authorizeWrite(rt *route) error {
	acc := rt.access
	var need []string
	switch rt.kind {
	case routeDatabaseAction: // create
		need = []string{auth.CreateTable}
	case routeTableAction:
		switch rt.action {
		case "insert":
			need = []string{auth.InsertRow}
		case "upsert":
			need = []string{auth.InsertRow, auth.UpdateRow}
		case "drop":
			need = []string{auth.DropTable}
		}
	case routeRowAction:
		switch rt.action {
		case "update":
			need = []string{auth.UpdateRow}
		case "delete":
			need = []string{auth.DeleteRow}
		}
	}
	if need == nil {
		return notFound("Not found: unknown action " + rt.action)
	}
	table := rt.name
	if rt.kind == routeDatabaseAction {
		table = ""
	}
	for _, a := range need {
		if !acc.allowed(a, rt.dbName, table) {
			if len(need) > 1 {
				return forbidden("Permission denied: need both insert-row and update-row")
			}
			return forbidden("Permission denied")
		}
	}
	if s.api == nil || s.api.writers[rt.dbName] == nil {
		return forbidden("Database is immutable")
	}
	return nil
}

// requestAccess returns the request's actor and token restrictions. A
// bearer token that is tampered with or expired is an error (401); no
// token is the anonymous actor (nil). The signed sign-in cookie counts for
// reads and JSON posts only, which a cross-site form cannot send.
func (s *Server) requestAccess(r *http.Request, acc *access) error {
	if h := r.Header.Get("Authorization"); h != "" {
		tok, ok := strings.CutPrefix(h, "Bearer ")
		if !ok {
			return statusError(http.StatusUnauthorized, "Authorization header must be: Bearer TOKEN")
		}
		actor, restr, err := auth.VerifyToken(s.secret, strings.TrimSpace(tok), s.now())
		switch {
		case errors.Is(err, auth.ErrTokenExpired):
			return statusError(http.StatusUnauthorized, "Token has expired")
		case err != nil:
			return statusError(http.StatusUnauthorized, "Invalid token")
		}
		acc.actor, acc.restr = actor, restr
		return nil
	}
	if len(s.secret) > 0 && (r.Method == http.MethodGet || r.Method == http.MethodHead || isJSON(r)) {
		if c, err := r.Cookie(actorCookie); err == nil {
			if actor, restr, err := auth.VerifyToken(s.secret, c.Value, s.now()); err == nil {
				acc.actor, acc.restr = actor, restr
			}
		}
	}
	return nil
}

// dispatch hands a resolved, permitted route to its handler.
func (s *Server) dispatch(w http.ResponseWriter, r *http.Request, rt *route) {
	switch rt.format {
	case formatHTML, formatJSON:
	case "md":
		if !rt.isSchema() {
			s.fail(w, r, rt, notFound("Invalid format: "+rt.format))
			return
		}
	case "blob":
		if rt.kind != routeRow && !rt.queryEditor() && (rt.canned == nil || rt.canned.Write) {
			s.fail(w, r, rt, notFound("Invalid format: "+rt.format))
			return
		}
		s.serveBlob(w, r, rt)
		return
	case formatCSV:
		if rt.kind != routeTable && rt.kind != routeRow && !rt.queryEditor() {
			s.fail(w, r, rt, notFound("Not found: "+r.URL.Path))
			return
		}
	default:
		s.fail(w, r, rt, notFound("Invalid format: "+rt.format))
		return
	}
	if rt.format == formatHTML && (rt.kind == routeDatabase || rt.kind == routeTable || rt.kind == routeRow || rt.queryEditor()) {
		// Datasette points its HTML pages at their JSON.
		req := requestURL(r)
		u := req.Base + req.Path + ".json"
		if req.RawQuery != "" {
			u += "?" + req.RawQuery
		}
		w.Header().Set("Link", "<"+u+`>; rel="alternate"; type="application/json+datasette"`)
	}
	switch rt.kind {
	case routeIndex:
		s.serveIndex(w, r, rt)
	case routeInstance:
		s.serveInstance(w, r, rt)
	case routeDatabase:
		s.serveDatabase(w, r, rt)
	case routeDatabaseAction:
		switch rt.action {
		case "schema":
			s.serveSchema(w, r, rt)
		case "query":
			s.serveQuery(w, r, rt)
		case "create":
			s.api.handleCreate(w, r, rt)
		default:
			s.fail(w, r, rt, notFound("Not found: "+r.URL.Path))
		}
	case routeTable:
		switch {
		case rt.canned != nil:
			s.serveCanned(w, r, rt)
		case r.Method == http.MethodPost:
			s.fail(w, r, rt, statusError(http.StatusMethodNotAllowed, "Method not allowed: POST to a table; use /-/insert"))
		default:
			// The filter form's fields become the canonical URL, in
			// every format, as Datasette answers them: a 302 with an
			// empty text body and the target also as a preload Link.
			if target, ok := query.FormRedirect(requestURL(r)); ok {
				w.Header().Set("Location", target)
				w.Header().Set("Link", "<"+target+">; rel=preload")
				w.Header().Set("Content-Type", "text/plain")
				w.WriteHeader(http.StatusFound)
				return
			}
			s.serveTable(w, r, rt)
		}
	case routeRow:
		s.serveRow(w, r, rt)
	case routeTableAction:
		switch rt.action {
		case "schema":
			s.serveSchema(w, r, rt)
		case "insert", "upsert":
			s.api.handleInsert(w, r, rt)
		case "drop":
			s.api.handleDrop(w, r, rt)
		}
	case routeRowAction:
		switch rt.action {
		case "update":
			s.api.handleUpdate(w, r, rt)
		case "delete":
			s.api.handleDelete(w, r, rt)
		}
	}
}

// isJSON reports a request body declared as JSON.
func isJSON(r *http.Request) bool {
	ct := r.Header.Get("Content-Type")
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	return strings.EqualFold(strings.TrimSpace(ct), "application/json")
}

// setPid stamps X-Lode-Pid unless a wrapper (the prefork worker) already
// did: v is the header value, built once, which net/http only reads.
func setPid(w http.ResponseWriter, v []string) {
	if h := w.Header(); h["X-Lode-Pid"] == nil {
		h["X-Lode-Pid"] = v
	}
}
