package query

import (
	"net/url"
	"regexp"
	"sort"
	"strings"
)

// buildSearch handles _search=, _search_COL= and _searchmode= the way
// Datasette's table view does. Searches on a table without an FTS table are
// ignored, as in Datasette.
func (s *Select) buildSearch(t *Table, params url.Values) ([]string, []any, error) {
	if t.FTSTable == "" {
		return nil, nil, nil
	}
	raw := t.SearchModeRaw
	switch first(params["_searchmode"]) {
	case "raw":
		raw = true
	case "escaped":
		raw = false
	}
	var keys []string
	for k := range params {
		if strings.HasPrefix(k, "_search") && k != "_searchmode" && isSpecial(k) {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil, nil, nil
	}
	sort.Strings(keys)
	fts := QuoteIdent(t.FTSTable)
	var where []string
	var args []any
	if term, ok := params["_search"]; ok {
		// A plain ?_search= wins over column searches, as in Datasette.
		q := first(term)
		if strings.TrimSpace(q) == "" {
			return nil, nil, nil
		}
		s.Search = append(s.Search, Search{Term: q, Raw: raw})
		where = append(where, "rowid in (select rowid from "+fts+" where "+fts+" match ?)")
		args = append(args, matchArg(q, raw))
		return where, args, nil
	}
	for _, k := range keys {
		col, ok := strings.CutPrefix(k, "_search_")
		if !ok || !contains(t.FTSColumns, col) {
			return nil, nil, badRequest("Cannot search by that column")
		}
		q := first(params[k])
		if strings.TrimSpace(q) == "" {
			continue
		}
		s.Search = append(s.Search, Search{Column: col, Term: q, Raw: raw})
		where = append(where, "rowid in (select rowid from "+fts+" where "+QuoteIdent(col)+" match ?)")
		args = append(args, matchArg(q, raw))
	}
	return where, args, nil
}

func first(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

func matchArg(q string, raw bool) string {
	if raw {
		return q
	}
	return EscapeFTS(q)
}

var ftsSplit = regexp.MustCompile(`\s+|(".*?")`)

// EscapeFTS quotes every word of a user's search so FTS operators and
// punctuation match literally, exactly like Datasette's escape_fts: an
// unbalanced double quote gets closed, "quoted phrases" stay phrases, every
// other whitespace-separated word is wrapped in double quotes.
func EscapeFTS(q string) string {
	if strings.Count(q, `"`)%2 == 1 {
		q += `"`
	}
	// Python's re.split with a capturing group keeps the captured phrases.
	var bits []string
	last := 0
	for _, m := range ftsSplit.FindAllStringSubmatchIndex(q, -1) {
		bits = append(bits, q[last:m[0]])
		if m[2] >= 0 {
			bits = append(bits, q[m[2]:m[3]])
		}
		last = m[1]
	}
	bits = append(bits, q[last:])
	var out []string
	for _, b := range bits {
		if b == "" || b == `""` {
			continue
		}
		if strings.HasPrefix(b, `"`) {
			out = append(out, b)
		} else {
			out = append(out, `"`+b+`"`)
		}
	}
	return strings.Join(out, " ")
}
