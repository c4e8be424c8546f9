// Package web holds Lode's HTML pages: html/template templates and a small
// stylesheet and script, embedded in the binary with go:embed.
//
// The package knows nothing about SQLite or HTTP routing. The server fills
// one of the page structs below (IndexPage, DatabasePage, TablePage,
// RowPage, QueryPage, ErrorPage) and calls the matching Templates method.
// Every string in those structs is plain text or a URL; html/template escapes
// it for its context (element text, attribute, URL), so values that contain
// "<script>", quotes or any unicode render as text, never as markup. The
// table page's content, which grows with the data, is written in Go with
// the same escaping (table.go, escape.go).
package web

import (
	"embed"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"strconv"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// StaticPrefix is the URL path under which the server serves Static.
const StaticPrefix = "/-/static/"

// Static returns the embedded assets (lode.css, lode.js) rooted so that
// http.FileServerFS(Static()) serves them under StaticPrefix.
func Static() fs.FS {
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		// The directory is embedded at compile time; failure is a build bug.
		panic(fmt.Sprintf("web: embedded static dir: %v", err))
	}
	return sub
}

// Link is a labelled URL.
type Link struct {
	Label string
	URL   string
}

// Chrome is what the shared layout renders around every page: the <title>,
// the breadcrumb trail, the heading and the links to other formats of the
// same view. Empty URLs hide their link.
type Chrome struct {
	Title   string
	Heading string
	Crumbs  []Link
	JSONURL string
	CSVURL  string
}

// IndexPage is the "/" page: every database served.
type IndexPage struct {
	Chrome
	Databases []IndexDatabase
}

// IndexDatabase is one database on the index page.
type IndexDatabase struct {
	Name      string
	URL       string
	Tables    int
	Views     int
	Size      int64
	TopTables []Link
	// MoreTables counts tables not listed in TopTables.
	MoreTables int
}

// DatabasePage is the "/DB" page: tables, views, canned queries and a SQL box.
type DatabasePage struct {
	Chrome
	Name         string
	Size         int64
	QueryURL     string
	Tables       []DatabaseTable
	HiddenTables []DatabaseTable
	Views        []Link
	Queries      []CannedLink
}

// DatabaseTable is one table on the database page.
type DatabaseTable struct {
	Name string
	URL  string
	// Count is the row count; CountKnown is false when counting was skipped
	// or timed out.
	Count      int64
	CountKnown bool
	Columns    []string
	FTS        bool
}

// CannedLink is one canned query on the database page.
type CannedLink struct {
	Name        string
	Title       string
	URL         string
	Description string
	Write       bool
}

// Column is one header cell of a results table. SortURL is the link the
// header points at (ascending, or descending when Sort is already "asc").
type Column struct {
	Name    string
	Sort    string // "asc", "desc" or ""
	SortURL string
	// Menu is the column's menu of actions, like Datasette's cog menu
	// (sort ascending or descending, facet by this, hide this column, show
	// all columns, show not-blank rows), each a link to that view. The menu
	// is a <details> element, so it works without JavaScript. Empty: no
	// menu.
	Menu []Link
	// Type is the column's declared type as the menu shows it
	// ("INTEGER NOT NULL"); empty for none.
	Type string
}

// Cell is one rendered value. With URL set the value is a link; with Label
// set too (a foreign key with a label column) the label is the link text
// and the raw value follows it.
type Cell struct {
	Value   string
	URL     string
	Label   string
	Null    bool
	Numeric bool
}

// Filter is one (column, operator, value) row of the filter builder. Op is
// an Option value of TablePage.Operators.
type Filter struct {
	Column string
	Op     string
	Value  string
}

// Option is one <option> of a <select>.
type Option struct {
	Value string
	Label string
}

// Param is a name/value pair: a hidden form field or a query parameter input.
type Param struct {
	Name  string
	Value string
}

// Facet is one facet box on the table page. Each value links to the view
// with that value toggled on or off.
type Facet struct {
	Name      string
	Type      string
	Values    []FacetValue
	Truncated bool
	RemoveURL string
}

// FacetValue is one value of a facet with its row count.
type FacetValue struct {
	Label    string
	Count    int64
	URL      string
	Selected bool
}

// The filter builder names its fields like Datasette's form:
// _filter_column_N, _filter_op_N and _filter_value_N for row N (from 1);
// operators without a value have option values like "isnull__1". The
// server redirects a submission to canonical col__op=value URLs
// (query.FormRedirect).

// TablePage is the "/DB/TABLE" page. Unlike the other pages its content
// is written in Go (see Templates.Table); only the layout around it comes
// from the templates.
type TablePage struct {
	Chrome
	Database   string
	Table      string
	TableURL   string
	Count      int64
	CountKnown bool
	Columns    []Column
	// RowLinks adds a first column linking each row to its row page (see
	// Rows.Add).
	RowLinks bool
	// WriteRows writes the rows, calling Rows.Add for each row and
	// Rows.Cell for each of its cells, straight into the page as it is
	// rendered. Nil, or writing no rows, shows "0 records".
	WriteRows func(*Rows)
	// Filters are the active filters; the builder shows them plus one empty row.
	Filters []Filter
	// Description says in words which rows show: "where state = "CA" sorted by pk".
	Description   string
	FilterColumns []string
	Operators     []Option
	// Hidden carries the view's other parameters (_sort, _facet, _size, ...)
	// through the filter form.
	Hidden          []Param
	Searchable      bool
	Search          string
	Facets          []Facet
	SuggestedFacets []Link
	NextURL         string
	SQL             string
	// EditSQLURL opens this view's SQL in the SQL editor ("View and edit
	// SQL"); empty when the actor may not run SQL.
	EditSQLURL string
}

