package server

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"lode/internal/query"
	"lode/internal/sqlitedb"
)

// TableResult is the data of a table or view page (/DB/TABLE.json).
type TableResult struct {
	Database string
	Table    *sqlitedb.Table
	Select   *query.Select
	Columns  []string
	Rows     [][]any
	Next     string
	NextURL  string
	// Count is the number of matching rows when it was asked for and
	// finished under count_time_limit_ms; CountTimedOut says it did not.
	Count          *int64
	CountTimedOut  bool
	FacetResults   []query.FacetResult
	FacetsTimedOut []string
	Suggested      []query.SuggestedFacet
	QueryMS        float64
}

// RowResult is the data of a row page (/DB/TABLE/PK.json).
type RowResult struct {
	Database         string
	Table            *sqlitedb.Table
	Columns          []string
	Rows             [][]any
	PrimaryKeys      []string
	PrimaryKeyValues []string
	QueryMS          float64
}

// queryTable converts an introspected table for the query package, once
// per schema snapshot.
func (s *Server) queryTable(sch *sqlitedb.Schema, t *sqlitedb.Table) *query.Table {
	s.tablesMu.Lock()
	defer s.tablesMu.Unlock()
	if qt := s.tables[t]; qt != nil {
		return qt
	}
	if len(s.tables) > 10000 {
		s.tables = map[*sqlitedb.Table]*query.Table{}
		s.rowStmts = nil
	}
	qt := &query.Table{Name: t.Name, IsView: t.IsView, FTSTable: t.FTSTable, LabelColumn: t.LabelColumn}
	if !t.IsView {
		qt.PrimaryKeys = t.PrimaryKeys
	}
	if t.Virtual && len(qt.PrimaryKeys) == 0 {
		// Virtual tables have a rowid the query package can page on.
		qt.PrimaryKeys = nil
	}
	for _, c := range t.Columns {
		qt.Columns = append(qt.Columns, query.Column{Name: c.Name, Type: c.Type, NotNull: c.NotNull, PK: c.PK, Hidden: c.Hidden})
	}
	for _, fk := range t.Outgoing {
		qt.ForeignKeys = append(qt.ForeignKeys, query.ForeignKey{Column: fk.Column, OtherTable: fk.OtherTable, OtherColumn: fk.OtherColumn})
	}
	if t.FTSTable != "" {
		if ft := sch.Table(t.FTSTable); ft != nil {
			for _, c := range ft.Columns {
				if !c.Hidden {
					qt.FTSColumns = append(qt.FTSColumns, c.Name)
				}
			}
		}
	}
	s.tables[t] = qt
	return qt
}

// rowLookup is the cached row lookup of a table: its SQL, and its column
// names encoded as JSON keys.
type rowLookup struct {
	*query.RowStatement
	keys [][]byte
}

// rowLookup returns the cached row lookup of qt (see queryTable).
func (s *Server) rowLookup(qt *query.Table) *rowLookup {
	s.tablesMu.Lock()
	defer s.tablesMu.Unlock()
	if rl := s.rowStmts[qt]; rl != nil {
		return rl
	}
	if s.rowStmts == nil || len(s.rowStmts) > 10000 {
		s.rowStmts = map[*query.Table]*rowLookup{}
	}
	rs := query.NewRowStatement(qt)
	rl := &rowLookup{RowStatement: rs, keys: encodeKeys(rs.Columns())}
	s.rowStmts[qt] = rl
	return rl
}

func (s *Server) queryOptions(rt *route) query.Options {
	return query.Options{
		DefaultPageSize:  s.settings.DefaultPageSize,
		MaxReturnedRows:  s.settings.MaxReturnedRows,
		DefaultFacetSize: s.settings.DefaultFacetSize,
		AllowFacet:       s.settings.AllowFacet,
		AllowWhere:       s.settings.AllowSQL,
		ThroughKey: func(through string) (string, string, bool) {
			// A table the actor may not see cannot filter the page: its
			// rows would answer yes/no questions.
			t := rt.schema.Table(through)
			if t == nil || !rt.access.canViewTable(rt.db.Name, through) {
				return "", "", false
			}
			for _, fk := range t.Outgoing {
				if fk.OtherTable == rt.table.Name {
					return fk.Column, fk.OtherColumn, true
				}
			}
			return "", "", false
		},
		FTSTable: func(name string) bool {
			// An FTS table is its own FTSTable; one the actor may not
			// see cannot filter the page.
			t := rt.schema.Table(name)
			return t != nil && t.Virtual && t.FTSTable == t.Name && rt.access.canViewTable(rt.db.Name, name)
		},
	}
}

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

