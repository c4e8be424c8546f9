package sqlitedb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// This file builds and runs the SQL of Datasette's write API — insert,
// upsert, update, delete, create, alter and drop — on an Execer inside a
// write transaction (a Writer's WriteFunc). Values are SQLite values
// (int64, float64, string, []byte, nil); the HTTP layer converts request
// bodies into them and renders the rows that come back. Table and column
// names are always quoted identifiers; values are always bound.

// Result rows of a write (return: true) are read with ReadRows.

// TableInfo returns the columns and primary keys (in key order) of table,
// read inside the write transaction so it is current even after a
// concurrent ALTER. A table that does not exist is a *NotFoundError.
func TableInfo(ctx context.Context, ex Execer, table string) (cols []string, pks []string, err error) {
	rows, err := ex.QueryContext(ctx, "SELECT name, pk FROM pragma_table_info(?) ORDER BY cid", table)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	type pkCol struct {
		name string
		n    int
	}
	var pkc []pkCol
	for rows.Next() {
		var name string
		var pk int
		if err := rows.Scan(&name, &pk); err != nil {
			return nil, nil, err
		}
		cols = append(cols, name)
		if pk > 0 {
			pkc = append(pkc, pkCol{name, pk})
		}
	}
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	if len(cols) == 0 {
		return nil, nil, &NotFoundError{Msg: "Table not found: " + table}
	}
	sort.Slice(pkc, func(i, j int) bool { return pkc[i].n < pkc[j].n })
	for _, p := range pkc {
		pks = append(pks, p.name)
	}
	return cols, pks, nil
}

// keyColumns are the columns that address a row: the primary keys, or
// rowid for a rowid table.
func keyColumns(pks []string) []string {
	if len(pks) == 0 {
		return []string{"rowid"}
	}
	return pks
}

// KeyWhere builds "a" = ? AND "b" = ? for the key columns.
func KeyWhere(keyCols []string) string {
	parts := make([]string, len(keyCols))
	for i, p := range keyCols {
		parts[i] = QuoteIdent(p) + " = ?"
	}
	return strings.Join(parts, " AND ")
}

// InsertSQL is verb ("INSERT", "INSERT OR IGNORE", "INSERT OR REPLACE")
// INTO table with one placeholder per column, or DEFAULT VALUES.
func InsertSQL(verb, table string, cols []string) string {
	if len(cols) == 0 {
		return fmt.Sprintf("%s INTO %s DEFAULT VALUES", verb, QuoteIdent(table))
	}
	qc := make([]string, len(cols))
	for i, k := range cols {
		qc[i] = QuoteIdent(k)
	}
	return fmt.Sprintf("%s INTO %s (%s) VALUES (%s)", verb, QuoteIdent(table), strings.Join(qc, ", "),
		strings.TrimSuffix(strings.Repeat("?,", len(cols)), ","))
}

// UpdateSQL sets cols of the rows matching where (a KeyWhere condition or
// "rowid = ?").
func UpdateSQL(table string, cols []string, where string) string {
	sets := make([]string, len(cols))
	for i, k := range cols {
		sets[i] = QuoteIdent(k) + " = ?"
	}
	return fmt.Sprintf("UPDATE %s SET %s WHERE %s", QuoteIdent(table), strings.Join(sets, ", "), where)
}

// ColumnType is the SQLite type Lode gives a new column for a value:
// INTEGER for integers, FLOAT for floats, TEXT otherwise (as sqlite-utils
// infers them).
func ColumnType(v any) string {
	switch v.(type) {
	case int64, int:
		return "INTEGER"
	case float64:
		return "FLOAT"
	case []byte:
		return "BLOB"
	}
	return "TEXT"
}

