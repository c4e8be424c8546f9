package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"lode/internal/query"
	"lode/internal/shot"
	"lode/internal/shot/shottest"
)

// The browser tests drive lode serve's HTML pages in headless Chromium the
// way a person would: clicking links, filling forms. They share one browser
// (shottest.Shared); each test has its own server and tab. Without Chromium
// they skip, unless LODE_REQUIRE_BROWSER=1 (CI) makes that a failure.

func TestMain(m *testing.M) { os.Exit(shottest.Main(m)) }

// shotsEnv names a directory where journeys also save their screenshots,
// for looking at them after the run (they always go to the test's temp dir).
const shotsEnv = "LODE_HTML_SHOTS"

// journey is one test's browser tab on one test server.
type journey struct {
	t    *testing.T
	tab  context.Context
	base string
}

// TestJourneys runs the journeys of the issue against one server, each in
// its own tab: browse index → database → table, filter, facet, paginate,
// follow a foreign key from a row, run a query with a parameter, see an
// SQL error, submit a canned write form, and hostile names.
func TestJourneys(t *testing.T) {
	b := shottest.Shared(t)
	base, _ := startServer(t)
	for _, jt := range []struct {
		name string
		fn   func(*journey)
	}{
		{"IndexToTable", journeyIndexToTable},
		{"Filter", journeyFilter},
		{"Facet", journeyFacet},
		{"Pagination", journeyPagination},
		{"RowAndForeignKey", journeyRowAndForeignKey},
		{"Query", journeyQuery},
		{"CannedWrite", journeyCannedWrite},
		{"HostileNames", journeyHostileNames},
		{"ColumnMenuOnPhone", journeyColumnMenuOnPhone},
	} {
		t.Run(jt.name, func(t *testing.T) {
			// Journeys touch different tables (only CannedWrite writes, to
			// its own table), so they run side by side in their own tabs.
			t.Parallel()
			jt.fn(newJourney(t, b, base))
		})
	}
}

func newJourney(t *testing.T, b *shot.Browser, base string) *journey {
	t.Helper()
	j := &journey{t: t, tab: shottest.NewTab(t, b), base: base}
	j.do(chromedp.EmulateViewport(1100, 800))
	return j
}

// waitTimeout bounds each wait for the page to reach a state.
const waitTimeout = 30 * time.Second

func (j *journey) do(actions ...chromedp.Action[chromedp.Void]) {
	j.t.Helper()
	if err := chromedp.Do(j.tab, actions...); err != nil {
		j.t.Fatalf("browser: %v", err)
	}
}

// eval evaluates a JavaScript expression in the page.
func eval[T any](j *journey, expr string) T {
	j.t.Helper()
	v, err := chromedp.Run(j.tab, chromedp.Evaluate[T](expr))
	if err != nil {
		j.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

func (j *journey) location() string {
	j.t.Helper()
	loc, err := chromedp.Run(j.tab, chromedp.Location())
	if err != nil {
		j.t.Fatal(err)
	}
	return loc
}

// open loads path and waits for the page's <h1>.
func (j *journey) open(path string) {
	j.t.Helper()
	j.do(chromedp.Navigate(j.base+path), chromedp.WaitReady(chromedp.CSS("h1")))
}

// waitFor polls the JavaScript expression until it is true.
func (j *journey) waitFor(expr string) {
	j.t.Helper()
	if _, err := chromedp.Run(j.tab, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(waitTimeout), chromedp.WithPollingInterval(20*time.Millisecond))); err != nil {
		j.t.Fatalf("waiting for %s (at %s): %v", expr, j.location(), err)
	}
}

// clickAndLoad clicks the element, waits for the page it navigates to,
// then waits until the JavaScript condition (on location) holds there.
func (j *journey) clickAndLoad(sel, hrefCond string) {
	j.t.Helper()
	j.navigateBy(chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible), hrefCond)
}

