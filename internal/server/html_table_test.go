package server_test

import (
	"encoding/json"
	"html"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// columnMenus returns, per column of a table page, the labels and URLs of
// its menu's links.
func columnMenus(t *testing.T, body string) map[string]map[string]string {
	t.Helper()
	menus := map[string]map[string]string{}
	th := regexp.MustCompile(`(?s)<th scope="col" data-column="([^"]*)"[^>]*>(.*?)</th>`)
	link := regexp.MustCompile(`<li><a href="([^"]*)">([^<]*)</a></li>`)
	for _, m := range th.FindAllStringSubmatch(body, -1) {
		items := map[string]string{}
		for _, l := range link.FindAllStringSubmatch(m[2], -1) {
			items[html.UnescapeString(l[2])] = html.UnescapeString(l[1])
		}
		menus[html.UnescapeString(m[1])] = items
	}
	if len(menus) == 0 {
		t.Fatalf("no column headers in:\n%s", body)
	}
	return menus
}

func labels(items map[string]string) []string {
	var out []string
	for l := range items {
		out = append(out, l)
	}
	slices.Sort(out)
	return out
}

// TestTablePageColumnMenus: each column's menu offers Datasette's actions
// where they apply, and each action's link shows that view.
func TestTablePageColumnMenus(t *testing.T) {
	base, _ := newTestServer(t, nil)
	page := func(path string) string {
		t.Helper()
		status, _, b := get(t, base, path)
		if status != http.StatusOK {
			t.Fatalf("GET %s = %d: %s", path, status, b)
		}
		return string(b)
	}
	body := page("/fixtures/people")
	if want := `<a href="/fixtures">fixtures</a> <span class="sep">/</span> <a href="/fixtures/people">people</a></nav>`; !strings.Contains(body, want) {
		t.Errorf("breadcrumbs do not reach the table; want %q", want)
	}
	menus := columnMenus(t, body)
	for col, want := range map[string][]string{
		// The single primary key: no facet, never hidden, never blank.
		"id":      {"Sort ascending", "Sort descending"},
		"name":    {"Facet by this", "Hide this column", "Show not-blank rows", "Sort ascending", "Sort descending"},
		"city_id": {"Facet by this", "Hide this column", "Show not-blank rows", "Sort ascending", "Sort descending"},
	} {
		if got := labels(menus[col]); !slices.Equal(got, want) {
			t.Errorf("people column %s menu = %q; want %q", col, got, want)
		}
	}
	if !strings.Contains(body, `<p class="col-type">Type: TEXT</p>`) {
		t.Error("menus do not show the column types")
	}

	// Each link does what it says.
	for _, tc := range []struct{ col, action, wantInURL string }{
		{"name", "Sort descending", "_sort_desc=name"},
		{"name", "Facet by this", "_facet=name"},
		{"city_id", "Hide this column", "_nocol=city_id"},
		{"city_id", "Show not-blank rows", "city_id__notblank=1"},
	} {
		u := menus[tc.col][tc.action]
		if !strings.Contains(u, tc.wantInURL) {
			t.Errorf("%s / %s links to %q; want %s", tc.col, tc.action, u, tc.wantInURL)
		}
		page(u)
	}
	faceted := page(menus["name"]["Facet by this"])
	if !strings.Contains(faceted, `<div class="facet" data-column="name">`) {
		t.Error("'Facet by this' did not show the facet")
	}
	if _, ok := columnMenus(t, faceted)["name"]["Facet by this"]; ok {
		t.Error("a faceted column still offers 'Facet by this'")
	}
	hidden := columnMenus(t, page(menus["city_id"]["Hide this column"]))
	if _, ok := hidden["city_id"]; ok {
		t.Error("'Hide this column' did not hide city_id")
	}
	if u := hidden["name"]["Show all columns"]; u == "" || strings.Contains(u, "_nocol") {
		t.Errorf("with a hidden column, 'Show all columns' = %q; want a link without _nocol", u)
	}
	sorted := columnMenus(t, page(menus["name"]["Sort descending"]))
	if got := labels(sorted["name"]); slices.Contains(got, "Sort descending") || !slices.Contains(got, "Sort ascending") {
		t.Errorf("sorted descending by name, its menu = %q; want ascending only", got)
	}

	// A part of a compound key may be faceted but not hidden.
	if got := labels(columnMenus(t, page("/fixtures/pairs"))["a"]); !slices.Equal(got, []string{"Facet by this", "Sort ascending", "Sort descending"}) {
		t.Errorf("pairs.a menu = %q", got)
	}
	// A rowid table's rowid is its key.
	if got := labels(columnMenus(t, page("/fixtures/items"))["rowid"]); !slices.Equal(got, []string{"Sort ascending", "Sort descending"}) {
		t.Errorf("items.rowid menu = %q", got)
	}
}

// TestTablePageEditSQL: "View and edit SQL" opens the page's own query,
// parameters included, in the SQL editor, where it returns the same rows;
// without execute-sql there is no link.
func TestTablePageEditSQL(t *testing.T) {
	base, _ := newTestServer(t, nil)
	const view = "/fixtures/items?category=toys&price__gt=20&_sort_desc=price&_size=5"
	_, _, b := get(t, base, view)
	m := regexp.MustCompile(`<p class="edit-sql"><a href="([^"]*)">✎ View and edit SQL</a></p>`).FindStringSubmatch(string(b))
	if m == nil {
		t.Fatalf("no View and edit SQL link on %s", view)
	}
	edit := html.UnescapeString(m[1])
	if !strings.HasPrefix(edit, "/fixtures/-/query?sql=") || !strings.Contains(edit, "&p0=toys&p1=20") {
		t.Errorf("edit link = %q; want the editor with p0=toys&p1=20", edit)
	}
	if status, _, page := get(t, base, edit); status != http.StatusOK || !strings.Contains(string(page), "price") {
		t.Errorf("GET %s = %d", edit, status)
	}
	var tableRows, queryRows []map[string]any
	for path, dst := range map[string]*[]map[string]any{
		strings.Replace(view, "items?", "items.json?_shape=array&", 1):       &tableRows,
		strings.Replace(edit, "/-/query?", "/-/query.json?_shape=array&", 1): &queryRows,
	} {
		status, _, body := get(t, base, path)
		if status != http.StatusOK {
			t.Fatalf("GET %s = %d: %s", path, status, body)
		}
		if err := json.Unmarshal(body, dst); err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
	}
	// The page's SQL asks one row more than it shows, to know the next page.
	if len(tableRows) != 5 || len(queryRows) != 6 {
		t.Fatalf("table rows %d, query rows %d; want 5 and 6", len(tableRows), len(queryRows))
	}
	for i := range tableRows {
		if tableRows[i]["rowid"] == nil || tableRows[i]["rowid"] != queryRows[i]["rowid"] || tableRows[i]["price"] != queryRows[i]["price"] {
			t.Errorf("row %d: table %v, query %v", i, tableRows[i], queryRows[i])
		}
	}

	noSQL, _ := newTestServer(t, map[string]string{"allow_sql": "off"})
	if _, _, b := get(t, noSQL, view); strings.Contains(string(b), "View and edit SQL") {
		t.Error("with allow_sql off the page still links to the SQL editor")
	}
}
