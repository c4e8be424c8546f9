// Package web holds Lode's HTML pages: html/template templates and a small
// stylesheet and script, embedded in the binary with go:embed.
//
// The package knows nothing about SQLite or HTTP routing. The server fills
// one of the page structs below (IndexPage, DatabasePage, TablePage,
// RowPage, QueryPage, ErrorPage) and calls the matching Templates method.
// Every string in those structs is plain text or a URL; html/template escapes
// it for its context (element text, attribute, URL), so values that contain
// "<script>", quotes or any unicode render as text, never as markup.
package web

import (
	"embed"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"strconv"
	"strings"
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

// Row is one row of a table page; URL and Label link to the row page.
type Row struct {
	URL   string
	Label string
	Cells []Cell
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

// TablePage is the "/DB/TABLE" page.
type TablePage struct {
	Chrome
	Database   string
	Table      string
	TableURL   string
	Count      int64
	CountKnown bool
	Columns    []Column
	// RowLinks adds a first column linking each row to its row page.
	RowLinks bool
	Rows     []Row
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

// Page template names, one file each in templates/.
const (
	pageIndex    = "index"
	pageDatabase = "database"
	pageTable    = "table"
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
	for _, name := range []string{pageIndex, pageDatabase, pageTable, pageRow, pageQuery, pageError} {
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

// Table renders the "/DB/TABLE" page.
func (t *Templates) Table(w io.Writer, p *TablePage) error { return t.render(w, pageTable, p) }

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

// BodyHTML writes the rows of the table page: the one part of a page that
// grows with the data (a 100-row page has ~1,000 cells). html/template
// reflects on every field of every cell, which made it most of the page's
// cost, so the rows are written here with the escaping html/template
// applies to element text and quoted attributes (html.EscapeString
// escapes <, >, &, ' and "), and URLs limited to safe schemes.
func (p *TablePage) BodyHTML() template.HTML {
	var b strings.Builder
	b.Grow(len(p.Rows) * (len(p.Columns) + 1) * 32)
	for _, r := range p.Rows {
		b.WriteString("<tr>")
		if p.RowLinks {
			b.WriteString(`<td class="rowlink">`)
			writeLink(&b, r.URL, r.Label)
			b.WriteString("</td>")
		}
		for _, c := range r.Cells {
			writeCell(&b, c)
		}
		b.WriteString("</tr>\n")
	}
	return template.HTML(b.String())
}

// HeadHTML writes the header row of the table page: a "Link" header when
// RowLinks, then each column with its sort link and arrow. It grows with
// the columns, so like BodyHTML it is written in Go, escaped exactly as
// html/template escaped it (see writeTemplateEscaped, writeTemplateURL).
func (p *TablePage) HeadHTML() template.HTML {
	var b strings.Builder
	b.WriteString("<tr>")
	if p.RowLinks {
		b.WriteString(`<th scope="col">Link</th>`)
	}
	for _, c := range p.Columns {
		b.WriteString(`<th scope="col" data-column="`)
		writeTemplateEscaped(&b, c.Name)
		if c.Sort != "" {
			b.WriteString(`" class="sorted-`)
			writeTemplateEscaped(&b, c.Sort)
		}
		b.WriteString(`">`)
		if c.SortURL != "" {
			b.WriteString(`<a href="`)
			writeTemplateURL(&b, c.SortURL)
			b.WriteString(`">`)
			writeTemplateEscaped(&b, c.Name)
			b.WriteString("</a>")
		} else {
			writeTemplateEscaped(&b, c.Name)
		}
		switch c.Sort {
		case "asc":
			b.WriteString(" ▲")
		case "desc":
			b.WriteString(" ▼")
		}
		b.WriteString("</th>")
	}
	b.WriteString("</tr>")
	return template.HTML(b.String())
}

// SuggestedFacetsHTML writes the comma-separated links of the suggested
// facets (one per column at most, twice for a column of JSON arrays).
func (p *TablePage) SuggestedFacetsHTML() template.HTML {
	var b strings.Builder
	for i, f := range p.SuggestedFacets {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(`<a href="`)
		writeTemplateURL(&b, f.URL)
		b.WriteString(`">`)
		writeTemplateEscaped(&b, f.Label)
		b.WriteString("</a>")
	}
	return template.HTML(b.String())
}

// FacetsHTML writes the facet boxes, each with up to default_facet_size
// values, the selected ones with a link that removes their filter.
func (p *TablePage) FacetsHTML() template.HTML {
	var b strings.Builder
	for _, f := range p.Facets {
		b.WriteString("\n" + `<div class="facet" data-column="`)
		writeTemplateEscaped(&b, f.Name)
		b.WriteString(`">` + "\n" + `<p class="facet-name"><strong>`)
		writeTemplateEscaped(&b, f.Name)
		b.WriteString("</strong>")
		if f.Type != "column" {
			b.WriteString(" (")
			writeTemplateEscaped(&b, f.Type)
			b.WriteString(")")
		}
		if f.RemoveURL != "" {
			b.WriteString(` <a class="remove" href="`)
			writeTemplateURL(&b, f.RemoveURL)
			b.WriteString(`" title="remove this facet">✖</a>`)
		}
		b.WriteString("</p>\n<ul>\n")
		for _, v := range f.Values {
			if v.Selected {
				b.WriteString(`<li class="selected">`)
			} else {
				b.WriteString("<li>")
			}
			b.WriteString(`<a href="`)
			writeTemplateURL(&b, v.URL)
			b.WriteString(`">`)
			writeTemplateEscaped(&b, v.Label)
			b.WriteString(`</a> <span class="n">`)
			b.WriteString(formatCount(v.Count))
			b.WriteString("</span>")
			if v.Selected {
				b.WriteString(` <a class="toggle-off" href="`)
				writeTemplateURL(&b, v.URL)
				b.WriteString(`" title="remove filter">✖</a>`)
			}
			b.WriteString("</li>\n")
		}
		if f.Truncated {
			b.WriteString(`<li class="more">…</li>`)
		}
		b.WriteString("\n</ul>\n</div>\n")
	}
	return template.HTML(b.String())
}

// FilterRowsHTML writes the filter builder's rows: one per active filter
// and an empty one for a new filter. Like BodyHTML it is written in Go
// because it grows with columns × filters (every row lists every column
// and operator).
func (p *TablePage) FilterRowsHTML() template.HTML {
	var b strings.Builder
	for i, f := range p.Filters {
		p.writeFilterRow(&b, i+1, f)
	}
	p.writeFilterRow(&b, len(p.Filters)+1, Filter{})
	return template.HTML(b.String())
}

func (p *TablePage) writeFilterRow(b *strings.Builder, n int, f Filter) {
	num := strconv.Itoa(n)
	b.WriteString(`<div class="filter-row">` + "\n")
	b.WriteString(`<select name="_filter_column_` + num + `" aria-label="column"><option value="">- column -</option>`)
	for _, c := range p.FilterColumns {
		writeOption(b, c, c, c == f.Column)
	}
	b.WriteString("</select>\n" + `<select name="_filter_op_` + num + `" aria-label="operator">`)
	for _, o := range p.Operators {
		writeOption(b, o.Value, o.Label, o.Value == f.Op)
	}
	b.WriteString("</select>\n" + `<input type="text" name="_filter_value_` + num + `" aria-label="value" value="`)
	writeEscaped(b, f.Value)
	b.WriteString(`">` + "\n" + `<button type="button" class="remove-filter" title="remove this filter" hidden>✖</button>` + "\n</div>\n")
}

func writeOption(b *strings.Builder, value, label string, selected bool) {
	b.WriteString(`<option value="`)
	writeEscaped(b, value)
	if selected {
		b.WriteString(`" selected>`)
	} else {
		b.WriteString(`">`)
	}
	writeEscaped(b, label)
	b.WriteString("</option>")
}

// BodyHTML writes the result rows of the query page, as TablePage.BodyHTML.
func (p *QueryPage) BodyHTML() template.HTML {
	var b strings.Builder
	for _, r := range p.Rows {
		b.WriteString("<tr>")
		for _, c := range r {
			writeCell(&b, c)
		}
		b.WriteString("</tr>\n")
	}
	return template.HTML(b.String())
}

// writeCell writes one <td>, like the "cell" template.
func writeCell(b *strings.Builder, c Cell) {
	if c.Numeric {
		b.WriteString(`<td class="num">`)
	} else {
		b.WriteString("<td>")
	}
	switch {
	case c.Null:
		b.WriteString(`<span class="null">null</span>`)
	case c.URL != "" && c.Label != "":
		writeLink(b, c.URL, c.Label)
		b.WriteString(` <em class="fk">`)
		writeEscaped(b, c.Value)
		b.WriteString("</em>")
	case c.URL != "":
		writeLink(b, c.URL, c.Value)
	default:
		writeEscaped(b, c.Value)
	}
	b.WriteString("</td>")
}

// writeLink writes <a href="url">text</a>. Like html/template, a URL with
// a scheme other than http or https becomes "#ZgotmplZ".
func writeLink(b *strings.Builder, url, text string) {
	if i := strings.IndexAny(url, ":/?#"); i >= 0 && url[i] == ':' {
		if scheme := strings.ToLower(url[:i]); scheme != "http" && scheme != "https" {
			url = "#ZgotmplZ"
		}
	}
	b.WriteString(`<a href="`)
	writeEscaped(b, url)
	b.WriteString(`">`)
	writeEscaped(b, text)
	b.WriteString("</a>")
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