// navigateBy runs an action that navigates and waits as clickAndLoad does.
func (j *journey) navigateBy(a chromedp.Action[chromedp.Void], hrefCond string) {
	j.t.Helper()
	ctx, cancel := context.WithTimeout(j.tab, waitTimeout)
	defer cancel()
	if _, err := chromedp.RunResponse(ctx, a); err != nil {
		j.t.Fatalf("navigate (at %s): %v", j.location(), err)
	}
	j.waitFor(`document.readyState === "complete" && (` + hrefCond + `)`)
}

// clickJS is an action that clicks the element a JavaScript expression finds.
func clickJS(expr string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.Evaluate[bool]("("+expr+").click(), true")(ctx, t)
		return err
	})
}

func (j *journey) text(sel string) string {
	j.t.Helper()
	return eval[string](j, fmt.Sprintf(`(document.querySelector(%q) || {textContent: ""}).textContent.trim()`, sel))
}

// shot saves a full-page PNG screenshot under the test's temp dir.
func (j *journey) shot(name string) {
	j.t.Helper()
	png, err := chromedp.Run(j.tab, chromedp.FullScreenshot(100))
	if err != nil {
		j.t.Fatalf("screenshot %s: %v", name, err)
	}
	if len(png) < 8 || string(png[1:4]) != "PNG" {
		j.t.Fatalf("screenshot %s: not a PNG (%d bytes)", name, len(png))
	}
	path := filepath.Join(j.t.TempDir(), name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		j.t.Fatal(err)
	}
	j.t.Logf("screenshot %s", path)
	if dir := os.Getenv(shotsEnv); dir != "" {
		if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
			j.t.Errorf("copy screenshot to %s: %v", shotsEnv, err)
		}
	}
}

// column returns the texts of the cells of the results table's column.
func (j *journey) column(name string) []string {
	j.t.Helper()
	return eval[[]string](j, fmt.Sprintf(`(() => {
		const ths = [...document.querySelectorAll("table.rows thead th")];
		const i = ths.findIndex(th => th.dataset.column === %q);
		if (i < 0) return [];
		return [...document.querySelectorAll("table.rows tbody tr")].map(tr => tr.children[i].textContent.trim());
	})()`, name))
}

// jsonCount asks the JSON API how many rows match a table query.
func (j *journey) jsonCount(pathAndQuery string) int64 {
	j.t.Helper()
	status, _, body := fetch(j.t, j.base+pathAndQuery)
	var v struct {
		Count int64 `json:"count"`
	}
	if err := json.Unmarshal([]byte(body), &v); err != nil || status != 200 {
		j.t.Fatalf("GET %s = %d %s", pathAndQuery, status, body)
	}
	return v.Count
}

func journeyIndexToTable(j *journey) {
	t := j.t
	j.open("/")
	j.clickAndLoad(`a[href="/fixtures"]`, `location.pathname === "/fixtures"`)
	if got := j.text("h1"); got != "fixtures" {
		t.Errorf("database page h1 = %q; want fixtures", got)
	}
	j.shot("database")
	j.clickAndLoad(`.dbtable a[href="/fixtures/people"]`, `location.pathname === "/fixtures/people"`)
	title := eval[string](j, `document.title`)
	if title != "people: fixtures" || j.text("h1") != "people" {
		t.Errorf("table page title %q, h1 %q; want people: fixtures, people", title, j.text("h1"))
	}
	if got := len(j.column("name")); got != 8 {
		t.Errorf("people page shows %d rows; want a page of 8", got)
	}
	j.shot("table")
}

