package query

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// Facet types, as in Datasette's facet_results "type".
const (
	FacetColumn = "column"
	FacetArray  = "array"
	FacetDate   = "date"
)

// Facet is one requested facet (_facet=, _facet_array=, _facet_date=) with
// the SQL that counts its values over the filtered table. Run SQL with
// Args; each row is (value, count). Pass those rows to Result to get the
// Datasette JSON.
type Facet struct {
	// Key is this facet's key in facet_results.results: the column name,
	// or name_2, name_3... when facets of different types share a column.
	Key    string
	Column string
	Type   string // FacetColumn, FacetArray or FacetDate
	SQL    string // returns up to Size+1 rows of (value, count)
	Args   []any
	Size   int // values to show; one more row means truncated
	// LabelKey is the foreign key of Column when its values should be shown
	// with labels from the other table (column facets only), else nil.
	LabelKey *ForeignKey
}

// param is the query-string argument that requests this facet.
func (f *Facet) param() string {
	switch f.Type {
	case FacetArray:
		return "_facet_array"
	case FacetDate:
		return "_facet_date"
	}
	return "_facet"
}

// filterKey is the query-string key that selects one value of the facet.
func (f *Facet) filterKey() string {
	switch f.Type {
	case FacetArray:
		return f.Column + "__arraycontains"
	case FacetDate:
		return f.Column + "__date"
	}
	if strings.HasPrefix(f.Column, "_") {
		return f.Column + "__exact"
	}
	return f.Column
}

// FacetValue is one value of a facet in Datasette's facet_results JSON.
type FacetValue struct {
	Value     any    `json:"value"`
	Label     any    `json:"label"`
	Count     int64  `json:"count"`
	ToggleURL string `json:"toggle_url"`
	Selected  bool   `json:"selected"`
}

// FacetResult is one entry of facet_results.results in Datasette's JSON.
type FacetResult struct {
	// Key is the facet's key in facet_results.results (Facet.Key); it is
	// not part of the facet's own JSON.
	Key       string       `json:"-"`
	Name      string       `json:"name"`
	Type      string       `json:"type"`
	Hideable  bool         `json:"hideable"`
	ToggleURL string       `json:"toggle_url"`
	Results   []FacetValue `json:"results"`
	Truncated bool         `json:"truncated"`
}

// FacetRow is one (value, count) row returned by Facet.SQL.
type FacetRow struct {
	Value any
	Count int64
}

// RequestURL is the request a facet's toggle URLs are built from. Base is
// the scheme and host ("http://127.0.0.1:8001"), Path the escaped path
// ("/fixtures/facetable.json"), RawQuery the query string as received.
type RequestURL struct {
	Base     string
	Path     string
	RawQuery string
}

// RequestURLOf builds a RequestURL from an absolute URL (r.URL with Scheme
// and Host filled in by the server).
func RequestURLOf(u *url.URL) RequestURL {
	return RequestURL{Base: u.Scheme + "://" + u.Host, Path: u.EscapedPath(), RawQuery: u.RawQuery}
}

// Result shapes the rows of f.SQL into Datasette's facet JSON. labels maps
// a value's PyStr text to its foreign-key label (nil when the facet has no
// LabelKey or the other table has no label column); values without a label
// show themselves. Toggle URLs add or remove this value's filter from req;
// the facet's own toggle_url (which removes the facet) is a path, the value
// toggle URLs are absolute, as in Datasette.
func (f *Facet) Result(rows []FacetRow, labels map[string]any, req RequestURL) FacetResult {
	pairs := parseQueryPairs(req.RawQuery)
	res := FacetResult{
		Key:       f.Key,
		Name:      f.Column,
		Type:      f.Type,
		Hideable:  true,
		ToggleURL: req.Path + encodePairs(removePairs(pairs, f.param(), f.Column, true)),
		Results:   []FacetValue{},
		Truncated: len(rows) > f.Size,
	}
	if len(rows) > f.Size {
		rows = rows[:f.Size]
	}
	key := f.filterKey()
	for _, r := range rows {
		text := PyStr(r.Value)
		selected := hasPair(pairs, key, text)
		var toggled []queryPair
		if selected {
			toggled = removePairs(pairs, key, text, true)
		} else {
			toggled = append(append([]queryPair(nil), pairs...), queryPair{key, text})
		}
		value := r.Value
		if f.Type == FacetArray {
			// Datasette reports array items as str(item).
			value = text
		}
		label := value
		if l, ok := labels[text]; ok {
			label = l
		}
		res.Results = append(res.Results, FacetValue{
			Value:     value,
			Label:     label,
			Count:     r.Count,
			ToggleURL: req.Base + req.Path + encodePairs(toggled),
			Selected:  selected,
		})
	}
	return res
}

