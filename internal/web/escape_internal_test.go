package web

import (
	"html"
	"html/template"
	"strconv"
	"strings"
	"testing"
)

// escapeCorpus holds strings that exercise every escaping rule: markup,
// both quotes, &, +, NUL, non-ASCII and invalid UTF-8, URL schemes safe
// and unsafe, relative URLs with a colon, and valid and broken %XX escapes.
var escapeCorpus = []string{
	"", "plain", `<script>alert("x")</script>'"&ünï☃`, "a+b c", "\x00nul", "bad\xffutf8\xc3",
	"javascript:alert(1)", "JavaScript:x", " javascript:x", "mailto:a@b", "MAILTO:a@b", "HTTP://x", "https://h/p?q=1&r=+#f",
	"data:text/html,<b>", "?a:b", "/a:b", "a/b:c", "//h/p", "/a b/%zz/%41/%4/%", "/p?x=%2B&y=\"'<>`", "/ü/☃?q=ü",
	"/!$&*+,;=:@[]-._~()'", "\t\n\r\f", "&amp;", "&#43;",
}

// templateExec runs src, an html/template, on data.
func templateExec(t testing.TB, src string, data any) string {
	t.Helper()
	var b strings.Builder
	if err := template.Must(template.New("x").Parse(src)).Execute(&b, data); err != nil {
		t.Fatalf("execute %q: %v", src, err)
	}
	return b.String()
}

// checkEscapers compares the Go writers with html/template and
// html.EscapeString on s.
func checkEscapers(t testing.TB, s string) {
	t.Helper()
	// A prefix checks that the writers append rather than overwrite.
	got := string(appendTemplateEscaped([]byte("x"), s))
	if want := "x" + templateExec(t, `{{.}}`, s); got != want {
		t.Errorf("appendTemplateEscaped(%q) = %q; html/template text = %q", s, got, want)
	}
	if want := templateExec(t, `<p title="x{{.}}">`, s); `<p title="`+got+`">` != want {
		t.Errorf("appendTemplateEscaped(%q) = %q; html/template attribute = %q", s, got, want)
	}
	got = string(appendTemplateURL([]byte("x"), s))
	if want := templateExec(t, `<a href="{{.}}">`, s); `<a href="`+got[1:]+`">` != want || got[0] != 'x' {
		t.Errorf("appendTemplateURL(%q) = %q; html/template href = %q", s, got, want)
	}
	got = string(appendEscaped([]byte("x"), s))
	if want := "x" + html.EscapeString(s); got != want {
		t.Errorf("appendEscaped(%q) = %q; html.EscapeString = %q", s, got, want)
	}
}

// TestEscapersMatchTemplate checks that the parts of a page written in Go
// escape exactly as html/template (and html.EscapeString for rows) did.
func TestEscapersMatchTemplate(t *testing.T) {
	for _, s := range escapeCorpus {
		checkEscapers(t, s)
	}
}

func FuzzEscapersMatchTemplate(f *testing.F) {
	for _, s := range escapeCorpus {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) { checkEscapers(t, s) })
}

// The table page's header, suggested facets and facets as html/template
// wrote them before they moved to Go (the header's column menus and the
// no-break space before the sort arrow came later, written here as the
// template would); the Go writers must match them byte for byte.
const (
	oldHead = `{{if .RowLinks}}<th scope="col">Link</th>{{end}}{{range .Columns}}<th scope="col" data-column="{{.Name}}"{{if .Sort}} class="sorted-{{.Sort}}"{{end}}>{{if .SortURL}}<a href="{{.SortURL}}">{{.Name}}</a>{{else}}{{.Name}}{{end}}{{if eq .Sort "asc"}}` + "\u00a0▲" + `{{else if eq .Sort "desc"}}` + "\u00a0▼" + `{{end}}` +
		`{{if .Menu}} <details class="col-menu"><summary title="Column actions" aria-label="Actions for column {{.Name}}">⚙</summary><div class="col-menu-box"><ul>{{range .Menu}}<li><a href="{{.URL}}">{{.Label}}</a></li>{{end}}</ul>{{if .Type}}<p class="col-type">Type: {{.Type}}</p>{{end}}</div></details>{{end}}</th>{{end}}`
	oldSuggested = `{{range $i, $f := .SuggestedFacets}}{{if $i}}, {{end}}<a href="{{$f.URL}}">{{$f.Label}}</a>{{end}}`
	oldFacets    = `{{range .Facets}}
<div class="facet" data-column="{{.Name}}">
<p class="facet-name"><strong>{{.Name}}</strong>{{if ne .Type "column"}} ({{.Type}}){{end}}{{if .RemoveURL}} <a class="remove" href="{{.RemoveURL}}" title="remove this facet">✖</a>{{end}}</p>
<ul>
{{range .Values}}<li{{if .Selected}} class="selected"{{end}}><a href="{{.URL}}">{{.Label}}</a> <span class="n">{{count .Count}}</span>{{if .Selected}} <a class="toggle-off" href="{{.URL}}" title="remove filter">✖</a>{{end}}</li>
{{end}}{{if .Truncated}}<li class="more">…</li>{{end}}
</ul>
</div>
{{end}}`
)

