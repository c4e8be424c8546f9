// Package query turns a table description plus Datasette table URL
// parameters (?state=CA&_sort=pk&_next=...) into parameterised SQLite SQL.
//
// It is pure: no I/O, no HTTP, no lode imports. Values from the URL are only
// ever bound as arguments; identifiers are double-quoted with embedded quotes
// doubled. The one deliberate exception is _where=, whose raw SQL fragments
// are pasted in as Datasette does; the server must run the result on a
// read-only connection with an authorizer (and may refuse _where with
// Options.AllowWhere=false).
//
// Pagination is keyset pagination (never OFFSET): the page query asks for
// PageSize+1 rows and, when it gets them, Select.NextToken turns the last
// shown row into a Datasette-format _next token ("sortvalue,pk1,pk2", each
// part tilde-encoded, "$null" for a NULL sort value). Page N costs the same
// as page 1 because the token becomes an indexable WHERE clause.
//
// All functions are safe for concurrent use; a *Select is read-only after
// Build returns.
package query

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Defaults used by Build when the matching Options field is zero. They are
// Datasette's defaults.
const (
	DefaultPageSize        = 100
	DefaultMaxReturnedRows = 1000
	DefaultFacetSize       = 30
	// SuggestConsider is how many rows suggested-facet queries look at
	// (Datasette's suggest_consider).
	SuggestConsider = 1000
)

// Column describes one column of a table as introspected from SQLite.
type Column struct {
	Name    string
	Type    string // declared type, e.g. "INTEGER", "text", "" (decides affinity)
	NotNull bool
	PK      int  // 1-based position in the primary key, 0 = not in the PK
	Hidden  bool // generated/hidden columns (PRAGMA table_xinfo hidden != 0)
}

// ForeignKey is an outgoing foreign key of a table: Column references
// OtherTable.OtherColumn.
type ForeignKey struct {
	Column      string `json:"column"`
	OtherTable  string `json:"other_table"`
	OtherColumn string `json:"other_column"`
}

// Table is what Build needs to know about a table or view. The zero value is
// not useful: Name and Columns are required.
type Table struct {
	Name    string
	Columns []Column
	// PrimaryKeys lists the primary key columns in key order. Empty means a
	// rowid table: Build then selects rowid first and paginates by rowid.
	PrimaryKeys []string
	// IsView marks a view: no rowid, no keyset column, so no next token.
	IsView bool
	// FTSTable is the FTS virtual table that indexes this table ("" if
	// none); FTSColumns are its columns, for _search_COL=.
	FTSTable   string
	FTSColumns []string
	// ForeignKeys are the outgoing foreign keys, for _labels / _label.
	ForeignKeys []ForeignKey
	// LabelColumn is the column shown as the label when another table links
	// here ("" = none); the schema decides it (sqlitedb's labelColumn).
	LabelColumn string

	// Table metadata (Datasette's per-table settings), all optional:
	// SortableColumns limits _sort to these columns (nil = every column);
	// Sort / SortDesc is the default order when the URL gives none;
	// PageSize overrides Options.DefaultPageSize; SearchModeRaw makes
	// _search raw FTS syntax unless ?_searchmode=escaped.
	SortableColumns []string
	Sort, SortDesc  string
	PageSize        int
	SearchModeRaw   bool
}

// UsesRowid reports whether rows of t are identified by rowid (a table
// without a declared primary key, not a view).
func (t *Table) UsesRowid() bool { return len(t.PrimaryKeys) == 0 && !t.IsView }

// Column returns the column called name, or nil.
func (t *Table) Column(name string) *Column {
	for i := range t.Columns {
		if t.Columns[i].Name == name {
			return &t.Columns[i]
		}
	}
	return nil
}

// hasColumn reports whether name can be used in a filter or sort: a real
// column, or rowid on a rowid table.
func (t *Table) hasColumn(name string) bool {
	return t.Column(name) != nil || (name == "rowid" && t.UsesRowid())
}

// sortable reports whether _sort may use name (Datasette's
// sortable_columns: metadata's list, else every column, plus rowid).
func (t *Table) sortable(name string) bool {
	if t.SortableColumns != nil {
		return contains(t.SortableColumns, name) || (name == "rowid" && t.UsesRowid())
	}
	return t.hasColumn(name)
}

