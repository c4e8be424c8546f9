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

// BenchmarkKeysetPage runs one later page of 100 rows from a 200,000-row
// table with an index on the sort column, for each kind of token. With
// keyset pagination and the two-arm form for NULLs these stay index range
// reads; compare `old-or-desc`, the single "a OR b IS NULL" condition
// Datasette uses, which SQLite answers by sorting every matching row.
func BenchmarkKeysetPage(b *testing.B) {
	db := openDB(b,
		`create table t (id integer primary key, s integer, c text)`,
		`with recursive r(i) as (select 1 union all select i+1 from r where i < 200000)
		 insert into t select i, case when i % 10 = 0 then null else (i * 7919) % 1000 end, 'x' || i from r`,
		`create index t_s on t (s)`,
		`analyze`,
	)
	tab := loadTable(b, db, "t")
	for _, bc := range []struct{ name, query string }{
		{"pk", "_next=150000&_size=100"},
		{"asc", "_sort=s&_next=900%2C0&_size=100"},
		{"desc", "_sort_desc=s&_next=900%2C0&_size=100"},
		{"asc-null", "_sort=s&_next=%24null%2C150000&_size=100"},
		{"desc-null", "_sort_desc=s&_next=%24null%2C150000&_size=100"},
	} {
		s := mustBuild(b, tab, bc.query)
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				if rows := queryRows(b, db, s.SQL, s.Args...); len(rows) == 0 {
					b.Fatal("no rows")
				}
			}
		})
	}
	b.Run("old-or-desc", func(b *testing.B) {
		q := `select id, s, c from t where (s < ? or s is null or (s = ? and id > ?)) order by s desc, id limit 101`
		for b.Loop() {
			queryRows(b, db, q, 900, 900, 0)
		}
	})
}
