package server_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"lode/internal/server"
	"lode/internal/sqlitetest"
)

// benchServer serves the sqlitetest fixtures in-process; requests go
// straight to ServeHTTP so the numbers are the handler's own cost.
func benchServer(b *testing.B) http.Handler {
	b.Helper()
	path := sqlitetest.WriteFixtures(b, b.TempDir())
	srv, err := server.New(context.Background(), server.Config{Files: []string{path}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { srv.Close() })
	return srv
}

func benchGet(b *testing.B, h http.Handler, path string) {
	b.Helper()
	req := httptest.NewRequest("GET", path, nil)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 200 {
		b.Fatalf("GET %s = %d: %s", path, rec.Code, rec.Body)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req.Clone(req.Context()))
			if rec.Code != 200 {
				b.Errorf("GET %s = %d", path, rec.Code)
				return
			}
		}
	})
}

// BenchmarkRowJSON is one row by primary key (/DB/TABLE/PK.json).
func BenchmarkRowJSON(b *testing.B) {
	h := benchServer(b)
	b.Run("int-pk", func(b *testing.B) { benchGet(b, h, "/fixtures/cities/7.json") })
	b.Run("text-pk", func(b *testing.B) { benchGet(b, h, "/fixtures/people/p042.json") })
	b.Run("rowid", func(b *testing.B) { benchGet(b, h, "/fixtures/items/42.json") })
}

// BenchmarkTablePage10WithCount is a 10-row table page with the count.
func BenchmarkTablePage10WithCount(b *testing.B) {
	h := benchServer(b)
	benchGet(b, h, "/fixtures/items.json?_size=10&_extra=count")
}

// BenchmarkSQLCount is ?sql=select count(*).
func BenchmarkSQLCount(b *testing.B) {
	h := benchServer(b)
	benchGet(b, h, "/fixtures/-/query.json?sql="+url.QueryEscape("select count(*) from items"))
}