// Options are the Datasette settings that shape a table query. Zero numeric
// fields take the Default* constants; use DefaultOptions for Datasette's
// defaults including the booleans.
type Options struct {
	// ThroughKey resolves ?_through={"table": T, ...}: the column of T
	// that references the page's table, and the column of the page's
	// table it references (ok false when T has no such foreign key).
	ThroughKey func(throughTable string) (column, otherColumn string, ok bool)
	// FTSTable reports whether ?_fts_table= may name table: a full-text
	// index the actor may read.
	FTSTable func(table string) bool

	DefaultPageSize  int // default_page_size
	MaxReturnedRows  int // max_returned_rows; also the largest _size
	DefaultFacetSize int // default_facet_size
	AllowFacet       bool
	AllowWhere       bool // execute-sql permission: _where= allowed
}

// DefaultOptions returns Datasette's default settings.
func DefaultOptions() Options {
	return Options{
		DefaultPageSize:  DefaultPageSize,
		MaxReturnedRows:  DefaultMaxReturnedRows,
		DefaultFacetSize: DefaultFacetSize,
		AllowFacet:       true,
		AllowWhere:       true,
	}
}

func (o Options) withDefaults() Options {
	if o.DefaultPageSize <= 0 {
		o.DefaultPageSize = DefaultPageSize
	}
	if o.MaxReturnedRows <= 0 {
		o.MaxReturnedRows = DefaultMaxReturnedRows
	}
	if o.DefaultFacetSize <= 0 {
		o.DefaultFacetSize = DefaultFacetSize
	}
	return o
}

// ErrorKind says what kind of request problem an Error is. The query package
// knows nothing of HTTP; the server maps each kind to a status in one place.
type ErrorKind uint8

// The kinds of Error.
const (
	// Invalid is a malformed or unsupported argument (a bad _size, an
	// unknown column, a broken _next token).
	Invalid ErrorKind = iota
	// NotFound is a table or row that does not exist.
	NotFound
	// Forbidden is an argument the options do not allow (_where= without
	// execute-sql).
	Forbidden
)

// String names the kind ("invalid", "not found", "forbidden").
func (k ErrorKind) String() string {
	switch k {
	case NotFound:
		return "not found"
	case Forbidden:
		return "forbidden"
	}
	return "invalid"
}

// Error is a request error with its kind and a message in Datasette's
// wording. Title is Datasette's optional error title (e.g. "Invalid SQL");
// it may be empty.
type Error struct {
	Kind    ErrorKind
	Message string
	Title   string
	// SQL marks an error that SQLite itself would report for the
	// statement (Datasette reports those from running it).
	SQL bool
}

func (e *Error) Error() string { return e.Message }

func badRequest(format string, a ...any) *Error {
	return &Error{Kind: Invalid, Message: fmt.Sprintf(format, a...)}
}

// invalidSQL is the error Datasette reports when its generated statement
// fails to prepare (title "Invalid SQL"); Lode finds these before SQLite.
func invalidSQL(format string, a ...any) *Error {
	return &Error{Kind: Invalid, Message: fmt.Sprintf(format, a...), Title: "Invalid SQL"}
}

