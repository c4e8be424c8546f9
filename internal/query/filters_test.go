package query_test

import (
	"database/sql"
	"fmt"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"lode/internal/query"
)

func itemsDB(tb testing.TB) *sql.DB {
	return openDB(tb,
		`create table items (id integer primary key, name text, tags text, created text, score real, note, "a__b" integer)`,
		`insert into items values (1, 'apple', '["red","green"]', '2024-01-15 10:00:00', 1.5, null, 1)`,
		`insert into items values (2, 'banana', '["yellow"]', '2024-01-16', 2, '', 2)`,
		`insert into items values (3, 'cherry', '["red", "red"]', '2024-01-15', 10, 'x', 1)`,
		`insert into items values (4, null, '[]', null, null, 'y', null)`,
		`insert into items values (5, 'a%b_c', '["a,b"]', '2024-02-01', -1, ' ', 3)`,
		`create virtual table items_fts using fts5 (name, note, content="items", content_rowid="id")`,
		`insert into items_fts (rowid, name, note) select id, name, note from items`,
		`create table cities (id integer primary key, name text)`,
		`insert into cities values (1, 'Paris'), (2, 'Oslo')`,
		`create table people (id integer primary key, city_id integer references cities(id), boss integer references people(id))`,
		`insert into people values (1, 1, null), (2, 2, 1), (3, 1, 1)`,
		`create table plain (x text)`,
		`insert into plain values ('p'), ('q'), ('r')`,
		`create view v as select id, name from items`,
	)
}

// TestFilters runs every operator (and _where, _search) against a real
// table: the SQL must prepare and select exactly the expected rows, and the
// human description must read like Datasette's.
func TestFilters(t *testing.T) {
	db := itemsDB(t)
	items := loadTable(t, db, "items")
	tests := []struct {
		query string
		ids   []int64
		human string
	}{
		{"", []int64{1, 2, 3, 4, 5}, ""},
		{"name=apple", []int64{1}, `where name = "apple"`},
		{"name__exact=apple", []int64{1}, `where name = "apple"`},
		{"id__exact=3", []int64{3}, `where id = 3`},
		{"name__not=apple", []int64{2, 3, 5}, `where name != "apple"`},
		{"id__not=3", []int64{1, 2, 4, 5}, `where id != 3`},
		{"name__contains=an", []int64{2}, `where name contains "an"`},
		{"name__endswith=y", []int64{3}, `where name ends with "y"`},
		{"name__startswith=b", []int64{2}, `where name starts with "b"`},
		{"score__gt=2", []int64{3}, `where score > 2`},
		{"score__gte=2", []int64{2, 3}, "where score \u2265 2"},
		{"score__lt=2", []int64{1, 5}, `where score < 2`},
		{"score__lte=1.5", []int64{1, 5}, "where score \u2264 1.5"},
		{"name__like=%25e%25", []int64{1, 3}, `where name like "%e%"`},
		{"name__notlike=%25e%25", []int64{2, 5}, `where name not like "%e%"`},
		{"name__glob=*an*", []int64{2}, `where name glob "*an*"`},
		{"id__in=1,+3", []int64{1, 3}, `where id in ["1", "3"]`},
		{"id__in=%5B2%2C%224%22%5D", []int64{2, 4}, `where id in [2, "4"]`},
		{"name__in=%5B%22a%25b_c%22%2C+null%5D", []int64{5}, `where name in ["a%b_c", null]`},
		{"id__in=%5B%5D", nil, `where id in []`},
		{"id__notin=1,3", []int64{2, 4, 5}, `where id not in ["1", "3"]`},
		{"tags__arraycontains=red", []int64{1, 3}, `where tags contains "red"`},
		{"tags__arraynotcontains=red", []int64{2, 4, 5}, `where tags does not contain "red"`},
		{"tags__arraycontains=a,b", []int64{5}, `where tags contains "a,b"`},
		{"created__date=2024-01-15", []int64{1, 3}, `where "created" is on date 2024-01-15`},
		{"name__isnull=1", []int64{4}, `where name is null`},
		{"name__notnull=1", []int64{1, 2, 3, 5}, `where name is not null`},
		{"note__isblank=1", []int64{1, 2}, `where note is blank`},
		{"note__notblank=1", []int64{3, 4, 5}, `where note is not blank`},
		{"a__b=1", []int64{1, 3}, `where a__b = 1`},
		{"a__b__gt=1", []int64{2, 5}, `where a__b > 1`},
		{"name__nosuchop=1", []int64{1, 2, 3, 4, 5}, ""},
		{"score__gt=1&name__not=cherry&id__lt=5", []int64{1, 2}, `where id < 5, name != "cherry" and score > 1`},
		{"id__exact=1&id__exact=2", nil, `where id = 1 and id = 2`},
		{"_where=id+%3E+3", []int64{4, 5}, ""},
		{"_where=id%3E1&_where=id%3C4", []int64{2, 3}, ""},
		{"_where=id%3D1+or+id%3D2&name=banana", []int64{2}, `where name = "banana"`},
		{"_search=cherry", []int64{3}, `where search matches "cherry"`},
		{"_search=OR", nil, `where search matches "OR"`},
		{"_search=%22unbalanced", nil, `where search matches ""unbalanced"`},
		{"_search=apple+OR+cherry&_searchmode=raw", []int64{1, 3}, `where search matches "apple OR cherry"`},
		{"_search_note=x", []int64{3}, `where search column "note" matches "x"`},
		{"_search_note=x&_search_name=cherry", []int64{3}, `where search column "name" matches "cherry" and search column "note" matches "x"`},
		{"_search=cherry&id__gt=1&_sort_desc=score", []int64{3}, `where search matches "cherry" and id > 1 sorted by score descending`},
		{"_sort=name", []int64{4, 5, 1, 2, 3}, "sorted by name"},
		{"_sort_desc=name", []int64{3, 2, 1, 5, 4}, "sorted by name descending"},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			s := mustBuild(t, items, tt.query)
			var got []int64
			for _, r := range queryRows(t, db, s.SQL, s.Args...) {
				got = append(got, r[0].(int64))
			}
			if !reflect.DeepEqual(got, tt.ids) {
				t.Errorf("ids = %v; want %v\nSQL: %s %v", got, tt.ids, s.SQL, s.Args)
			}
			var count int64
			if err := db.QueryRow(s.CountSQL, s.CountArgs...).Scan(&count); err != nil {
				t.Fatalf("count: %v", err)
			}
			if count != int64(len(tt.ids)) {
				t.Errorf("count = %d; want %d", count, len(tt.ids))
			}
			if h := s.HumanDescription(); h != tt.human {
				t.Errorf("HumanDescription() = %q; want %q", h, tt.human)
			}
		})
	}
}