// buildSelect builds the page's query for the actor: a foreign key into
// a table the actor may not view is not expanded into labels (its values
// stay plain, as in Datasette), in JSON, HTML and CSV alike.
func (s *Server) buildSelect(rt *route, qt *query.Table, params url.Values) (*query.Select, error) {
	sel, err := query.Build(qt, params, s.queryOptions(rt))
	if err != nil {
		return nil, err
	}
	sel.ExpandLabels = slices.DeleteFunc(sel.ExpandLabels, func(fk query.ForeignKey) bool {
		return !rt.access.canViewTable(rt.db.Name, fk.OtherTable)
	})
	return sel, nil
}

// serveTable serves a table or view page: /DB/TABLE(.json|.csv).
func (s *Server) serveTable(w http.ResponseWriter, r *http.Request, rt *route) {
	ctx := r.Context()
	db, sch, t, format, params := rt.db, rt.schema, rt.table, rt.format, rt.params
	qt := s.queryTable(sch, t)
	sel, err := s.buildSelect(rt, qt, params)
	if err != nil {
		s.fail(w, r, rt, err)
		return
	}
	opt := sqlitedb.QueryOptions{TimeLimit: ms(s.settings.SQLTimeLimitMS), Prepared: true}
	if format == formatCSV {
		s.serveTableCSV(w, r, rt, qt, sel)
		return
	}
	res := &TableResult{Database: db.Name, Table: t, Select: sel, Columns: sel.Columns}
	start := time.Now()
	out, err := db.Query(ctx, sel.SQL, sel.Args, opt)
	if err != nil {
		s.fail(w, r, rt, err)
		return
	}
	res.QueryMS = float64(time.Since(start).Microseconds()) / 1000
	rows := out.Rows
	if sel.PageSize > 0 && len(rows) > sel.PageSize {
		rows = rows[:sel.PageSize]
		res.Next = sel.NextToken(rows[len(rows)-1])
	}
	sel.Hide(rows)
	res.Columns, res.Rows = sel.Columns, rows
	req := requestURL(r)
	if res.Next != "" {
		replace := [][2]string{{"_next", res.Next}}
		if sel.SortColumn != "" && !t.IsView { // a view's token is an offset alone
			key := "_sort"
			if sel.SortDesc {
				key = "_sort_desc"
			}
			replace = append(replace, [2]string{key, sel.SortColumn})
		}
		res.NextURL = req.Base + query.PathWithReplacedArgs(req, replace)
	}
	if err := s.expandLabels(ctx, rt, sel, res.Rows); err != nil {
		s.fail(w, r, rt, err)
		return
	}
	extras := extrasOf(params)
	htmlPage := format == formatHTML
	// As Datasette: _nocount, _nofacet and _nosuggest skip that work, and
	// so do the shapes that cannot show it.
	shape := params.Get("_shape")
	noCount := params.Get("_nocount") != "" || shape == "array" || shape == "object"
	noFacet := params.Get("_nofacet") != "" || shape == "array" || shape == "object"
	if !noCount && (extras["count"] || extras["suggested_facets"] || htmlPage) {
		n, ok, err := db.Count(ctx, sel.CountSQL, sel.CountArgs, ms(s.settings.CountTimeLimitMS))
		if err != nil {
			s.fail(w, r, rt, err)
			return
		}
		if ok {
			res.Count = &n
		} else {
			res.CountTimedOut = true
		}
	}
	// One budget for every facet and suggestion of this request
	// (facet_total_time_limit_ms): 120 facets at facet_time_limit_ms each
	// would otherwise hold a read connection for 24 s.
	var budget facetBudget
	if s.settings.FacetTotalTimeLimitMS > 0 {
		budget.end = time.Now().Add(ms(s.settings.FacetTotalTimeLimitMS))
	}
	for _, f := range sel.Facets {
		if noFacet {
			break
		}
		fr, timedOut, err := s.runFacet(ctx, rt, f, req, budget.limit(ms(s.settings.FacetTimeLimitMS)))
		if err != nil {
			s.fail(w, r, rt, err)
			return
		}
		if timedOut {
			res.FacetsTimedOut = append(res.FacetsTimedOut, f.Column)
			continue
		}
		res.FacetResults = append(res.FacetResults, fr)
	}
	// As in Datasette, only the first page suggests facets.
	if (extras["suggested_facets"] || htmlPage) && s.settings.SuggestFacets && s.settings.AllowFacet && params.Get("_next") == "" &&
		!noFacet && params.Get("_nosuggest") == "" {
		res.Suggested = s.suggestFacets(ctx, db, sel, res.Count, req, budget)
	}
	var pkIdx []int // _shape=object keys: the declared primary keys (not rowid, as Datasette)
	for _, pk := range t.PrimaryKeys {
		if i := slices.Index(sel.Columns, pk); i >= 0 && !t.IsView {
			pkIdx = append(pkIdx, i)
		}
	}
	s.renderRows(w, r, rt, res, rowsPage{
		cols: res.Columns, rows: res.Rows, shape: params.Get("_shape"), isTable: true,
		next: res.Next, nextURL: res.NextURL, pkIdx: pkIdx, jsonCols: extras["columns"],
		build: func(o *orderedJSON, extras map[string]bool) { s.tableExtras(o, extras, r, res, rt) },
	})
}

