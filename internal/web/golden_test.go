package web_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"lode/internal/web"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// goldenTablePages are table pages whose HTML is kept in
// testdata/NAME.html. The table page's content is written in Go (table.go)
// rather than by a template; the golden files were first written by the
// html/template version, so they pin down that the move kept every byte,
// and now keep the page from changing by accident.
func goldenTablePages() map[string]*web.TablePage {
	// URLs html/template filters, normalizes or passes through as they are.
	urls := []string{"/s?" + evil, "javascript:x", "mailto:a@b", "?a:b", "/a b/%zz/%41/ü", "HTTPS://x/\x00+", "data:x", "//h/p?q=1&r=+", ""}
	var cols []web.Column
	var suggested []web.Link
	var values []web.FacetValue
	for i, u := range urls {
		cols = append(cols, web.Column{Name: evil + "+\x00" + u, Sort: []string{"", "asc", "desc"}[i%3], SortURL: u,
			Menu: []web.Link{{Label: "Sort ascending", URL: u}, {Label: evil + u, URL: "/m?" + u}}, Type: evil})
		suggested = append(suggested, web.Link{Label: evil + u, URL: u})
		values = append(values, web.FacetValue{Label: evil + u, Count: int64(i * 1000), URL: u, Selected: i%2 == 0})
	}
	hostile := func(rowLinks bool) *web.TablePage {
		return &web.TablePage{Chrome: chrome(), Database: evil, Table: evil, TableURL: "/db/" + evil,
			Count: 2, CountKnown: true, RowLinks: rowLinks,
			Columns:         cols,
			WriteRows:       rows(row{"/r", evil, []web.Cell{{Value: evil, URL: "/" + evil, Label: evil}}}, row{cells: []web.Cell{{Null: true}}}),
			Filters:         []web.Filter{{Column: evil, Op: "exact", Value: evil}},
			FilterColumns:   []string{evil},
			Operators:       []web.Option{{Value: "exact", Label: "="}, {Value: evil, Label: evil}},
			Hidden:          []web.Param{{Name: evil, Value: evil}, {Name: "+\x00", Value: "a+b"}},
			Searchable:      true,
			Search:          evil,
			Description:     evil,
			Facets:          []web.Facet{{Name: evil, Type: "column", Values: values, RemoveURL: "/x?" + evil, Truncated: true}, {Name: "b+", Type: "array", Values: values[:2]}},
			SuggestedFacets: suggested,
			NextURL:         "/n?_next=" + evil,
			SQL:             "select " + evil,
			EditSQLURL:      "/db/-/query?sql=" + evil,
		}
	}
	return map[string]*web.TablePage{
		"table_hostile":          hostile(true),
		"table_hostile_no_links": hostile(false),
		// A view with no rows whose count timed out.
		"table_empty": {Chrome: web.Chrome{Title: "v: db", Heading: "v", JSONURL: "/db/v.json"}, Table: "v", TableURL: "/db/v",
			Columns: []web.Column{{Name: "a", SortURL: "/db/v?_sort=a"}}, FilterColumns: []string{"a"},
			Operators: []web.Option{{Value: "exact", Label: "="}}},
		// One row, the count known, one filter and a search.
		// Its columns have menus; its cells are short, medium and long.
		"table_one_row": {Chrome: web.Chrome{Title: "t: db", Heading: "t", Crumbs: []web.Link{{Label: "db", URL: "/db"}, {Label: "t", URL: "/db/t"}}, CSVURL: "/db/t.csv"},
			Table: "t", TableURL: "/db/t", Count: 1, CountKnown: true, RowLinks: true, Searchable: true,
			Columns: []web.Column{{Name: "id", Sort: "desc", SortURL: "/db/t?_sort=id", Type: "INTEGER",
				Menu: []web.Link{{Label: "Sort ascending", URL: "/db/t?_sort=id"}}}, {Name: "n"},
				{Name: "s", Type: "TEXT NOT NULL", Menu: []web.Link{{Label: "Facet by this", URL: "/db/t?_facet=s"}, {Label: "Hide this column", URL: "/db/t?_nocol=s"}}}},
			WriteRows: rows(row{"/db/t/1", "1", []web.Cell{{Value: "1", Numeric: true}, {Value: "2.5", Numeric: true},
				{Value: "2019-01-14 08:00:00"}, {Value: "a value that is longer than twenty"}, {Value: strings.Repeat("long ", 9)}}}),
			EditSQLURL: "/db/-/query?sql=select+*+from+t+where+n+%3E+%3Ap0&p0=2",
			Filters:    []web.Filter{{Column: "n", Op: "gt", Value: "2"}}, FilterColumns: []string{"id", "n"},
			Operators: []web.Option{{Value: "exact", Label: "="}, {Value: "gt", Label: ">"}, {Value: "isnull__1", Label: "is null"}},
			Hidden:    []web.Param{{Name: "_sort_desc", Value: "id"}}, Description: "where n > 2 sorted by id descending"},
	}
}

func TestTablePageGolden(t *testing.T) {
	tpl := mustNew(t)
	for name, pg := range goldenTablePages() {
		t.Run(name, func(t *testing.T) {
			var b bytes.Buffer
			if err := tpl.Table(&b, pg); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", name+".html")
			if *update {
				if err := os.MkdirAll("testdata", 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to write it)", err)
			}
			if !bytes.Equal(b.Bytes(), want) {
				t.Errorf("table page %s differs from %s (go test -update rewrites it):\n%s", name, path, b.Bytes())
			}
		})
	}
}
