package query_test

import (
	"database/sql"
	"testing"

	"lode/internal/query"
)

func TestFacets(t *testing.T) {
	db := itemsDB(t)
	items := loadTable(t, db, "items")
	people := loadTable(t, db, "people")
	plain := loadTable(t, db, "plain")
	const base = "http://h:1"
	tests := []struct {
		table *query.Table
		query string
		want  string // JSON of map[column]FacetResult
	}{
		{items, "_facet_array=tags", `{"tags": {"name": "tags", "type": "array", "hideable": true, "toggle_url": "/db/t.json", "truncated": false, "results": [
			{"value": "red", "label": "red", "count": 2, "selected": false, "toggle_url": "http://h:1/db/t.json?_facet_array=tags&tags__arraycontains=red"},
			{"value": "a,b", "label": "a,b", "count": 1, "selected": false, "toggle_url": "http://h:1/db/t.json?_facet_array=tags&tags__arraycontains=a%2Cb"},
			{"value": "green", "label": "green", "count": 1, "selected": false, "toggle_url": "http://h:1/db/t.json?_facet_array=tags&tags__arraycontains=green"},
			{"value": "yellow", "label": "yellow", "count": 1, "selected": false, "toggle_url": "http://h:1/db/t.json?_facet_array=tags&tags__arraycontains=yellow"}]}}`},
		{items, "_facet_array=tags&tags__arraycontains=red", `{"tags": {"name": "tags", "type": "array", "hideable": true, "toggle_url": "/db/t.json?tags__arraycontains=red", "truncated": false, "results": [
			{"value": "red", "label": "red", "count": 2, "selected": true, "toggle_url": "http://h:1/db/t.json?_facet_array=tags"},
			{"value": "green", "label": "green", "count": 1, "selected": false, "toggle_url": "http://h:1/db/t.json?_facet_array=tags&tags__arraycontains=red&tags__arraycontains=green"}]}}`},
		{items, "_facet_date=created", `{"created": {"name": "created", "type": "date", "hideable": true, "toggle_url": "/db/t.json", "truncated": false, "results": [
			{"value": "2024-01-15", "label": "2024-01-15", "count": 2, "selected": false, "toggle_url": "http://h:1/db/t.json?_facet_date=created&created__date=2024-01-15"},
			{"value": "2024-01-16", "label": "2024-01-16", "count": 1, "selected": false, "toggle_url": "http://h:1/db/t.json?_facet_date=created&created__date=2024-01-16"},
			{"value": "2024-02-01", "label": "2024-02-01", "count": 1, "selected": false, "toggle_url": "http://h:1/db/t.json?_facet_date=created&created__date=2024-02-01"}]}}`},
		{items, "_facet=a__b&_facet_size=2&_size=0", `{"a__b": {"name": "a__b", "type": "column", "hideable": true, "toggle_url": "/db/t.json?_facet_size=2&_size=0", "truncated": true, "results": [
			{"value": 1, "label": 1, "count": 2, "selected": false, "toggle_url": "http://h:1/db/t.json?_facet=a__b&_facet_size=2&_size=0&a__b=1"},
			{"value": 2, "label": 2, "count": 1, "selected": false, "toggle_url": "http://h:1/db/t.json?_facet=a__b&_facet_size=2&_size=0&a__b=2"}]}}`},
		{items, "_facet=%7B%22simple%22%3A+%22note%22%7D&note=x", `{"note": {"name": "note", "type": "column", "hideable": true, "toggle_url": "/db/t.json?_facet=%7B%22simple%22%3A+%22note%22%7D&note=x", "truncated": false, "results": [
			{"value": "x", "label": "x", "count": 1, "selected": true, "toggle_url": "http://h:1/db/t.json?_facet=%7B%22simple%22%3A+%22note%22%7D"}]}}`},
		{people, "_facet=city_id&_facet=boss", `{
			"city_id": {"name": "city_id", "type": "column", "hideable": true, "toggle_url": "/db/t.json?_facet=boss", "truncated": false, "results": [
				{"value": 1, "label": "Paris", "count": 2, "selected": false, "toggle_url": "http://h:1/db/t.json?_facet=city_id&_facet=boss&city_id=1"},
				{"value": 2, "label": "Oslo", "count": 1, "selected": false, "toggle_url": "http://h:1/db/t.json?_facet=city_id&_facet=boss&city_id=2"}]},
			"boss": {"name": "boss", "type": "column", "hideable": true, "toggle_url": "/db/t.json?_facet=city_id", "truncated": false, "results": [
				{"value": 1, "label": "1", "count": 2, "selected": false, "toggle_url": "http://h:1/db/t.json?_facet=city_id&_facet=boss&boss=1"}]}}`},
		{plain, "_facet=x&x__not=q", `{"x": {"name": "x", "type": "column", "hideable": true, "toggle_url": "/db/t.json?x__not=q", "truncated": false, "results": [
			{"value": "p", "label": "p", "count": 1, "selected": false, "toggle_url": "http://h:1/db/t.json?_facet=x&x__not=q&x=p"},
			{"value": "r", "label": "r", "count": 1, "selected": false, "toggle_url": "http://h:1/db/t.json?_facet=x&x__not=q&x=r"}]}}`},
	}
	for _, tt := range tests {
		t.Run(tt.table.Name+"?"+tt.query, func(t *testing.T) {
			s := mustBuild(t, tt.table, tt.query)
			req := query.RequestURL{Base: base, Path: "/db/t.json", RawQuery: tt.query}
			got := map[string]query.FacetResult{}
			for _, f := range s.Facets {
				got[f.Column] = runFacetLabels(t, db, f, req)
			}
			compareJSON(t, got, tt.want)
		})
	}
}

