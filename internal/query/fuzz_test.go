package query_test

import (
	"database/sql"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"lode/internal/query"
)

// marker is prefixed to every value the fuzzer sends, so a value pasted
// into SQL text (instead of bound) is easy to spot.
const marker = "ZQXJ"

// fuzzDB creates tables with awkward names and every key kind.
func fuzzDB(tb testing.TB, dir string) (*sql.DB, []*query.Table) {
	tb.Helper()
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(dir, "fuzz.db"))
	if err != nil {
		tb.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	for _, s := range []string{
		`create table "we""ird, name.ü" ("p k" text, "x""y" integer, "c,1" text, tags text, primary key ("p k", "x""y"))`,
		`create table docs (id integer primary key, body text, "select" text)`,
		`create virtual table docs_fts using fts5 (body, "select", content="docs", content_rowid="id")`,
		`create table rowid_t (cat text, score, n integer references docs(id), "[x]" text)`,
		`create view v as select * from rowid_t`,
	} {
		if _, err := db.Exec(s); err != nil {
			tb.Fatalf("%s: %v", s, err)
		}
	}
	var tables []*query.Table
	for _, name := range []string{`we"ird, name.ü`, "docs", "rowid_t", "v"} {
		tables = append(tables, loadTable(tb, db, name))
	}
	return db, tables
}

// markValues prefixes the marker to every value that must be bound: filter
// values, search terms and the _next token. _where is dropped (it is raw
// SQL by design).
func markValues(v url.Values) {
	delete(v, "_where")
	for k, vals := range v {
		special := strings.HasPrefix(k, "_") && !strings.Contains(k, "__")
		if special && !(strings.HasPrefix(k, "_search") && k != "_searchmode") && k != "_next" {
			continue
		}
		for i, x := range vals {
			if strings.HasPrefix(x, "[") {
				vals[i] = `["` + marker + `",` + x[1:]
			} else {
				vals[i] = marker + x
			}
		}
	}
}

func checkSelect(t *testing.T, db *sql.DB, s *query.Select) {
	t.Helper()
	stmts := []string{s.SQL, s.CountSQL}
	for _, f := range s.Facets {
		stmts = append(stmts, f.SQL)
	}
	for _, fs := range s.SuggestFacets() {
		stmts = append(stmts, fs.SQL)
	}
	for _, q := range stmts {
		if strings.Contains(strings.ToUpper(q), marker) {
			t.Fatalf("a value reached the SQL text: %s", q)
		}
		st, err := db.Prepare(q)
		if err != nil {
			t.Fatalf("SQL does not prepare: %v\n%s", err, q)
		}
		st.Close()
	}
	if n := strings.Count(s.SQL, "?"); n != len(s.Args) {
		t.Fatalf("%d placeholders, %d args: %s", n, len(s.Args), s.SQL)
	}
}

func checkErr(t *testing.T, err error) {
	t.Helper()
	e, ok := query.AsError(err)
	if !ok {
		t.Fatalf("error is not a *query.Error: %v", err)
	}
	if e.Kind != query.Invalid && e.Kind != query.Forbidden && e.Kind != query.NotFound {
		t.Fatalf("kind %d for %q", e.Kind, e.Message)
	}
}

