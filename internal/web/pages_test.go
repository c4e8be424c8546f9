package web_test

import (
	"context"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"lode/internal/config"
	"lode/internal/query"
	"lode/internal/server"
)

// pageSize is the default page size of the test server: small, so that
// the cities table (20 rows) has several pages.
const pageSize = "8"

// startServer serves the HTML fixtures (HTML pages are on by default) through the
// write API (canned queries) like lode serve, on a 127.0.0.1 listener.
func startServer(tb testing.TB) (base, dbPath string) {
	tb.Helper()
	dbPath, cfgPath := writeHTMLFixtures(tb)
	lc, err := config.Load(cfgPath)
	if err != nil {
		tb.Fatal(err)
	}
	srv, err := server.New(context.Background(), server.Config{
		Files: []string{dbPath}, Lode: lc,
		Settings: map[string]string{"default_page_size": pageSize},
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { srv.Close() })
	api, err := server.NewWriteAPI(srv, server.WriteConfig{Secret: []byte("html-test-secret")})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { api.Close() })
	ts := httptest.NewServer(api)
	tb.Cleanup(ts.Close)
	return ts.URL, dbPath
}

func fetch(tb testing.TB, u string) (int, http.Header, string) {
	tb.Helper()
	resp, err := http.Get(u)
	if err != nil {
		tb.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("GET %s: read body: %v", u, err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

// evilPath is the URL path of the hostile table.
var evilPath = "/" + evilDB + "/" + query.TildeEncode(evilTable)

// TestPagesEscapeHostileNames fetches every kind of page over plain HTTP
// for a table whose name, column and values hold markup, quotes and
// unicode, and checks that each shows them as text and never as markup.
func TestPagesEscapeHostileNames(t *testing.T) {
	base, _ := startServer(t)
	sqlText := "select * from " + query.QuoteIdent(evilTable) + " where id = :id"
	pages := []struct {
		path string
		want []string // escaped texts that must appear
	}{
		{"/", []string{html.EscapeString(evilTable)}},
		{"/" + evilDB, []string{html.EscapeString(evilTable), html.EscapeString(evilColumn)}},
		{evilPath, []string{"<title>" + html.EscapeString(evilTable) + ": fixtures</title>",
			"<h1>" + html.EscapeString(evilTable) + "</h1>", html.EscapeString(evilColumn), html.EscapeString(evilValue)}},
		{evilPath + "?_facet=" + url.QueryEscape(evilColumn), []string{html.EscapeString(evilValue)}},
		{evilPath + "/1", []string{html.EscapeString(evilColumn), html.EscapeString(evilValue)}},
		{"/" + evilDB + "/-/query?" + url.Values{"sql": {sqlText}, "id": {"1"}}.Encode(), []string{html.EscapeString(evilValue)}},
	}
	for _, pg := range pages {
		t.Run(pg.path, func(t *testing.T) {
			status, h, body := fetch(t, base+pg.path)
			if status != 200 || !strings.HasPrefix(h.Get("Content-Type"), "text/html") {
				t.Fatalf("GET %s = %d %s\n%s", pg.path, status, h.Get("Content-Type"), body)
			}
			checkNoMarkup(t, body)
			for _, w := range pg.want {
				// html/template escapes quotes as &#34; and &#39;, html.EscapeString as &#34; and &#39; too.
				if !strings.Contains(body, w) {
					t.Errorf("GET %s lacks %q\n%s", pg.path, w, body)
				}
			}
		})
	}
}

// checkNoMarkup fails when the data's markup reached the page unescaped.
func checkNoMarkup(t *testing.T, body string) {
	t.Helper()
	for _, bad := range []string{`<script>alert(`, `<b>col</b>`} {
		if strings.Contains(body, bad) {
			t.Errorf("page contains raw %q", bad)
		}
	}
}

// TestErrorPagesMatchJSON checks that a 404 or 400 for an HTML URL is an
// HTML page with the same status and message as the .json URL's error.
func TestErrorPagesMatchJSON(t *testing.T) {
	base, _ := startServer(t)
	cases := []struct{ htmlPath, jsonPath string }{
		{"/fixtures/no_such_table", "/fixtures/no_such_table.json"},
		{"/no_such_db", "/no_such_db.json"},
		{"/fixtures/cities/9999", "/fixtures/cities/9999.json"},
		{"/fixtures/cities?_sort=nope", "/fixtures/cities.json?_sort=nope"},
		{evilPath + "?_sort=" + url.QueryEscape(evilColumn+"x"), evilPath + ".json?_sort=" + url.QueryEscape(evilColumn+"x")},
		{"/fixtures/-/query?sql=select+*+from+no_such_table", "/fixtures/-/query.json?sql=select+*+from+no_such_table"},
		{"/fixtures/-/query?sql=update+cities+set+name%3D1", "/fixtures/-/query.json?sql=update+cities+set+name%3D1"},
	}
	for _, c := range cases {
		t.Run(c.htmlPath, func(t *testing.T) {
			jStatus, _, jBody := fetch(t, base+c.jsonPath)
			var e struct {
				Error  string `json:"error"`
				Status int    `json:"status"`
			}
			if err := json.Unmarshal([]byte(jBody), &e); err != nil || e.Error == "" || jStatus < 400 {
				t.Fatalf("GET %s = %d %s; want a JSON error", c.jsonPath, jStatus, jBody)
			}
			status, h, body := fetch(t, base+c.htmlPath)
			if status != jStatus || !strings.HasPrefix(h.Get("Content-Type"), "text/html") {
				t.Fatalf("GET %s = %d %s; want %d text/html", c.htmlPath, status, h.Get("Content-Type"), jStatus)
			}
			if !strings.Contains(body, html.EscapeString(e.Error)) {
				t.Errorf("GET %s: page lacks the JSON error %q\n%s", c.htmlPath, e.Error, body)
			}
			checkNoMarkup(t, body)
		})
	}
}

// TestCannedQueryPages covers a canned read query's page and the CSRF
// protected form of a canned write query over plain HTTP.
func TestCannedQueryPages(t *testing.T) {
	base, _ := startServer(t)
	status, _, body := fetch(t, base+"/fixtures/people_in_city?city=3")
	if status != 200 || !strings.Contains(body, "Person 2<") || !strings.Contains(body, `name="city" value="3"`) {
		t.Fatalf("read query page = %d\n%s", status, body)
	}

	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Jar: jar}
	resp, err := client.Get(base + "/fixtures/add_message")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := regexp.MustCompile(`name="csrftoken" value="([0-9a-f]{64})"`).FindStringSubmatch(string(b))
	if resp.StatusCode != 200 || m == nil {
		t.Fatalf("write query page = %d, no csrftoken field\n%s", resp.StatusCode, b)
	}
	post := func(c *http.Client, form url.Values) (int, string) {
		t.Helper()
		resp, err := c.PostForm(base+"/fixtures/add_message", form)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	// Without the cookie (a cross-site form), or with a wrong token: refused.
	for name, tc := range map[string]struct {
		c    *http.Client
		form url.Values
	}{
		"no cookie":   {http.DefaultClient, url.Values{"message": {"x"}, "csrftoken": {m[1]}}},
		"wrong token": {client, url.Values{"message": {"x"}, "csrftoken": {strings.Repeat("a", 64)}}},
		"no token":    {client, url.Values{"message": {"x"}}},
	} {
		if status, body := post(tc.c, tc.form); status != 403 || !strings.Contains(body, "CSRF") {
			t.Errorf("%s: POST = %d; want 403 CSRF page\n%s", name, status, body)
		}
	}
	// An API client with a bearer token is not a browser form: no CSRF
	// check, the JSON API answers (here 401: the token is not valid).
	req, _ := http.NewRequest("POST", base+"/fixtures/add_message", strings.NewReader("message=x"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer not-a-token")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 401 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Errorf("POST with a bearer token = %v %v; want the JSON API's 401", resp, err)
	} else {
		resp.Body.Close()
	}
	status, body = post(client, url.Values{"message": {evilValue}, "csrftoken": {m[1]}})
	if status != 200 || !strings.Contains(body, "Message added") {
		t.Fatalf("POST with token = %d\n%s", status, body)
	}
	_, _, j := fetch(t, base+"/fixtures/guestbook.json?_shape=array")
	var rows []map[string]any
	if err := json.Unmarshal([]byte(j), &rows); err != nil || len(rows) != 1 || rows[0]["message"] != evilValue {
		t.Fatalf("guestbook after one POST = %s (%v); want exactly the posted message", j, err)
	}
}

// TestTablePageSearch checks the full-text search box of an FTS-indexed
// table: it is shown, keeps the term, and the rows are the matches.
func TestTablePageSearch(t *testing.T) {
	base, _ := startServer(t)
	status, _, body := fetch(t, base+"/fixtures/docs?_search=dog")
	if status != 200 || !strings.Contains(body, `name="_search" value="dog"`) {
		t.Fatalf("GET /fixtures/docs?_search=dog = %d, no search box with the term\n%s", status, body)
	}
	for _, want := range []string{"2 rows", "Dogs", "Birds"} {
		if !strings.Contains(body, want) {
			t.Errorf("search page lacks %q", want)
		}
	}
	if strings.Contains(body, "Cats") {
		t.Errorf("search page shows Cats, which does not match dog")
	}
	// A table without FTS has no search box.
	if _, _, body := fetch(t, base+"/fixtures/cities"); strings.Contains(body, `name="_search"`) {
		t.Errorf("cities (no FTS) shows a search box")
	}
}
