package query_test

import (
	"database/sql"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"lode/internal/query"
)

// walkRows is the number of rows in each pagination test table.
const walkRows = 157

// awkward text values: separators and characters that tilde encoding must
// carry through a next token unchanged.
var awkward = []string{"a,b", "~2F", "$null", "x y", "ü", "+", "%41", "a/b.c", "", "z", "-", "~", "naïve café", "日本"}

// paginationDB builds tables with each kind of key and sort columns with
// NULLs and duplicates: n (INTEGER), score (no declared type: integers,
// reals and text mixed) and cat (TEXT).
func paginationDB(tb testing.TB) *sql.DB {
	db := openDB(tb,
		`create table rowid_t (cat text, score, n integer)`,
		`create table int_pk (id integer primary key, cat text, score, n integer, ci text collate nocase)`,
		`create index int_pk_n on int_pk (n)`,
		`create table text_pk (id text primary key, cat text, score, n integer)`,
		`create table blob_pk (id blob primary key, cat text, score, n integer)`,
		`create table compound (a text, b integer, cat text, score, n integer, primary key (a, b))`,
		`create table "we""ird, name.ü" ("p k" text, "x""y" integer, "c,1" text, primary key ("p k", "x""y"))`,
	)
	tx, err := db.Begin()
	if err != nil {
		tb.Fatal(err)
	}
	seed := uint32(12345)
	rnd := func(n int) int {
		seed = seed*1664525 + 1013904223
		return int(seed>>8) % n
	}
	for i := 0; i < walkRows; i++ {
		var cat, score, n any
		if r := rnd(5); r > 0 {
			cat = awkward[rnd(len(awkward))]
		}
		switch rnd(6) {
		case 0:
			score = nil
		case 1:
			score = int64(rnd(10) - 5)
		case 2:
			score = float64(rnd(8)) / 4 // 0, 0.25, ... duplicates with integers
		case 3:
			score = []float64{0.1, 1e20, -2.5, 1e-7, 123456789.125}[rnd(5)]
		case 4:
			score = "text " + awkward[rnd(len(awkward))]
		default:
			score = int64(rnd(3))
		}
		if rnd(4) > 0 {
			n = int64(rnd(12))
		}
		id := fmt.Sprintf("%s-%03d", awkward[i%len(awkward)], i)
		mustExec(tb, tx, `insert into rowid_t values (?, ?, ?)`, cat, score, n)
		var ci any
		if rnd(5) > 0 {
			ci = []string{"a", "A", "b", "B", "ä", "Ä", "c"}[rnd(7)]
		}
		mustExec(tb, tx, `insert into int_pk values (?, ?, ?, ?, ?)`, i*3-100, cat, score, n, ci)
		mustExec(tb, tx, `insert into text_pk values (?, ?, ?, ?)`, id, cat, score, n)
		mustExec(tb, tx, `insert into blob_pk values (?, ?, ?, ?)`, []byte{byte(i), 0xff, ',', '~', byte(rnd(256))}, cat, score, n)
		mustExec(tb, tx, `insert into compound values (?, ?, ?, ?, ?)`, awkward[i%7], i/7, cat, score, n)
		mustExec(tb, tx, `insert into "we""ird, name.ü" values (?, ?, ?)`, awkward[i%5], i, cat)
	}
	if err := tx.Commit(); err != nil {
		tb.Fatal(err)
	}
	return db
}

func mustExec(tb testing.TB, tx *sql.Tx, q string, args ...any) {
	tb.Helper()
	if _, err := tx.Exec(q, args...); err != nil {
		tb.Fatalf("%s: %v", q, err)
	}
}

// TestPaginationWalk follows next tokens from the first page to the last and
// checks that every row is visited exactly once, in the same order as one
// unpaginated query, for every key kind and sort order.
func TestPaginationWalk(t *testing.T) {
	db := paginationDB(t)
	tables := []string{"rowid_t", "int_pk", "text_pk", "blob_pk", "compound", `we"ird, name.ü`}
	sorts := []string{"", "_sort=n", "_sort_desc=n", "_sort=score", "_sort_desc=score", "_sort=cat", "_sort_desc=cat"}
	for _, name := range tables {
		tab := loadTable(t, db, name)
		extra := []string{}
		if name == "rowid_t" {
			extra = append(extra, "_sort=rowid", "_sort_desc=rowid")
		}
		if name == "int_pk" {
			extra = append(extra, "_sort_desc=id", "_col=cat&_sort_desc=n", "_nocol=score&_nocol=cat&_sort=score", "_sort=ci", "_sort_desc=ci", "_where=n+%3E+2+or+n+is+null&_sort_desc=score", "_sort=ci&id__in=%5B-100%2C-97%2C-94%2C50%2C53%2C56%5D")
		}
		if name == "blob_pk" {
			extra = append(extra, "_sort_desc=id")
		}
		if name == `we"ird, name.ü` {
			sorts = []string{"", "_sort=c%2C1", "_sort_desc=c%2C1", "_sort=x%22y"}
		}
		for _, sortQ := range append(sorts, extra...) {
			for _, filter := range []string{"", "n__notnull=1&cat__not=z"} {
				if name == `we"ird, name.ü` && filter != "" {
					continue
				}
				for _, size := range []int{7, 1} {
					q := strings.Trim(sortQ+"&"+filter, "&")
					t.Run(fmt.Sprintf("%s?%s&_size=%d", name, q, size), func(t *testing.T) {
						walk(t, db, tab, q, size)
					})
				}
			}
		}
	}
}