// AsError returns err as an *Error if it is one.
func AsError(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

// Filter is one parsed column filter such as ?state__not=CA.
type Filter struct {
	Column string // column name (or "rowid")
	Op     string // lookup key: "exact", "not", "contains", ... (see Lookups)
	Value  string // raw value from the URL ("" for no-argument lookups)
}

// Through is one ?_through= filter: rows that a many-to-many table links
// to Value through its Column.
type Through struct {
	Table, Column, Value string
}

// Search is one parsed full-text search: ?_search= (Column "") or
// ?_search_COL=.
type Search struct {
	Column string
	Term   string
	Raw    bool // _searchmode=raw: term passed to MATCH unescaped
}

// Select is a built table query. All SQL uses ? placeholders with the
// matching Args, in order.
type Select struct {
	Table *Table

	// SQL is the page query: the selected columns, filters, search, _where,
	// the keyset condition from _next, ORDER BY, LIMIT PageSize+1 (LIMIT 0
	// when PageSize is 0). Show at most PageSize rows; if more came back,
	// call NextToken with row PageSize-1.
	SQL  string
	Args []any
	// CountSQL counts all rows matching the filters (ignoring _next).
	CountSQL  string
	CountArgs []any

	// Columns are the result columns of SQL, in order: rowid first for
	// rowid tables; primary keys are always present, and so is the sort
	// column (the next token needs it).
	Columns []string
	// AllColumns are every column of the table (rowid first for rowid
	// tables), for _extra=all_columns.
	AllColumns []string
	// PageSize is the number of rows to show; SQL fetches one more to know
	// whether there is a next page.
	PageSize int
	// Paginated is false for views: they have no key to page on by, so
	// they page by Offset (Datasette's view pagination: _next is the
	// number of rows before the page).
	Paginated bool
	Offset    int

	Filters []Filter
	Where   []string // raw _where fragments, in request order
	Search  []Search
	Through []Through
	// SortColumn is the _sort or _sort_desc column ("" = primary key order);
	// SortDesc is true for _sort_desc.
	SortColumn string
	SortDesc   bool
	// Next is the decoded _next token's raw text ("" if none).
	Next string

	// Facets are the requested facets in Datasette's order (column facets,
	// then date, then array), each with its own SQL.
	Facets []*Facet
	// FacetSize is the number of values each facet shows (_facet_size).
	FacetSize int
	// ExpandLabels are the foreign keys whose values should be expanded to
	// {"value":..,"label":..} (_labels=on / _label=COL), only for selected
	// columns.
	ExpandLabels []ForeignKey

	// fromWhere is `from "t" where ...` without the keyset condition, with
	// whereArgs; facets and suggestions run over it.
	fromWhere string
	whereArgs []any
	// TokenColumns is how many of Columns, at the end, are selected only
	// for the next token: the sort column that _col/_nocol left out, which
	// Datasette does not show. Hide drops them.
	TokenColumns int

	// keyIdx are the Columns indexes of the key parts of the next token
	// (rowid or primary keys); sortIdx is the index of the sort column or -1.
	keyIdx  []int
	sortIdx int
}

// QuoteIdent returns name as an SQLite identifier in double quotes, with
// embedded double quotes doubled.
func QuoteIdent(name string) string {
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}

// DatasetteIdent quotes an identifier as Datasette's escape_sqlite does,
// for SQL shown to clients: as it is when it is a plain word that is not
// a keyword, else in [brackets] (double quotes when it holds a ']').
func DatasetteIdent(name string) string {
	if plainWordRE.MatchString(name) && !reservedWords[strings.ToLower(name)] {
		return name
	}
	if strings.Contains(name, "]") {
		return QuoteIdent(name)
	}
	return "[" + name + "]"
}

var plainWordRE = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// reservedWords are the SQL keywords Datasette always quotes.
var reservedWords = func() map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(`abort action add after all alter analyze and as asc attach autoincrement
	before begin between by cascade case cast check collate column commit
	conflict constraint create cross current_date current_time
	current_timestamp database default deferrable deferred delete desc detach
	distinct drop each else end escape except exclusive exists explain fail
	for foreign from full glob group having if ignore immediate in index
	indexed initially inner insert instead intersect into is isnull join key
	left like limit match natural no not notnull null of offset on or order
	outer plan pragma primary query raise recursive references regexp reindex
	release rename replace restrict right rollback row savepoint select set
	table temp temporary then to transaction trigger union unique update using
	vacuum values view virtual when where with without`) {
		m[w] = true
	}
	return m
}()

// isSpecial reports whether a query-string key is a Datasette control
// argument rather than a filter: it starts with "_" and has no "__" (so a
// column named _city_id is still filterable as ?_city_id__exact=1).
func isSpecial(key string) bool {
	return strings.HasPrefix(key, "_") && !strings.Contains(key, "__")
}