// FuzzBuild: for any query string on tables with valid columns, Build
// either returns a *query.Error with a 4xx status or SQL that prepares, in
// which every value is a bound argument; and the next token it hands out
// for any row is accepted back.
func FuzzBuild(f *testing.F) {
	for _, s := range []string{
		"", "state=CA", "_sort=cat&_size=5", "_sort_desc=score&_next=%24null%2C3",
		"p+k__in=%5B%22a%22%2C1%5D&x%22y__gt=2", "c%2C1__contains=%25&_facet=c%2C1&_facet_array=tags",
		"_search=dog+OR&_searchmode=raw", "_search_body=x&_search_select=y", "_col=cat&_nocol=n",
		"cat__isnull=1&n__notblank=1&_facet_date=cat&_labels=on", "_size=max&_facet_size=max",
		"rowid__gte=3&_sort=rowid&_next=2%2C2", "tags__arraycontains=a&tags__arraynotcontains=b",
		"%5Bx%5D__glob=*&%5Bx%5D__date=2020-01-01&%5Bx%5D__like=a&%5Bx%5D__notlike=b",
	} {
		for i := uint8(0); i < 4; i++ {
			f.Add(s, i)
		}
	}
	db, tables := fuzzDB(f, f.TempDir())
	defer db.Close()
	f.Fuzz(func(t *testing.T, raw string, which uint8) {
		tab := tables[int(which)%len(tables)]
		v, _ := url.ParseQuery(raw)
		markValues(v)
		s, err := query.Build(tab, v, query.DefaultOptions())
		if err != nil {
			checkErr(t, err)
			return
		}
		checkSelect(t, db, s)
		_ = s.HumanDescription()
		// Any row's token must be accepted back.
		row := make([]any, len(s.Columns))
		for i := range row {
			switch i % 4 {
			case 0:
				row[i] = raw
			case 1:
				row[i] = int64(len(raw))
			case 2:
				row[i] = nil
			default:
				row[i] = float64(len(raw)) / 3
			}
		}
		if !utf8.ValidString(raw) {
			row[0] = "x"
		}
		tok := s.NextToken(row)
		if tok == "" {
			return
		}
		v.Set("_next", tok)
		s2, err := query.Build(tab, v, query.DefaultOptions())
		if err != nil {
			t.Fatalf("token %q from NextToken rejected: %v", tok, err)
		}
		checkSelect(t, db, s2)
	})
}

// FuzzTildeDecode: TildeDecode never panics, and encoding then decoding
// any valid string gives it back.
func FuzzTildeDecode(f *testing.F) {
	for _, s := range []string{"", "~2Ffoo~2Fbar", "a+b", "~", "~2", "~zz", "%2F", "~C3~BC", "~FF", "Table~20With"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := query.TildeDecode(s)
		if err == nil && !utf8.ValidString(d) {
			t.Fatalf("TildeDecode(%q) = invalid UTF-8 %q without error", s, d)
		}
		if !utf8.ValidString(s) {
			return
		}
		enc := query.TildeEncode(s)
		back, err := query.TildeDecode(enc)
		if err != nil || back != s {
			t.Fatalf("TildeDecode(TildeEncode(%q)) = %q, %v", s, back, err)
		}
		if strings.ContainsAny(enc, "/.,%~ ?#&=") && !strings.Contains(enc, "~") {
			t.Fatalf("TildeEncode(%q) = %q keeps a URL delimiter", s, enc)
		}
	})
}

// FuzzNextToken: no _next token makes the decoder panic; Build with it on
// every table, sorted or not, gives a 4xx *query.Error or SQL that
// prepares with the token's parts bound.
func FuzzNextToken(f *testing.F) {
	for _, s := range []string{"", "1", "-97,d,p", "$null,a,1", "a,d,v", "~24null", ",,", "~FF,1", "1~2E5,x,2", "a~2Cb,3"} {
		f.Add(s, "")
		f.Add(s, "score")
		f.Add(s, "-cat")
	}
	db, tables := fuzzDB(f, f.TempDir())
	defer db.Close()
	f.Fuzz(func(t *testing.T, token, sort string) {
		_, _ = query.ParseNextToken(token)
		for _, tab := range tables {
			v := url.Values{"_next": {token}}
			if desc, ok := strings.CutPrefix(sort, "-"); ok {
				v.Set("_sort_desc", desc)
			} else if sort != "" {
				v.Set("_sort", sort)
			}
			s, err := query.Build(tab, v, query.DefaultOptions())
			if err != nil {
				checkErr(t, err)
				continue
			}
			st, err := db.Prepare(s.SQL)
			if err != nil {
				t.Fatalf("SQL does not prepare: %v\n%s", err, s.SQL)
			}
			st.Close()
		}
	})
}
