package server

import (
	"cmp"
	"maps"
	"net/http"
	"slices"
	"sort"
	"strings"

	"lode/internal/auth"
	"lode/internal/config"
	"lode/internal/query"
	"lode/internal/sqlitedb"
)

// DatabaseResult is the data of a database page (/DB.json).
type DatabaseResult struct {
	Database string
	Path     string
	Size     int64
	Tables   []DatabaseTable
	Views    []DatabaseView
	Queries  []DatabaseQuery
	Hidden   int
	// TableColumns maps every table and view to its sorted column names
	// (views map to an empty list, as in Datasette).
	TableColumns    map[string][]string
	AllowExecuteSQL bool
}

// DatabaseView is one view on a database page.
type DatabaseView struct {
	Name    string
	Private bool
}

// DatabaseQuery is one canned query on a database page.
type DatabaseQuery struct {
	Name    string
	Query   *config.Query
	Private bool
}

// DatabaseTable is one table on a database page.
type DatabaseTable struct {
	Name        string              `json:"name"`
	Columns     []string            `json:"columns"`
	PrimaryKeys []string            `json:"primary_keys"`
	Count       *int64              `json:"count"`
	Hidden      bool                `json:"hidden"`
	FTSTable    *string             `json:"fts_table"`
	ForeignKeys map[string][]fkJSON `json:"foreign_keys"`
	Private     bool                `json:"private"`
}

type fkJSON struct {
	OtherTable  string `json:"other_table"`
	Column      string `json:"column"`
	OtherColumn string `json:"other_column"`
}

// serveDatabase serves /DB and /DB.json: the tables, views and canned
// queries the actor may see.
func (s *Server) serveDatabase(w http.ResponseWriter, r *http.Request, rt *route) {
	db := rt.db
	// /DB.json?sql= was the pre-1.0 query URL: redirect like Datasette.
	if rt.params.Has("sql") {
		target := "/" + tildeEncode(db.Name) + "/-/query"
		if rt.format != formatHTML {
			target += "." + rt.format
		}
		// A bare 302 like Datasette's (http.Redirect would add an HTML body).
		w.Header().Set("Location", target+"?"+r.URL.RawQuery)
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusFound)
		return
	}
	sch, err := s.schemaOf(r.Context(), db)
	if err != nil {
		s.fail(w, r, rt, err)
		return
	}
	acc := rt.access
	res := &DatabaseResult{
		Database: db.Name, Path: "/" + tildeEncode(db.Name), Size: dbFileSize(db),
		TableColumns:    map[string][]string{},
		AllowExecuteSQL: s.settings.AllowSQL && acc.allowed(auth.ExecuteSQL, db.Name, ""),
	}
	visible := s.visibleTables(acc, db.Name, sch)
	counts := s.tableCounts(r.Context(), db, visible)
	for _, t := range visible {
		cols := t.ColumnNames()
		if t.IsView {
			res.Views = append(res.Views, DatabaseView{Name: t.Name, Private: acc.private(db.Name, t.Name)})
			res.TableColumns[t.Name] = []string{}
			continue
		}
		sorted := append([]string(nil), cols...)
		sort.Strings(sorted)
		res.TableColumns[t.Name] = sorted
		if t.Hidden {
			res.Hidden++
		}
		res.Tables = append(res.Tables, DatabaseTable{
			Name: t.Name, Columns: cols, PrimaryKeys: nonNil(t.PrimaryKeys), Count: counts[t.Name],
			Hidden: t.Hidden, FTSTable: strPtr(t.FTSTable),
			ForeignKeys: map[string][]fkJSON{"incoming": s.visibleFKs(acc, db.Name, t.Incoming), "outgoing": s.visibleFKs(acc, db.Name, t.Outgoing)},
			Private:     acc.private(db.Name, t.Name),
		})
	}
	if d := s.cfg.Lode.Database(db.Name); d != nil {
		for _, name := range slices.Sorted(maps.Keys(d.Queries)) {
			if acc.canViewQuery(db.Name, name) {
				res.Queries = append(res.Queries, DatabaseQuery{Name: name, Query: d.Queries[name], Private: acc.privateQuery(db.Name, name)})
			}
		}
	}
	s.render(w, r, rt, res, func() any {
		views := []map[string]any{}
		for _, v := range res.Views {
			views = append(views, map[string]any{"name": v.Name, "private": v.Private})
		}
		o := orderedJSON{}
		o.set("ok", true)
		o.set("database", res.Database)
		o.set("private", acc.privateDatabase(db.Name))
		o.set("path", res.Path)
		o.set("size", res.Size)
		o.set("tables", nonNilSlice(res.Tables))
		o.set("hidden_count", res.Hidden)
		o.set("views", views)
		// Datasette lists five canned queries, by title (else name),
		// and counts them all.
		qs := slices.Clone(res.Queries)
		slices.SortStableFunc(qs, func(a, b DatabaseQuery) int {
			return strings.Compare(strings.ToLower(cmp.Or(a.Query.Title, a.Name)), strings.ToLower(cmp.Or(b.Query.Title, b.Name)))
		})
		list := []any{}
		for _, q := range qs[:min(len(qs), 5)] {
			list = append(list, storedQueryJSON(db.Name, q, true))
		}
		o.set("queries", list)
		o.set("queries_more", len(qs) > 5)
		o.set("queries_count", len(qs))
		o.set("allow_execute_sql", res.AllowExecuteSQL)
		// The columns are for the SQL editor: Datasette sends them only
		// to an actor who may execute SQL.
		if res.AllowExecuteSQL {
			o.set("table_columns", res.TableColumns)
		} else {
			o.set("table_columns", map[string][]string{})
		}
		o.set("metadata", map[string]any{})
		return o
	})
}

