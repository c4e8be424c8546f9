package server

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"

	"lode/internal/query"
	"lode/internal/sqlitedb"
	"lode/internal/web"
)

// htmlPages renders Lode's HTML pages (package web) from the result structs
// the read handlers build, so HTML and JSON show the same data. It only adds
// what a person browsing needs and the JSON API leaves to _extra: labels of
// foreign-key values, counts of incoming links on a row page, the canned
// queries of a database.
type htmlPages struct {
	s   *Server
	tpl *web.Templates
}

// errorPage shows an error: inline in the SQL editor for /DB/-/query,
// else as an error page.
func (p *htmlPages) errorPage(w http.ResponseWriter, r *http.Request, rt *route, status int, msg, title string) {
	if rt.queryEditor() && rt.db != nil && rt.access != nil {
		p.write(w, r, status, func(b *bytes.Buffer) error {
			pg := p.queryPage(rt.db.Name, rt.params.Get("sql"), rt.params)
			pg.Ran, pg.Error = true, msg
			return p.tpl.Query(b, pg)
		})
		return
	}
	heading := title
	if heading == "" {
		heading = fmt.Sprintf("Error %d", status)
	}
	p.write(w, r, status, func(b *bytes.Buffer) error {
		return p.tpl.Error(b, &web.ErrorPage{
			Chrome:  web.Chrome{Title: fmt.Sprintf("Error %d: %s", status, msg), Heading: heading},
			Status:  status,
			Message: msg,
		})
	})
}

