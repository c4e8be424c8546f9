package server

import (
	"net/url"
	"path"
	"strings"

	"lode/internal/auth"
	"lode/internal/config"
	"lode/internal/query"
	"lode/internal/sqlitedb"
)

// This file is the one place where a request's path becomes a route. The
// front door (door.go) parses the escaped path once with parseRoute,
// resolves its names against the served databases (resolve), asks the gate
// (gate.go) and hands the route to a handler; nothing after it splits or
// decodes the path again.
//
// The URL grammar is Datasette 1.0's, which routes on the raw (escaped)
// path:
//
//	/                         index              /.json (JSON)
//	/-/static/FILE            stylesheet, script
//	/-/NAME[.json]            versions, settings, databases, ...
//	/DB[.json]                database
//	/DB/-/NAME[.EXT]          query (json, csv), create (POST)
//	/DB/NAME[.EXT]            table, view or canned query (json, csv)
//	/DB/TABLE/-/ACTION        insert, upsert, drop (POST)
//	/DB/TABLE/PK[.EXT]        row (json)
//	/DB/TABLE/PK/-/ACTION     update, delete (POST)
//
// Names are tilde-encoded ("/" is ~2F, "." is ~2E, a space is "+" or ~20)
// and '%' is an ordinary character in them: /db/a%2Fb names the table
// "a%2Fb", never "a/b" (Datasette redirects such a URL to its tilde form
// when it finds nothing; so does Lode, see Server.fail). A database or
// table segment holds no literal '.': the text after it is the format, so
// /db/s.json is table "s" as JSON and a table named "s.json" is /db/s~2Ejson.
// A row's table segment may hold dots, and its key segment ends at its last
// '.' when what follows is a word (the format).

type routeKind uint8

const (
	routeNone           routeKind = iota // no route: 404
	routeIndex                           // / and /.json
	routeStatic                          // /-/static/FILE
	routeInstance                        // /-/NAME[.json]
	routeDatabase                        // /DB[.json]
	routeDatabaseAction                  // /DB/-/NAME[.EXT]
	routeTable                           // /DB/NAME[.EXT]: table, view or canned query
	routeTableAction                     // /DB/TABLE/-/ACTION
	routeRow                             // /DB/TABLE/PK[.EXT]
	routeRowAction                       // /DB/TABLE/PK/-/ACTION
)

// String names the kind of route, for logs.
func (k routeKind) String() string {
	return [...]string{"none", "index", "static", "instance", "database", "database-action",
		"table", "table-action", "row", "row-action"}[k]
}

// Formats a page can be rendered in.
const (
	formatHTML = ""
	formatJSON = "json"
	formatCSV  = "csv"
)

// route is a parsed and resolved request path, with the request's parsed
// query string and the gate's decision. Handlers read it and never the URL
// path.
type route struct {
	kind    routeKind
	escaped string // the escaped path it was parsed from

	// Parsed from the path.
	dbName string   // decoded database name
	name   string   // decoded table, view or canned query name
	pk     []string // decoded key values (row routes)
	action string   // instance page, database action or write action ("insert", "query", "versions"...)
	format string   // formatHTML, formatJSON, formatCSV, or another extension (refused)
	file   string   // static file name

	// The query string, parsed once (Datasette's parse_qs rules).
	params url.Values

	// Resolved against the served databases.
	db     *sqlitedb.DB
	schema *sqlitedb.Schema
	table  *sqlitedb.Table // table or view
	canned *config.Query   // a canned query (kind routeTable, table nil)

	// The gate's view of the request's actor (access points at acc).
	access *access
	acc    access
}

// isWrite reports whether the route changes data (POST endpoints).
func (rt *route) isWrite() bool {
	switch rt.kind {
	case routeTableAction, routeRowAction:
		return rt.action != "schema"
	case routeDatabaseAction:
		return rt.action == "create"
	}
	return false
}

// isSchema reports the /-/schema pages of the instance, a database or a
// table.
func (rt *route) isSchema() bool {
	switch rt.kind {
	case routeInstance, routeDatabaseAction, routeTableAction:
		return rt.action == "schema"
	}
	return false
}