func journeyFilter(j *journey) {
	t := j.t
	j.open("/fixtures/items")
	before := len(j.column("name"))
	j.do(
		chromedp.SetValue(chromedp.CSS(`select[name="_filter_column_1"]`), "category"),
		chromedp.SetValue(chromedp.CSS(`select[name="_filter_op_1"]`), "exact"),
		chromedp.SendKeys(chromedp.CSS(`input[name="_filter_value_1"]`), "food"),
	)
	j.clickAndLoad(`button.apply`, `location.search.includes("category__exact=food")`)
	cats := j.column("category")
	if len(cats) == 0 || before == 0 {
		t.Fatalf("rows before %d, after filter %d", before, len(cats))
	}
	for _, c := range cats {
		if c != "food" {
			t.Fatalf("after filtering category = food the page shows category %q", c)
		}
	}
	want := j.jsonCount("/fixtures/items.json?category__exact=food&_extra=count&_size=0")
	if got := j.text("p.count"); !strings.HasPrefix(got, fmt.Sprintf("%d rows where", want)) {
		t.Errorf("count line %q; want %d rows where ...", got, want)
	}

	// Add a second filter with the Add filter button, then remove it again.
	j.do(chromedp.Click(chromedp.CSS(`button.add-filter`), chromedp.NodeVisible))
	j.waitFor(`document.querySelectorAll(".filter-row").length === 3`)
	j.do(
		chromedp.SetValue(chromedp.CSS(`select[name="_filter_column_3"]`), "price"),
		chromedp.SetValue(chromedp.CSS(`select[name="_filter_op_3"]`), "gt"),
		chromedp.SendKeys(chromedp.CSS(`input[name="_filter_value_3"]`), "40"),
	)
	j.clickAndLoad(`button.apply`, `location.search.includes("price__gt=40")`)
	want2 := j.jsonCount("/fixtures/items.json?category__exact=food&price__gt=40&_extra=count&_size=0")
	if want2 >= want || !strings.HasPrefix(j.text("p.count"), fmt.Sprintf("%d rows", want2)) {
		t.Errorf("two filters: count line %q; want %d rows (fewer than %d)", j.text("p.count"), want2, want)
	}
	j.shot("filter")
	// Remove the category filter (the first row) and apply: only price is left.
	j.do(chromedp.Click(chromedp.CSS(`.filter-row .remove-filter`), chromedp.NodeVisible))
	j.clickAndLoad(`button.apply`, `!location.search.includes("category") && location.search.includes("price__gt=40")`)
	if got, want3 := j.text("p.count"), j.jsonCount("/fixtures/items.json?price__gt=40&_extra=count&_size=0"); !strings.HasPrefix(got, fmt.Sprintf("%d rows", want3)) {
		t.Errorf("after removing a filter: count line %q; want %d rows", got, want3)
	}
}

func journeyFacet(j *journey) {
	t := j.t
	j.open("/fixtures/items?_facet=category")
	n := eval[int64](j, `(() => {
		const a = [...document.querySelectorAll('.facet[data-column="category"] li a')].find(a => a.textContent === "toys");
		return a ? Number(a.parentElement.querySelector(".n").textContent.replace(/,/g, "")) : -1;
	})()`)
	if n <= 0 {
		t.Fatalf("no toys value with a count in the category facet")
	}
	j.navigateBy(clickJS(`[...document.querySelectorAll('.facet[data-column="category"] li a')].find(a => a.textContent === "toys")`),
		`location.search.includes("category=toys")`)
	if got := j.text(`.facet[data-column="category"] li.selected a`); got != "toys" {
		t.Errorf("selected facet value = %q; want toys", got)
	}
	if got := j.text("p.count"); !strings.HasPrefix(got, fmt.Sprintf("%d rows", n)) {
		t.Errorf("after toggling toys on, count line %q; want the facet's %d rows", got, n)
	}
	j.shot("facet")
	j.clickAndLoad(`.facet[data-column="category"] li.selected a`, `!location.search.includes("category=toys")`)
	if got := j.text(`.facet[data-column="category"] li.selected`); got != "" {
		t.Errorf("after toggling toys off a value is still selected: %q", got)
	}
}