// keyColumns are the columns that identify a row: the primary key, or
// rowid for rowid tables; none for views.
func keyColumns(t *sqlitedb.Table) []string {
	if t.IsView {
		return nil
	}
	if len(t.PrimaryKeys) > 0 {
		return t.PrimaryKeys
	}
	return []string{"rowid"}
}

// tableExtras adds facet_results (whenever facets were requested, as
// Datasette does) and the keys asked for with _extra=.
func (s *Server) tableExtras(o *orderedJSON, extras map[string]bool, r *http.Request, res *TableResult, rt *route) {
	sel, t, sch, params := res.Select, res.Table, rt.schema, rt.params
	if len(sel.Facets) > 0 || extras["facet_results"] {
		results := orderedJSON{}
		for _, fr := range res.FacetResults {
			results.set(fr.Key, fr) // name, or name_2 when facets of two types share a column
		}
		o.set("facet_results", map[string]any{"results": results, "timed_out": nonNil(res.FacetsTimedOut)})
	}
	if extras["count"] {
		if res.Count != nil {
			o.set("count", *res.Count)
		} else {
			o.set("count", nil)
			// Lode's flag: the count did not finish under count_time_limit_ms.
			o.set("count_timed_out", true)
		}
	}
	if extras["count_sql"] {
		o.set("count_sql", sel.CountSQL)
	}
	if extras["columns"] {
		o.set("columns", sel.Columns)
	}
	if extras["all_columns"] {
		o.set("all_columns", sel.AllColumns)
	}
	if extras["next_url"] {
		if res.NextURL == "" {
			o.set("next_url", nil)
		} else {
			o.set("next_url", res.NextURL)
		}
	}
	if extras["suggested_facets"] {
		o.set("suggested_facets", nonNilSlice(res.Suggested))
	}
	if extras["facets_timed_out"] {
		o.set("facets_timed_out", nonNil(res.FacetsTimedOut))
	}
	if extras["sorted_facet_results"] {
		sorted := append([]query.FacetResult(nil), res.FacetResults...)
		sort.SliceStable(sorted, func(i, j int) bool { // by number of values, then name, both descending
			a, b := sorted[i], sorted[j]
			if len(a.Results) != len(b.Results) {
				return len(a.Results) > len(b.Results)
			}
			return a.Name > b.Name
		})
		o.set("sorted_facet_results", nonNilSlice(sorted))
	}
	if extras["human_description_en"] {
		o.set("human_description_en", sel.HumanDescription())
	}
	if extras["query"] {
		p := map[string]any{}
		for i, a := range sel.Args {
			p["p"+itoa(i)] = a
		}
		o.set("query", map[string]any{"sql": sel.SQL, "params": p})
	}
	if extras["query_ms"] {
		o.set("query_ms", res.QueryMS)
	}
	if extras["primary_keys"] {
		o.set("primary_keys", nonNil(t.PrimaryKeys))
	}
	if extras["display_columns"] {
		o.set("display_columns", displayColumns(t, sel.Columns))
	}
	if extras["column_types"] {
		o.set("column_types", map[string]any{}) // Lode assigns no column types
	}
	if extras["set_column_type_ui"] {
		o.set("set_column_type_ui", nil)
	}
	if extras["metadata"] {
		o.set("metadata", map[string]any{"columns": map[string]any{}})
	}
	if extras["debug"] {
		o.set("debug", map[string]any{"url_vars": urlVars(rt), "resolved": "table " + rt.db.Name + "/" + t.Name,
			"nofacet": nilIfEmpty(params.Get("_nofacet")), "nosuggest": nilIfEmpty(params.Get("_nosuggest"))})
	}
	if extras["table_definition"] {
		if t.IsView {
			o.set("table_definition", nil)
		} else {
			o.set("table_definition", t.Definition())
		}
	}
	if extras["view_definition"] {
		if t.IsView {
			o.set("view_definition", t.SQL+";")
		} else {
			o.set("view_definition", nil)
		}
	}
	if extras["is_view"] {
		o.set("is_view", t.IsView)
	}
	if extras["private"] {
		o.set("private", rt.access.private(rt.db.Name, t.Name))
	}
	if extras["table"] {
		o.set("table", t.Name)
	}
	var exp []any
	if extras["expandable_columns"] || extras["renderers"] {
		exp = []any{}
		for _, fk := range t.Outgoing {
			if !rt.access.canViewTable(rt.db.Name, fk.OtherTable) {
				continue
			}
			var label any
			if other := sch.Table(fk.OtherTable); other != nil && other.LabelColumn != "" {
				label = other.LabelColumn
			}
			exp = append(exp, []any{fkJSON{OtherTable: fk.OtherTable, Column: fk.Column, OtherColumn: fk.OtherColumn}, label})
		}
	}
	if extras["expandable_columns"] {
		o.set("expandable_columns", exp)
	}
	if extras["renderers"] {
		// The same page as JSON (Datasette's path_with_format: the path
		// already has an extension, so the format goes in _format).
		extra := "_format=json"
		if len(exp) > 0 {
			extra += "&_labels=on"
		}
		q := r.URL.RawQuery
		if q != "" {
			q += "&"
		}
		o.set("renderers", map[string]any{"json": r.URL.EscapedPath() + "?" + q + extra})
	}
	if extras["custom_table_templates"] {
		d, tc := cssClass(rt.db.Name), cssClass(t.Name)
		o.set("custom_table_templates", []string{"_table-" + d + "-" + tc + ".html", "_table-table-" + d + "-" + tc + ".html", "_table.html"})
	}
	if extras["form_hidden_args"] {
		args := [][2]string{}
		for _, p := range query.ParsePairs(r.URL.RawQuery) {
			if strings.HasPrefix(p[0], "_") && !strings.Contains(p[0], "__") {
				switch p[0] {
				case "_sort", "_sort_desc", "_search", "_next":
					continue
				}
				args = append(args, p)
			}
		}
		o.set("form_hidden_args", args)
	}
	s.commonExtras(o, extras, r, rt, scopeTable, res.Rows)
}

