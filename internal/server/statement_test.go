package server_test

import (
	"net/http"
	"net/url"
	"testing"
)

// One statement per ?sql=: what follows its semicolon may be whitespace and
// comments only (a trailing "; " from an editor must not empty the result),
// and a second statement is refused as Datasette refuses it.
func TestQueryOneStatement(t *testing.T) {
	base, _ := newTestServer(t, nil)
	ok := map[string]float64{
		"select 7":                   7,
		"select 7;":                  7,
		"select 7; ":                 7,
		"select 7;\n-- done\n":       7,
		"select 7; /* ; */ ;":        7,
		"select 7 -- ; select 8":     7,
		"select 7 /* ; select 8 */":  7,
		"select length(';') + 6":     7,
		"select 7 as \"a;b\"":        7,
		"select 7 as [x;]; ;\n  ":    7,
		"select length('--') + 5;  ": 7,
	}
	for q, want := range ok {
		m := getJSON(t, base, "/fixtures/-/query.json?_shape=arrays&sql="+url.QueryEscape(q), http.StatusOK)
		rows, _ := m["rows"].([]any)
		if len(rows) != 1 || rows[0].([]any)[0] != want {
			t.Errorf("%q: rows %v; want [[%v]]", q, m["rows"], want)
		}
	}
	for _, q := range []string{"select 7; select 8", "select 7;select 8;", "select ';'; select 8", "select 7; 'x'"} {
		m := getJSON(t, base, "/fixtures/-/query.json?sql="+url.QueryEscape(q), http.StatusBadRequest)
		if m["error"] != "You can only execute one statement at a time." {
			t.Errorf("%q: error %v", q, m["error"])
		}
	}
}