// sortedKeys returns a row's column names in sorted order, the order in
// which Lode writes them.
func sortedKeys(row map[string]any) []string {
	keys := make([]string, 0, len(row))
	for k := range row {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// inferColumns returns the columns that rows use, in sorted order of first
// appearance, typed from the first non-null value of each.
func inferColumns(rows []map[string]any, skip map[string]bool) []ColumnDef {
	var cols []ColumnDef
	seen := map[string]bool{}
	for _, row := range rows {
		for _, k := range sortedKeys(row) {
			if skip[k] || seen[k] {
				continue
			}
			seen[k] = true
			typ := "TEXT"
			for _, r := range rows {
				if v, ok := r[k]; ok && v != nil {
					typ = ColumnType(v)
					break
				}
			}
			cols = append(cols, ColumnDef{Name: k, Type: typ})
		}
	}
	return cols
}

// addColumns adds the columns rows use that the table lacks (alter: true).
func addColumns(ctx context.Context, ex Execer, table string, known map[string]bool, rows []map[string]any) error {
	for _, c := range inferColumns(rows, known) {
		if c.Name == "" {
			return invalid("Column name must not be empty")
		}
		q := fmt.Sprintf("ALTER TABLE %s ADD COLUMN %s %s", bracketIdent(table), bracketIdent(c.Name), c.Type)
		if _, err := ex.ExecContext(ctx, q); err != nil {
			return err
		}
	}
	return nil
}

// QueryRow runs a one-row query through an Execer and scans it into dest;
// no row is sql.ErrNoRows.
func QueryRow(ctx context.Context, ex Execer, q string, args []any, dest ...any) error {
	rows, err := ex.QueryContext(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return err
		}
		return sql.ErrNoRows
	}
	if err := rows.Scan(dest...); err != nil {
		return err
	}
	return rows.Close()
}

// readRows reads every row of q as SQLite values (see normalize) and
// appends them to res.
func readRows(ctx context.Context, ex Execer, res *Result, q string, args ...any) error {
	rows, err := ex.QueryContext(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return err
	}
	res.Columns = cols
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return err
		}
		for i, v := range vals {
			vals[i] = normalize(v)
		}
		res.Rows = append(res.Rows, vals)
	}
	return rows.Err()
}

// InsertOptions are the flags of an insert or upsert (Datasette's body
// keys).
type InsertOptions struct {
	// Upsert updates the row with the same key, or inserts it.
	Upsert bool
	// Ignore skips rows whose key exists; Replace replaces them.
	Ignore, Replace bool
	// Alter adds the columns the rows use that the table lacks.
	Alter bool
	// Return reads the written rows back.
	Return bool
}