// TestValuesAreBound checks that hostile values only ever reach SQLite as
// arguments.
func TestValuesAreBound(t *testing.T) {
	db := itemsDB(t)
	items := loadTable(t, db, "items")
	evil := `x'); drop table items; --"`
	for _, l := range query.Lookups() {
		if l.NoArgument {
			continue
		}
		q := url.Values{"name__" + l.Key: {evil}, "_search": {evil}, "_sort": {"name"}, "_next": {query.TildeEncode(evil) + ",1"}}
		s, err := query.Build(items, q, query.DefaultOptions())
		if err != nil {
			t.Fatalf("%s: %v", l.Key, err)
		}
		if strings.Contains(s.SQL, "drop") || strings.Contains(s.CountSQL, "drop") {
			t.Errorf("%s: value in SQL: %s", l.Key, s.SQL)
		}
		queryRows(t, db, s.SQL, s.Args...)
	}
	if n := len(queryRows(t, db, "select * from items")); n != 5 {
		t.Fatalf("items has %d rows", n)
	}
}

func TestRowidTableAndView(t *testing.T) {
	db := itemsDB(t)
	plain := loadTable(t, db, "plain")
	s := mustBuild(t, plain, "rowid__gte=2&_sort_desc=rowid")
	rows := queryRows(t, db, s.SQL, s.Args...)
	if fmt.Sprint(rows) != "[[3 r] [2 q]]" {
		t.Errorf("rows = %v\nSQL: %s", rows, s.SQL)
	}
	v := loadTable(t, db, "v")
	s = mustBuild(t, v, "_size=2&name__notnull=1&_sort=name")
	rows = queryRows(t, db, s.SQL, s.Args...)
	if fmt.Sprint(rows) != "[[5 a%b_c] [1 apple] [2 banana]]" || s.Paginated {
		t.Errorf("view rows = %v paginated=%v\nSQL: %s", rows, s.Paginated, s.SQL)
	}
	if _, err := query.Build(v, url.Values{"rowid": {"1"}}, query.DefaultOptions()); err == nil {
		t.Errorf("rowid filter on a view: no error")
	}
}

