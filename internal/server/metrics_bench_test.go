package server_test

import (
	"context"
	"testing"

	"lode/internal/server"
	"lode/internal/sqlitetest"
)

// BenchmarkRowJSONMetrics is BenchmarkRowJSON's int-pk lookup with the
// metrics setting on (the default: request counters and the counting VFS)
// and off, to show what instrumentation costs a row lookup. Run with
// -count so the two alternate, and compare medians.
func BenchmarkRowJSONMetrics(b *testing.B) {
	for _, metrics := range []string{"on", "off"} {
		b.Run("metrics="+metrics, func(b *testing.B) {
			path := sqlitetest.WriteFixtures(b, b.TempDir())
			srv, err := server.New(context.Background(), server.Config{Files: []string{path},
				Settings: map[string]string{"metrics": metrics}})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { srv.Close() })
			benchGet(b, srv, "/fixtures/cities/7.json")
		})
	}
}