// isPage reports whether the route is one of the HTML pages (index,
// database, query editor, table, canned query, row) asked for without an
// extension, whose errors are HTML pages too.
func (rt *route) isPage() bool {
	if rt.format != formatHTML {
		return false
	}
	switch rt.kind {
	case routeIndex, routeDatabase, routeTable, routeRow:
		return true
	case routeDatabaseAction:
		return rt.action == "query"
	}
	return false
}

// queryEditor reports whether the route is the SQL editor, /DB/-/query.
func (rt *route) queryEditor() bool {
	return rt.kind == routeDatabaseAction && rt.action == "query"
}

// parseRoute parses an escaped request path. A path that Go's ServeMux
// would clean (//, /./, /../) or that ends in a slash is not routed: the
// caller redirects to redirect instead (301 to the cleaned path, as
// ServeMux does; 302 without the trailing slash, as Datasette does). err is
// an *apiError for names that do not decode.
func parseRoute(escaped string) (rt route, redirect string, err error) {
	defer func() {
		if rt.kind == routeNone && err == nil {
			rt = route{escaped: escaped} // no half-parsed names without a route
		}
	}()
	rt.escaped = escaped
	if escaped == "" || escaped[0] != '/' {
		return rt, "", nil
	}
	if c := cleanPath(escaped); c != escaped {
		return rt, c, nil
	}
	switch escaped {
	case "/", "/-/":
		rt.kind = routeIndex
		return rt, "", nil
	case "/.json", "/-/.json":
		rt.kind, rt.format = routeIndex, formatJSON
		return rt, "", nil
	case "/-":
		return rt, "/-/", nil
	}
	if strings.HasSuffix(escaped, "/") {
		return rt, strings.TrimRight(escaped, "/"), nil
	}
	var segs [6]string
	n := 0
	for rest := escaped[1:]; ; n++ {
		if n == len(segs) {
			return rt, "", nil // too deep for any route
		}
		i := strings.IndexByte(rest, '/')
		if i < 0 {
			segs[n] = rest
			n++
			break
		}
		segs[n], rest = rest[:i], rest[i+1:]
	}
	if segs[0] == "-" {
		switch {
		case n == 2:
			name, format, ok := splitDotFormat(segs[1])
			if ok {
				rt.kind, rt.action, rt.format = routeInstance, name, format
			}
		case n == 3 && segs[1] == "static" && segs[2] != "":
			rt.kind, rt.file = routeStatic, segs[2]
		}
		return rt, "", nil
	}
	dbSeg, format, ok := splitDotFormat(segs[0])
	if !ok {
		return rt, "", nil
	}
	if rt.dbName, err = decodeName(dbSeg); err != nil {
		return rt, "", err
	}
	switch {
	case n == 1:
		rt.kind, rt.format = routeDatabase, format
		return rt, "", nil
	case format != "":
		return rt, "", nil // /DB.json/...
	case n == 2:
		name, format, ok := splitDotFormat(segs[1])
		if !ok {
			return rt, "", nil
		}
		rt.kind, rt.format = routeTable, format
		rt.name, err = decodeName(name)
		return rt, "", err
	case n == 3 && segs[1] == "-" && isDatabaseAction(segs[2]):
		name, format, _ := splitDotFormat(segs[2])
		rt.kind, rt.action, rt.format = routeDatabaseAction, name, format
		return rt, "", nil
	case n == 3 || (n == 5 && segs[3] == "-"):
		pkSeg, format := splitLastFormat(segs[2])
		if pkSeg == "" {
			return rt, "", nil
		}
		if rt.name, err = decodeName(segs[1]); err != nil {
			return rt, "", err
		}
		if rt.pk, err = query.ParseRowPath(pkSeg); err != nil {
			return rt, "", badRequest("Invalid row key: " + err.Error())
		}
		rt.kind, rt.format = routeRow, format
		if n == 5 {
			if format != "" {
				return route{escaped: escaped}, "", nil
			}
			rt.kind, rt.action = routeRowAction, segs[4]
		}
		return rt, "", nil
	case n == 4 && segs[2] == "-":
		if strings.IndexByte(segs[1], '.') >= 0 {
			return rt, "", nil
		}
		rt.kind, rt.action = routeTableAction, segs[3]
		if a, format, ok := splitDotFormat(segs[3]); ok && a == "schema" {
			rt.action, rt.format = a, format
		}
		rt.name, err = decodeName(segs[1])
		return rt, "", err
	}
	return rt, "", nil
}