// runFacetLabels is runFacet, but a foreign key to a table without a label
// column shows each value's text, as Datasette does.
func runFacetLabels(tb testing.TB, db *sql.DB, f *query.Facet, req query.RequestURL) query.FacetResult {
	res := runFacet(tb, db, f, req)
	if f.LabelKey != nil && loadTable(tb, db, f.LabelKey.OtherTable).LabelColumn == "" {
		for i := range res.Results {
			res.Results[i].Label = query.PyStr(res.Results[i].Value)
		}
	}
	return res
}

func TestSuggestFacets(t *testing.T) {
	db := itemsDB(t)
	items := loadTable(t, db, "items")
	for _, tt := range []struct {
		query string
		want  map[string][]string
	}{
		{"_size=2", map[string][]string{"column": {"a__b"}, "date": {"created"}, "array": {"tags"}}},
		{"_facet=a__b&_facet_array=tags", map[string][]string{"date": {"created"}}},
		{"id__gt=3", map[string][]string{"date": {"created"}, "array": {"tags"}}},
	} {
		s := mustBuild(t, items, tt.query)
		var count int64
		if err := db.QueryRow(s.CountSQL, s.CountArgs...).Scan(&count); err != nil {
			t.Fatal(err)
		}
		got := map[string][]string{}
		req := query.RequestURL{Base: "http://h:1", Path: "/db/items.json", RawQuery: tt.query}
		for _, fs := range s.SuggestFacets() {
			stmt, err := db.Prepare(fs.SQL)
			if err != nil {
				t.Fatalf("prepare %s: %v", fs.SQL, err)
			}
			stmt.Close()
			rows, err := db.Query(fs.SQL, fs.Args...)
			if err != nil {
				continue // e.g. json_type() on text that is not JSON: not suggested
			}
			var vals [][]any
			ok := true
			for rows.Next() {
				r := make([]any, 2)
				dst := []any{&r[0], &r[1]}
				cols, _ := rows.Columns()
				if err := rows.Scan(dst[:len(cols)]...); err != nil {
					t.Fatal(err)
				}
				vals = append(vals, r)
			}
			if rows.Err() != nil {
				ok = false // e.g. json_type() on text that is not JSON
			}
			rows.Close()
			if ok && fs.Accept(vals, count) {
				got[fs.Type] = append(got[fs.Type], fs.Column)
				sf := fs.Suggested(req)
				param := map[string]string{"column": "_facet", "date": "_facet_date", "array": "_facet_array"}[fs.Type]
				want := "http://h:1/db/items.json?" + tt.query + "&" + param + "=" + fs.Column
				if sf.ToggleURL != want || sf.Name != fs.Column {
					t.Errorf("Suggested = %+v; want toggle_url %s", sf, want)
				}
			}
		}
		compareJSON(t, got, toJSON(t, tt.want))
	}
}

// TestQueryStringHelpers: toggle URLs parse and re-encode the query string
// as Python's parse_qsl/urlencode do.
func TestQueryStringHelpers(t *testing.T) {
	req := query.RequestURL{Path: "/p", RawQuery: "a=1;b=2&c=%zz+d&&e=&_facet=x&_facet=y"}
	if got, want := query.PathWithAddedArgs(req, [2]string{"x", "y z"}), "/p?a=1%3Bb%3D2&c=%25zz+d&e=&_facet=x&_facet=y&x=y+z"; got != want {
		t.Errorf("PathWithAddedArgs = %s; want %s", got, want)
	}
	if got, want := query.PathWithAddedArgs(req, [2]string{"_facet", ""}), "/p?a=1%3Bb%3D2&c=%25zz+d&e="; got != want {
		t.Errorf("PathWithAddedArgs(remove) = %s; want %s", got, want)
	}
	y := "y"
	if got, want := query.PathWithRemovedArgs(req, "_facet", &y), "/p?a=1%3Bb%3D2&c=%25zz+d&e=&_facet=x"; got != want {
		t.Errorf("PathWithRemovedArgs = %s; want %s", got, want)
	}
	if got, want := query.PathWithRemovedArgs(query.RequestURL{Path: "/p", RawQuery: "_facet=x"}, "_facet", nil), "/p"; got != want {
		t.Errorf("PathWithRemovedArgs(all) = %s; want %s", got, want)
	}
}

func TestSuggestFacetsIgnoreCol(t *testing.T) {
	db := itemsDB(t)
	s := mustBuild(t, loadTable(t, db, "items"), "_col=name")
	var cols []string
	for _, fs := range s.SuggestFacets() {
		if fs.Type == query.FacetColumn {
			cols = append(cols, fs.Column)
		}
	}
	compareJSON(t, cols, `["id", "name", "tags", "created", "score", "note", "a__b"]`)
}