// displayColumns is the "display_columns" block: the page's columns as
// Datasette's HTML table shows them. A table's rows lead with a link
// column: its one primary key, or "Link" for compound keys and rowid
// tables.
func displayColumns(t *sqlitedb.Table, cols []string) []map[string]any {
	pks := t.PrimaryKeys
	isPK := func(c string) bool {
		if len(pks) == 0 {
			return c == "rowid"
		}
		return slices.Contains(pks, c)
	}
	colInfo := func(name string) (string, int) {
		for _, c := range t.Columns {
			if c.Name == name {
				n := 0
				if c.NotNull {
					n = 1
				}
				return c.Type, n
			}
		}
		return "integer", 0 // rowid
	}
	var out []map[string]any
	for _, c := range cols {
		if !t.IsView && len(pks) == 1 && c == pks[0] {
			continue // it leads, as the link column
		}
		typ, nn := colInfo(c)
		out = append(out, map[string]any{"name": c, "sortable": true, "is_pk": isPK(c), "type": typ, "notnull": nn,
			"description": nil, "column_type": nil, "column_type_config": nil})
	}
	if t.IsView {
		return nonNilSlice(out)
	}
	var first map[string]any
	if len(pks) == 1 {
		typ, nn := colInfo(pks[0])
		first = map[string]any{"name": pks[0], "sortable": true, "is_pk": true, "type": typ, "notnull": nn}
	} else {
		first = map[string]any{"name": "Link", "sortable": false, "is_pk": false, "type": "", "notnull": 0, "is_special_link_column": true}
	}
	return append([]map[string]any{first}, out...)
}

// cssClass is Datasette's to_css_class: s itself when it is a plain CSS
// class name, else its valid characters and six hex digits of its MD5.
func cssClass(s string) string {
	if cssClassRE.MatchString(s) {
		return s
	}
	sum := md5.Sum([]byte(s))
	suffix := hex.EncodeToString(sum[:])[:6]
	s = strings.TrimLeft(strings.TrimLeft(s, "_"), "-")
	s = strings.Join(strings.Fields(s), "-")
	s = cssInvalidRE.ReplaceAllString(s, "")
	if s == "" {
		return suffix
	}
	return s + "-" + suffix
}

var (
	cssClassRE   = regexp.MustCompile(`^[a-zA-Z]+[_a-zA-Z0-9-]*$`)
	cssInvalidRE = regexp.MustCompile(`[^a-zA-Z0-9_\-]`)
)

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func itoa(i int) string {
	const digits = "0123456789"
	if i < 10 {
		return digits[i : i+1]
	}
	return itoa(i/10) + digits[i%10:i%10+1]
}

