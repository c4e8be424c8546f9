package web_test

import (
	"bytes"
	"io/fs"
	"strings"
	"testing"

	"lode/internal/web"
)

// evil is a value that breaks out of any context it is pasted into unescaped.
const evil = `<script>alert("x")</script>'"&ünï☃`

// evilEscaped is how html/template writes evil as element text.
const evilEscaped = `&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&#39;&#34;&amp;ünï☃`

func mustNew(t *testing.T) *web.Templates {
	t.Helper()
	tpl, err := web.New()
	if err != nil {
		t.Fatalf("New() = %v", err)
	}
	return tpl
}

func chrome() web.Chrome {
	return web.Chrome{
		Title:   evil + " title",
		Heading: evil,
		Crumbs:  []web.Link{{Label: evil, URL: "/" + evil}},
		JSONURL: "/db/t.json?x=" + evil,
		CSVURL:  "/db/t.csv",
	}
}

// row is one row of a table page in these tests: the link to its row
// page and its cells.
type row struct {
	url, label string
	cells      []web.Cell
}

// rows returns a TablePage.WriteRows that writes rs.
func rows(rs ...row) func(*web.Rows) {
	return func(r *web.Rows) {
		for _, x := range rs {
			r.Add(x.url, x.label)
			for _, c := range x.cells {
				r.Cell(c)
			}
		}
	}
}

// TestPagesEscapeEverything renders every page with hostile strings in every
// field and checks that no raw markup from the data reaches the output.
func TestPagesEscapeEverything(t *testing.T) {
	tpl := mustNew(t)
	cell := web.Cell{Value: evil, URL: "/" + evil, Label: evil}
	pages := []struct {
		name   string
		render func(*bytes.Buffer) error
	}{
		{"index", func(b *bytes.Buffer) error {
			return tpl.Index(b, &web.IndexPage{Chrome: chrome(), Databases: []web.IndexDatabase{{
				Name: evil, URL: "/" + evil, Tables: 3, Size: 2048, TopTables: []web.Link{{Label: evil, URL: "/x"}}, MoreTables: 2,
			}}})
		}},
		{"database", func(b *bytes.Buffer) error {
			return tpl.Database(b, &web.DatabasePage{Chrome: chrome(), Name: evil, QueryURL: "/db/-/query",
				Tables:       []web.DatabaseTable{{Name: evil, URL: "/db/" + evil, Count: 1234, CountKnown: true, Columns: []string{evil}, FTS: true}},
				HiddenTables: []web.DatabaseTable{{Name: evil, URL: "/db/h"}},
				Views:        []web.Link{{Label: evil, URL: "/v"}},
				Queries:      []web.CannedLink{{Name: evil, Title: evil, URL: "/q", Description: evil, Write: true}},
			})
		}},
		{"table", func(b *bytes.Buffer) error {
			return tpl.Table(b, &web.TablePage{Chrome: chrome(), Database: evil, Table: evil, TableURL: "/db/" + evil,
				Count: 2, CountKnown: true, RowLinks: true,
				Columns:         []web.Column{{Name: evil, Sort: "asc", SortURL: "/s?" + evil}},
				WriteRows:       rows(row{"/r", evil, []web.Cell{cell}}, row{cells: []web.Cell{{Null: true}}}),
				Filters:         []web.Filter{{Column: evil, Op: "exact", Value: evil}},
				FilterColumns:   []string{evil},
				Operators:       []web.Option{{Value: "exact", Label: "="}, {Value: evil, Label: evil}},
				Hidden:          []web.Param{{Name: evil, Value: evil}},
				Searchable:      true,
				Search:          evil,
				Description:     evil,
				Facets:          []web.Facet{{Name: evil, Type: "column", Values: []web.FacetValue{{Label: evil, Count: 5, URL: "/f?" + evil, Selected: true}}}},
				SuggestedFacets: []web.Link{{Label: evil, URL: "/sf"}},
				NextURL:         "/n?_next=" + evil,
				SQL:             "select " + evil,
			})
		}},
		{"row", func(b *bytes.Buffer) error {
			return tpl.Row(b, &web.RowPage{Chrome: chrome(), Database: evil, Table: evil,
				Fields:   []web.Field{{Name: evil, Cell: cell}},
				Incoming: []web.IncomingLink{{Table: evil, Column: evil, Count: 3, URL: "/i?" + evil}},
			})
		}},
		{"query", func(b *bytes.Buffer) error {
			return tpl.Query(b, &web.QueryPage{Chrome: chrome(), Database: evil, Action: "/db/-/query", SQL: evil, Editable: true,
				Params: []web.Param{{Name: evil, Value: evil}}, Ran: true, Columns: []string{evil}, Rows: [][]web.Cell{{cell}},
				Canned: &web.CannedLink{Name: evil, Description: evil}, CSRFToken: evil, Message: evil, EditURL: "/e?" + evil,
			})
		}},
		{"query error", func(b *bytes.Buffer) error {
			return tpl.Query(b, &web.QueryPage{Chrome: chrome(), Action: "/db/-/query", SQL: evil, Editable: true, Ran: true, Error: evil})
		}},
		{"error", func(b *bytes.Buffer) error {
			return tpl.Error(b, &web.ErrorPage{Chrome: chrome(), Status: 404, Message: evil})
		}},
	}
	for _, p := range pages {
		t.Run(p.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := p.render(&b); err != nil {
				t.Fatalf("render: %v", err)
			}
			out := b.String()
			// The page's own script tag is the only one allowed.
			if n := strings.Count(out, "<script"); n > 1 || (n == 1 && !strings.Contains(out, `<script src="/-/static/lode.js"></script>`)) {
				t.Errorf("output has a raw <script> from the data:\n%s", out)
			}
			if strings.Contains(out, `alert("x")`) {
				t.Errorf("output has the unescaped value:\n%s", out)
			}
			if !strings.Contains(out, evilEscaped) {
				t.Errorf("output lacks the escaped value %q:\n%s", evilEscaped, out)
			}
			if !strings.Contains(out, "<title>"+evilEscaped+" title</title>") {
				t.Errorf("title not escaped as expected:\n%s", out)
			}
		})
	}
}

