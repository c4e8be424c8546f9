package web

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// The table page is Lode's busiest page and the one that grows with the
// data: a 100-row page has ~1,000 cells, a header cell per column, a facet
// value per distinct value. html/template reflects on every field it
// prints and calls its escapers through reflection too, which made the
// page cost three times the JSON API's for the same rows (issue 7). So
// it is written here in Go, straight into the page buffer, layout
// included (base.html's "top" and "bottom", kept equal by a test).
//
// Each value is escaped for its context as html/template escaped it before
// the move (appendTemplateEscaped, appendTemplateURL), except the cells of
// the rows, which keep html.EscapeString's rules (appendCell): the HTML is
// byte for byte what the template wrote.

// Table renders the "/DB/TABLE" page. It writes the layout too, as
// Chrome.appendTop and appendBottom: executing base.html's "top" and
// "bottom" cost more than the rest of the page outside the rows.
func (t *Templates) Table(w io.Writer, p *TablePage) error {
	// Into a bytes.Buffer (the server's pooled page buffer) the page is
	// appended in place; Write then finds it already there.
	var b []byte
	if buf, ok := w.(*bytes.Buffer); ok {
		b = buf.AvailableBuffer()
	}
	b = p.Chrome.appendTop(b)
	b = p.appendContent(b)
	b = p.Chrome.appendBottom(b)
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("render table page: %w", err)
	}
	return nil
}

// appendTop writes what base.html's "top" template writes: the document
// head, the breadcrumbs and the heading. TestLayoutMatchesTemplate keeps
// the two the same.
func (c *Chrome) appendTop(b []byte) []byte {
	b = append(b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"+
		`<meta name="viewport" content="width=device-width, initial-scale=1">`+"\n<title>"...)
	b = appendTemplateEscaped(b, c.Title)
	b = append(b, "</title>\n"+`<link rel="stylesheet" href="/-/static/lode.css">`+"\n</head>\n<body>\n"+
		`<header class="top">`+"\n"+`<nav class="crumbs" aria-label="breadcrumbs"><a href="/">home</a>`...)
	for _, l := range c.Crumbs {
		b = append(b, ` <span class="sep">/</span> <a href="`...)
		b = appendTemplateURL(b, l.URL)
		b = append(b, `">`...)
		b = appendTemplateEscaped(b, l.Label)
		b = append(b, "</a>"...)
	}
	b = append(b, "</nav>\n</header>\n<main>\n<h1>"...)
	b = appendTemplateEscaped(b, c.Heading)
	return append(b, "</h1>\n"...)
}

// appendBottom writes what base.html's "bottom" template writes: the links
// to the JSON and CSV versions and the footer.
func (c *Chrome) appendBottom(b []byte) []byte {
	b = append(b, '\n')
	if c.JSONURL != "" || c.CSVURL != "" {
		b = append(b, `<p class="formats">This data as `...)
		if c.JSONURL != "" {
			b = append(b, `<a class="json-link" href="`...)
			b = appendTemplateURL(b, c.JSONURL)
			b = append(b, `">JSON</a>`...)
		}
		if c.JSONURL != "" && c.CSVURL != "" {
			b = append(b, ", "...)
		}
		if c.CSVURL != "" {
			b = append(b, `<a class="csv-link" href="`...)
			b = appendTemplateURL(b, c.CSVURL)
			b = append(b, `">CSV</a>`...)
		}
		b = append(b, "</p>"...)
	}
	return append(b, "\n</main>\n<footer>Powered by Lode</footer>\n</body>\n</html>\n\n"...)
}