func TestRowSQL(t *testing.T) {
	db := openFixtures(t)
	tests := []struct {
		table, path string
		want        string
	}{
		{"compound_primary_key", "a~2Fb,~2Ec-d", "[[a/b .c-d c]]"},
		{"facetable", "3", "[[3 2019-01-14 08:00:00 1 1 CA 1 SOMA [] [] <nil> <nil>]]"},
		{"facetable", "9999", "[]"},
		{"no_primary_key", "2", "[[2 2 a2 b2 c2]]"},
		{"compound_three_primary_keys", "a,d,v", "[[a d v a-d-v]]"},
	}
	for _, tt := range tests {
		vals, err := query.ParseRowPath(tt.path)
		if err != nil {
			t.Fatal(err)
		}
		rq, err := query.RowSQL(loadTable(t, db, tt.table), vals)
		if err != nil {
			t.Fatalf("RowSQL(%s, %v): %v", tt.table, vals, err)
		}
		if got := fmt.Sprint(queryRows(t, db, rq.SQL, rq.Args...)); got != tt.want {
			t.Errorf("row %s/%s = %s; want %s", tt.table, tt.path, got, tt.want)
		}
	}
	_, err := query.RowSQL(loadTable(t, db, "compound_primary_key"), []string{"a"})
	if e, ok := query.AsError(err); !ok || e.Kind != query.NotFound || e.Message != "Row not found" {
		t.Errorf("wrong key count: %v", err)
	}
	rq, _ := query.RowSQL(loadTable(t, db, "no_primary_key"), []string{"1"})
	if !reflect.DeepEqual(rq.PrimaryKeys, []string{"rowid"}) || rq.Columns[0] != "rowid" {
		t.Errorf("rowid row query: %+v", rq)
	}
	if got := query.RowPath([]any{"a/b", ".c-d"}); got != "a~2Fb,~2Ec-d" {
		t.Errorf("RowPath = %q", got)
	}
}

func TestLabels(t *testing.T) {
	db := itemsDB(t)
	people := loadTable(t, db, "people")
	cities := loadTable(t, db, "cities")
	if cities.LabelColumn != "name" || people.LabelColumn != "" {
		t.Fatalf("label columns: cities %q people %q", cities.LabelColumn, people.LabelColumn)
	}
	for q, want := range map[string][]string{
		"":                                  nil,
		"_labels=on":                        {"boss", "city_id"},
		"_label=boss":                       {"boss"},
		"_labels=on&_label=city_id":         {"city_id"},
		"_labels=on&_col=id&_col=boss":      {"boss"},
		"_labels=off":                       nil,
		"_label=city_id&_label=id&_label=x": {"city_id"},
	} {
		var got []string
		for _, fk := range mustBuild(t, people, q).ExpandLabels {
			got = append(got, fk.Column)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("ExpandLabels(%q) = %v; want %v", q, got, want)
		}
	}
	fk := query.ForeignKey{Column: "city_id", OtherTable: "cities", OtherColumn: "id"}
	q, args, ok := query.LabelsSQL(fk, cities.LabelColumn, []any{int64(1), int64(2), int64(1), nil})
	if !ok || len(args) != 2 {
		t.Fatalf("LabelsSQL: %q %v %v", q, args, ok)
	}
	if got := fmt.Sprint(queryRows(t, db, q, args...)); got != "[[1 Paris] [2 Oslo]]" {
		t.Errorf("labels = %s", got)
	}
	if _, _, ok := query.LabelsSQL(fk, "", []any{int64(1)}); ok {
		t.Errorf("LabelsSQL without a label column should say so")
	}
}