// InsertRows inserts (or upserts) rows into table. Rows that name unknown
// columns (without Alter) or, for an upsert, lack a key are refused with an
// *InvalidError listing every problem; nothing is written then. With
// Return it reads the written rows back, in the order they were sent.
func InsertRows(ctx context.Context, ex Execer, table string, rows []map[string]any, o InsertOptions) (*Result, error) {
	cols, pks, err := TableInfo(ctx, ex, table)
	if err != nil {
		return nil, err
	}
	rowid := len(pks) == 0
	keyCols := keyColumns(pks)
	known := map[string]bool{}
	for _, col := range append(cols, keyCols...) {
		known[col] = true
	}
	var msgs []string
	for i, row := range rows {
		if o.Upsert {
			var missing, null []string
			for _, pk := range keyCols {
				v, ok := row[pk]
				if !ok {
					missing = append(missing, pk)
				} else if v == nil {
					null = append(null, pk)
				}
			}
			if len(missing) > 0 {
				msgs = append(msgs, fmt.Sprintf(`Row %d is missing primary key column(s): "%s"`, i, strings.Join(missing, `", "`)))
			}
			if len(null) > 0 {
				msgs = append(msgs, fmt.Sprintf(`Row %d has null primary key column(s): "%s"`, i, strings.Join(null, `", "`)))
			}
		}
		var unknown []string
		for k := range row {
			if !known[k] {
				unknown = append(unknown, k)
			}
		}
		if len(unknown) > 0 && !o.Alter {
			sort.Strings(unknown)
			msgs = append(msgs, fmt.Sprintf("Row %d has invalid columns: %s", i, strings.Join(unknown, ", ")))
		}
	}
	if len(msgs) > 0 {
		return nil, invalid(msgs...)
	}
	if o.Alter {
		if err := addColumns(ctx, ex, table, known, rows); err != nil {
			return nil, err
		}
	}
	verb := "INSERT"
	switch {
	case o.Ignore:
		verb = "INSERT OR IGNORE"
	case o.Replace:
		verb = "INSERT OR REPLACE"
	}
	var rowids []int64
	for _, row := range rows {
		keys := sortedKeys(row)
		args := make([]any, len(keys))
		for i, k := range keys {
			args[i] = row[k]
		}
		if o.Upsert {
			id, err := upsertRow(ctx, ex, table, keyCols, keys, args, row)
			if err != nil {
				return nil, err
			}
			rowids = append(rowids, id)
			continue
		}
		res, err := ex.ExecContext(ctx, InsertSQL(verb, table, keys), args...)
		if err != nil {
			return nil, err
		}
		if o.Return {
			if n, _ := res.RowsAffected(); n > 0 {
				id, _ := res.LastInsertId()
				rowids = append(rowids, id)
			}
		}
	}
	if !o.Return {
		return nil, nil
	}
	sel := "*"
	if rowid && o.Upsert {
		// Datasette returns a rowid table's rowid for an upsert (the key
		// it was given) but not for an insert.
		sel = "rowid, *"
	}
	// One query per row keeps the order the rows were sent in.
	q := fmt.Sprintf("SELECT %s FROM %s WHERE rowid = ?", sel, QuoteIdent(table))
	out := &Result{Columns: []string{}, Rows: [][]any{}}
	for _, id := range rowids {
		if err := readRows(ctx, ex, out, q, id); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// upsertRow updates the row with the row's key values, or inserts it when
// there is none; both in the caller's transaction, so the pair is atomic.
// It returns the row's rowid.
func upsertRow(ctx context.Context, ex Execer, table string, keyCols, keys []string, args []any, row map[string]any) (int64, error) {
	isKey := map[string]bool{}
	for _, k := range keyCols {
		isKey[k] = true
	}
	var sets []string
	var setArgs []any
	for i, k := range keys {
		if !isKey[k] {
			sets = append(sets, k)
			setArgs = append(setArgs, args[i])
		}
	}
	keyArgs := make([]any, len(keyCols))
	for i, k := range keyCols {
		keyArgs[i] = row[k]
	}
	var id int64
	err := QueryRow(ctx, ex, fmt.Sprintf("SELECT rowid FROM %s WHERE %s", QuoteIdent(table), KeyWhere(keyCols)), keyArgs, &id)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		res, err := ex.ExecContext(ctx, InsertSQL("INSERT", table, keys), args...)
		if err != nil {
			return 0, err
		}
		return res.LastInsertId()
	case err != nil:
		return 0, err
	}
	if len(sets) > 0 {
		if _, err := ex.ExecContext(ctx, UpdateSQL(table, sets, "rowid = ?"), append(setArgs, id)...); err != nil {
			return 0, err
		}
	}
	return id, nil
}

// RowKey is a row addressed by the key values of its URL (a rowid, a
// primary key, or a compound key's values in key order).
type RowKey struct {
	Columns []string // the key columns, or "rowid"
	Args    []any    // their values as bound
}

// FindRow resolves the key values of a row URL inside the write
// transaction: a wrong number of values, a non-integer rowid or no
// matching row is a *NotFoundError ("Record not found: ['1']").
func FindRow(ctx context.Context, ex Execer, table string, vals []string) (RowKey, error) {
	_, pks, err := TableInfo(ctx, ex, table)
	if err != nil {
		return RowKey{}, err
	}
	notFound := &NotFoundError{Msg: "Record not found: " + pyList(vals)}
	keyCols := keyColumns(pks)
	if len(vals) != len(keyCols) {
		return RowKey{}, notFound
	}
	args := make([]any, len(vals))
	for i, v := range vals {
		args[i] = v
		if keyCols[i] == "rowid" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return RowKey{}, notFound
			}
			args[i] = n
		}
	}
	var one int
	err = QueryRow(ctx, ex, fmt.Sprintf("SELECT 1 FROM %s WHERE %s", QuoteIdent(table), KeyWhere(keyCols)), args, &one)
	if errors.Is(err, sql.ErrNoRows) {
		return RowKey{}, notFound
	}
	return RowKey{Columns: keyCols, Args: args}, err
}