// storedQueryJSON describes a canned query as Datasette's database page
// does (its stored_query_to_dict): every field, null when not set; listed
// adds source and private, which the query's own metadata block leaves
// out.
func storedQueryJSON(db string, dq DatabaseQuery, listed bool) orderedJSON {
	q := dq.Query
	orNull := func(s string) any {
		if s == "" {
			return nil
		}
		return s
	}
	extra := func(k string) any {
		if v, ok := q.Extra[k]; ok {
			return v
		}
		return nil
	}
	params := q.Params
	if params == nil {
		params = []string{}
	}
	o := orderedJSON{}
	o.set("database", db)
	o.set("name", dq.Name)
	o.set("sql", q.SQL)
	o.set("title", orNull(q.Title))
	o.set("description", orNull(q.Description))
	o.set("description_html", extra("description_html"))
	o.set("hide_sql", truthy(extra("hide_sql")))
	o.set("fragment", extra("fragment"))
	o.set("params", params)
	o.set("parameters", params)
	o.set("is_write", q.Write)
	o.set("is_private", false) // a stored query's owner flag; config queries have none
	o.set("is_trusted", true)
	if listed {
		o.set("source", "config")
	}
	o.set("owner_id", nil)
	o.set("on_success_message", orNull(q.OnSuccessMessage))
	o.set("on_success_message_sql", extra("on_success_message_sql"))
	o.set("on_success_redirect", orNull(q.OnSuccessRedirect))
	o.set("on_error_message", orNull(q.OnErrorMessage))
	o.set("on_error_redirect", orNull(q.OnErrorRedirect))
	if listed {
		o.set("private", dq.Private)
	}
	return o
}

// visibleTables are the tables and views of sch that the actor may see,
// in schema order.
func (s *Server) visibleTables(acc *access, db string, sch *sqlitedb.Schema) []*sqlitedb.Table {
	out := make([]*sqlitedb.Table, 0, len(sch.Tables))
	for _, t := range sch.Tables {
		if acc.canViewTable(db, t.Name) {
			out = append(out, t)
		}
	}
	return out
}

// visibleFKs lists foreign keys whose other table the actor may see.
func (s *Server) visibleFKs(acc *access, db string, fks []sqlitedb.ForeignKey) []fkJSON {
	out := make([]fkJSON, 0, len(fks))
	for _, fk := range fks {
		if acc.canViewTable(db, fk.OtherTable) {
			out = append(out, fkJSON{OtherTable: fk.OtherTable, Column: fk.Column, OtherColumn: fk.OtherColumn})
		}
	}
	// Datasette sorts the listing's keys (the table page keeps the
	// schema's order).
	slices.SortStableFunc(out, func(a, b fkJSON) int {
		return cmp.Or(strings.Compare(a.OtherTable, b.OtherTable), strings.Compare(a.Column, b.Column), strings.Compare(a.OtherColumn, b.OtherColumn))
	})
	return out
}

// requestURL is the absolute request URL that toggle and next URLs are
// built from.
func requestURL(r *http.Request) query.RequestURL {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return query.RequestURL{Base: scheme + "://" + r.Host, Path: r.URL.EscapedPath(), RawQuery: r.URL.RawQuery}
}
