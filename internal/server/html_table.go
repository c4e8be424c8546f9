package server

import (
	"net/url"
	"slices"
	"strings"

	"lode/internal/auth"
	"lode/internal/query"
	"lode/internal/sqlitedb"
	"lode/internal/web"
)

// This file adds what the HTML table page offers beyond the JSON: each
// column's menu and the "View and edit SQL" link. Both are plain links, so
// they need no JavaScript and every action is a URL that can be shared.

// menuURLs are the URLs a table page's column menus start from, computed
// once per page: each menu link adds one argument to one of them, which
// keeps the menus of a wide table cheap.
type menuURLs struct {
	req     query.RequestURL
	params  url.Values
	current string // this view, canonical (Datasette's path_with_replaced_args)
	unsort  string // this view without _sort, _sort_desc and _next
	showAll string // this view without _col and _nocol; "" if none is set
}

func newMenuURLs(req query.RequestURL, params url.Values) *menuURLs {
	m := &menuURLs{req: req, params: params,
		current: query.PathWithReplacedArgs(req, nil),
		unsort:  query.PathWithReplacedArgs(req, [][2]string{{"_sort", ""}, {"_sort_desc", ""}, {"_next", ""}}),
	}
	if params.Has("_col") || params.Has("_nocol") {
		m.showAll = query.PathWithReplacedArgs(req, [][2]string{{"_col", ""}, {"_nocol", ""}})
	}
	return m
}

// with appends name=value to u, encoded as PathWithReplacedArgs encodes.
func with(u, name, value string) string {
	sep := "?"
	if strings.Contains(u, "?") {
		sep = "&"
	}
	return u + sep + url.QueryEscape(name) + "=" + url.QueryEscape(value)
}

// columnMenu is the menu of column c on the table page, Datasette's column
// actions: sort ascending and descending (when the column can be sorted
// and is not already sorted that way), facet by this (unless it is the
// table's single primary key, or already a facet, or facets are off), hide
// this column (not a key column, which always stays, nor the last one),
// show all columns (when some are hidden) and show not-blank rows. Unlike
// Datasette, which offers not-blank rows only when the page shows a blank
// cell, Lode offers it for every column but the keys.
func (p *htmlPages) columnMenu(m *menuURLs, t *sqlitedb.Table, sel *query.Select, col web.Column, ncols int) []web.Link {
	c := col.Name
	key := slices.Contains(t.PrimaryKeys, c) || (len(t.PrimaryKeys) == 0 && !t.IsView && c == "rowid")
	menu := make([]web.Link, 0, 6)
	if col.SortURL != "" {
		if sel.SortColumn != c || sel.SortDesc {
			menu = append(menu, web.Link{Label: "Sort ascending", URL: with(m.unsort, "_sort", c)})
		}
		if sel.SortColumn != c || !sel.SortDesc {
			menu = append(menu, web.Link{Label: "Sort descending", URL: with(m.unsort, "_sort_desc", c)})
		}
	}
	singleKey := key && len(t.PrimaryKeys) <= 1
	if p.s.settings.AllowFacet && !singleKey && !slices.Contains(m.params["_facet"], c) {
		menu = append(menu, web.Link{Label: "Facet by this", URL: with(m.current, "_facet", c)})
	}
	if !key && ncols > 1 {
		menu = append(menu, web.Link{Label: "Hide this column", URL: with(m.current, "_nocol", c)})
	}
	if m.showAll != "" {
		menu = append(menu, web.Link{Label: "Show all columns", URL: m.showAll})
	}
	if notBlank := c + "__notblank"; !key && m.params.Get(notBlank) != "1" {
		u := with(m.current, notBlank, "1")
		if m.params.Has(notBlank) {
			u = query.PathWithReplacedArgs(m.req, [][2]string{{notBlank, "1"}})
		}
		menu = append(menu, web.Link{Label: "Show not-blank rows", URL: u})
	}
	return menu
}

// columnType is how a column's menu shows its declared type.
func columnType(t *sqlitedb.Table, name string) string {
	for _, c := range t.Columns {
		if c.Name == name {
			typ := strings.ToUpper(c.Type)
			if c.NotNull {
				typ = strings.TrimSpace(typ + " NOT NULL")
			}
			return typ
		}
	}
	return ""
}

// editSQLURL opens the SQL of a table page in the SQL editor with its
// parameters, like Datasette's "View and edit SQL" link: the query's ?
// parameters become :p0, :p1... with their values. It is "" when the
// actor may not run SQL in the database, or when a parameter is a blob,
// which a query string cannot carry.
func (p *htmlPages) editSQLURL(rt *route, db string, sel *query.Select) string {
	if !p.s.settings.AllowSQL || rt.access == nil || !rt.access.allowed(auth.ExecuteSQL, db, "") {
		return ""
	}
	sqlText, n := query.NamePositional(sel.SQL)
	if n != len(sel.Args) {
		return ""
	}
	u := dbPath(db) + "/-/query?sql=" + url.QueryEscape(sqlText) // sql first, as Datasette's link
	for i, a := range sel.Args {
		if _, blob := a.([]byte); blob {
			return ""
		}
		u += "&p" + itoa(i) + "=" + url.QueryEscape(query.PyStr(a))
	}
	return u
}