func TestTablePageShowsFilterLabelsAndSort(t *testing.T) {
	tpl := mustNew(t)
	var b bytes.Buffer
	err := tpl.Table(&b, &web.TablePage{
		Chrome: web.Chrome{Title: "db: t", Heading: "t"}, TableURL: "/db/t", Count: 1234567, CountKnown: true,
		Columns: []web.Column{{Name: "a", Sort: "desc", SortURL: "/db/t?_sort=a"}, {Name: "b", SortURL: "/db/t?_sort=b"}},
		WriteRows: rows(row{cells: []web.Cell{{Value: "1", Numeric: true}, {Value: "x"}}},
			row{cells: []web.Cell{{Value: "2", URL: "javascript:alert(1)"}, {Value: "y", URL: "JavaScript:x", Label: "l"}}}),
		Filters:       []web.Filter{{Column: "a", Op: "gt", Value: "3"}},
		Description:   `where a > 3 sorted by a descending`,
		FilterColumns: []string{"a", "b"},
		Operators:     []web.Option{{Value: "exact", Label: "="}, {Value: "gt", Label: ">"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		`1,234,567 rows where a &gt; 3 sorted by a descending`,
		`class="sorted-desc"><a href="/db/t?_sort=a">a</a>` + "\u00a0▼",
		`<option value="gt" selected>&gt;</option>`,
		`<option value="a" selected>a</option>`,
		`name="_filter_column_2"`,
		`<td class="num">1</td>`,
		// Only http(s) and relative URLs become links, as html/template does.
		`<td><a href="#ZgotmplZ">2</a></td><td><a href="#ZgotmplZ">l</a> <em class="fk">y</em></td>`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table page lacks %q:\n%s", want, out)
		}
	}
	// One row per active filter plus one empty row for a new filter.
	if got := strings.Count(out, `class="filter-row"`); got != 2 {
		t.Errorf("filter rows = %d; want 2", got)
	}
}

// TestGoRenderedTableEscapes checks the parts of the table page written
// in Go rather than by html/template (header, rows, facets, suggested
// facets): a column name, value, label or facet value holding markup,
// quotes and & shows as text in each of them.
func TestGoRenderedTableEscapes(t *testing.T) {
	tpl := mustNew(t)
	var b bytes.Buffer
	err := tpl.Table(&b, &web.TablePage{
		Chrome: web.Chrome{Title: "t", Heading: "t"}, TableURL: "/db/t", RowLinks: true,
		Columns: []web.Column{{Name: evil, Sort: "asc", SortURL: "/db/t?_sort_desc=" + evil,
			Menu: []web.Link{{Label: evil, URL: "/db/t?_facet=" + evil}}, Type: evil}},
		EditSQLURL: "/db/-/query?sql=" + evil,
		WriteRows: rows(row{"/db/t/" + evil, evil, []web.Cell{{Value: evil}}},
			row{"/db/t/2", "2", []web.Cell{{Value: evil, URL: "/db/o/" + evil, Label: evil}}}),
		Facets:          []web.Facet{{Name: evil, Type: "column", Values: []web.FacetValue{{Label: evil, Count: 1, URL: "/db/t?x=" + evil, Selected: true}}}},
		SuggestedFacets: []web.Link{{Label: evil, URL: "/db/t?_facet=" + evil}},
	})
	if err != nil {
		t.Fatal(err)
	}
	out := b.String()
	// html/template's URL escaping, which the header and facets keep.
	evilURL := `%3cscript%3ealert%28%22x%22%29%3c/script%3e%27%22&amp;%c3%bcn%c3%af%e2%98%83`
	for _, want := range []string{
		`<th scope="col" data-column="` + evilEscaped + `" class="sorted-asc"><a href="/db/t?_sort_desc=` + evilURL + `">` + evilEscaped + `</a>` + "\u00a0▲" + ` <details class="col-menu">` +
			`<summary title="Column actions" aria-label="Actions for column ` + evilEscaped + `">⚙</summary><div class="col-menu-box"><ul>` +
			`<li><a href="/db/t?_facet=` + evilURL + `">` + evilEscaped + `</a></li></ul><p class="col-type">Type: ` + evilEscaped + `</p></div></details></th>`,
		`<p class="edit-sql"><a href="/db/-/query?sql=` + evilURL + `">✎ View and edit SQL</a></p>`,
		// evil is 38 bytes: a cell that may wrap; with its label it is long.
		`<tr><td class="rowlink"><a href="/db/t/` + evilEscaped + `">` + evilEscaped + `</a></td><td class="wrap">` + evilEscaped + `</td></tr>`,
		`<td class="long"><a href="/db/o/` + evilEscaped + `">` + evilEscaped + `</a> <em class="fk">` + evilEscaped + `</em></td>`,
		`<div class="facet" data-column="` + evilEscaped + `">`,
		`<li class="selected"><a href="/db/t?x=` + evilURL + `">` + evilEscaped + `</a> <span class="n">1</span> <a class="toggle-off" href="/db/t?x=` + evilURL + `"`,
		`Suggested facets: <a href="/db/t?_facet=` + evilURL + `">` + evilEscaped + `</a></p>`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table page lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "<script>") || strings.Contains(out, `alert("x")`) {
		t.Errorf("table page has the raw value:\n%s", out)
	}
}

func TestStaticAssets(t *testing.T) {
	for _, name := range []string{"lode.css", "lode.js"} {
		b, err := fs.ReadFile(web.Static(), name)
		if err != nil || len(b) == 0 {
			t.Errorf("Static() %s: %d bytes, %v", name, len(b), err)
		}
	}
}
