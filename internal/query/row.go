package query

import (
	"strings"
)

// RowQuery is the SQL for one row addressed by its primary key (or rowid).
type RowQuery struct {
	SQL     string
	Args    []any
	Columns []string // result columns: rowid first for rowid tables
	// PrimaryKeys are the key column names ("rowid" for rowid tables), and
	// PrimaryKeyValues the decoded values from the URL, for the JSON
	// primary_keys / primary_key_values keys.
	PrimaryKeys      []string
	PrimaryKeyValues []string
}

// ParseRowPath splits the row part of /DB/TABLE/PK into tilde-decoded key
// values: "a~2Fb,~2Ec-d" gives ["a/b", ".c-d"]. The error result is always
// nil today; it is kept so stricter parsing can be added compatibly.
func ParseRowPath(path string) ([]string, error) {
	parts := strings.Split(path, ",")
	for i, p := range parts {
		// Raw bytes: a BLOB key may be any bytes.
		parts[i] = tildeDecodeBytes(p)
	}
	return parts, nil
}

// RowSQL returns the query for the row of t whose key values (already
// tilde-decoded, see ParseRowPath) are pkValues. The number of values must
// match the key; otherwise, and for views, the error is a 404 "Row not
// found" as in Datasette.
func RowSQL(t *Table, pkValues []string) (*RowQuery, error) {
	keys := keyColumns(t)
	if len(keys) == 0 || len(pkValues) != len(keys) {
		return nil, &Error{Status: 404, Message: "Row not found"}
	}
	var cols []string
	if t.UsesRowid() {
		cols = append(cols, "rowid")
	}
	for _, c := range t.Columns {
		if !c.Hidden {
			cols = append(cols, c.Name)
		}
	}
	conds := make([]string, len(keys))
	args := make([]any, len(keys))
	for i, k := range keys {
		conds[i] = colRef(k) + " = ?"
		args[i] = tokenArg(t, k, pkValues[i])
	}
	return &RowQuery{
		SQL:              "select " + selectList(cols) + " from " + QuoteIdent(t.Name) + " where " + strings.Join(conds, " and "),
		Args:             args,
		Columns:          cols,
		PrimaryKeys:      append([]string(nil), keys...),
		PrimaryKeyValues: append([]string(nil), pkValues...),
	}, nil
}

// RowPath returns the tilde-encoded, comma-joined key of a row for
// /DB/TABLE/PK URLs (Datasette's path_from_row_pks), given the key values
// in key order.
func RowPath(keyValues []any) string {
	parts := make([]string, len(keyValues))
	for i, v := range keyValues {
		parts[i] = TildeEncode(PyStr(unwrapLabel(v)))
	}
	return strings.Join(parts, ",")
}

// KeyValues picks the key values (rowid or primary keys) out of a result
// row of s, in key order, for RowPath. It returns nil for views.
func (s *Select) KeyValues(row []any) []any {
	if len(s.keyIdx) == 0 {
		return nil
	}
	out := make([]any, len(s.keyIdx))
	for i, idx := range s.keyIdx {
		out[i] = at(row, idx)
	}
	return out
}
