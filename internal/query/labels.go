package query

import (
	"net/url"
	"strings"
)

// expandLabels decides which foreign-key columns to expand: ?_label=COL
// (repeatable) names them; otherwise ?_labels=on (or 1/true) expands every
// foreign key. Only selected columns are expanded.
func expandLabels(t *Table, params url.Values, cols []string) []ForeignKey {
	named, explicit := params["_label"]
	all := false
	if !explicit {
		switch strings.ToLower(first(params["_labels"])) {
		case "on", "1", "true", "yes":
			all = true
		}
	}
	var out []ForeignKey
	for _, fk := range t.ForeignKeys {
		if !contains(cols, fk.Column) {
			continue
		}
		if all || (explicit && contains(named, fk.Column)) {
			out = append(out, fk)
		}
	}
	return out
}

// LabelsSQL returns the query that fetches labels for values of a foreign
// key column: rows of (other_column, label_column) from fk.OtherTable where
// other_column is one of values (duplicates removed). labelColumn is the
// other table's LabelColumn; when it is "" there is nothing to query and
// Datasette shows each value's own text as its label (ok is false).
func LabelsSQL(fk ForeignKey, labelColumn string, values []any) (sql string, args []any, ok bool) {
	if labelColumn == "" {
		return "", nil, false
	}
	seen := map[string]bool{}
	for _, v := range values {
		if v == nil {
			continue
		}
		k := PyStr(v)
		if seen[k] {
			continue
		}
		seen[k] = true
		args = append(args, v)
	}
	if len(args) == 0 {
		return "", nil, false
	}
	ph := strings.TrimSuffix(strings.Repeat("?, ", len(args)), ", ")
	sql = "select " + QuoteIdent(fk.OtherColumn) + ", " + QuoteIdent(labelColumn) +
		" from " + QuoteIdent(fk.OtherTable) + " where " + QuoteIdent(fk.OtherColumn) + " in (" + ph + ")"
	return sql, args, true
}
