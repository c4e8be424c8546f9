package server_test

import (
	"fmt"
	"net/url"
	"testing"

	"lode/internal/sqlitetest"
)

// TestPaginationVisitsEveryRowOnce walks next tokens (from the JSON "next"
// and from next_url) for each key kind and several sort orders, including
// sorts over columns with NULLs, and checks every row is seen exactly once.
func TestPaginationVisitsEveryRowOnce(t *testing.T) {
	base, _ := newTestServer(t, nil)
	cases := []struct {
		table string
		query string
		key   func(map[string]any) string
		want  int
	}{
		{"items", "_size=97", func(r map[string]any) string { return fmt.Sprint(r["rowid"]) }, sqlitetest.ItemsRows},
		{"items", "_size=50&_sort=price", func(r map[string]any) string { return fmt.Sprint(r["rowid"]) }, sqlitetest.ItemsRows},
		{"items", "_size=70&_sort_desc=category", func(r map[string]any) string { return fmt.Sprint(r["rowid"]) }, sqlitetest.ItemsRows},
		{"items", "_size=100&_sort=created&category__notnull=1", func(r map[string]any) string { return fmt.Sprint(r["rowid"]) }, sqlitetest.ItemsRows - sqlitetest.ItemsRows/7},
		{"cities", "_size=3", func(r map[string]any) string { return fmt.Sprint(r["id"]) }, sqlitetest.CitiesRows},
		{"cities", "_size=3&_sort_desc=name", func(r map[string]any) string { return fmt.Sprint(r["id"]) }, sqlitetest.CitiesRows},
		{"people", "_size=7", func(r map[string]any) string { return fmt.Sprint(r["id"]) }, sqlitetest.PeopleRows},
		{"people", "_size=9&_sort=city_id", func(r map[string]any) string { return fmt.Sprint(r["id"]) }, sqlitetest.PeopleRows},
		{"pairs", "_size=13", func(r map[string]any) string { return fmt.Sprint(r["a"], "|", r["b"]) }, sqlitetest.PairsRows},
		{"pairs", "_size=11&_sort_desc=value", func(r map[string]any) string { return fmt.Sprint(r["a"], "|", r["b"]) }, sqlitetest.PairsRows},
		{"pairs", "_size=17&_sort=value", func(r map[string]any) string { return fmt.Sprint(r["a"], "|", r["b"]) }, sqlitetest.PairsRows},
	}
	for _, tc := range cases {
		t.Run(tc.table+"?"+tc.query, func(t *testing.T) {
			seen := map[string]bool{}
			path := "/fixtures/" + tc.table + ".json?" + tc.query + "&_extra=next_url"
			for pages := 0; ; pages++ {
				if pages > tc.want+1 {
					t.Fatalf("more pages than rows: pagination does not advance")
				}
				m := getJSON(t, base, path, 200)
				for _, r := range m["rows"].([]any) {
					k := tc.key(r.(map[string]any))
					if seen[k] {
						t.Fatalf("row %s seen twice (page %d)", k, pages)
					}
					seen[k] = true
				}
				next, _ := m["next"].(string)
				if next == "" {
					if m["next_url"] != nil {
						t.Errorf("next is null but next_url = %v", m["next_url"])
					}
					break
				}
				// Alternate between following next_url and building the URL
				// from the token, so both stay consistent.
				if pages%2 == 0 {
					u, err := url.Parse(m["next_url"].(string))
					if err != nil {
						t.Fatal(err)
					}
					if u.Query().Get("_next") != next {
						t.Fatalf("next_url %s does not carry next %q", u, next)
					}
					path = u.RequestURI()
				} else {
					path = "/fixtures/" + tc.table + ".json?" + tc.query + "&_extra=next_url&_next=" + url.QueryEscape(next)
				}
			}
			if len(seen) != tc.want {
				t.Fatalf("visited %d rows; want %d", len(seen), tc.want)
			}
		})
	}
}