// facetBudget is the time left for a request's facets and suggestions;
// the zero value is no budget (facet_total_time_limit_ms 0).
type facetBudget struct{ end time.Time }

// limit returns the time limit for the next facet or suggestion: each
// one's own limit, or what is left of the budget if that is less; 0 when
// nothing is left (the facet is then reported as timed out unrun).
func (b facetBudget) limit(own time.Duration) time.Duration {
	if b.end.IsZero() {
		return own
	}
	left := time.Until(b.end)
	if left <= 0 {
		return 0
	}
	return min(own, left)
}

// runFacet runs one facet under limit (facet_time_limit_ms, or less when
// the request's facet budget runs out; 0 = no time left, not run).
// timedOut reports that it was cut off (Datasette lists it in
// facets_timed_out); so is a facet whose values alone pass
// max_response_mb (huge text values), rather than failing the page.
func (s *Server) runFacet(ctx context.Context, rt *route, f *query.Facet, req query.RequestURL, limit time.Duration) (query.FacetResult, bool, error) {
	if limit <= 0 {
		return query.FacetResult{}, true, nil
	}
	db := rt.db
	out, err := db.Query(ctx, f.SQL, f.Args, sqlitedb.QueryOptions{TimeLimit: limit, Prepared: true})
	if errors.Is(err, sqlitedb.ErrTimeLimit) || errors.Is(err, sqlitedb.ErrNoConnection) || errors.Is(err, sqlitedb.ErrResultTooLarge) {
		return query.FacetResult{}, true, nil // not within facet_time_limit_ms (or max_response_mb)
	}
	if err != nil {
		return query.FacetResult{}, false, err
	}
	rows := make([]query.FacetRow, 0, len(out.Rows))
	var values []any
	for _, row := range out.Rows {
		if len(row) < 2 {
			continue
		}
		n, _ := row[1].(int64)
		rows = append(rows, query.FacetRow{Value: row[0], Count: n})
		values = append(values, row[0])
	}
	var labels map[string]any
	if f.LabelKey != nil {
		if labelCol := s.labelColumn(rt, f.LabelKey.OtherTable); labelCol != "" {
			labels, err = s.fetchLabels(ctx, db, *f.LabelKey, labelCol, values)
			if err != nil {
				return query.FacetResult{}, false, err
			}
		} else if rt.access.canViewTable(rt.db.Name, f.LabelKey.OtherTable) {
			// Datasette labels the values of a key into a table without a
			// label column with their text.
			labels = make(map[string]any, len(values))
			for _, v := range values {
				labels[query.PyStr(v)] = query.PyStr(v)
			}
		}
	}
	return f.Result(rows, labels, req), false, nil
}

// fetchLabels maps PyStr(value) to the label column of the other table.
func (s *Server) fetchLabels(ctx context.Context, db *sqlitedb.DB, fk query.ForeignKey, labelColumn string, values []any) (map[string]any, error) {
	q, args, ok := query.LabelsSQL(fk, labelColumn, values)
	if !ok {
		return nil, nil
	}
	out, err := db.Query(ctx, q, args, sqlitedb.QueryOptions{TimeLimit: ms(s.settings.SQLTimeLimitMS)})
	if err != nil {
		return nil, err
	}
	labels := make(map[string]any, len(out.Rows))
	for _, row := range out.Rows {
		if len(row) >= 2 {
			labels[query.PyStr(row[0])] = row[1]
		}
	}
	return labels, nil
}

// labelColumn is the label column of table other for the labels of
// foreign keys pointing there (_labels, labelled facets, HTML links), or ""
// when it has none or the actor may not see it: its values would leak.
func (s *Server) labelColumn(rt *route, other string) string {
	t := rt.schema.Table(other)
	if t == nil || t.LabelColumn == "" || !rt.access.canViewTable(rt.db.Name, other) {
		return ""
	}
	return t.LabelColumn
}

