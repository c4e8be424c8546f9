package query

import (
	"strings"
)

// HumanDescription returns Datasette's human_description_en for the query:
// searches, then filters, comma-separated with a final " and ", prefixed by
// "where ", then "sorted by COL[ descending]". For example:
// `where state = "CA" and _city_id > 1 sorted by pk descending`.
// It is "" for an unfiltered, unsorted query.
func (s *Select) HumanDescription() string {
	var bits []string
	for _, se := range s.Search {
		if se.Column == "" {
			bits = append(bits, `search matches "`+se.Term+`"`)
		} else {
			bits = append(bits, `search column "`+se.Column+`" matches "`+se.Term+`"`)
		}
	}
	for _, th := range s.Through {
		bits = append(bits, th.Table+"."+th.Column+` = "`+th.Value+`"`)
	}
	for _, f := range s.Filters {
		bits = append(bits, f.Human())
	}
	var desc string
	if len(bits) > 0 {
		var and []string
		if len(bits) > 1 {
			and = append(and, strings.Join(bits[:len(bits)-1], ", "))
		}
		and = append(and, bits[len(bits)-1])
		desc = "where " + strings.Join(and, " and ")
	}
	if s.SortColumn != "" {
		sorted := "sorted by " + s.SortColumn
		if s.SortDesc {
			sorted += " descending"
		}
		if desc != "" {
			desc += " "
		}
		desc += sorted
	}
	return desc
}