func walk(t *testing.T, db *sql.DB, tab *query.Table, q string, size int) {
	all := mustBuild(t, tab, strings.Trim(q+"&_size=max", "&"))
	want, next := page(t, db, all)
	if next != "" {
		t.Fatalf("unpaginated query has a next token %q", next)
	}
	if strings.Contains(q, "notnull") && len(want) == walkRows {
		t.Fatalf("filter did not filter")
	}
	keyOf := func(s *query.Select, row []any) string { return joinKey(s.KeyValues(row)) }
	var wantKeys []string
	for _, r := range want {
		wantKeys = append(wantKeys, keyOf(all, r))
	}
	var got []string
	seen := map[string]bool{}
	token := ""
	for pages := 0; ; pages++ {
		if pages > walkRows+2 {
			t.Fatalf("more pages than rows: loop")
		}
		pq := fmt.Sprintf("%s&_size=%d", q, size)
		if token != "" {
			pq += "&_next=" + url.QueryEscape(token)
		}
		s := mustBuild(t, tab, strings.Trim(pq, "&"))
		rows, next := page(t, db, s)
		for _, r := range rows {
			k := keyOf(s, r)
			if seen[k] {
				t.Fatalf("row %s seen twice (page %d, token %q)\nSQL: %s %v", k, pages, token, s.SQL, s.Args)
			}
			seen[k] = true
			got = append(got, k)
		}
		if next == "" {
			break
		}
		if next == token {
			t.Fatalf("token %q did not advance", next)
		}
		token = next
	}
	if len(got) != len(wantKeys) {
		t.Fatalf("walk visited %d rows; want %d", len(got), len(wantKeys))
	}
	for i := range got {
		if got[i] != wantKeys[i] {
			t.Fatalf("row %d = %s; want %s", i, got[i], wantKeys[i])
		}
	}
}

// TestNextTokenFormat checks the token text itself: Python str() of the
// values, tilde-encoded, comma-joined, $null for NULL sort values.
func TestNextTokenFormat(t *testing.T) {
	tab := &query.Table{Name: "t", Columns: []query.Column{{Name: "a", Type: "text", PK: 1}, {Name: "b", Type: "integer", PK: 2}, {Name: "s", Type: "real"}}, PrimaryKeys: []string{"a", "b"}}
	tests := []struct {
		query string
		row   []any
		want  string
	}{
		{"", []any{"a/b", int64(3), 1.5}, "a~2Fb,3"},
		{"_sort=s", []any{"x y", int64(-1), nil}, "$null,x+y,-1"},
		{"_sort=s", []any{"$null", int64(0), 1.0}, "1~2E0,~24null,0"},
		{"_sort_desc=s", []any{"ü,~", int64(7), 1e16}, "1e~2B16,~C3~BC~2C~7E,7"},
		{"_sort=s", []any{"a", int64(1), 0.0001}, "0~2E0001,a,1"},
		{"_sort=s", []any{"a", int64(1), 0.00001}, "1e-05,a,1"},
		{"_sort=s", []any{"a", int64(1), query.Label{Value: int64(5), Label: "five"}}, "5,a,1"},
	}
	for _, tt := range tests {
		s := mustBuild(t, tab, tt.query)
		if got := s.NextToken(tt.row); got != tt.want {
			t.Errorf("NextToken(%q, %v) = %q; want %q", tt.query, tt.row, got, tt.want)
		}
	}
	// Views page by offset, as in Datasette.
	view := &query.Table{Name: "v", IsView: true, Columns: []query.Column{{Name: "a"}}}
	if got := mustBuild(t, view, "_size=1").NextToken([]any{"x"}); got != "1" {
		t.Errorf("view NextToken = %q; want \"1\"", got)
	}
	s := mustBuild(t, view, "_size=5&_next=10")
	if got := s.NextToken([]any{"x"}); got != "15" || !strings.HasSuffix(s.SQL, " limit 6 offset 10") {
		t.Errorf("view page at 10: NextToken = %q, SQL %q; want 15 and limit 6 offset 10", got, s.SQL)
	}
	if _, err := query.Build(view, url.Values{"_next": {"x"}}, query.DefaultOptions()); err == nil {
		t.Error("view _next=x: no error")
	}
}