// Build turns the URL parameters of a table request into SQL. Errors are
// *Error values carrying the HTTP status and Datasette's wording.
func Build(t *Table, params url.Values, opts Options) (*Select, error) {
	if t == nil || t.Name == "" {
		return nil, &Error{Kind: NotFound, Message: "Table not found"}
	}
	opts = opts.withDefaults()
	s := &Select{Table: t, sortIdx: -1, Paginated: !t.IsView}
	get := func(k string) string {
		if v := params[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}

	// Page size.
	s.PageSize = opts.DefaultPageSize
	if t.PageSize > 0 {
		s.PageSize = t.PageSize
	}
	if raw, ok := params["_size"]; ok && len(raw) > 0 && raw[0] != "" {
		size := raw[0]
		if size == "max" {
			s.PageSize = opts.MaxReturnedRows
		} else {
			n, err := strconv.Atoi(size)
			if err != nil || n < 0 {
				return nil, badRequest("_size must be a positive integer")
			}
			if n > opts.MaxReturnedRows {
				return nil, badRequest("_size must be <= %d", opts.MaxReturnedRows)
			}
			s.PageSize = n
		}
	}
	if s.PageSize > opts.MaxReturnedRows {
		s.PageSize = opts.MaxReturnedRows
	}

	// Selected columns.
	if t.UsesRowid() {
		s.AllColumns = append(s.AllColumns, "rowid")
	}
	// Hidden columns (a virtual table's own, generated columns) are
	// listed and selected by name, as Datasette's table pages do.
	for _, c := range t.Columns {
		s.AllColumns = append(s.AllColumns, c.Name)
	}
	cols, err := selectColumns(t, params["_col"], params["_nocol"])
	if err != nil {
		return nil, err
	}

	// Filters, sorted by (key, value) as Datasette does, so the SQL and the
	// human description are deterministic.
	type pair struct{ k, v string }
	var pairs []pair
	for k, vs := range params {
		if isSpecial(k) {
			continue
		}
		for _, v := range vs {
			pairs = append(pairs, pair{k, v})
		}
	}
	sort.Slice(pairs, func(i, j int) bool {
		if pairs[i].k != pairs[j].k {
			return pairs[i].k < pairs[j].k
		}
		return pairs[i].v < pairs[j].v
	})
	var where []string
	var args []any
	for _, p := range pairs {
		f, ok, err := parseFilter(t, p.k, p.v)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		clause, fargs, err := f.sql(t)
		if err != nil {
			return nil, err
		}
		s.Filters = append(s.Filters, f)
		where = append(where, clause)
		args = append(args, fargs...)
	}

	// Full-text search.
	sw, sargs, err := s.buildSearch(t, params, opts)
	if err != nil {
		return nil, err
	}
	where = append(where, sw...)
	args = append(args, sargs...)

	// _through: rows linked through a many-to-many table, as Datasette's
	// {"table": T, "column": C, "value": V}.
	for _, raw := range params["_through"] {
		var th struct {
			Table  string `json:"table"`
			Column string `json:"column"`
			Value  any    `json:"value"`
		}
		if err := json.Unmarshal([]byte(raw), &th); err != nil || th.Table == "" || th.Column == "" {
			return nil, badRequest(`Invalid _through: %s (want {"table": ..., "column": ..., "value": ...})`, raw)
		}
		var col, otherCol string
		ok := false
		if opts.ThroughKey != nil {
			col, otherCol, ok = opts.ThroughKey(th.Table)
		}
		if !ok {
			return nil, badRequest("Invalid _through - could not find corresponding foreign key")
		}
		v := PyStr(th.Value)
		if s, isStr := th.Value.(string); isStr {
			v = s
		}
		where = append(where, fmt.Sprintf("%s in (select %s from %s where %s = ?)", QuoteIdent(otherCol), QuoteIdent(col), QuoteIdent(th.Table), QuoteIdent(th.Column)))
		args = append(args, v)
		s.Through = append(s.Through, Through{Table: th.Table, Column: th.Column, Value: v})
	}

	// Raw _where fragments, parenthesised so an OR inside one cannot
	// escape the other conditions (or the keyset condition).
	if frags, ok := params["_where"]; ok {
		if !opts.AllowWhere {
			return nil, &Error{Kind: Forbidden, Message: "_where= is not allowed"}
		}
		for _, w := range frags {
			if hasStatementEnd(w) {
				// Python's sqlite3 (so Datasette) refuses a second
				// statement too; some Go drivers would run it.
				return nil, invalidSQL("You can only execute one statement at a time.")
			}
			s.Where = append(s.Where, w)
			where = append(where, "("+w+"\n)")
		}
	}

	// Sort: ?_sort / ?_sort_desc, else the table's default sort. Both at
	// once is refused before either column is checked, as in Datasette.
	sortCol, sortDesc := get("_sort"), get("_sort_desc")
	if sortCol == "" && sortDesc == "" {
		sortCol, sortDesc = t.Sort, t.SortDesc
	}
	if sortCol != "" && sortDesc != "" {
		return nil, badRequest("Cannot use _sort and _sort_desc at the same time")
	}
	if sortCol != "" && !t.sortable(sortCol) {
		return nil, badRequest("Cannot sort table by %s", sortCol)
	}
	if sortDesc != "" && !t.sortable(sortDesc) {
		return nil, badRequest("Cannot sort table by %s", sortDesc)
	}
	if sortDesc != "" {
		s.SortColumn, s.SortDesc = sortDesc, true
	} else {
		s.SortColumn = sortCol
	}
	if s.SortColumn != "" && !contains(cols, s.SortColumn) && s.Paginated {
		// The next token needs the sort value of the last row, so the sort
		// column is selected even when _col/_nocol left it out, and hidden
		// once the token is taken (Hide). Datasette instead looks the value
		// up with a second query.
		cols = append(cols, s.SortColumn)
		s.TokenColumns = 1
	}
	s.Columns = cols

	// Key columns for the next token.
	keys := keyColumns(t)
	for _, k := range keys {
		s.keyIdx = append(s.keyIdx, indexOf(cols, k))
	}
	if s.SortColumn != "" {
		s.sortIdx = indexOf(cols, s.SortColumn)
	}

	from := "from " + QuoteIdent(t.Name)
	fromWhere := from
	if len(where) > 0 {
		fromWhere += " where " + strings.Join(where, " and ")
	}
	s.fromWhere = fromWhere
	s.whereArgs = args
	s.CountSQL = "select count(*) " + fromWhere
	s.CountArgs = args

	// Keyset condition from _next: one WHERE condition, or two arms when
	// the rows after the token are a NULL range plus a non-NULL range.
	arms := []keysetArm{{}}
	if next := get("_next"); next != "" && s.Paginated {
		s.Next = next
		var err error
		if arms, err = s.keysetClause(next, keys); err != nil {
			return nil, err
		}
	} else if next != "" && t.IsView {
		n, err := strconv.Atoi(next)
		if err != nil || n < 0 {
			return nil, badRequest("Invalid _next token for a view: %s (expected the number of rows before the page)", next)
		}
		s.Next, s.Offset = next, n
	}
	// One extra row tells whether there is a next page; _size=0 (counts
	// and facets only) needs no rows at all.
	limit := s.PageSize + 1
	if s.PageSize == 0 {
		limit = 0
	}
	var b strings.Builder
	var pageArgs []any
	for i, arm := range arms {
		if i > 0 {
			b.WriteString(" union all ")
		}
		b.WriteString("select ")
		b.WriteString(selectList(cols))
		b.WriteString(" ")
		b.WriteString(from)
		w := where
		if arm.clause != "" {
			w = append(append([]string(nil), where...), arm.clause)
		}
		if len(w) > 0 {
			b.WriteString(" where ")
			b.WriteString(strings.Join(w, " and "))
		}
		pageArgs = append(pageArgs, args...)
		pageArgs = append(pageArgs, arm.args...)
	}
	if ob := s.orderBy(keys); ob != "" {
		// In a compound SELECT the ORDER BY names result columns, which
		// the sort and key columns always are; SQLite then merges the two
		// arms, each read in index order.
		b.WriteString(" order by ")
		b.WriteString(ob)
	}
	fmt.Fprintf(&b, " limit %d", limit)
	if s.Offset > 0 {
		fmt.Fprintf(&b, " offset %d", s.Offset)
	}
	s.SQL = b.String()
	s.Args = pageArgs

	if err := s.buildFacets(params, opts); err != nil {
		return nil, err
	}
	s.ExpandLabels = expandLabels(t, params, cols)
	return s, nil
}

// selectColumns applies _col / _nocol with Datasette's rules and messages
// (_columns_to_select): _col keeps the primary keys plus the named columns
// in order, _nocol drops columns (never a primary key), both may be given,
// and rowid is always first for rowid tables.
func selectColumns(t *Table, col, nocol []string) ([]string, error) {
	var tableCols []string
	for _, c := range t.Columns {
		tableCols = append(tableCols, c.Name)
	}
	cols := tableCols
	if len(col) > 0 {
		var bad []string
		for _, c := range col {
			if !contains(tableCols, c) {
				bad = append(bad, c)
			}
		}
		if len(bad) > 0 {
			return nil, badRequest("_col=%s - invalid columns", strings.Join(bad, ", "))
		}
		cols = append([]string(nil), t.PrimaryKeys...)
		for _, c := range col {
			if !contains(cols, c) {
				cols = append(cols, c)
			}
		}
	}
	if len(nocol) > 0 {
		var bad []string
		for _, c := range nocol {
			if !contains(tableCols, c) || contains(t.PrimaryKeys, c) {
				bad = append(bad, c)
			}
		}
		if len(bad) > 0 {
			return nil, badRequest("_nocol=%s - invalid columns", strings.Join(bad, ", "))
		}
		var kept []string
		for _, c := range cols {
			if !contains(nocol, c) {
				kept = append(kept, c)
			}
		}
		cols = kept
	}
	if t.UsesRowid() {
		cols = append([]string{"rowid"}, cols...)
	}
	return cols, nil
}

// keyColumns returns the columns that identify a row: rowid, the primary
// keys, or nothing for a view.
func keyColumns(t *Table) []string {
	if t.IsView {
		return nil
	}
	if t.UsesRowid() {
		return []string{"rowid"}
	}
	return t.PrimaryKeys
}

// colRef returns the SQL for a column reference; rowid stays bare so it
// means the real rowid (a quoted "rowid" would too, unless a column has
// that name, which is exactly when the bare word is also that column).
func colRef(name string) string {
	if name == "rowid" {
		return "rowid"
	}
	return QuoteIdent(name)
}

func selectList(cols []string) string {
	parts := make([]string, len(cols))
	for i, c := range cols {
		parts[i] = colRef(c)
	}
	return strings.Join(parts, ", ")
}

func (s *Select) orderBy(keys []string) string {
	var parts []string
	if s.SortColumn != "" {
		o := colRef(s.SortColumn)
		if s.SortDesc {
			o += " desc"
		}
		parts = append(parts, o)
	}
	for _, k := range keys {
		parts = append(parts, colRef(k))
	}
	return strings.Join(parts, ", ")
}

func contains(list []string, s string) bool { return indexOf(list, s) >= 0 }

func indexOf(list []string, s string) int {
	for i, v := range list {
		if v == s {
			return i
		}
	}
	return -1
}

// hasStatementEnd reports whether an SQL fragment contains a ';' outside
// string literals, quoted identifiers and comments, i.e. whether pasting
// it into a statement could end that statement and start another.
func hasStatementEnd(sql string) bool {
	for i := 0; i < len(sql); i++ {
		switch c := sql[i]; c {
		case ';':
			return true
		case '\'', '"', '`':
			// Quoted: a doubled quote is an escaped quote, which the
			// loop handles as closing then reopening.
			j := strings.IndexByte(sql[i+1:], c)
			if j < 0 {
				return false
			}
			i += j + 1
		case '[':
			j := strings.IndexByte(sql[i+1:], ']')
			if j < 0 {
				return false
			}
			i += j + 1
		case '-':
			if i+1 < len(sql) && sql[i+1] == '-' {
				j := strings.IndexByte(sql[i:], '\n')
				if j < 0 {
					return false
				}
				i += j
			}
		case '/':
			if i+1 < len(sql) && sql[i+1] == '*' {
				j := strings.Index(sql[i+2:], "*/")
				if j < 0 {
					return false
				}
				i += j + 3
			}
		}
	}
	return false
}