// appendContent writes what lies between the layout's heading and its
// links to other formats: the count, the filter form, the facets, the
// rows table, the pager and the SQL.
func (p *TablePage) appendContent(b []byte) []byte {
	b = append(b, "\n"+`<p class="count">`...)
	if p.CountKnown {
		b = append(b, formatCount(p.Count)...)
		b = append(b, " row"...)
		if p.Count != 1 {
			b = append(b, 's')
		}
	} else {
		b = append(b, "Many rows"...)
	}
	if p.Description != "" {
		b = append(b, ' ')
		b = appendTemplateEscaped(b, p.Description)
	}
	b = append(b, "</p>\n"+`<form class="filters" action="`...)
	b = appendTemplateURL(b, p.TableURL)
	b = append(b, `" method="get" id="filter-form">`+"\n"...)
	if p.Searchable {
		b = append(b, `<div class="search-row"><label for="_search">Search</label> <input id="_search" type="search" name="_search" value="`...)
		b = appendTemplateEscaped(b, p.Search)
		b = append(b, `" placeholder="Search `...)
		b = appendTemplateEscaped(b, p.Table)
		b = append(b, `"></div>`...)
	}
	b = append(b, "\n"+`<div class="filter-rows">`+"\n"...)
	b = p.appendFilterRows(b)
	b = append(b, "\n</div>\n"...)
	for _, h := range p.Hidden {
		b = append(b, `<input type="hidden" name="`...)
		b = appendTemplateEscaped(b, h.Name)
		b = append(b, `" value="`...)
		b = appendTemplateEscaped(b, h.Value)
		b = append(b, `">`...)
	}
	b = append(b, "\n"+`<p class="filter-actions"><button type="button" class="add-filter" hidden>Add filter</button> <button type="submit" class="apply">Apply</button>`...)
	if len(p.Filters) > 0 || p.Search != "" {
		b = append(b, ` <a class="clear" href="`...)
		b = appendTemplateURL(b, p.TableURL)
		b = append(b, `">clear</a>`...)
	}
	b = append(b, "</p>\n</form>\n"...)
	if p.EditSQLURL != "" {
		b = append(b, `<p class="edit-sql"><a href="`...)
		b = appendTemplateURL(b, p.EditSQLURL)
		b = append(b, `">✎ View and edit SQL</a></p>`+"\n"...)
	}
	if len(p.SuggestedFacets) > 0 {
		b = append(b, `<p class="suggested-facets">Suggested facets: `...)
		b = p.appendSuggestedFacets(b)
		b = append(b, "</p>"...)
	}
	b = append(b, '\n')
	if len(p.Facets) > 0 {
		b = append(b, "\n"+`<div class="facets">`+"\n"...)
		b = p.appendFacets(b)
		b = append(b, "\n</div>\n"...)
	}
	b = append(b, '\n')
	// The rows table, or "0 records" when WriteRows writes no row.
	start := len(b)
	b = append(b, "\n"+`<div class="table-wrap">`+"\n"+`<table class="rows">`+"\n<thead>"...)
	b = p.appendHead(b)
	b = append(b, "</thead>\n<tbody>\n"...)
	rows := Rows{b: b, link: p.RowLinks}
	if p.WriteRows != nil {
		p.WriteRows(&rows)
	}
	b = rows.b
	if rows.n > 0 {
		b = append(b, "</tr>\n\n</tbody>\n</table>\n</div>\n"...)
	} else {
		b = append(b[:start], "\n"+`<p class="empty">0 records</p>`+"\n"...)
	}
	b = append(b, '\n')
	if p.NextURL != "" {
		b = append(b, `<p class="pager"><a class="next" href="`...)
		b = appendTemplateURL(b, p.NextURL)
		b = append(b, `">Next page</a></p>`...)
	}
	b = append(b, '\n')
	if p.SQL != "" {
		b = append(b, `<details class="sql-used"><summary>SQL</summary><pre>`...)
		b = appendTemplateEscaped(b, p.SQL)
		b = append(b, "</pre></details>"...)
	}
	return append(b, "\n"+`<script src="/-/static/lode.js"></script>`+"\n"...)
}

// Rows writes the rows of a table page into the page (see
// TablePage.WriteRows): each cell is escaped as it is appended, with
// html.EscapeString's rules for text and quoted attributes and links only
// to safe URLs (see appendLink), and no copy of the values is kept.
type Rows struct {
	b    []byte
	link bool
	n    int
}

// Add starts a row. On a page with RowLinks the row begins with a cell
// that links to url, its row page, with the text label.
func (r *Rows) Add(url, label string) {
	b := r.b
	if r.n > 0 {
		b = append(b, "</tr>\n"...)
	}
	b = append(b, "<tr>"...)
	if r.link {
		b = append(b, `<td class="rowlink">`...)
		b = appendLink(b, url, label)
		b = append(b, "</td>"...)
	}
	r.b = b
	r.n++
}

// Cell adds a cell to the row Add started last.
func (r *Rows) Cell(c Cell) { r.b = appendCell(r.b, c) }