func TestPyStr(t *testing.T) {
	tests := []struct {
		in   any
		want string
	}{
		{nil, "None"}, {int64(-97), "-97"}, {1.0, "1.0"}, {0.1, "0.1"}, {-2.5, "-2.5"},
		{1e16, "1e+16"}, {1e15, "1000000000000000.0"}, {123456789.125, "123456789.125"},
		{1e-5, "1e-05"}, {0.0001, "0.0001"}, {1.5e300, "1.5e+300"}, {0.4148969058190054, "0.4148969058190054"},
		{"s", "s"}, {[]byte("b"), "b"}, {true, "True"},
	}
	for _, tt := range tests {
		if got := query.PyStr(tt.in); got != tt.want {
			t.Errorf("PyStr(%v) = %q; want %q", tt.in, got, tt.want)
		}
	}
}

func TestSortColumnNotSelected(t *testing.T) {
	db := paginationDB(t)
	tab := loadTable(t, db, "int_pk")
	s := mustBuild(t, tab, "_col=cat&_sort_desc=n&_size=3")
	if fmt.Sprint(s.Columns) != "[id cat n]" {
		t.Fatalf("Columns %v", s.Columns)
	}
	rows, next := page(t, db, s)
	if len(rows[0]) != 3 || next == "" {
		t.Fatalf("rows %v next %q", rows, next)
	}
	req := query.RequestURL{Base: "http://h", Path: "/db/int_pk.json", RawQuery: "_col=cat&_sort_desc=n&_next=old&_size=3"}
	want := "http://h/db/int_pk.json?_col=cat&_size=3&_next=" + url.QueryEscape(next) + "&_sort_desc=n"
	if got := s.NextURL(req, next); got != want {
		t.Errorf("NextURL = %s; want %s", got, want)
	}
}

// TestKeysetUsesIndex checks the query plans of later pages: with an index
// on the sort column every kind of token must be answered by index range
// reads in order, never by collecting and sorting all matching rows
// (which is what a single "a OR b IS NULL" condition makes SQLite do).
func TestKeysetUsesIndex(t *testing.T) {
	db := paginationDB(t)
	tab := loadTable(t, db, "int_pk")
	for _, q := range []string{
		"_next=5",
		"_sort=n&_next=3%2C5",
		"_sort_desc=n&_next=3%2C5",
		"_sort=n&_next=%24null%2C5",
		"_sort_desc=n&_next=%24null%2C5",
		"_sort_desc=n&_next=3%2C5&cat__not=z",
	} {
		s := mustBuild(t, tab, q)
		var plan []string
		for _, r := range queryRows(t, db, "explain query plan "+s.SQL, s.Args...) {
			plan = append(plan, fmt.Sprint(r[3]))
		}
		p := strings.Join(plan, "\n")
		if strings.Contains(p, "MULTI-INDEX OR") || strings.Contains(p, "TEMP B-TREE FOR ORDER BY") || !strings.Contains(p, "SEARCH") {
			t.Errorf("%s: plan reads or sorts everything:\n%s\nSQL: %s", q, p, s.SQL)
		}
	}
}

// TestBlobKeyRow: a BLOB primary key with bytes that are not UTF-8 round
// trips through RowPath / ParseRowPath / RowSQL.
func TestBlobKeyRow(t *testing.T) {
	db := paginationDB(t)
	tab := loadTable(t, db, "blob_pk")
	key := []byte{7, 0xff, ',', '~', 0}
	key[4] = queryRows(t, db, "select substr(id, 5, 1) from blob_pk where substr(id, 1, 1) = x'07'")[0][0].(string)[0]
	path := query.RowPath([]any{key})
	vals, err := query.ParseRowPath(path)
	if err != nil {
		t.Fatal(err)
	}
	rq, err := query.RowSQL(tab, vals)
	if err != nil {
		t.Fatal(err)
	}
	if rows := queryRows(t, db, rq.SQL, rq.Args...); len(rows) != 1 || rows[0][0] != string(key) {
		t.Fatalf("row for %q (%s): %v", key, path, rows)
	}
}