// write renders a page into a buffer first, so a template error becomes a
// clean 500 instead of half a page.
func (p *htmlPages) write(w http.ResponseWriter, r *http.Request, status int, render func(*bytes.Buffer) error) {
	buf := getBuf()
	defer putBuf(buf)
	if err := render(buf); err != nil {
		p.s.log.Error("render html", "path", r.URL.Path, "error", err.Error())
		http.Error(w, "Internal server error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Del("Content-Length")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// render renders one of the handlers' result structs as the route's page.
func (p *htmlPages) render(w http.ResponseWriter, r *http.Request, rt *route, page any) error {
	var render func(*bytes.Buffer) error
	switch v := page.(type) {
	case *IndexResult:
		render = func(b *bytes.Buffer) error { return p.tpl.Index(b, p.indexPage(v)) }
	case *DatabaseResult:
		render = func(b *bytes.Buffer) error { return p.tpl.Database(b, p.databasePage(v)) }
	case *TableResult:
		pg, err := p.tablePage(r, rt, v)
		if err != nil {
			return err
		}
		render = func(b *bytes.Buffer) error { return p.tpl.Table(b, pg) }
	case *RowResult:
		pg, err := p.rowPage(r.Context(), rt, v)
		if err != nil {
			return err
		}
		render = func(b *bytes.Buffer) error { return p.tpl.Row(b, pg) }
	case *QueryResult:
		if rt.canned != nil {
			pg := p.cannedPage(rt)
			pg.Ran, pg.Columns, pg.Truncated = true, v.Columns, v.Truncated
			pg.Rows = htmlRows(v.Rows)
			render = func(b *bytes.Buffer) error { return p.tpl.Query(b, pg) }
			break
		}
		pg := p.queryPage(v.Database, v.SQL, rt.params)
		pg.Ran, pg.Columns, pg.Truncated = true, v.Columns, v.Truncated
		pg.Rows = htmlRows(v.Rows)
		render = func(b *bytes.Buffer) error { return p.tpl.Query(b, pg) }
	default:
		writeJSONStatus(w, http.StatusOK, page)
		return nil
	}
	p.write(w, r, http.StatusOK, render)
	return nil
}

// serveEditor is the SQL editor without a query: an empty form.
func (p *htmlPages) serveEditor(w http.ResponseWriter, r *http.Request, rt *route) {
	p.write(w, r, http.StatusOK, func(b *bytes.Buffer) error {
		return p.tpl.Query(b, p.queryPage(rt.db.Name, "", rt.params))
	})
}

// withQuery appends a raw query string to path when there is one.
func withQuery(path, rawQuery string) string {
	if rawQuery == "" {
		return path
	}
	return path + "?" + rawQuery
}

func (p *htmlPages) indexPage(v *IndexResult) *web.IndexPage {
	pg := &web.IndexPage{Chrome: web.Chrome{Title: "Lode", Heading: "Databases", JSONURL: "/.json"}}
	for _, d := range v.Databases {
		id := web.IndexDatabase{Name: d.Name, URL: d.Path, Tables: d.TablesCount, Views: d.ViewsCount}
		if db := p.s.dbs[d.Name]; db != nil {
			id.Size = dbFileSize(db)
		}
		for _, t := range d.TablesAndViewsTruncated {
			id.TopTables = append(id.TopTables, web.Link{Label: t.Name, URL: tablePath(d.Name, t.Name)})
		}
		if d.TablesAndViewsMore {
			id.MoreTables = max(0, d.TablesCount+d.ViewsCount-len(d.TablesAndViewsTruncated))
		}
		pg.Databases = append(pg.Databases, id)
	}
	return pg
}

func (p *htmlPages) databasePage(v *DatabaseResult) *web.DatabasePage {
	pg := &web.DatabasePage{
		Chrome: web.Chrome{Title: v.Database, Heading: v.Database, JSONURL: v.Path + ".json"},
		Name:   v.Database, Size: v.Size,
	}
	if v.AllowExecuteSQL {
		pg.QueryURL = v.Path + "/-/query"
	}
	for _, t := range v.Tables {
		dt := web.DatabaseTable{Name: t.Name, URL: tablePath(v.Database, t.Name), Columns: t.Columns, FTS: t.FTSTable != nil}
		if t.Count != nil {
			dt.Count, dt.CountKnown = *t.Count, true
		}
		if t.Hidden {
			pg.HiddenTables = append(pg.HiddenTables, dt)
		} else {
			pg.Tables = append(pg.Tables, dt)
		}
	}
	for _, view := range v.Views {
		pg.Views = append(pg.Views, web.Link{Label: view.Name, URL: tablePath(v.Database, view.Name)})
	}
	for _, cq := range v.Queries {
		q := cq.Query
		pg.Queries = append(pg.Queries, web.CannedLink{Name: cq.Name, Title: q.Title, URL: tablePath(v.Database, cq.Name),
			Description: q.Description, Write: q.Write})
	}
	return pg
}

// htmlText is how a value reads on a page: NULL is handled by the caller,
// blobs are described by their size, long text is cut like Datasette's
// truncate_cells_html.
func htmlText(v any, truncate int) string {
	switch x := v.(type) {
	case []byte:
		return fmt.Sprintf("<Binary: %d bytes>", len(x))
	case string:
		if truncate > 0 && len(x) > truncate {
			cut := truncate
			for cut > 0 && !utf8.RuneStart(x[cut]) {
				cut--
			}
			return x[:cut] + "…"
		}
		return x
	default:
		return query.PyStr(x)
	}
}

func htmlCell(v any, truncate int) web.Cell {
	if l, ok := v.(query.Label); ok {
		c := htmlCell(l.Value, truncate)
		if l.Label != nil {
			c.Label = htmlText(l.Label, truncate)
		}
		return c
	}
	switch v.(type) {
	case nil:
		return web.Cell{Null: true}
	case int64, float64:
		return web.Cell{Value: query.PyStr(v), Numeric: true}
	}
	return web.Cell{Value: htmlText(v, truncate)}
}

func htmlRows(rows [][]any) [][]web.Cell {
	out := make([][]web.Cell, len(rows))
	for i, row := range rows {
		out[i] = make([]web.Cell, len(row))
		for j, v := range row {
			out[i][j] = htmlCell(v, 0)
		}
	}
	return out
}

// fkLinks prepares the foreign-key columns of rows for display: for each
// outgoing key among columns it returns the other table and the labels of
// the values present (nil labels when the other table has no label column).
type fkColumn struct {
	fk     sqlitedb.ForeignKey
	labels map[string]any
}

func (p *htmlPages) fkColumns(ctx context.Context, rt *route, columns []string, rows [][]any) (map[int]fkColumn, error) {
	out := map[int]fkColumn{}
	for _, fk := range rt.table.Outgoing {
		idx := slices.Index(columns, fk.Column)
		if idx < 0 || !rt.access.canViewTable(rt.db.Name, fk.OtherTable) {
			continue // no link, and no label, into a table the actor may not see
		}
		fc := fkColumn{fk: fk}
		labelCol := p.s.labelColumn(rt, fk.OtherTable)
		var values []any
		for _, row := range rows {
			if v := row[idx]; v != nil {
				if _, labelled := v.(query.Label); !labelled {
					values = append(values, v)
				}
			}
		}
		if labelCol != "" && len(values) > 0 {
			qfk := query.ForeignKey{Column: fk.Column, OtherTable: fk.OtherTable, OtherColumn: fk.OtherColumn}
			labels, err := p.s.fetchLabels(ctx, rt.db, qfk, labelCol, values)
			if err != nil {
				return nil, err
			}
			fc.labels = labels
		}
		out[idx] = fc
	}
	return out, nil
}

// cell turns value v of column i into a cell, linking a foreign-key value
// to the row it points at, labelled when the other table has a label
// column.
func (p *htmlPages) cell(db string, i int, v any, fks map[int]fkColumn) web.Cell {
	c := htmlCell(v, p.s.settings.TruncateCells)
	if len(fks) == 0 || c.Null {
		return c // most tables: no map lookup for each of ~1,000 cells
	}
	if fc, ok := fks[i]; ok {
		raw := unwrapLabel(v)
		c.URL = tablePath(db, fc.fk.OtherTable) + "/" + query.RowPath([]any{raw})
		if l, ok := fc.labels[query.PyStr(raw)]; ok && l != nil && c.Label == "" {
			c.Label = htmlText(l, p.s.settings.TruncateCells)
		}
	}
	return c
}

// rowLink returns the URL of the row page of the row with key values keys
// (see query.RowPath) under the table at path, and its label: the key
// values joined by commas.
func rowLink(path string, keys []any) (url, label string) {
	switch len(keys) {
	case 0:
		return "", ""
	case 1: // rowid or a one-column primary key: RowPath without the join
		label = query.PyStr(unwrapLabel(keys[0]))
		return path + "/" + query.TildeEncode(label), label
	}
	labels := make([]string, len(keys))
	for i, k := range keys {
		labels[i] = query.PyStr(unwrapLabel(k))
	}
	return path + "/" + query.RowPath(keys), strings.Join(labels, ",")
}

func (p *htmlPages) tablePage(r *http.Request, rt *route, v *TableResult) (*web.TablePage, error) {
	ctx := r.Context()
	t, sel := v.Table, v.Select
	params := rt.params
	path := tablePath(v.Database, t.Name)
	req := requestURL(r)
	csvQuery := maps.Clone(params)
	csvQuery.Del("_next")
	pg := &web.TablePage{
		Chrome: web.Chrome{
			Title: t.Name + ": " + v.Database, Heading: t.Name,
			Crumbs:  []web.Link{{Label: v.Database, URL: dbPath(v.Database)}, {Label: t.Name, URL: path}},
			JSONURL: withQuery(path+".json", r.URL.RawQuery),
			CSVURL:  withQuery(path+".csv", csvQuery.Encode()),
		},
		Database: v.Database, Table: t.Name, TableURL: path, RowLinks: !t.IsView,
		Description: sel.HumanDescription(),
		Operators:   htmlFilterOps, FilterColumns: sel.AllColumns,
		Searchable: t.FTSTable != "", Search: params.Get("_search"),
		NextURL: v.NextURL, SQL: sel.SQL, EditSQLURL: p.editSQLURL(rt, v.Database, sel),
	}
	if v.Count != nil {
		pg.Count, pg.CountKnown = *v.Count, true
	}
	menus := newMenuURLs(req, params) // html_table.go
	for _, c := range v.Columns {
		col := web.Column{Name: c}
		next := [][2]string{{"_sort", c}, {"_sort_desc", ""}, {"_next", ""}}
		if sel.SortColumn == c {
			col.Sort = "asc"
			if sel.SortDesc {
				col.Sort = "desc"
			} else {
				next = [][2]string{{"_sort", ""}, {"_sort_desc", c}, {"_next", ""}}
			}
		}
		col.SortURL = query.PathWithReplacedArgs(req, next)
		col.Menu = p.columnMenu(menus, t, sel, col, len(v.Columns))
		col.Type = columnType(t, c)
		pg.Columns = append(pg.Columns, col)
	}
	fks, err := p.fkColumns(ctx, rt, v.Columns, v.Rows)
	if err != nil {
		return nil, err
	}
	// The rows are written straight into the page as it renders, cell by
	// cell: no copy of a 100-row page's ~1,000 values is built in between.
	pg.WriteRows = func(rows *web.Rows) {
		for _, row := range v.Rows {
			rows.Add(rowLink(path, sel.KeyValues(row)))
			for i, val := range row {
				rows.Cell(p.cell(v.Database, i, val, fks))
			}
		}
	}
	for _, f := range sel.Filters {
		pg.Filters = append(pg.Filters, web.Filter{Column: f.Column, Op: htmlOpValue(f.Op), Value: f.Value})
	}
	for _, k := range slices.Sorted(maps.Keys(params)) {
		switch {
		case !strings.HasPrefix(k, "_") || strings.Contains(k, "__"):
			continue // a filter: the builder's rows carry it
		case k == "_next" || k == "_search" || strings.HasPrefix(k, "_filter_"):
			continue
		}
		for _, val := range params[k] {
			pg.Hidden = append(pg.Hidden, web.Param{Name: k, Value: val})
		}
	}
	for _, fr := range v.FacetResults {
		f := web.Facet{Name: fr.Name, Type: fr.Type, Truncated: fr.Truncated}
		if fr.Hideable {
			f.RemoveURL = fr.ToggleURL
		}
		for _, fv := range fr.Results {
			label := fv.Label
			if label == nil {
				label = fv.Value
			}
			text := "null"
			if label != nil {
				text = htmlText(label, 200)
			}
			f.Values = append(f.Values, web.FacetValue{Label: text, Count: fv.Count, URL: fv.ToggleURL, Selected: fv.Selected})
		}
		pg.Facets = append(pg.Facets, f)
	}
	for _, sf := range v.Suggested {
		label := sf.Name
		if sf.Type != "" && sf.Type != "column" {
			label += " (" + sf.Type + ")"
		}
		pg.SuggestedFacets = append(pg.SuggestedFacets, web.Link{Label: label, URL: sf.ToggleURL})
	}
	return pg, nil
}

func (p *htmlPages) rowPage(ctx context.Context, rt *route, v *RowResult) (*web.RowPage, error) {
	db, t := rt.db, v.Table
	path := tablePath(v.Database, t.Name)
	key := strings.Join(v.PrimaryKeyValues, ",")
	pg := &web.RowPage{
		Chrome: web.Chrome{
			Title: t.Name + ": " + key, Heading: t.Name + ": " + key,
			Crumbs: []web.Link{{Label: v.Database, URL: dbPath(v.Database)}, {Label: t.Name, URL: path}},
		},
		Database: v.Database, Table: t.Name,
	}
	pkValues := make([]any, len(v.PrimaryKeyValues))
	for i, k := range v.PrimaryKeyValues {
		pkValues[i] = k
	}
	pg.JSONURL = path + "/" + query.RowPath(pkValues) + ".json"
	if len(v.Rows) == 0 {
		return pg, nil
	}
	row := v.Rows[0]
	fks, err := p.fkColumns(ctx, rt, v.Columns, v.Rows)
	if err != nil {
		return nil, err
	}
	for i, val := range row {
		pg.Fields = append(pg.Fields, web.Field{Name: v.Columns[i], Cell: p.cell(v.Database, i, val, fks)})
	}
	// Incoming links: rows of other tables whose foreign key holds this
	// row's value, counted under the SQL time limit like Datasette's
	// foreign_key_tables.
	for _, fk := range t.Incoming {
		idx := slices.Index(v.Columns, fk.Column)
		if idx < 0 || row[idx] == nil || !rt.access.canViewTable(db.Name, fk.OtherTable) {
			continue
		}
		val := unwrapLabel(row[idx])
		q := "select count(*) from " + query.QuoteIdent(fk.OtherTable) + " where " + query.QuoteIdent(fk.OtherColumn) + " = ?"
		n, ok, err := db.Count(ctx, q, []any{val}, ms(p.s.settings.SQLTimeLimitMS))
		if err != nil {
			return nil, err
		}
		link := web.IncomingLink{Table: fk.OtherTable, Column: fk.OtherColumn,
			URL: tablePath(v.Database, fk.OtherTable) + "?" + url.Values{fk.OtherColumn + "__exact": {query.PyStr(val)}}.Encode()}
		if ok {
			link.Count = n
		} else {
			link.Count = -1
		}
		pg.Incoming = append(pg.Incoming, link)
	}
	return pg, nil
}

// queryPage is the SQL editor for sql with its :named parameters filled in
// from params; the caller adds results or an error.
func (p *htmlPages) queryPage(dbName, sqlText string, params url.Values) *web.QueryPage {
	path := dbPath(dbName) + "/-/query"
	pg := &web.QueryPage{
		Chrome: web.Chrome{
			Title: "Query " + dbName, Heading: dbName,
			Crumbs: []web.Link{{Label: dbName, URL: dbPath(dbName)}},
		},
		Database: dbName, Action: path, Method: "get", SQL: sqlText, Editable: true,
	}
	if strings.TrimSpace(sqlText) != "" {
		pg.JSONURL = path + ".json?" + params.Encode()
		pg.CSVURL = path + ".csv?" + params.Encode()
	}
	for _, name := range query.NamedParams(sqlText) {
		pg.Params = append(pg.Params, web.Param{Name: name, Value: params.Get(name)})
	}
	return pg
}