// expandLabels replaces foreign-key values with {"value", "label"} for the
// columns in sel.ExpandLabels (_labels=on, _label=COL); the label is the
// value itself where labelColumn gives none.
func (s *Server) expandLabels(ctx context.Context, rt *route, sel *query.Select, rows [][]any) error {
	for _, fk := range sel.ExpandLabels {
		idx := -1
		for i, c := range sel.Columns {
			if c == fk.Column {
				idx = i
			}
		}
		if idx < 0 {
			continue
		}
		labelCol := s.labelColumn(rt, fk.OtherTable)
		var values []any
		for _, row := range rows {
			if row[idx] != nil {
				values = append(values, row[idx])
			}
		}
		var labels map[string]any
		if labelCol != "" && len(values) > 0 {
			var err error
			if labels, err = s.fetchLabels(ctx, rt.db, fk, labelCol, values); err != nil {
				return err
			}
		}
		for _, row := range rows {
			v := row[idx]
			if v == nil {
				continue
			}
			label, ok := labels[query.PyStr(v)]
			if !ok {
				label = query.PyStr(v)
			}
			row[idx] = query.Label{Value: v, Label: label}
		}
	}
	return nil
}

// serveTableCSV writes a table page as CSV; with _stream=on it walks every
// page with keyset tokens (never OFFSET) and streams all matching rows.
func (s *Server) serveTableCSV(w http.ResponseWriter, r *http.Request, rt *route, qt *query.Table, sel *query.Select) {
	ctx, db, params := r.Context(), rt.db, rt.params
	opt := sqlitedb.QueryOptions{TimeLimit: ms(s.settings.SQLTimeLimitMS), Prepared: true}
	stream := isTrue(params.Get("_stream")) && s.settings.AllowCSVStream
	filename := qt.Name + ".csv"
	co := csvOptions{header: params.Get("_header") != "off", labels: map[string]bool{}}
	for _, fk := range sel.ExpandLabels {
		co.labels[fk.Column] = true
	}
	// A blob cell is the URL of its .blob download, as in Datasette.
	base := requestURL(r).Base + tablePath(db.Name, qt.Name) + "/"
	keysOf := sel.KeyValues
	co.blobURL = func(cols []string, row []any, i int) string {
		return base + query.RowPath(keysOf(row)) + ".blob?_blob_column=" + url.QueryEscape(cols[i])
	}
	if !stream {
		out, err := db.Query(ctx, sel.SQL, sel.Args, opt)
		if err != nil {
			s.fail(w, r, rt, err)
			return
		}
		rows := out.Rows
		if sel.PageSize >= 0 && len(rows) > sel.PageSize {
			rows = rows[:sel.PageSize]
		}
		sel.Hide(rows)
		if err := s.expandLabels(ctx, rt, sel, rows); err != nil {
			s.fail(w, r, rt, err)
			return
		}
		s.writeCSVRows(w, rt, filename, sel.Columns, rows, co)
		return
	}
	p := url.Values{}
	for k, v := range params {
		p[k] = v
	}
	p.Set("_size", "max")
	p.Del("_next")
	cur, err := s.buildSelect(rt, qt, p)
	if err != nil {
		s.fail(w, r, rt, err)
		return
	}
	var cs *csvStream
	pageSize := cur.PageSize
	for {
		out, err := db.Query(ctx, cur.SQL, cur.Args, opt)
		if errors.Is(err, sqlitedb.ErrResultTooLarge) && pageSize > 1 {
			// A page of big rows is over max_response_mb: the stream
			// (bounded by max_csv_mb) goes on in smaller pages.
			pageSize = max(1, pageSize/2)
			p.Set("_size", strconv.Itoa(pageSize))
			if cur, err = s.buildSelect(rt, qt, p); err == nil {
				continue
			}
		}
		if err != nil {
			if cs == nil {
				s.fail(w, r, rt, err)
			} else {
				cs.flush()
				s.csvStreamEnded(w, r, err)
			}
			return
		}
		rows := out.Rows
		more := (cur.Paginated || qt.IsView) && cur.PageSize > 0 && len(rows) > cur.PageSize
		if more {
			rows = rows[:cur.PageSize]
		}
		next := ""
		if more {
			next = cur.NextToken(rows[len(rows)-1]) // before labels replace key values
		}
		cur.Hide(rows)
		keysOf = cur.KeyValues
		err = s.expandLabels(ctx, rt, cur, rows)
		if cs == nil {
			if err != nil {
				s.fail(w, r, rt, err)
				return
			}
			csvHeaders(w, rt, filename)
			cs = s.newCSVStream(w, co)
			err = cs.header(cur.Columns)
		}
		for _, row := range rows {
			if err != nil {
				break
			}
			err = cs.row(cur.Columns, row)
		}
		if err != nil || !more || ctx.Err() != nil {
			cs.flush()
			s.csvStreamEnded(w, r, err)
			return
		}
		p.Set("_next", next)
		if cur, err = s.buildSelect(rt, qt, p); err != nil {
			cs.flush()
			s.csvStreamEnded(w, r, err)
			return
		}
	}
}