func TestTablePartsMatchTemplate(t *testing.T) {
	p := &TablePage{RowLinks: true}
	for i, s := range escapeCorpus {
		col := Column{Name: s, Sort: []string{"", "asc", "desc"}[i%3], SortURL: escapeCorpus[(i+1)%len(escapeCorpus)]}
		if i%4 != 0 {
			col.Menu = []Link{{Label: s, URL: escapeCorpus[(i+2)%len(escapeCorpus)]}, {Label: "Sort ascending", URL: "/t?_sort=" + s}}
			col.Type = escapeCorpus[(i+3)%len(escapeCorpus)]
		}
		p.Columns = append(p.Columns, col)
		p.SuggestedFacets = append(p.SuggestedFacets, Link{Label: s, URL: escapeCorpus[(i+3)%len(escapeCorpus)]})
	}
	for i, s := range escapeCorpus {
		f := Facet{Name: s, Type: []string{"column", "array", "date"}[i%3], Truncated: i%2 == 0, RemoveURL: escapeCorpus[(i+5)%len(escapeCorpus)]}
		for j, u := range escapeCorpus[:i%5+1] {
			f.Values = append(f.Values, FacetValue{Label: s + u, Count: int64(i*12345 - j), URL: u, Selected: j%2 == 1})
		}
		p.Facets = append(p.Facets, f)
	}
	p.Facets = append(p.Facets, Facet{Name: "empty", Type: "column"})
	noLinks := *p
	noLinks.RowLinks = false
	for _, tc := range []struct {
		name     string
		page     *TablePage
		got      func(*TablePage, []byte) []byte
		template string
	}{
		{"appendHead", p, (*TablePage).appendHead, "<tr>" + oldHead + "</tr>"},
		{"appendHead without row links", &noLinks, (*TablePage).appendHead, "<tr>" + oldHead + "</tr>"},
		{"appendSuggestedFacets", p, (*TablePage).appendSuggestedFacets, oldSuggested},
		{"appendFacets", p, (*TablePage).appendFacets, oldFacets},
	} {
		tpl := template.Must(template.New("x").Funcs(template.FuncMap{"count": countAny}).Parse(tc.template))
		var want strings.Builder
		if err := tpl.Execute(&want, tc.page); err != nil {
			t.Fatal(err)
		}
		if got := string(tc.got(tc.page, nil)); got != want.String() {
			t.Errorf("%s differs from html/template:\n got %q\nwant %q", tc.name, got, want.String())
		}
	}
}

// TestLayoutMatchesTemplate checks that the table page's layout, written in
// Go (Chrome.appendTop, appendBottom), is what base.html's "top" and
// "bottom" templates write, for hostile titles, crumbs and URLs.
func TestLayoutMatchesTemplate(t *testing.T) {
	tpl, err := New()
	if err != nil {
		t.Fatal(err)
	}
	layout := tpl.pages[pageIndex] // any page: all share base.html
	var chromes []Chrome
	for i, s := range escapeCorpus {
		u := escapeCorpus[(i+1)%len(escapeCorpus)]
		c := Chrome{Title: s, Heading: s + "h"}
		for j := range i % 3 {
			c.Crumbs = append(c.Crumbs, Link{Label: s + strconv.Itoa(j), URL: escapeCorpus[(i+j+2)%len(escapeCorpus)]})
		}
		switch i % 4 {
		case 1:
			c.JSONURL = u
		case 2:
			c.CSVURL = u
		case 3:
			c.JSONURL, c.CSVURL = u, s
		}
		chromes = append(chromes, c)
	}
	for _, c := range chromes {
		for _, part := range []struct {
			name   string
			append func(*Chrome, []byte) []byte
		}{{"top", (*Chrome).appendTop}, {"bottom", (*Chrome).appendBottom}} {
			var want strings.Builder
			if err := layout.ExecuteTemplate(&want, part.name, &c); err != nil {
				t.Fatal(err)
			}
			if got := string(part.append(&c, nil)); got != want.String() {
				t.Errorf("Chrome.append%s(%+v) differs from base.html's %q:\n got %q\nwant %q", part.name, c, part.name, got, want.String())
			}
		}
	}
}
