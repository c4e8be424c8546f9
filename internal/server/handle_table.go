package server

import (
	"context"
	"errors"
	"net/http"
	"net/url"
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

// lookupTable resolves {db} and {table}. A name missing from the cached
// schema triggers one schema_version check, so tables created since the
// cache was filled are found.
func (s *Server) lookupTable(ctx context.Context, r *http.Request) (*sqlitedb.DB, *sqlitedb.Schema, *sqlitedb.Table, string, error) {
	return s.lookupTableIn(ctx, r.PathValue("db"), r.PathValue("table"), r.PathValue("pk") != "")
}

// lookupTableIn is lookupTable given the unescaped {db} and {table} path
// segments; isRow says the URL is /DB/TABLE/PK.
func (s *Server) lookupTableIn(ctx context.Context, dbPart, tablePart string, isRow bool) (*sqlitedb.DB, *sqlitedb.Schema, *sqlitedb.Table, string, error) {
	dbSeg, _ := splitFormat(dbPart)
	dbName, err := decodeName(dbSeg)
	if err != nil {
		return nil, nil, nil, "", err
	}
	db := s.dbs[dbName]
	if db == nil {
		return nil, nil, nil, "", notFound(msgDatabaseNotFound)
	}
	seg := tablePart
	if isRow {
		seg += "." // the table segment of a row URL has no format
	}
	base, format := splitFormat(seg)
	if isRow {
		base, format = seg[:len(seg)-1], formatHTML
	}
	name, err := decodeName(base)
	if err != nil {
		return nil, nil, nil, "", err
	}
	sch, err := db.Schema(ctx)
	if err != nil {
		return nil, nil, nil, "", err
	}
	find := func(sch *sqlitedb.Schema) (*sqlitedb.Table, string) {
		if t := sch.Table(name); t != nil {
			return t, format
		}
		// A table whose real name ends in .json/.csv, addressed as HTML.
		if full, err := query.TildeDecode(seg); err == nil && format != formatHTML {
			if t := sch.Table(full); t != nil {
				return t, formatHTML
			}
		}
		return nil, format
	}
	t, format := find(sch)
	if t == nil {
		if sch, err = db.RefreshSchema(ctx); err != nil {
			return nil, nil, nil, "", err
		}
		if t, format = find(sch); t == nil {
			return nil, nil, nil, "", notFound(msgTableNotFound)
		}
	}
	return db, sch, t, format, nil
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

func (s *Server) queryOptions() query.Options {
	return query.Options{
		DefaultPageSize:  s.settings.DefaultPageSize,
		MaxReturnedRows:  s.settings.MaxReturnedRows,
		DefaultFacetSize: s.settings.DefaultFacetSize,
		AllowFacet:       s.settings.AllowFacet,
		AllowWhere:       s.settings.AllowSQL,
	}
}

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

func (s *Server) handleTable(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	db, sch, t, format, err := s.lookupTable(ctx, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	params := r.URL.Query()
	qt := s.queryTable(sch, t)
	sel, err := query.Build(qt, params, s.queryOptions())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	opt := sqlitedb.QueryOptions{TimeLimit: ms(s.settings.SQLTimeLimitMS), Prepared: true}
	if format == formatCSV {
		s.serveTableCSV(w, r, db, qt, sel, params)
		return
	}
	res := &TableResult{Database: db.Name, Table: t, Select: sel, Columns: sel.Columns}
	start := time.Now()
	out, err := db.Query(ctx, sel.SQL, sel.Args, opt)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	res.QueryMS = float64(time.Since(start).Microseconds()) / 1000
	rows := out.Rows
	if sel.PageSize > 0 && len(rows) > sel.PageSize {
		rows = rows[:sel.PageSize]
		res.Next = sel.NextToken(rows[len(rows)-1])
	}
	res.Rows = rows
	req := requestURL(r)
	if res.Next != "" {
		replace := [][2]string{{"_next", res.Next}}
		if sel.SortColumn != "" {
			key := "_sort"
			if sel.SortDesc {
				key = "_sort_desc"
			}
			replace = append(replace, [2]string{key, sel.SortColumn})
		}
		res.NextURL = req.Base + pathWithReplacedArgs(req, replace)
	}
	if err := s.expandLabels(ctx, db, sch, sel, res.Rows); err != nil {
		s.writeError(w, r, err)
		return
	}
	extras := extrasOf(r)
	htmlPage := format == formatHTML && s.cfg.HTML != nil
	if extras["count"] || extras["suggested_facets"] || htmlPage {
		n, ok, err := db.Count(ctx, sel.CountSQL, sel.CountArgs, ms(s.settings.CountTimeLimitMS))
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if ok {
			res.Count = &n
		} else {
			res.CountTimedOut = true
		}
	}
	for _, f := range sel.Facets {
		fr, timedOut, err := s.runFacet(ctx, db, sch, f, req)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if timedOut {
			res.FacetsTimedOut = append(res.FacetsTimedOut, f.Column)
			continue
		}
		res.FacetResults = append(res.FacetResults, fr)
	}
	// As in Datasette, only the first page suggests facets.
	if (extras["suggested_facets"] || htmlPage) && s.settings.SuggestFacets && s.settings.AllowFacet && params.Get("_next") == "" {
		res.Suggested = s.suggestFacets(ctx, db, sel, res.Count, req)
	}
	var pkIdx []int
	for i, c := range sel.Columns {
		for _, pk := range keyColumns(t) {
			if c == pk {
				pkIdx = append(pkIdx, i)
			}
		}
	}
	s.renderRows(w, r, format, res, rowsPage{
		cols: res.Columns, rows: res.Rows, shape: params.Get("_shape"), isTable: true,
		next: res.Next, nextURL: res.NextURL, pkIdx: pkIdx,
		build: func(o *orderedJSON, extras map[string]bool) { s.tableExtras(o, extras, res, sch, params) },
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
func (s *Server) tableExtras(o *orderedJSON, extras map[string]bool, res *TableResult, sch *sqlitedb.Schema, params url.Values) {
	sel, t := res.Select, res.Table
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
	if extras["table_definition"] && !t.IsView {
		o.set("table_definition", t.Definition())
	}
	if extras["view_definition"] && t.IsView {
		o.set("view_definition", t.SQL+";")
	}
	if extras["is_view"] {
		o.set("is_view", t.IsView)
	}
	if extras["private"] {
		o.set("private", false)
	}
	if extras["database"] {
		o.set("database", res.Database)
	}
	if extras["table"] {
		o.set("table", t.Name)
	}
	if extras["database_color"] {
		o.set("database_color", dbColor(res.Database))
	}
	if extras["expandable_columns"] {
		exp := []any{}
		for _, fk := range t.Outgoing {
			other := sch.Table(fk.OtherTable)
			if other == nil || other.LabelColumn == "" {
				continue
			}
			exp = append(exp, []any{fkJSON{OtherTable: fk.OtherTable, Column: fk.Column, OtherColumn: fk.OtherColumn}, other.LabelColumn})
		}
		o.set("expandable_columns", exp)
	}
	if extras["metadata"] {
		o.set("metadata", map[string]any{})
	}
	if extras["request"] {
		o.set("request", map[string]any{"url": params.Encode()})
	}
}

func itoa(i int) string {
	const digits = "0123456789"
	if i < 10 {
		return digits[i : i+1]
	}
	return itoa(i/10) + digits[i%10:i%10+1]
}

// runFacet runs one facet under facet_time_limit_ms. timedOut reports
// that it was cut off (Datasette lists it in facets_timed_out).
func (s *Server) runFacet(ctx context.Context, db *sqlitedb.DB, sch *sqlitedb.Schema, f *query.Facet, req query.RequestURL) (query.FacetResult, bool, error) {
	out, err := db.Query(ctx, f.SQL, f.Args, sqlitedb.QueryOptions{TimeLimit: ms(s.settings.FacetTimeLimitMS), Prepared: true})
	if errors.Is(err, sqlitedb.ErrTimeLimit) {
		return query.FacetResult{}, true, nil
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
		if other := sch.Table(f.LabelKey.OtherTable); other != nil && other.LabelColumn != "" {
			labels, err = s.fetchLabels(ctx, db, *f.LabelKey, other.LabelColumn, values)
			if err != nil {
				return query.FacetResult{}, false, err
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

// expandLabels replaces foreign-key values with {"value", "label"} for the
// columns in sel.ExpandLabels (_labels=on, _label=COL).
func (s *Server) expandLabels(ctx context.Context, db *sqlitedb.DB, sch *sqlitedb.Schema, sel *query.Select, rows [][]any) error {
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
		other := sch.Table(fk.OtherTable)
		labelCol := ""
		if other != nil {
			labelCol = other.LabelColumn
		}
		var values []any
		for _, row := range rows {
			if row[idx] != nil {
				values = append(values, row[idx])
			}
		}
		var labels map[string]any
		if labelCol != "" && len(values) > 0 {
			var err error
			if labels, err = s.fetchLabels(ctx, db, fk, labelCol, values); err != nil {
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
func (s *Server) serveTableCSV(w http.ResponseWriter, r *http.Request, db *sqlitedb.DB, qt *query.Table, sel *query.Select, params url.Values) {
	ctx := r.Context()
	opt := sqlitedb.QueryOptions{TimeLimit: ms(s.settings.SQLTimeLimitMS), Prepared: true}
	stream := params.Get("_stream") == "on" && s.settings.AllowCSVStream
	filename := qt.Name + ".csv"
	if !stream {
		out, err := db.Query(ctx, sel.SQL, sel.Args, opt)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		rows := out.Rows
		if sel.PageSize >= 0 && len(rows) > sel.PageSize {
			rows = rows[:sel.PageSize]
		}
		writeCSVRows(w, r, filename, sel.Columns, rows)
		return
	}
	p := url.Values{}
	for k, v := range params {
		p[k] = v
	}
	p.Set("_size", "max")
	p.Del("_next")
	cur, err := query.Build(qt, p, s.queryOptions())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var cs *csvStream
	for {
		out, err := db.Query(ctx, cur.SQL, cur.Args, opt)
		if err != nil {
			if cs == nil {
				s.writeError(w, r, err)
			} else {
				cs.flush()
				s.csvStreamEnded(w, r, err)
			}
			return
		}
		rows := out.Rows
		more := cur.Paginated && cur.PageSize > 0 && len(rows) > cur.PageSize
		if more {
			rows = rows[:cur.PageSize]
		}
		if cs == nil {
			csvHeaders(w, r, filename)
			cs = s.newCSVStream(w)
			err = cs.header(cur.Columns)
		}
		for _, row := range rows {
			if err != nil {
				break
			}
			err = cs.row(row)
		}
		if err != nil || !more || ctx.Err() != nil {
			cs.flush()
			s.csvStreamEnded(w, r, err)
			return
		}
		p.Set("_next", cur.NextToken(rows[len(rows)-1]))
		if cur, err = query.Build(qt, p, s.queryOptions()); err != nil {
			cs.flush()
			s.csvStreamEnded(w, r, err)
			return
		}
	}
}

func (s *Server) handleRow(w http.ResponseWriter, r *http.Request) {
	s.serveRow(w, r, r.PathValue("db"), r.PathValue("table"), r.PathValue("pk"))
}

// serveRow answers /DB/TABLE/PK given its unescaped path segments.
func (s *Server) serveRow(w http.ResponseWriter, r *http.Request, dbPart, tablePart, pkPart string) {
	ctx := r.Context()
	db, sch, t, _, err := s.lookupTableIn(ctx, dbPart, tablePart, true)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	pkSeg, format := splitFormat(pkPart)
	if format == formatCSV {
		s.writeError(w, r, notFound("Not found: "+r.URL.Path))
		return
	}
	pkValues, err := query.ParseRowPath(pkSeg)
	if err != nil {
		s.writeError(w, r, badRequest("Invalid row key: "+err.Error()))
		return
	}
	rl := s.rowLookup(s.queryTable(sch, t))
	rq, err := rl.Query(pkValues)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if format == formatJSON {
		s.serveRowJSON(w, r, db, t, rl, rq)
		return
	}
	start := time.Now()
	out, err := db.Query(ctx, rq.SQL, rq.Args, sqlitedb.QueryOptions{TimeLimit: ms(s.settings.SQLTimeLimitMS), Prepared: true, MaxRows: 1})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if len(out.Rows) == 0 {
		s.writeError(w, r, notFound(msgRowNotFound))
		return
	}
	res := &RowResult{
		Database: db.Name, Table: t, Columns: out.Columns, Rows: out.Rows,
		PrimaryKeys: rq.PrimaryKeys, PrimaryKeyValues: rq.PrimaryKeyValues,
		QueryMS: float64(time.Since(start).Microseconds()) / 1000,
	}
	s.render(w, r, format, res, func() any {
		o := orderedJSON{}
		o.set("ok", true)
		o.set("database", res.Database)
		o.set("table", t.Name)
		o.set("rows", rawRows{cols: res.Columns, rows: res.Rows})
		o.set("primary_keys", res.PrimaryKeys)
		o.set("primary_key_values", res.PrimaryKeyValues)
		o.set("query_ms", res.QueryMS)
		o.set("truncated", false)
		return o
	})
}

// serveRowJSON answers /DB/TABLE/PK.json, encoding the row straight into
// the response buffer (the hot path of row lookups: no intermediate Result,
// no per-request key encoding).
func (s *Server) serveRowJSON(w http.ResponseWriter, r *http.Request, db *sqlitedb.DB, t *sqlitedb.Table, rl *rowLookup, rq *query.RowQuery) {
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
		s.writeError(w, r, err)
		return
	}
	if !found {
		s.writeError(w, r, notFound(msgRowNotFound))
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
func (s *Server) suggestFacets(ctx context.Context, db *sqlitedb.DB, sel *query.Select, count *int64, req query.RequestURL) []query.SuggestedFacet {
	key := suggestKey(db.Name, sel)
	now := time.Now()
	accepted, ok := s.suggested.get(key, now)
	if !ok {
		rowCount := int64(-1)
		if count != nil {
			rowCount = *count
		}
		accepted = []query.FacetSuggestion{}
		for _, fs := range sel.SuggestFacets() {
			out, err := db.Query(ctx, fs.SQL, fs.Args, sqlitedb.QueryOptions{TimeLimit: ms(s.settings.FacetSuggestTimeLimitMS), Prepared: true})
			if err != nil {
				continue // a suggestion that fails or times out is simply not made
			}
			if fs.Accept(out.Rows, rowCount) {
				accepted = append(accepted, fs)
			}
		}
		if ctx.Err() == nil {
			s.suggested.put(key, accepted, now)
		}
	}
	var out []query.SuggestedFacet
	for _, fs := range accepted {
		out = append(out, fs.Suggested(req))
	}
	return out
}