// RowPage is the "/DB/TABLE/PK" page.
type RowPage struct {
	Chrome
	Database string
	Table    string
	Fields   []Field
	Incoming []IncomingLink
}

// Field is one column of the row page.
type Field struct {
	Name string
	Cell Cell
}

// IncomingLink counts rows of another table whose foreign key points at
// this row, linking to that table filtered to them. Count is -1 when
// counting took too long.
type IncomingLink struct {
	Table  string
	Column string
	Count  int64
	URL    string
}

// QueryPage is the SQL editor ("/DB/-/query") and every canned query page.
type QueryPage struct {
	Chrome
	Database string
	// Action and Method are the form's; canned write queries POST.
	Action string
	Method string
	SQL    string
	// Editable shows a textarea for the SQL; canned queries show it read-only.
	Editable bool
	Params   []Param
	// Ran is true when a query ran (or failed), so the results area shows.
	Ran       bool
	Columns   []string
	Rows      [][]Cell
	Truncated bool
	Error     string
	Canned    *CannedLink
	CSRFToken string
	// Message reports the outcome of a canned write; MessageError marks failure.
	Message      string
	MessageError bool
	// EditURL opens a canned read query's SQL in the editor.
	EditURL string
}

// CSRFField is the form field that carries the CSRF token of write forms.
const CSRFField = "csrftoken"

// ErrorPage is the HTML twin of a JSON error: the same status and message.
type ErrorPage struct {
	Chrome
	Status  int
	Message string
}

// Templates renders the pages. It is safe for concurrent use; build one with
// New at start-up.
type Templates struct {
	pages map[string]*template.Template
}

// Page template names, one file each in templates/. The table page has
// none: it is written in Go (see Templates.Table).
const (
	pageIndex    = "index"
	pageDatabase = "database"
	pageRow      = "row"
	pageQuery    = "query"
	pageError    = "error"
)

// New parses the embedded templates. Each page is parsed together with the
// shared layout so that every page can define its own "content" block.
func New() (*Templates, error) {
	funcs := template.FuncMap{
		"count": countAny,
		"bytes": formatBytes,
	}
	base, err := template.New("base.html").Funcs(funcs).ParseFS(templateFS, "templates/base.html")
	if err != nil {
		return nil, fmt.Errorf("parse layout: %w", err)
	}
	t := &Templates{pages: make(map[string]*template.Template)}
	for _, name := range []string{pageIndex, pageDatabase, pageRow, pageQuery, pageError} {
		clone, err := base.Clone()
		if err != nil {
			return nil, fmt.Errorf("clone layout for %s: %w", name, err)
		}
		if _, err := clone.ParseFS(templateFS, "templates/"+name+".html"); err != nil {
			return nil, fmt.Errorf("parse %s page: %w", name, err)
		}
		t.pages[name] = clone
	}
	return t, nil
}

func (t *Templates) render(w io.Writer, name string, data any) error {
	if err := t.pages[name].ExecuteTemplate(w, "base.html", data); err != nil {
		return fmt.Errorf("render %s page: %w", name, err)
	}
	return nil
}

// Index renders the "/" page.
func (t *Templates) Index(w io.Writer, p *IndexPage) error { return t.render(w, pageIndex, p) }

// Database renders the "/DB" page.
func (t *Templates) Database(w io.Writer, p *DatabasePage) error {
	return t.render(w, pageDatabase, p)
}

// Row renders the "/DB/TABLE/PK" page.
func (t *Templates) Row(w io.Writer, p *RowPage) error { return t.render(w, pageRow, p) }

// Query renders the SQL editor or a canned query page.
func (t *Templates) Query(w io.Writer, p *QueryPage) error { return t.render(w, pageQuery, p) }

// Error renders an error page.
func (t *Templates) Error(w io.Writer, p *ErrorPage) error { return t.render(w, pageError, p) }

// countAny formats an int or int64 count for templates.
func countAny(n any) string {
	switch v := n.(type) {
	case int:
		return formatCount(int64(v))
	case int64:
		return formatCount(v)
	default:
		return fmt.Sprint(n)
	}
}

// BodyHTML writes the result rows of the query page, like the table
// page's rows (see Rows).
func (p *QueryPage) BodyHTML() template.HTML {
	var b []byte
	for _, r := range p.Rows {
		b = append(b, "<tr>"...)
		for _, c := range r {
			b = appendCell(b, c)
		}
		b = append(b, "</tr>\n"...)
	}
	return template.HTML(b)
}

// formatCount writes n with thousands separators: 1234567 -> "1,234,567".
func formatCount(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := n < 0
	if neg {
		s = s[1:]
	}
	out := make([]byte, 0, len(s)+len(s)/3+1)
	if neg {
		out = append(out, '-')
	}
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return string(out)
}

// formatBytes writes a size the way people read it: "812 B", "4.0 KB", "1.3 MB".
func formatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatInt(n, 10) + " B"
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %cB", float64(n)/float64(div), "KMGTPE"[exp])
}