// serveRow answers /DB/TABLE/PK(.json): one row, found by its key values.
func (s *Server) serveRow(w http.ResponseWriter, r *http.Request, rt *route) {
	ctx := r.Context()
	db, t := rt.db, rt.table
	rl := s.rowLookup(s.queryTable(rt.schema, t))
	rq, err := rl.Query(rt.pk)
	if err != nil {
		s.fail(w, r, rt, err)
		return
	}
	if rt.format == formatJSON && !rt.params.Has("_extra") && !rt.params.Has("_shape") {
		s.serveRowJSON(w, r, rt, rl, rq)
		return
	}
	start := time.Now()
	out, err := db.Query(ctx, rq.SQL, rq.Args, sqlitedb.QueryOptions{TimeLimit: ms(s.settings.SQLTimeLimitMS), Prepared: true, MaxRows: 1})
	if err != nil {
		s.fail(w, r, rt, err)
		return
	}
	if len(out.Rows) == 0 {
		s.fail(w, r, rt, notFound(msgRowNotFound))
		return
	}
	if rt.format == formatCSV {
		s.writeCSVRows(w, rt, t.Name+".csv", out.Columns, out.Rows, csvOptions{header: rt.params.Get("_header") != "off"})
		return
	}
	res := &RowResult{
		Database: db.Name, Table: t, Columns: out.Columns, Rows: out.Rows,
		PrimaryKeys: rq.PrimaryKeys, PrimaryKeyValues: rq.PrimaryKeyValues,
		QueryMS: float64(time.Since(start).Microseconds()) / 1000,
	}
	var pkIdx []int
	for _, pk := range t.PrimaryKeys {
		if i := slices.Index(res.Columns, pk); i >= 0 {
			pkIdx = append(pkIdx, i)
		}
	}
	s.renderRows(w, r, rt, res, rowsPage{cols: res.Columns, rows: res.Rows, shape: rt.params.Get("_shape"), pkIdx: pkIdx,
		build: func(o *orderedJSON, extras map[string]bool) {
			o.set("database", res.Database)
			o.set("table", t.Name)
			o.set("primary_keys", res.PrimaryKeys)
			o.set("primary_key_values", res.PrimaryKeyValues)
			o.set("query_ms", res.QueryMS)
			s.rowExtras(o, extras, r, rt, res)
		}})
}

// rowExtras adds the _extra= blocks of a row page.
func (s *Server) rowExtras(o *orderedJSON, extras map[string]bool, r *http.Request, rt *route, res *RowResult) {
	t := res.Table
	if extras["columns"] {
		o.set("columns", res.Columns)
	}
	if extras["query"] {
		sel, keys := "*", t.PrimaryKeys
		if len(keys) == 0 {
			sel, keys = "rowid, *", []string{"rowid"}
		}
		wheres := make([]string, len(keys))
		params := map[string]any{}
		for i, k := range keys {
			wheres[i] = `"` + k + `"=:p` + itoa(i)
			if i < len(res.PrimaryKeyValues) {
				params["p"+itoa(i)] = res.PrimaryKeyValues[i]
			}
		}
		o.set("query", map[string]any{"sql": "select " + sel + " from " + query.DatasetteIdent(t.Name) + " where " + strings.Join(wheres, " AND "), "params": params})
	}
	if extras["column_types"] {
		o.set("column_types", map[string]any{})
	}
	if extras["metadata"] {
		o.set("metadata", map[string]any{"columns": map[string]any{}})
	}
	if extras["table"] {
		o.set("table", t.Name)
	}
	if extras["private"] {
		o.set("private", rt.access.private(rt.db.Name, t.Name))
	}
	if extras["debug"] {
		o.set("debug", map[string]any{"url_vars": urlVars(rt), "resolved": map[string]any{"table": t.Name,
			"pks": res.PrimaryKeys, "pk_values": res.PrimaryKeyValues}})
	}
	if extras["foreign_key_tables"] {
		o.set("foreign_key_tables", s.foreignKeyTables(r.Context(), rt, res))
	}
	s.commonExtras(o, extras, r, rt, scopeRow, res.Rows)
}