// appendHead writes the header row: a "Link" header when RowLinks, then
// each column with its sort link and arrow.
func (p *TablePage) appendHead(b []byte) []byte {
	b = append(b, "<tr>"...)
	if p.RowLinks {
		b = append(b, `<th scope="col">Link</th>`...)
	}
	for _, c := range p.Columns {
		b = append(b, `<th scope="col" data-column="`...)
		b = appendTemplateEscaped(b, c.Name)
		if c.Sort != "" {
			b = append(b, `" class="sorted-`...)
			b = appendTemplateEscaped(b, c.Sort)
		}
		b = append(b, `">`...)
		if c.SortURL != "" {
			b = append(b, `<a href="`...)
			b = appendTemplateURL(b, c.SortURL)
			b = append(b, `">`...)
			b = appendTemplateEscaped(b, c.Name)
			b = append(b, "</a>"...)
		} else {
			b = appendTemplateEscaped(b, c.Name)
		}
		switch c.Sort {
		case "asc":
			b = append(b, "\u00a0▲"...) // a no-break space: the arrow stays with the name
		case "desc":
			b = append(b, "\u00a0▼"...)
		}
		if len(c.Menu) > 0 {
			b = c.appendMenu(b)
		}
		b = append(b, "</th>"...)
	}
	return append(b, "</tr>"...)
}

// appendMenu writes the column's menu: a <details> whose summary is the
// menu button, holding the actions as links and the column's type.
// lode.js places an open menu over the table (it would be clipped by the
// table's scrolling box) and closes it on a click elsewhere or Escape.
func (c *Column) appendMenu(b []byte) []byte {
	b = append(b, ` <details class="col-menu"><summary title="Column actions" aria-label="Actions for column `...)
	b = appendTemplateEscaped(b, c.Name)
	b = append(b, `">⚙</summary><div class="col-menu-box"><ul>`...)
	for _, l := range c.Menu {
		b = append(b, `<li><a href="`...)
		b = appendTemplateURL(b, l.URL)
		b = append(b, `">`...)
		b = appendTemplateEscaped(b, l.Label)
		b = append(b, "</a></li>"...)
	}
	b = append(b, "</ul>"...)
	if c.Type != "" {
		b = append(b, `<p class="col-type">Type: `...)
		b = appendTemplateEscaped(b, c.Type)
		b = append(b, "</p>"...)
	}
	return append(b, "</div></details>"...)
}

// appendSuggestedFacets writes the comma-separated links of the suggested
// facets.
func (p *TablePage) appendSuggestedFacets(b []byte) []byte {
	for i, f := range p.SuggestedFacets {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = append(b, `<a href="`...)
		b = appendTemplateURL(b, f.URL)
		b = append(b, `">`...)
		b = appendTemplateEscaped(b, f.Label)
		b = append(b, "</a>"...)
	}
	return b
}

// appendFacets writes the facet boxes, each with up to default_facet_size
// values, the selected ones with a link that removes their filter.
func (p *TablePage) appendFacets(b []byte) []byte {
	for _, f := range p.Facets {
		b = append(b, "\n"+`<div class="facet" data-column="`...)
		b = appendTemplateEscaped(b, f.Name)
		b = append(b, `">`+"\n"+`<p class="facet-name"><strong>`...)
		b = appendTemplateEscaped(b, f.Name)
		b = append(b, "</strong>"...)
		if f.Type != "column" {
			b = append(b, " ("...)
			b = appendTemplateEscaped(b, f.Type)
			b = append(b, ")"...)
		}
		if f.RemoveURL != "" {
			b = append(b, ` <a class="remove" href="`...)
			b = appendTemplateURL(b, f.RemoveURL)
			b = append(b, `" title="remove this facet">✖</a>`...)
		}
		b = append(b, "</p>\n<ul>\n"...)
		for _, v := range f.Values {
			if v.Selected {
				b = append(b, `<li class="selected">`...)
			} else {
				b = append(b, "<li>"...)
			}
			b = append(b, `<a href="`...)
			b = appendTemplateURL(b, v.URL)
			b = append(b, `">`...)
			b = appendTemplateEscaped(b, v.Label)
			b = append(b, `</a> <span class="n">`...)
			b = append(b, formatCount(v.Count)...)
			b = append(b, "</span>"...)
			if v.Selected {
				b = append(b, ` <a class="toggle-off" href="`...)
				b = appendTemplateURL(b, v.URL)
				b = append(b, `" title="remove filter">✖</a>`...)
			}
			b = append(b, "</li>\n"...)
		}
		if f.Truncated {
			b = append(b, `<li class="more">…</li>`...)
		}
		b = append(b, "\n</ul>\n</div>\n"...)
	}
	return b
}