// buildFacets parses _facet, _facet_array, _facet_date and _facet_size.
func (s *Select) buildFacets(params url.Values, opts Options) error {
	s.FacetSize = facetSize(params, opts)
	if !opts.AllowFacet {
		// Datasette refuses any _facet* argument, _facet_size included.
		for k := range params {
			if strings.HasPrefix(k, "_facet") {
				return badRequest("_facet= is not allowed")
			}
		}
		return nil
	}
	keys := map[string]bool{}
	for _, typ := range []string{FacetColumn, FacetDate, FacetArray} {
		param := map[string]string{FacetColumn: "_facet", FacetArray: "_facet_array", FacetDate: "_facet_date"}[typ]
		for _, col := range params[param] {
			// A facet asked for twice is computed twice, as name and
			// name_2, as Datasette does.
			col = facetColumnName(col)
			if !s.Table.hasColumn(col) {
				return invalidSQL("no such column: %s", col)
			}
			f := &Facet{Column: col, Type: typ, Size: s.FacetSize, Args: s.whereArgs}
			inner := "select * " + s.fromWhere
			if s.Table.UsesRowid() {
				inner = "select rowid, * " + s.fromWhere
			}
			c := colRef(col)
			limit := s.FacetSize + 1
			switch typ {
			case FacetColumn:
				f.SQL = fmt.Sprintf("select %s as value, count(*) as count from (%s) where %s is not null group by %s order by count desc, value limit %d",
					c, inner, c, c, limit)
				for _, fk := range s.Table.ForeignKeys {
					if fk.Column == col {
						fk := fk
						f.LabelKey = &fk
						break
					}
				}
			case FacetDate:
				f.SQL = fmt.Sprintf("select date(%s) as value, count(*) as count from (%s) where date(%s) is not null group by date(%s) order by count desc, value limit %d",
					c, inner, c, c, limit)
			case FacetArray:
				// Each row counts once per distinct array item (Datasette
				// dedupes items within a row).
				f.SQL = fmt.Sprintf("select value, count(*) as count from (select distinct r.__lode_key, j.value as value from (select row_number() over () as __lode_key, %s as __lode_arr from (%s)) r, json_each(r.__lode_arr) j) group by value order by count desc, value limit %d",
					c, inner, limit)
			}
			// facet_results keys: the column name, then name_2, name_3...
			// when two facets share a column (Datasette's rule).
			f.Key = col
			for i := 2; keys[f.Key]; i++ {
				f.Key = fmt.Sprintf("%s_%d", col, i)
			}
			keys[f.Key] = true
			s.Facets = append(s.Facets, f)
		}
	}
	return nil
}

// facetColumnName accepts Datasette's JSON facet forms {"simple": "col"}
// and {"column": "col"}
// as well as a bare column name.
func facetColumnName(v string) string {
	if strings.HasPrefix(v, "{") {
		var cfg map[string]any
		if json.Unmarshal([]byte(v), &cfg) == nil {
			if c, ok := cfg["column"].(string); ok && c != "" {
				return c
			}
			if c, ok := cfg["simple"].(string); ok {
				return c
			}
		}
	}
	return v
}

// facetSize is Datasette's get_facet_size: default_facet_size, or
// _facet_size (an integer or "max"), never above max_returned_rows.
func facetSize(params url.Values, opts Options) int {
	size := opts.DefaultFacetSize
	switch v := first(params["_facet_size"]); {
	case v == "max":
		size = opts.MaxReturnedRows
	case isDigits(v):
		if n, err := strconv.Atoi(v); err == nil {
			size = n
		}
	}
	if size > opts.MaxReturnedRows {
		size = opts.MaxReturnedRows
	}
	return size
}

// PathWithAddedArgs returns req's path and query with args appended, after
// removing existing pairs whose key is in args with an empty value, like
// Datasette's path_with_added_args (an empty value there means "remove").
func PathWithAddedArgs(req RequestURL, args ...[2]string) string {
	pairs := parseQueryPairs(req.RawQuery)
	for _, a := range args {
		if a[1] == "" {
			pairs = removePairs(pairs, a[0], "", false)
		}
	}
	for _, a := range args {
		if a[1] != "" {
			pairs = append(pairs, queryPair{a[0], a[1]})
		}
	}
	return req.Path + encodePairs(pairs)
}

// PathWithRemovedArgs returns req's path and query without the pairs whose
// key is key (and, if value is non-nil, whose value is *value).
func PathWithRemovedArgs(req RequestURL, key string, value *string) string {
	pairs := parseQueryPairs(req.RawQuery)
	if value == nil {
		pairs = removePairs(pairs, key, "", false)
	} else {
		pairs = removePairs(pairs, key, *value, true)
	}
	return req.Path + encodePairs(pairs)
}