// foreignKeyTables is a row's "foreign_key_tables" block: for each
// foreign key pointing at its table (from tables the actor may see), how
// many rows hold this row's key, and the link to them. A compound key has
// none, as in Datasette.
func (s *Server) foreignKeyTables(ctx context.Context, rt *route, res *RowResult) []map[string]any {
	out := []map[string]any{}
	if len(res.PrimaryKeyValues) != 1 {
		return out
	}
	val := res.PrimaryKeyValues[0]
	for _, fk := range rt.table.Incoming {
		if !rt.access.canViewTable(rt.db.Name, fk.OtherTable) {
			continue
		}
		q := "select count(*) from " + query.QuoteIdent(fk.OtherTable) + " where " + query.QuoteIdent(fk.OtherColumn) + " = ?"
		n, ok, err := rt.db.Count(ctx, q, []any{val}, ms(s.settings.SQLTimeLimitMS))
		var count any = n
		if err != nil || !ok {
			count = 0
		}
		key := fk.OtherColumn
		if strings.HasPrefix(key, "_") {
			key += "__exact"
		}
		out = append(out, map[string]any{"other_table": fk.OtherTable, "column": fk.Column, "other_column": fk.OtherColumn,
			"count": count, "link": tablePath(rt.db.Name, fk.OtherTable) + "?" + key + "=" + val})
	}
	return out
}

// serveRowJSON answers /DB/TABLE/PK.json, encoding the row straight into
// the response buffer (the hot path of row lookups: no intermediate Result,
// no per-request key encoding).
func (s *Server) serveRowJSON(w http.ResponseWriter, r *http.Request, rt *route, rl *rowLookup, rq *query.RowQuery) {
	db, t := rt.db, rt.table
	buf := getBuf()
	defer putBuf(buf)
	b := append(buf.Bytes()[:0], `{"ok": true, "database": `...)
	b = appendString(b, db.Name)
	b = append(b, `, "table": `...)
	b = appendString(b, t.Name)
	b = append(b, `, "rows": [`...)
	keys, found := rl.keys, false
	start := time.Now()
	// A key lookup in an ordinary table reads one B-tree path (rowid,
	// INTEGER PRIMARY KEY or the key's unique index): there is nothing for
	// the time limit or a client disconnect to interrupt, so it runs
	// without the watchdog (Bounded). A virtual table's module decides how
	// it finds a rowid, so it keeps the time limit.
	opt := sqlitedb.QueryOptions{Prepared: true, TimeLimit: ms(s.settings.SQLTimeLimitMS), Bounded: !t.Virtual}
	err := db.Each(r.Context(), rq.SQL, rq.Args, opt,
		func(cols []string) error {
			if len(cols) != len(keys) {
				keys = encodeKeys(cols)
			}
			return nil
		}, func(row []any) error {
			b = appendRowObject(b, keys, row)
			found = true
			return errRowFound // a key matches one row
		})
	if err == errRowFound {
		err = nil
	}
	queryMS := float64(time.Since(start).Microseconds()) / 1000
	if err != nil {
		s.fail(w, r, rt, err)
		return
	}
	if !found {
		s.fail(w, r, rt, notFound(msgRowNotFound))
		return
	}
	b = append(b, `], "primary_keys": `...)
	b = appendStrings(b, rq.PrimaryKeys)
	b = append(b, `, "primary_key_values": `...)
	b = appendStrings(b, rq.PrimaryKeyValues)
	b = append(b, `, "query_ms": `...)
	b = appendFloat(b, queryMS)
	b = append(b, ", \"truncated\": false}\n"...)
	w.Header()["Content-Type"] = jsonContentType
	w.Write(b)
}

var errRowFound = errors.New("row found")

// suggestFacets returns the facets worth suggesting for sel's filtered
// rows, running one query per candidate unless a recent answer for the
// same table and filters is cached (see suggestCache).
func (s *Server) suggestFacets(ctx context.Context, db *sqlitedb.DB, sel *query.Select, count *int64, req query.RequestURL, budget facetBudget) []query.SuggestedFacet {
	key := suggestKey(db.Name, sel)
	now := time.Now()
	accepted, ok := s.suggested.get(key, now)
	if !ok {
		rowCount := int64(-1)
		if count != nil {
			rowCount = *count
		}
		accepted = []query.FacetSuggestion{}
		complete := true
		for _, fs := range sel.SuggestFacets() {
			limit := budget.limit(ms(s.settings.FacetSuggestTimeLimitMS))
			if limit <= 0 {
				complete = false // the request's facet budget is spent
				break
			}
			out, err := db.Query(ctx, fs.SQL, fs.Args, sqlitedb.QueryOptions{TimeLimit: limit, Prepared: true})
			if err != nil {
				continue // a suggestion that fails or times out is simply not made
			}
			if fs.Accept(out.Rows, rowCount) {
				accepted = append(accepted, fs)
			}
		}
		// A list cut short by the budget is not the answer for these
		// filters: the next request tries again.
		if ctx.Err() == nil && complete {
			s.suggested.put(key, accepted, now)
		}
	}
	var out []query.SuggestedFacet
	for _, fs := range accepted {
		out = append(out, fs.Suggested(req))
	}
	return out
}