// journeyColumnMenuOnPhone uses the table page at phone width: short
// values keep to one line, a column's menu opens inside the window over
// the table, closes with Escape, and its links facet and hide the column;
// "View and edit SQL" opens the page's query in the SQL editor.
func journeyColumnMenuOnPhone(j *journey) {
	t := j.t
	j.do(chromedp.EmulateViewport(390, 844))
	j.open("/fixtures/items")
	// Lines per cell: the distinct tops of its text's line boxes.
	broken := eval[[]string](j, `[...document.querySelectorAll("table.rows tbody td")].filter(td => {
		const text = td.textContent.trim();
		if (text === "" || text.length > 20) return false;
		const r = document.createRange(); r.selectNodeContents(td);
		return new Set([...r.getClientRects()].map(x => Math.round(x.top))).size > 1;
	}).map(td => td.textContent.trim())`)
	if len(broken) > 0 {
		t.Errorf("short values wrapped over several lines at phone width: %q", broken)
	}
	if got := j.text("nav.crumbs"); got != "home / fixtures / items" {
		t.Errorf("breadcrumbs %q; want home / fixtures / items", got)
	}
	const menu = `document.querySelector('th[data-column="category"] details.col-menu')`
	j.do(chromedp.Click(chromedp.CSS(`th[data-column="category"] summary`), chromedp.NodeVisible))
	j.waitFor(menu + `.open`)
	// The page's script moves the menu inside the window once it opens:
	// wait (bounded) for it to get there.
	j.waitFor(`(() => {
		const r = ` + menu + `.querySelector(".col-menu-box").getBoundingClientRect();
		return r.width > 0 && r.left >= 0 && r.right <= innerWidth && r.bottom <= innerHeight;
	})()`)
	j.shot("column-menu-phone")
	j.do(chromedp.KeyEvent("\x1b")) // Escape
	j.waitFor("!" + menu + ".open")

	j.do(chromedp.Click(chromedp.CSS(`th[data-column="category"] summary`), chromedp.NodeVisible))
	j.waitFor(menu + `.open`)
	j.navigateBy(clickJS(`[...`+menu+`.querySelectorAll("a")].find(a => a.textContent === "Facet by this")`),
		`location.search.includes("_facet=category")`)
	if !eval[bool](j, `!!document.querySelector('.facet[data-column="category"]')`) {
		t.Error("'Facet by this' shows no category facet")
	}
	j.do(chromedp.Click(chromedp.CSS(`th[data-column="price"] summary`), chromedp.NodeVisible))
	j.navigateBy(clickJS(`[...document.querySelectorAll('th[data-column="price"] a')].find(a => a.textContent === "Hide this column")`),
		`location.search.includes("_nocol=price")`)
	if len(j.column("price")) != 0 || len(j.column("name")) == 0 {
		t.Error("'Hide this column' did not hide price (or hid everything)")
	}

	rows := len(j.column("name"))
	j.clickAndLoad(`p.edit-sql a`, `location.pathname === "/fixtures/-/query"`)
	if got := eval[string](j, `document.querySelector("textarea").value`); !strings.Contains(got, `from "items"`) {
		t.Errorf("the SQL editor shows %q; want the table page's query", got)
	}
	// The page's query asks for one row more than it shows.
	if got := eval[int](j, `document.querySelectorAll("table.rows tbody tr").length`); got != rows+1 {
		t.Errorf("the editor's query returned %d rows; want the page's %d plus one", got, rows)
	}
}

func journeyPagination(j *journey) {
	t := j.t
	j.open("/fixtures/cities")
	seen := map[string]bool{}
	pages := 0
	for ; pages < 10; pages++ { // 20 rows at 8 a page: 3 pages
		for _, id := range j.column("id") {
			if seen[id] {
				t.Errorf("row %s shown twice", id)
			}
			seen[id] = true
		}
		if !eval[bool](j, `!!document.querySelector("a.next")`) {
			break
		}
		j.clickAndLoad(`a.next`, fmt.Sprintf(`location.href !== %q`, j.location()))
	}
	if pages+1 != 3 || len(seen) != 20 {
		t.Errorf("walked %d pages showing %d distinct rows; want 3 pages, 20 rows", pages+1, len(seen))
	}
	j.shot("last-page")
}

