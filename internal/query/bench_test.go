package query_test

import (
	"net/url"
	"testing"

	"lode/internal/query"
)

// BenchmarkBuild measures URL -> SQL for typical table requests; it runs on
// every table page, so it should stay a few microseconds.
func BenchmarkBuild(b *testing.B) {
	db := openFixtures(b)
	facetable := loadTable(b, db, "facetable")
	sortable := loadTable(b, db, "sortable")
	for _, bc := range []struct {
		name  string
		table *query.Table
		query string
	}{
		{"plain", facetable, "_size=10"},
		{"filters", facetable, "state=CA&_city_id__gt=1&_neighborhood__contains=town&_size=10"},
		{"sorted-next", sortable, "_sort=sortable&_size=5&_next=-97%2Cd%2Cp"},
		{"facets", facetable, "_facet=state&_facet=_city_id&_facet_array=tags&state=MI"},
	} {
		v, err := url.ParseQuery(bc.query)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := query.Build(bc.table, v, query.DefaultOptions()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	s := mustBuild(b, sortable, "_sort=sortable")
	row := []any{"h", "a", "h-a", int64(-90), 0.24774372359828423, 0.5240685531701745, "$blah"}
	b.Run("next-token", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if s.NextToken(row) == "" {
				b.Fatal("no token")
			}
		}
	})
}