// databaseActions are the /DB/-/NAME pages; any other /DB/-/X is read as
// Datasette reads it, a row X of a table "-".
var databaseActions = map[string]bool{"query": true, "create": true, "schema": true}

func isDatabaseAction(seg string) bool {
	name, _, ok := splitDotFormat(seg)
	return ok && databaseActions[name]
}

// splitDotFormat splits a database or table segment into its name and
// format: "facetable.json" is ("facetable", "json"). The name may hold no
// '.', and the format is a word (letters, digits, '_'); ok is false for
// any other segment, which no route matches.
func splitDotFormat(seg string) (name, format string, ok bool) {
	i := strings.IndexByte(seg, '.')
	if i < 0 {
		return seg, formatHTML, seg != ""
	}
	name, format = seg[:i], seg[i+1:]
	return name, format, name != "" && isWord(format)
}

// splitLastFormat splits a row's key segment at its last '.' when a word
// follows it: "1.json" is ("1", "json"), "a.b.json" is ("a.b", "json").
func splitLastFormat(seg string) (rest, format string) {
	if i := strings.LastIndexByte(seg, '.'); i > 0 && isWord(seg[i+1:]) {
		return seg[:i], seg[i+1:]
	}
	return seg, formatHTML
}

// isWord reports whether s is a non-empty run of [A-Za-z0-9_] (a
// regexp \w+ on ASCII).
func isWord(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

// cleanPath is ServeMux's cleanPath: the path with . and .. elements and
// repeated slashes removed, a trailing slash kept.
func cleanPath(p string) string {
	np := path.Clean(p)
	if p[len(p)-1] == '/' && np != "/" {
		if len(p) == len(np)+1 && strings.HasPrefix(p, np) {
			return p
		}
		return np + "/"
	}
	return np
}

// decodeName tilde-decodes a database or table name from a URL segment.
func decodeName(seg string) (string, error) {
	name, err := query.TildeDecode(seg)
	if err != nil {
		return "", badRequest("Invalid name encoding: " + err.Error())
	}
	return name, nil
}

// tildeEncode is query.TildeEncode, the encoding of names in URLs.
func tildeEncode(s string) string { return query.TildeEncode(s) }

// dbPath and tablePath are the tilde-encoded URL paths of pages.
func dbPath(db string) string           { return "/" + tildeEncode(db) }
func tablePath(db, table string) string { return dbPath(db) + "/" + tildeEncode(table) }

// access is the gate's view of a request's actor, for the questions
// handlers ask after the gate let the request in: may this listing show a
// table, may a label be read from another table.
type access struct {
	checker *auth.Checker
	actor   auth.Actor
	restr   *auth.Restrictions
}

// allowed reports whether the actor may perform action on db and resource.
func (a *access) allowed(action, db, resource string) bool {
	return a.checker.Allowed(a.actor, a.restr, action, db, resource)
}

// canViewDatabase reports whether the actor may see database db at all.
func (a *access) canViewDatabase(db string) bool {
	return a.allowed(auth.ViewInstance, "", "") && a.allowed(auth.ViewDatabase, db, "")
}

// canViewTable reports whether the actor may see table (or view) of db:
// the instance, the database and the table must each be visible.
func (a *access) canViewTable(db, table string) bool {
	return a.canViewDatabase(db) && a.allowed(auth.ViewTable, db, table)
}

// canViewQuery is canViewTable for a canned query (view-query).
func (a *access) canViewQuery(db, name string) bool {
	return a.canViewDatabase(db) && a.allowed(auth.ViewQuery, db, name)
}

// private reports whether a table the actor sees is hidden from anonymous
// visitors (Datasette's "private" flag).
func (a *access) private(db, table string) bool {
	anon := access{checker: a.checker}
	return !anon.canViewTable(db, table)
}

// privateQuery is private for a canned query.
func (a *access) privateQuery(db, name string) bool {
	anon := access{checker: a.checker}
	return !anon.canViewQuery(db, name)
}

// privateDatabase is private for a whole database.
func (a *access) privateDatabase(db string) bool {
	anon := access{checker: a.checker}
	return !anon.canViewDatabase(db)
}
