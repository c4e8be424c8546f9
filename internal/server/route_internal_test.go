package server

import (
	"reflect"
	"strings"
	"testing"

	"lode/internal/query"
)

func TestParseRoute(t *testing.T) {
	tests := []struct {
		path     string
		kind     routeKind
		db, name string
		pk       []string
		action   string
		format   string
		redirect string
	}{
		{path: "/", kind: routeIndex},
		{path: "/.json", kind: routeIndex, format: "json"},
		{path: "/-/versions.json", kind: routeInstance, action: "versions", format: "json"},
		{path: "/-/settings", kind: routeInstance, action: "settings"},
		{path: "/-/static/lode.css", kind: routeStatic},
		{path: "/fixtures", kind: routeDatabase, db: "fixtures"},
		{path: "/fixtures.json", kind: routeDatabase, db: "fixtures", format: "json"},
		{path: "/fix~2Etures.json", kind: routeDatabase, db: "fix.tures", format: "json"},
		{path: "/fixtures/facetable.json", kind: routeTable, db: "fixtures", name: "facetable", format: "json"},
		{path: "/fixtures/facetable.csv", kind: routeTable, db: "fixtures", name: "facetable", format: "csv"},
		{path: "/fixtures/facetable", kind: routeTable, db: "fixtures", name: "facetable"},
		{path: "/data/secret~2Fx.json", kind: routeTable, db: "data", name: "secret/x", format: "json"},
		{path: "/data/secret%2Fx.json", kind: routeTable, db: "data", name: "secret%2Fx", format: "json"},
		{path: "/data/s.json", kind: routeTable, db: "data", name: "s", format: "json"},
		{path: "/data/s~2Ejson", kind: routeTable, db: "data", name: "s.json"},
		{path: "/data/%C3%BC+space", kind: routeTable, db: "data", name: "%C3%BC space"},
		{path: "/data/~C3~BC+space", kind: routeTable, db: "data", name: "ü space"},
		{path: "/data/a.b.json", kind: routeNone},
		{path: "/data/a.b", kind: routeTable, db: "data", name: "a", format: "b"},
		{path: "/fixtures/-/query.json", kind: routeDatabaseAction, db: "fixtures", action: "query", format: "json"},
		{path: "/fixtures/-/create", kind: routeDatabaseAction, db: "fixtures", action: "create"},
		{path: "/fixtures/facetable/1.json", kind: routeRow, db: "fixtures", name: "facetable", pk: []string{"1"}, format: "json"},
		{path: "/fixtures/compound/a~2Fb,~2Ec-d", kind: routeRow, db: "fixtures", name: "compound", pk: []string{"a/b", ".c-d"}},
		{path: "/fixtures/t.x/a.b.json", kind: routeRow, db: "fixtures", name: "t.x", pk: []string{"a.b"}, format: "json"},
		{path: "/fixtures/t/-", kind: routeRow, db: "fixtures", name: "t", pk: []string{"-"}},
		{path: "/fixtures/docs/-/insert", kind: routeTableAction, db: "fixtures", name: "docs", action: "insert"},
		{path: "/fixtures/docs/1/-/update", kind: routeRowAction, db: "fixtures", name: "docs", pk: []string{"1"}, action: "update"},
		{path: "/fixtures/docs/1.json/-/update", kind: routeNone},
		{path: "/a/b/c/d", kind: routeNone},
		{path: "/fixtures/", redirect: "/fixtures"},
		{path: "/fixtures/facetable/", redirect: "/fixtures/facetable"},
		{path: "//fixtures", redirect: "/fixtures"},
		{path: "/fixtures/./facetable", redirect: "/fixtures/facetable"},
		{path: "/x/../fixtures.json", redirect: "/fixtures.json"},
		{path: "/-", redirect: "/-/"},
		{path: "/-/", kind: routeIndex},
	}
	for _, tt := range tests {
		rt, redirect, err := parseRoute(tt.path)
		if err != nil {
			t.Errorf("parseRoute(%q) error %v", tt.path, err)
			continue
		}
		got := []any{rt.kind, rt.dbName, rt.name, rt.pk, rt.action, rt.format, redirect}
		want := []any{tt.kind, tt.db, tt.name, tt.pk, tt.action, tt.format, tt.redirect}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("parseRoute(%q) = %v; want %v", tt.path, got, want)
		}
	}
	if _, _, err := parseRoute("/data/~FF~FE"); err == nil {
		t.Error("invalid UTF-8 name: no error")
	}
}

// canonicalPath is the URL Lode itself writes for a route: every name
// tilde-encoded.
func canonicalPath(rt route) string {
	p := "/" + query.TildeEncode(rt.dbName)
	switch rt.kind {
	case routeDatabase:
	case routeTable:
		p += "/" + query.TildeEncode(rt.name)
	case routeRow, routeRowAction:
		keys := make([]any, len(rt.pk))
		for i, k := range rt.pk {
			keys[i] = k
		}
		p += "/" + query.TildeEncode(rt.name) + "/" + query.RowPath(keys)
	case routeTableAction:
		p += "/" + query.TildeEncode(rt.name)
	}
	switch rt.kind {
	case routeTableAction, routeRowAction:
		return p + "/-/" + rt.action
	}
	if rt.format != "" {
		p += "." + rt.format
	}
	return p
}

// FuzzRoute: the route agrees with ServeMux's path cleaning (a path
// ServeMux would clean is redirected, never routed), and the path Lode
// would write for a route parses back to the same resource, so two URLs
// of one resource reach the gate with the same database, name and key —
// which is all the gate decides on.
func FuzzRoute(f *testing.F) {
	for _, s := range []string{"/", "/data/secret~2Fx.json", "/data/secret%2Fx.json", "/data/s.json", "/data/a~2Eb/1.json",
		"/data/x~7Ey/1,2", "/data/%2F", "/data/~C3~BC+space.csv", "/d/t/-/insert", "/d/t/k/-/delete", "//a/../b/", "/a/./b", "/-/static/x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if p == "" || p[0] != '/' {
			return
		}
		rt, redirect, err := parseRoute(p)
		if err != nil {
			return
		}
		if redirect != "" {
			if c := cleanPath(p); c != p && redirect != c {
				t.Fatalf("parseRoute(%q) redirects to %q; ServeMux cleans to %q", p, redirect, c)
			}
			return
		}
		if cleanPath(p) != p {
			t.Fatalf("parseRoute(%q) routed a path ServeMux would clean to %q", p, cleanPath(p))
		}
		switch rt.kind {
		case routeDatabase, routeTable, routeRow, routeTableAction, routeRowAction:
		default:
			return
		}
		if rt.format != "" && rt.format != formatJSON && rt.format != formatCSV {
			return // refused later as an invalid format
		}
		if strings.ContainsRune(rt.dbName+rt.name+strings.Join(rt.pk, ""), '\uFFFD') {
			return
		}
		again, redirect, err := parseRoute(canonicalPath(rt))
		if err != nil || redirect != "" || again.kind != rt.kind || again.dbName != rt.dbName || again.name != rt.name ||
			!reflect.DeepEqual(again.pk, rt.pk) || again.action != rt.action || again.format != rt.format {
			t.Fatalf("%q parsed as %v %q %q %q; its canonical path %q parsed as %v %q %q %q (redirect %q, err %v)",
				p, rt.kind, rt.dbName, rt.name, rt.pk, canonicalPath(rt), again.kind, again.dbName, again.name, again.pk, redirect, err)
		}
	})
}
