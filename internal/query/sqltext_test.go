package query_test

import (
	"reflect"
	"strings"
	"testing"

	"lode/internal/query"
)

func TestSplitStatements(t *testing.T) {
	got := query.SplitStatements("SELECT ';' AS a; -- c;\nUPDATE \"x;y\" SET v = :v /* ; */; ; [a;b]; -- only a comment\n")
	want := []string{"SELECT ';' AS a", "-- c;\nUPDATE \"x;y\" SET v = :v /* ; */", "[a;b]"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("SplitStatements = %q; want %q", got, want)
	}
}

// The one parameter parser serves ?sql=, canned queries, write scripts and
// the SQL editor's inputs, so they agree on every form.
func TestParseParams(t *testing.T) {
	tests := []struct {
		sql   string
		named []string
		other []string
	}{
		{"SELECT :a, ':b', :a, :c_1 -- :d", []string{"a", "c_1"}, nil},
		{"select * from t where x = :x and y::text = :y", []string{"x", "y"}, nil},
		{"select ::a", nil, nil},
		{"select ?", nil, []string{"?"}},
		{"select ?1, ?2", nil, []string{"?1", "?2"}},
		{"select @a, $b, :c", []string{"c"}, []string{"@a", "$b"}},
		{`select a$b, "x$y", '@z', [?] from t`, nil, nil},
		{"select :ü", []string{"ü"}, nil},
		{"/* :x ? */ select 1", nil, nil},
	}
	for _, tt := range tests {
		p := query.ParseParams(tt.sql)
		if !reflect.DeepEqual(p.Named, tt.named) || !reflect.DeepEqual(p.Other, tt.other) {
			t.Errorf("ParseParams(%q) = %q, %q; want %q, %q", tt.sql, p.Named, p.Other, tt.named, tt.other)
		}
	}
}

func TestValidateSelect(t *testing.T) {
	ok := []string{"select 1", "  -- c\nselect 1", "with x as (select 1) select * from x", "explain query plan select 1",
		"select * from pragma_table_info('t')", "select 7;  -- end", "select :a"}
	for _, q := range ok {
		if err := query.ValidateSelect(q); err != nil {
			t.Errorf("ValidateSelect(%q) = %v; want nil", q, err)
		}
	}
	bad := map[string]string{
		"update t set x = 1":         "Statement must be a SELECT",
		"select 1; select 2":         "You can only execute one statement at a time.",
		"select * from pragma_foo()": "Statement contained a disallowed PRAGMA",
		"select ?":                   "Unsupported parameter ?: only :named parameters are supported (write :name and pass ?name=value)",
		"select $x":                  "Unsupported parameter $x: only :named parameters are supported (write :name and pass ?name=value)",
	}
	for q, want := range bad {
		err := query.ValidateSelect(q)
		e, ok := query.AsError(err)
		if !ok || e.Message != want || e.Kind != query.Invalid || e.Title != "Invalid SQL" {
			t.Errorf("ValidateSelect(%q) = %v; want %q", q, err, want)
		}
	}
}

func TestParseQuery(t *testing.T) {
	v := query.ParseQuery("a=1&b=&a=2;x&c=%zz&d=a+b%20c&&e")
	want := map[string][]string{"a": {"1", "2;x"}, "b": {""}, "c": {"%zz"}, "d": {"a b c"}, "e": {""}}
	if !reflect.DeepEqual(map[string][]string(v), want) {
		t.Errorf("ParseQuery = %v; want %v", v, want)
	}
}

func TestNamePositional(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		n        int
	}{
		{`select * from t where a = ? and b > ? limit 101`, `select * from t where a = :p0 and b > :p1 limit 101`, 2},
		{`select '?' as "a?", [b?] from t /* ? */ where c = ? -- ?`, `select '?' as "a?", [b?] from t /* ? */ where c = :p0 -- ?`, 1},
		{`select ?1, :x from t where y = ?`, `select ?1, :x from t where y = :p0`, 1},
		{`select 1`, `select 1`, 0},
		{`?`, `:p0`, 1},
	} {
		got, n := query.NamePositional(tc.in)
		if got != tc.want || n != tc.n {
			t.Errorf("NamePositional(%q) = %q, %d; want %q, %d", tc.in, got, n, tc.want, tc.n)
		}
		// The result binds only :named parameters besides what was there.
		if n > 0 && query.CheckParams(got) != nil && !strings.Contains(tc.in, "?1") {
			t.Errorf("NamePositional(%q) = %q still has parameters a query string cannot bind", tc.in, got)
		}
	}
}