func TestTilde(t *testing.T) {
	tests := []struct{ in, enc string }{
		{"/foo/bar", "~2Ffoo~2Fbar"},
		{"Table With Space In Name", "Table+With+Space+In+Name"},
		{"a.json", "a~2Ejson"},
		{"~", "~7E"},
		{"ü", "~C3~BC"},
		{"plain_-09AZ", "plain_-09AZ"},
		{"", ""},
		{"%2F", "~252F"},
	}
	for _, tt := range tests {
		if got := query.TildeEncode(tt.in); got != tt.enc {
			t.Errorf("TildeEncode(%q) = %q; want %q", tt.in, got, tt.enc)
		}
		if got, err := query.TildeDecode(tt.enc); err != nil || got != tt.in {
			t.Errorf("TildeDecode(%q) = %q, %v; want %q", tt.enc, got, err, tt.in)
		}
	}
	for in, want := range map[string]string{
		"Table~20With~20Space~20In~20Name": "Table With Space In Name",
		"~2":                               "~2",
		"~zz":                              "~zz",
		"%2F":                              "%2F",
		"a~2fb":                            "a/b",
	} {
		if got, err := query.TildeDecode(in); err != nil || got != want {
			t.Errorf("TildeDecode(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := query.TildeDecode("~FF"); err == nil {
		t.Errorf("TildeDecode(~FF): want invalid UTF-8 error")
	}
}

func TestEscapeFTS(t *testing.T) {
	for in, want := range map[string]string{
		"dog cat":           `"dog" "cat"`,
		`"lazy dog" jumps`:  `"lazy dog" "jumps"`,
		`unbalanced "quote`: `"unbalanced" "quote"`,
		"  a   OR  b ":      `"a" "OR" "b"`,
		`""`:                "",
		"NEAR(a b)":         `"NEAR(a" "b)"`,
	} {
		if got := query.EscapeFTS(in); got != want {
			t.Errorf("EscapeFTS(%q) = %q; want %q", in, got, want)
		}
	}
}

func TestFormRedirect(t *testing.T) {
	for in, want := range map[string]string{
		"_filter_column=state&_filter_op=exact&_filter_value=CA":                          "/t?state__exact=CA",
		"_size=2&_filter_column=n&_filter_op=isnull__1&_filter_value=":                    "/t?_size=2&n__isnull=1",
		"_filter_column_1=a&_filter_op_1=contains&_filter_value_1=x+y&_filter_column_2=b": "/t?a__contains=x+y&b__exact=",
		"_filter_column=&_filter_op=exact&_filter_value=&x=1":                             "/t?x=1",
		"_sort=name&_sort_by_desc=on&_size=3":                                             "/t?_size=3&_sort_desc=name",
		"_sort=name&_size=3":                                                              "",
		"state=CA":                                                                        "",
	} {
		got, ok := query.FormRedirect(query.RequestURL{Path: "/t", RawQuery: in})
		if want == "" {
			if ok {
				t.Errorf("FormRedirect(%q) = %q; want no redirect", in, got)
			}
			continue
		}
		if !ok || got != want {
			t.Errorf("FormRedirect(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
}

// TestWhereOneStatement: a _where fragment may not end the statement, but a
// ';' inside a literal, identifier or comment is fine.
func TestWhereOneStatement(t *testing.T) {
	db := itemsDB(t)
	items := loadTable(t, db, "items")
	for frag, refused := range map[string]bool{
		"id = 1; drop table items":   true,
		"id = 1);select (1":          true,
		"name = 'a;b'":               false,
		`"a__b" = 1 -- ;`:            false,
		"id = 1 /* ; */":             false,
		"[name] != 'x'';'":           false,
		"name = 'unterminated ; '' ": false,
		"id = 1 -- c\n; select 1":    true,
	} {
		_, err := query.Build(items, url.Values{"_where": {frag}}, query.DefaultOptions())
		e, isErr := query.AsError(err)
		if refused != isErr || (isErr && e.Message != "You can only execute one statement at a time.") {
			t.Errorf("_where=%q: error %v; want refused=%v", frag, err, refused)
		}
	}
}

// TestBuildConcurrent: the server shares one *query.Table between
// requests; Build must only read it (run with -race).
func TestBuildConcurrent(t *testing.T) {
	db := itemsDB(t)
	items := loadTable(t, db, "items")
	want := mustBuild(t, items, "_sort_desc=score&name__not=x&_facet=note&_next=1%2C2").SQL
	done := make(chan string)
	for i := 0; i < 8; i++ {
		go func() {
			s, err := query.Build(items, url.Values{"_sort_desc": {"score"}, "name__not": {"x"}, "_facet": {"note"}, "_next": {"1,2"}}, query.DefaultOptions())
			if err != nil {
				done <- err.Error()
				return
			}
			done <- s.SQL
		}()
	}
	for i := 0; i < 8; i++ {
		if got := <-done; got != want {
			t.Errorf("concurrent Build = %s; want %s", got, want)
		}
	}
}