func journeyRowAndForeignKey(j *journey) {
	t := j.t
	j.open("/fixtures/people")
	// Person 1 (id "a/b") lives in city 2: the FK cell shows the label.
	link := `table.rows tbody tr:first-child a[href^="/fixtures/cities/"]`
	if got := j.text(link); got != "City 2" {
		t.Fatalf("first person's city link text = %q; want the label City 2", got)
	}
	j.clickAndLoad(link, `location.pathname === "/fixtures/cities/2"`)
	if got := j.text("h1"); got != "cities: 2" {
		t.Errorf("row page h1 = %q; want cities: 2", got)
	}
	peopleLink := `.incoming li[data-table="people"] a`
	incoming := j.text(peopleLink)
	want := j.jsonCount("/fixtures/people.json?city_id=2&_extra=count&_size=0")
	if incoming != fmt.Sprintf("%d rows", want) {
		t.Errorf("links from other tables = %q; want %d rows", incoming, want)
	}
	j.shot("row")
	j.clickAndLoad(peopleLink, `location.pathname === "/fixtures/people" && location.search.includes("city_id__exact=2")`)
	if got := len(j.column("id")); int64(got) != min(want, 8) {
		t.Errorf("people linking to city 2: page shows %d rows; want %d", got, min(want, 8))
	}
}

func journeyQuery(j *journey) {
	t := j.t
	j.open("/fixtures/-/query")
	j.do(
		chromedp.SetValue(chromedp.CSS(`#sql-box`), "select id, name from cities where id = :id"),
	)
	j.clickAndLoad(`form.sql button[type=submit]`, `location.search.includes("sql=")`)
	j.do(chromedp.SendKeys(chromedp.CSS(`#param-id`), "3"))
	j.clickAndLoad(`form.sql button[type=submit]`, `location.search.includes("id=3")`)
	cells := eval[[]string](j, `[...document.querySelectorAll("table.rows tbody td")].map(td => td.textContent)`)
	if strings.Join(cells, "|") != "3|City 3" {
		t.Errorf("query with :id = 3 shows %q; want 3|City 3", cells)
	}
	j.shot("query")

	j.do(chromedp.SetValue(chromedp.CSS(`#sql-box`), "select * from no_such_table"))
	j.clickAndLoad(`form.sql button[type=submit]`, `location.search.includes("no_such_table")`)
	if got := j.text(".query-error"); got != "no such table: no_such_table" {
		t.Errorf("SQL error shown as %q; want SQLite's message", got)
	}
	j.shot("query-error")
}

func journeyCannedWrite(j *journey) {
	t := j.t
	j.open("/fixtures")
	j.clickAndLoad(`.queries a[href="/fixtures/add_message"]`, `location.pathname === "/fixtures/add_message"`)
	j.do(chromedp.SendKeys(chromedp.CSS(`#param-message`), "hello from Chromium ✓"))
	j.clickAndLoad(`form.sql button[type=submit]`, `!!document.querySelector(".message")`)
	if got := j.text(".message-ok"); got != "Message added" {
		t.Errorf("after submitting the write form the page says %q (error: %q); want Message added", got, j.text(".message-error"))
	}
	j.shot("canned-write")
	j.open("/fixtures/guestbook")
	if got := j.column("message"); len(got) != 1 || got[0] != "hello from Chromium ✓" {
		t.Errorf("guestbook rows = %q; want the one submitted message", got)
	}
}

func journeyHostileNames(j *journey) {
	t := j.t
	j.open(evilPath + "?_facet=" + query.TildeEncode("city_id"))
	title := eval[string](j, `document.title`)
	scripts := eval[int](j, `document.scripts.length`)
	if title != evilTable+": fixtures" || j.text("h1") != evilTable {
		t.Errorf("title %q, h1 %q; want the table name as text", title, j.text("h1"))
	}
	if scripts != 1 {
		t.Errorf("page has %d <script> elements; want only lode.js", scripts)
	}
	if got := j.column(evilColumn); len(got) == 0 || got[0] != evilValue {
		t.Errorf("first value of the hostile column = %q; want %q", got, evilValue)
	}
	// Phone width: the page must still fit (the table scrolls inside its box).
	j.do(chromedp.EmulateViewport(390, 800))
	if eval[bool](j, `document.documentElement.scrollWidth > window.innerWidth + 1`) {
		t.Errorf("at 390px width the page scrolls sideways")
	}
	j.shot("hostile-phone")
}
