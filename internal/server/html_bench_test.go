package server_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"lode/internal/server"
	"lode/internal/sqlitetest"
)

// BenchmarkHTMLTablePage compares the HTML table page with the JSON table
// page for the same view (100 rows of the 1,200-row items table). The HTML
// page also counts the rows, looks up suggested facets and renders the
// template; "json-extras" asks the JSON API for the same count and
// suggestions, so html/json-extras is the cost of rendering alone.
func BenchmarkHTMLTablePage(b *testing.B) {
	path := sqlitetest.WriteFixtures(b, b.TempDir())
	srv, err := server.New(context.Background(), server.Config{Files: []string{path}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { srv.Close() })
	for _, bc := range []struct{ name, url string }{
		{"json", "/fixtures/items.json?_size=100"},
		{"json-extras", "/fixtures/items.json?_size=100&_extra=count,suggested_facets"},
		{"html", "/fixtures/items?_size=100"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			req := httptest.NewRequest(http.MethodGet, bc.url, nil)
			for b.Loop() {
				rec := httptest.NewRecorder()
				srv.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatalf("GET %s = %d %s", bc.url, rec.Code, rec.Body)
				}
			}
		})
	}
}
