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
	return NewRowStatement(t).Query(pkValues)
}

// RowStatement is the row lookup of one table with the SQL built once, for
// callers that look up many rows of a table (the server caches one per
// table). It is immutable and safe for concurrent use.
type RowStatement struct {
	t    *Table
	sql  string
	cols []string
	keys []string
}

// NewRowStatement builds the row lookup of t. For views and tables without
// a key every Query is a 404.
func NewRowStatement(t *Table) *RowStatement {
	rs := &RowStatement{t: t, keys: append([]string(nil), keyColumns(t)...)}
	if len(rs.keys) == 0 {
		return rs
	}
	if t.UsesRowid() {
		rs.cols = append(rs.cols, "rowid")
	}
	for _, c := range t.Columns {
		if !c.Hidden {
			rs.cols = append(rs.cols, c.Name)
		}
	}
	conds := make([]string, len(rs.keys))
	for i, k := range rs.keys {
		conds[i] = colRef(k) + " = ?"
	}
	rs.sql = "select " + selectList(rs.cols) + " from " + QuoteIdent(t.Name) + " where " + strings.Join(conds, " and ")
	return rs
}

// Columns returns the result columns of every Query (shared: do not
// modify).
func (rs *RowStatement) Columns() []string { return rs.cols }

// Query returns the query for the row whose key values are pkValues (see
// RowSQL). Columns and PrimaryKeys are shared: do not modify them.
func (rs *RowStatement) Query(pkValues []string) (*RowQuery, error) {
	if len(rs.keys) == 0 || len(pkValues) != len(rs.keys) {
		return nil, &Error{Kind: NotFound, Message: "Row not found"}
	}
	args := make([]any, len(rs.keys))
	for i, k := range rs.keys {
		args[i] = tokenArg(rs.t, k, pkValues[i])
	}
	return &RowQuery{
		SQL:              rs.sql,
		Args:             args,
		Columns:          rs.cols,
		PrimaryKeys:      rs.keys,
		PrimaryKeyValues: pkValues,
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
