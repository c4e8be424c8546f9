package reliability_test

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"lode/internal/query"
)

// Markup payloads planted in names and values. None may reach a page
// unescaped.
const (
	xssScript = `<script>alert(1)</script>`
	xssAttr   = `"><img src=x onerror=alert(2)>`
	xssSVG    = `'><svg onload=alert(3)>`
)

// xssRaw finds any payload rendered as markup, or a javascript: link.
var xssRaw = regexp.MustCompile(`(?i)<script>alert|<img src=x|<svg onload|href="\s*javascript:`)

// TestXSSInHTMLPages plants markup in a database file name, a table name,
// column names, values (including a javascript: URL), facet values, a
// canned query's title and SQL, and URLs of error pages, then fetches
// every HTML page: none may contain the markup unescaped, and each page
// that answers 200 must show the escaped form, so the test cannot pass by
// not rendering them. (Error pages say "Table not found" without the name.)
func TestXSSInHTMLPages(t *testing.T) {
	dir := t.TempDir()
	table := xssScript
	col := xssAttr
	path := newDB(t, dir, "xss.db", "wal",
		"CREATE TABLE "+qi(table)+" (id INTEGER PRIMARY KEY, "+qi(col)+" TEXT, tag TEXT, link TEXT)",
		"INSERT INTO "+qi(table)+" ("+qi(col)+", tag, link) VALUES ("+qs(xssSVG)+", "+qs(xssScript)+", 'javascript:alert(4)'), ("+
			qs(xssScript)+", "+qs(xssScript)+", "+qs(`http://example.com/"><img src=x onerror=alert(5)>`)+")")
	// A second database whose file name itself carries markup.
	odd := filepath.Join(dir, `a'><svg onload=alert(6)>.db`)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(odd, b, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := writeFile(t, dir, "lode.yaml", fmt.Sprintf("databases:\n  xss:\n    queries:\n      q:\n        title: %q\n        description: %q\n        sql: %q\n",
		xssSVG, xssScript, "select "+qs(xssAttr)+" as "+qi(xssAttr)+", :p as p"))
	p := startLode(t, path, odd, "--workers", "0", "--config", cfg)
	c := newClient()
	tbl := url.PathEscape(query.TildeEncode(table))
	colQ := url.QueryEscape(col)
	pages := []string{
		"",
		"xss",
		"xss/" + tbl,
		"xss/" + tbl + "?_facet=tag&_facet=" + colQ,
		"xss/" + tbl + "?_sort=" + colQ,
		"xss/" + tbl + "?tag=" + url.QueryEscape(xssScript),
		"xss/" + tbl + "?_where=" + url.QueryEscape("1 = 1 /* "+xssScript+" */"),
		"xss/" + tbl + "/1",
		"xss/" + tbl + "/2",
		"xss/-/query?sql=" + url.QueryEscape("select "+qs(xssScript)+" as "+qi(xssAttr)),
		"xss/-/query?sql=" + url.QueryEscape("select * from "+qi(xssSVG)), // error page: no such table
		"xss/q?p=" + url.QueryEscape(xssSVG),
		"xss/" + url.PathEscape(query.TildeEncode(xssSVG)),    // 404: no such table
		"xss/" + tbl + "/" + url.PathEscape(xssAttr),          // 404: no such row
		url.PathEscape(query.TildeEncode(xssAttr)),            // 404: no such database
		"xss/" + tbl + "?_size=" + url.QueryEscape(xssScript), // 400 page
	}
	for _, pg := range pages {
		st, body, hdr := do(t, c, "GET", p.Base+pg, "", nil)
		if !strings.HasPrefix(hdr.Get("Content-Type"), "text/html") {
			t.Errorf("/%s: Content-Type %q, want an HTML page (status %d)", pg, hdr.Get("Content-Type"), st)
			continue
		}
		if st >= 500 {
			t.Errorf("/%s: status %d", pg, st)
		}
		if m := xssRaw.FindIndex(body); m != nil {
			lo, hi := max(0, m[0]-120), min(len(body), m[1]+120)
			t.Errorf("/%s (status %d): unescaped markup: …%s…", pg, st, body[lo:hi])
		}
		if st == 200 && !strings.Contains(string(body), "&lt;") {
			t.Errorf("/%s (status %d): no escaped markup at all; the payloads were not rendered", pg, st)
		}
	}
	t.Logf("%d HTML pages checked for %d payloads", len(pages), 6)
}

// qi quotes an SQL identifier; qs quotes an SQL string.
func qi(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
func qs(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