// pyList formats values like Python's repr of a list of strings, as
// Datasette's "Record not found: ['1']" does.
func pyList(vals []string) string {
	q := make([]string, len(vals))
	for i, v := range vals {
		q[i] = "'" + strings.ReplaceAll(v, "'", `\'`) + "'"
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// UpdateRow sets the columns of update on the row at key (adding missing
// columns first with alter). With ret it reads the row back, following a
// key that the update changed.
func UpdateRow(ctx context.Context, ex Execer, table string, key RowKey, update map[string]any, alter, ret bool) (*Result, error) {
	if alter {
		cols, _, err := TableInfo(ctx, ex, table)
		if err != nil {
			return nil, err
		}
		known := map[string]bool{}
		for _, col := range cols {
			known[col] = true
		}
		if err := addColumns(ctx, ex, table, known, []map[string]any{update}); err != nil {
			return nil, err
		}
	}
	where := KeyWhere(key.Columns)
	if keys := sortedKeys(update); len(keys) > 0 {
		args := make([]any, 0, len(keys)+len(key.Args))
		for _, k := range keys {
			args = append(args, update[k])
		}
		if _, err := ex.ExecContext(ctx, UpdateSQL(table, keys, where), append(args, key.Args...)...); err != nil {
			return nil, err
		}
	}
	if !ret {
		return nil, nil
	}
	sel := "*"
	if key.Columns[0] == "rowid" {
		sel = "rowid, *"
	}
	// The key may have been updated too: read by the new values.
	newArgs := append([]any(nil), key.Args...)
	for i, k := range key.Columns {
		if v, ok := update[k]; ok {
			newArgs[i] = v
		}
	}
	out := &Result{}
	err := readRows(ctx, ex, out, fmt.Sprintf("SELECT %s FROM %s WHERE %s", sel, QuoteIdent(table), where), newArgs...)
	return out, err
}

// DeleteRow deletes the row at key.
func DeleteRow(ctx context.Context, ex Execer, table string, key RowKey) error {
	_, err := ex.ExecContext(ctx, fmt.Sprintf("DELETE FROM %s WHERE %s", QuoteIdent(table), KeyWhere(key.Columns)), key.Args...)
	return err
}

// DropTable drops table.
func DropTable(ctx context.Context, ex Execer, table string) error {
	_, err := ex.ExecContext(ctx, "DROP TABLE "+QuoteIdent(table))
	return err
}

// ColumnDef is a column of a table to create: a name and an SQLite type
// (TEXT, INTEGER, FLOAT, BLOB).
type ColumnDef struct {
	Name string
	Type string
}

// CreateOptions describe a table to create (Datasette's /-/create body):
// either Columns, or Rows to insert whose columns and types are inferred.
type CreateOptions struct {
	Table   string
	Columns []ColumnDef
	PKs     []string
	Rows    []map[string]any
	// Ignore and Replace apply to Rows whose key exists.
	Ignore, Replace bool
}

// CreateTable creates a table and inserts rows into it, or inserts rows
// into an existing table with the same primary keys. It returns the
// table's CREATE TABLE statement from sqlite_master.
func CreateTable(ctx context.Context, ex Execer, o CreateOptions) (schema string, err error) {
	var n int
	if err := QueryRow(ctx, ex, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?", []any{o.Table}, &n); err != nil {
		return "", err
	}
	if n > 0 {
		_, actual, err := TableInfo(ctx, ex, o.Table)
		if err != nil {
			return "", err
		}
		if len(o.PKs) > 0 && !sameSet(o.PKs, actual) {
			return "", invalid("pk cannot be changed for existing table")
		}
		if len(o.Rows) == 0 {
			return "", invalid(fmt.Sprintf("table %s already exists", bracketIdent(o.Table))) // SQLite's words, as Datasette shows them
		}
	} else {
		columns := o.Columns
		if len(o.Rows) > 0 {
			columns = inferColumns(o.Rows, nil)
		}
		stmt, err := CreateTableSQL(o.Table, columns, o.PKs)
		if err != nil {
			return "", err
		}
		if _, err := ex.ExecContext(ctx, stmt); err != nil {
			return "", err
		}
	}
	verb := "INSERT"
	if o.Ignore {
		verb = "INSERT OR IGNORE"
	} else if o.Replace {
		verb = "INSERT OR REPLACE"
	}
	for _, row := range o.Rows {
		keys := sortedKeys(row)
		args := make([]any, len(keys))
		for i, k := range keys {
			args[i] = row[k]
		}
		if _, err := ex.ExecContext(ctx, InsertSQL(verb, o.Table, keys), args...); err != nil {
			return "", err
		}
	}
	err = QueryRow(ctx, ex, "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", []any{o.Table}, &schema)
	return schema, err
}

// CreateTableSQL is the CREATE TABLE statement for columns with primary
// keys pks, laid out as sqlite-utils writes it (key columns first, one
// column per line). As in sqlite-utils, a single key that is not a column
// is added as an INTEGER PRIMARY KEY (so {"pk": "id"} gives rows an id);
// a compound key naming a missing column is an *InvalidError with
// SQLite's message.
func CreateTableSQL(table string, columns []ColumnDef, pks []string) (string, error) {
	for _, pk := range pks {
		found := false
		for _, col := range columns {
			found = found || col.Name == pk
		}
		switch {
		case found:
		case len(pks) == 1:
			columns = append([]ColumnDef{{Name: pk, Type: "INTEGER"}}, columns...)
		default:
			return "", invalid("no such column: " + pk)
		}
	}
	ordered := append([]ColumnDef(nil), columns...)
	sort.SliceStable(ordered, func(i, j int) bool {
		return indexOf(pks, ordered[i].Name) >= 0 && indexOf(pks, ordered[j].Name) < 0
	})
	defs := make([]string, 0, len(columns)+1)
	for _, col := range ordered {
		d := "   " + bracketIdent(col.Name) + " " + col.Type
		if len(pks) == 1 && col.Name == pks[0] {
			d += " PRIMARY KEY"
		}
		defs = append(defs, d)
	}
	if len(pks) > 1 {
		q := make([]string, len(pks))
		for i, p := range pks {
			q[i] = bracketIdent(p)
		}
		defs = append(defs, "   PRIMARY KEY ("+strings.Join(q, ", ")+")")
	}
	return fmt.Sprintf("CREATE TABLE %s (\n%s\n)", bracketIdent(table), strings.Join(defs, ",\n")), nil
}

// bracketIdent quotes a name in [brackets], as sqlite-utils (so
// Datasette's write API) writes the schemas it creates; a name holding ']'
// is double-quoted instead.
func bracketIdent(name string) string {
	if strings.Contains(name, "]") {
		return QuoteIdent(name)
	}
	return "[" + name + "]"
}

func indexOf(list []string, s string) int {
	for i, v := range list {
		if v == s {
			return i
		}
	}
	return -1
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		if indexOf(b, x) < 0 {
			return false
		}
	}
	return true
}

// Statement is one statement of a write script with its bound arguments.
type Statement struct {
	SQL  string
	Args []any
}

// RunScript runs the statements of a write script in order (inside the
// caller's transaction, so a failing one undoes the others) and returns
// how many rows they changed.
func RunScript(ctx context.Context, ex Execer, stmts []Statement) (changed int64, err error) {
	// total_changes() counts only rows written; RowsAffected of a SELECT
	// would repeat the previous statement's count.
	var before, after int64
	if err := QueryRow(ctx, ex, "SELECT total_changes()", nil, &before); err != nil {
		return 0, err
	}
	for _, st := range stmts {
		if _, err := ex.ExecContext(ctx, st.SQL, st.Args...); err != nil {
			return 0, err
		}
	}
	if err := QueryRow(ctx, ex, "SELECT total_changes()", nil, &after); err != nil {
		return 0, err
	}
	return after - before, nil
}
