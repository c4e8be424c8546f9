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
func (s *Select) buildSearch(t *Table, params url.Values, opts Options) ([]string, []any, error) {
	ftsTable, pk := t.FTSTable, "rowid"
	if name := first(params["_fts_table"]); name != "" {
		// ?_fts_table=T&_fts_pk=C searches T for a view or a table whose
		// index Lode did not detect, as Datasette.
		if opts.FTSTable == nil || !opts.FTSTable(name) {
			return nil, nil, badRequest("Invalid _fts_table: %s is not a full-text search table", name)
		}
		ftsTable = name
		if p := first(params["_fts_pk"]); p != "" {
			if !t.hasColumn(p) {
				return nil, nil, badRequest("Invalid _fts_pk: no such column: %s", p)
			}
			pk = p
		}
	}
	if ftsTable == "" {
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
	fts := QuoteIdent(ftsTable)
	match := func(col string) string {
		return colRef(pk) + " in (select rowid from " + fts + " where " + col + " match ?)"
	}
	var where []string
	var args []any
	if term, ok := params["_search"]; ok {
		// A plain ?_search= wins over column searches, as in Datasette.
		// An empty search is searched for too, as Datasette does: FTS5
		// refuses it (a 400), FTS4 matches every row. It is never
		// silently dropped.
		q := first(term)
		s.Search = append(s.Search, Search{Term: q, Raw: raw})
		where = append(where, match(fts))
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
		where = append(where, match(QuoteIdent(col)))
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
