package server

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
)

// routeMux has the read routes' patterns (routes.go); each handler records
// which pattern matched and its path values.
func routeMux(got *[4]string) *http.ServeMux {
	m := http.NewServeMux()
	rec := func(name string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			*got = [4]string{name, r.PathValue("db"), r.PathValue("table"), r.PathValue("pk")}
		}
	}
	m.HandleFunc("GET /{$}", rec("index"))
	m.HandleFunc("GET /-/{file}", rec("meta"))
	m.HandleFunc("GET /{db}", rec("db"))
	m.HandleFunc("GET /{db}/-/{file}", rec("dbmeta"))
	m.HandleFunc("GET /{db}/{table}", rec("table"))
	m.HandleFunc("GET /{db}/{table}/{pk}", rec("row"))
	m.HandleFunc("/", rec("other"))
	return m
}

// checkRowJSONPath: whenever rowJSONPath takes a request, the mux would
// have routed it to the row handler with the same path values.
func checkRowJSONPath(t *testing.T, method, rawPath string) (taken bool) {
	t.Helper()
	u, err := url.Parse("http://x" + rawPath)
	if err != nil || u.Path == "" {
		return false
	}
	r := httptest.NewRequest(method, "http://x/", nil)
	r.URL = u
	r.RequestURI = rawPath
	db, table, pk, ok := rowJSONPath(r)
	if !ok {
		return false
	}
	var got [4]string
	rr := httptest.NewRecorder()
	routeMux(&got).ServeHTTP(rr, r)
	if want := [4]string{"row", db, table, pk}; got != want || rr.Code != http.StatusOK {
		t.Errorf("%s %s: fast path %q, mux %q (status %d)", method, rawPath, want, got, rr.Code)
	}
	return true
}

func TestRowJSONPathAgreesWithMux(t *testing.T) {
	taken := []string{
		"/fixtures/facetable/1.json",
		"/fixtures/table%20with%20spaces/a~2Fb.json",
		"/fixtures/compound_three_primary_keys/a,b,c.json",
		"/db/t%2Fx/%C3%BC.json",
		"/db/t/..x.json",
		"/db/t/%2E%2E.json",
		"/db/t/.json",
	}
	for _, p := range taken {
		if !checkRowJSONPath(t, http.MethodGet, p) {
			t.Errorf("GET %s: fast path declined", p)
		}
	}
	declined := []string{
		"/fixtures/facetable/1", "/fixtures/facetable/1.csv", "/fixtures/facetable.json",
		"/fixtures/-/query.json", "/-/static/x.json", "/-/a/b.json", "//facetable/1.json",
		"/fixtures//1.json", "/fixtures/./1.json", "/fixtures/../x/1.json", "/a/b/c/d.json",
		"/a/b/c.json/", "/a/b/%zz.json", "/a/%2F/c.json",
	}
	for _, p := range declined {
		if checkRowJSONPath(t, http.MethodGet, p) {
			t.Errorf("GET %s: fast path taken", p)
		}
	}
	if checkRowJSONPath(t, http.MethodPost, "/fixtures/facetable/1.json") {
		t.Error("POST took the fast path")
	}
	checkRowJSONPath(t, http.MethodHead, "/fixtures/facetable/1.json")
}

func FuzzRowJSONPath(f *testing.F) {
	for _, s := range []string{"/a/b/c.json", "/a/%2F/c.json", "/a/-/c.json", "//b/c.json", "/a/b/../c.json"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		checkRowJSONPath(t, http.MethodGet, p)
	})
}
