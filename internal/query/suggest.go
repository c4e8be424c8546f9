package query

import (
	"encoding/json"
	"fmt"
)

// FacetSuggestion is a query that tests whether one column would make a
// useful facet of a given type, as Datasette's suggested_facets does. Run
// SQL with Args (under the facet-suggest time limit; treat an error or a
// timeout as "not suggested"), then call Accept with the rows.
type FacetSuggestion struct {
	Column string
	Type   string // FacetColumn, FacetDate or FacetArray
	SQL    string
	Args   []any
	size   int
}

// SuggestedFacet is one entry of Datasette's suggested_facets JSON. Type is
// omitted for column facets, as in Datasette.
type SuggestedFacet struct {
	Name      string `json:"name"`
	Type      string `json:"type,omitempty"`
	ToggleURL string `json:"toggle_url"`
}

// SuggestFacets returns the candidate queries for suggested facets: for
// every column of the table (except rowid; _col does not matter, as in
// Datasette) not already faceted that way, one column, one date and one
// array test, in Datasette's order. Datasette makes no suggestions on
// pages after the first (_next given).
func (s *Select) SuggestFacets() []FacetSuggestion {
	inner := "select * " + s.fromWhere
	enabled := map[string]bool{}
	for _, f := range s.Facets {
		enabled[f.Type+"\x00"+f.Column] = true
	}
	var out []FacetSuggestion
	for _, typ := range []string{FacetColumn, FacetDate, FacetArray} {
		for _, col := range s.AllColumns {
			if col == "rowid" || enabled[typ+"\x00"+col] {
				continue
			}
			c := colRef(col)
			var q string
			switch typ {
			case FacetColumn:
				// Distinct values among the first SuggestConsider rows.
				q = fmt.Sprintf("with limited as (select * from (%s) limit %d) select %s as value, count(*) as n from limited where %s is not null group by %s limit %d",
					inner, SuggestConsider, c, c, c, s.FacetSize+1)
			case FacetDate:
				// Any date-looking value among the first 100 rows.
				q = fmt.Sprintf("select date(%s) from (select * from (%s) limit 100) where %s glob '????-??-*'", c, inner, c)
			case FacetArray:
				// Every non-blank value must be a JSON array; json_type
				// raises an error on text that is not JSON at all.
				q = fmt.Sprintf("with limited as (select * from (%s) limit %d) select json_type(%s), %s from limited where %s is not null and %s != ''",
					inner, SuggestConsider, c, c, c, c)
			}
			out = append(out, FacetSuggestion{Column: col, Type: typ, SQL: q, Args: s.whereArgs, size: s.FacetSize})
		}
	}
	return out
}

// Accept reports whether the rows of fs.SQL make the column worth
// suggesting. rowCount is the filtered row count (-1 if unknown).
//   - column: more than one and at most FacetSize distinct values, fewer
//     than rowCount, and at least one value shared by two rows;
//   - date: at least one value parses as a date;
//   - array: every value is a JSON array, and the first 100 non-empty
//     arrays hold only strings.
func (fs FacetSuggestion) Accept(rows [][]any, rowCount int64) bool {
	switch fs.Type {
	case FacetColumn:
		n := int64(len(rows))
		if n <= 1 || n > int64(fs.size) || (rowCount >= 0 && n >= rowCount) {
			return false
		}
		for _, r := range rows {
			if len(r) > 1 {
				if c, ok := r[1].(int64); ok && c > 1 {
					return true
				}
			}
		}
		return false
	case FacetDate:
		for _, r := range rows {
			if len(r) > 0 && r[0] != nil {
				return true
			}
		}
		return false
	case FacetArray:
		checked := 0
		for _, r := range rows {
			if len(r) < 2 || PyStr(r[0]) != "array" {
				return false
			}
			if checked >= 100 {
				continue
			}
			var items []any
			if err := json.Unmarshal([]byte(PyStr(r[1])), &items); err != nil {
				return false
			}
			if len(items) == 0 {
				continue
			}
			checked++
			for _, it := range items {
				if _, ok := it.(string); !ok {
					return false
				}
			}
		}
		return checked > 0
	}
	return false
}

// Suggested returns the JSON entry for an accepted suggestion: the absolute
// URL of the request with the facet added.
func (fs FacetSuggestion) Suggested(req RequestURL) SuggestedFacet {
	param := map[string]string{FacetColumn: "_facet", FacetDate: "_facet_date", FacetArray: "_facet_array"}[fs.Type]
	sf := SuggestedFacet{Name: fs.Column, ToggleURL: req.Base + PathWithAddedArgs(req, [2]string{param, fs.Column})}
	if fs.Type != FacetColumn {
		sf.Type = fs.Type
	}
	return sf
}
