package server_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"lode/internal/server"
	"lode/internal/sqlitedb"
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

// BenchmarkBigTablePage serves pages of a 2,000,000-row table with
// count_time_limit_ms and facet_time_limit_ms at 50: page 1 with the count
// (which gives up at the limit and reports count_timed_out), deep keyset
// pages (by key and by an indexed sort column), and a facet that is cut
// off at its limit. Page cost must not grow with the table.
func BenchmarkBigTablePage(b *testing.B) {
	path := sqlitetest.WriteFixtures(b, b.TempDir())
	{
		db := sqlitetest.MustOpenDBWith(b, path, sqlitedb.Settings{})
		if _, err := db.WriteDB().Exec(`CREATE TABLE big (id INTEGER PRIMARY KEY, k INTEGER, v TEXT);
			WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 2000000)
			INSERT INTO big SELECT x, x % 1000, 'value ' || x FROM c;
			CREATE INDEX big_k ON big (k)`); err != nil {
			b.Fatal(err)
		}
	}
	srv, err := server.New(context.Background(), server.Config{Files: []string{path}, Settings: map[string]string{
		"count_time_limit_ms": "50", "facet_time_limit_ms": "50",
	}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { srv.Close() })
	b.Run("page1+count", func(b *testing.B) { benchGet(b, srv, "/fixtures/big.json?_size=10&_extra=count") })
	b.Run("deep-page", func(b *testing.B) { benchGet(b, srv, "/fixtures/big.json?_size=10&_next=1900000") })
	b.Run("sorted-deep-page", func(b *testing.B) { benchGet(b, srv, "/fixtures/big.json?_size=10&_sort=k&_next=500%2C500500") })
	b.Run("facet", func(b *testing.B) { benchGet(b, srv, "/fixtures/big.json?_size=10&_facet=k") })
}