// appendFilterRows writes the filter builder's rows: one per active filter
// and an empty one for a new filter. Each lists every column and operator.
func (p *TablePage) appendFilterRows(b []byte) []byte {
	for i, f := range p.Filters {
		b = p.appendFilterRow(b, i+1, f)
	}
	return p.appendFilterRow(b, len(p.Filters)+1, Filter{})
}

func (p *TablePage) appendFilterRow(b []byte, n int, f Filter) []byte {
	b = append(b, `<div class="filter-row">`+"\n"+`<select name="_filter_column_`...)
	b = strconv.AppendInt(b, int64(n), 10)
	b = append(b, `" aria-label="column"><option value="">- column -</option>`...)
	for _, c := range p.FilterColumns {
		b = appendOption(b, c, c, c == f.Column)
	}
	b = append(b, "</select>\n"+`<select name="_filter_op_`...)
	b = strconv.AppendInt(b, int64(n), 10)
	b = append(b, `" aria-label="operator">`...)
	for _, o := range p.Operators {
		b = appendOption(b, o.Value, o.Label, o.Value == f.Op)
	}
	b = append(b, "</select>\n"+`<input type="text" name="_filter_value_`...)
	b = strconv.AppendInt(b, int64(n), 10)
	b = append(b, `" aria-label="value" value="`...)
	b = appendEscaped(b, f.Value)
	return append(b, `">`+"\n"+`<button type="button" class="remove-filter" title="remove this filter" hidden>✖</button>`+"\n</div>\n"...)
}

func appendOption(b []byte, value, label string, selected bool) []byte {
	b = append(b, `<option value="`...)
	b = appendEscaped(b, value)
	if selected {
		b = append(b, `" selected>`...)
	} else {
		b = append(b, `">`...)
	}
	b = appendEscaped(b, label)
	return append(b, "</option>"...)
}

// longCell is the length (in bytes, link label included) above which a
// cell's text may wrap. Shorter values stay on one line, so a narrow
// column never breaks "null" or a date letter by letter; longer ones get
// class "long": a readable minimum width, wrapping anywhere if they must.
const longCell = 40

// shortCell is the length up to which a cell's text never wraps.
const shortCell = 20

// appendCell writes one <td>, like the "cell" template.
func appendCell(b []byte, c Cell) []byte {
	switch {
	case c.Numeric:
		b = append(b, `<td class="num">`...)
	case len(c.Value)+len(c.Label) > longCell:
		b = append(b, `<td class="long">`...)
	case len(c.Value)+len(c.Label) > shortCell:
		b = append(b, `<td class="wrap">`...)
	default:
		b = append(b, "<td>"...)
	}
	switch {
	case c.Null:
		b = append(b, `<span class="null">null</span>`...)
	case c.URL != "" && c.Label != "":
		b = appendLink(b, c.URL, c.Label)
		b = append(b, ` <em class="fk">`...)
		b = appendEscaped(b, c.Value)
		b = append(b, "</em>"...)
	case c.URL != "":
		b = appendLink(b, c.URL, c.Value)
	default:
		b = appendEscaped(b, c.Value)
	}
	return append(b, "</td>"...)
}

// appendLink writes <a href="url">text</a>. A URL with a scheme other
// than http or https becomes "#ZgotmplZ", as in html/template.
func appendLink(b []byte, url, text string) []byte {
	// The scheme is what precedes a ':' that comes before any '/', '?' or
	// '#' (strings.IndexAny would build its byte set on every call).
	for i := 0; i < len(url); i++ {
		if c := url[i]; c == ':' {
			if scheme := url[:i]; !strings.EqualFold(scheme, "http") && !strings.EqualFold(scheme, "https") {
				url = "#ZgotmplZ"
			}
			break
		} else if c == '/' || c == '?' || c == '#' {
			break
		}
	}
	b = append(b, `<a href="`...)
	b = appendEscaped(b, url)
	b = append(b, `">`...)
	b = appendEscaped(b, text)
	return append(b, "</a>"...)
}
