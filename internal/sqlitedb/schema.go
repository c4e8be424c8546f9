package sqlitedb

import (
	"context"
	"database/sql"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"
)

// Schema is a snapshot of a database's tables and views. It is immutable
// once returned and safe to share between goroutines.
type Schema struct {
	// Version is PRAGMA schema_version when the snapshot was taken.
	Version int64
	// Tables holds tables then views, each group sorted by name; hidden
	// tables (FTS tables and their shadow tables, sqlite_* tables) are
	// included with Hidden set.
	Tables []*Table
	byName map[string]*Table
}

// Table returns the table or view called name, or nil.
func (s *Schema) Table(name string) *Table { return s.byName[name] }

// Table describes one table or view.
type Table struct {
	Name   string
	IsView bool
	// Virtual is true for virtual tables (FTS and others).
	Virtual bool
	// Hidden tables are listed separately, as Datasette does: FTS virtual
	// tables, their shadow tables and SQLite's internal tables.
	Hidden bool
	// SQL is the CREATE statement from sqlite_master.
	SQL string
	// IndexSQL holds the CREATE INDEX statements of the table's explicit
	// indexes.
	IndexSQL []string
	Columns  []Column
	// PrimaryKeys lists the primary key columns in key order. It is empty
	// for rowid tables without an explicit key (rows are then addressed by
	// rowid) and for views.
	PrimaryKeys []string
	// WithoutRowid is true for WITHOUT ROWID tables.
	WithoutRowid bool
	// FTSTable names the FTS virtual table that indexes this table ("" if
	// none). An FTS table's own FTSTable is itself, like Datasette.
	FTSTable string
	// Outgoing holds this table's single-column foreign keys in PRAGMA
	// foreign_key_list's order (the last declared first), which is the
	// order of Datasette's labels and expandable_columns. Compound
	// foreign keys are left out, as Datasette does.
	Outgoing []ForeignKey
	// Incoming holds the foreign keys of other tables that point here,
	// seen from this table: Column is this table's column.
	Incoming []ForeignKey
	// LabelColumn is the column shown as a label when other tables link
	// here: a column called name or title, else the non-id column of a
	// two-column table with id or pk; "" if none.
	LabelColumn string
}

// Column is one column of a table or view (from PRAGMA table_xinfo).
type Column struct {
	Name    string
	Type    string
	NotNull bool
	// PK is the 1-based position in the primary key, 0 if not in it.
	PK int
	// Hidden is true for hidden columns of virtual tables and generated
	// columns.
	Hidden bool
}

// ForeignKey links Column of one table to OtherColumn of OtherTable.
type ForeignKey struct {
	Column      string `json:"column"`
	OtherTable  string `json:"other_table"`
	OtherColumn string `json:"other_column"`
}

// ColumnNames returns the names of t's columns in table order.
func (t *Table) ColumnNames() []string {
	out := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		out[i] = c.Name
	}
	return out
}

// Definition is the table's CREATE statement followed by its indexes' CREATE
// statements, each ending in ";" (Datasette's table_definition).
func (t *Table) Definition() string {
	bits := []string{t.SQL + ";"}
	for _, q := range t.IndexSQL {
		bits = append(bits, q+";")
	}
	return strings.Join(bits, "\n")
}

// HasRowid reports whether rows of t can be addressed by rowid (ordinary
// tables without an explicit primary key).
func (t *Table) HasRowid() bool {
	return !t.IsView && !t.Virtual && !t.WithoutRowid && len(t.PrimaryKeys) == 0
}

// Schema returns the cached schema. The cache is trusted for
// SchemaCheckInterval (default 1 s); after that one cheap PRAGMA
// schema_version tells whether it must be rebuilt. Immutable databases are
// never re-read.
func (db *DB) Schema(ctx context.Context) (*Schema, error) {
	if s := db.CachedSchema(); s != nil {
		return s, nil
	}
	return db.refreshSchema(ctx)
}

// CachedSchema returns the cached schema while it is trusted (see
// Schema), else nil: then Schema must read the database.
func (db *DB) CachedSchema() *Schema {
	db.schemaMu.Lock()
	s, at := db.schema, db.schemaCheckedAt
	db.schemaMu.Unlock()
	interval := db.SchemaCheckInterval
	if interval == 0 {
		interval = DefaultSchemaCheckInterval
	}
	if s != nil && (db.settings.Immutable || time.Since(at) < interval) {
		return s
	}
	return nil
}

// ExpireSchema makes the next Schema call check PRAGMA schema_version,
// without waiting for SchemaCheckInterval: call it after a write that may
// have changed the schema (DDL, ALTER, a write script).
func (db *DB) ExpireSchema() {
	db.schemaMu.Lock()
	db.schemaCheckedAt = time.Time{}
	db.schemaMu.Unlock()
}

// RefreshSchema checks PRAGMA schema_version now and rebuilds the cached
// schema if it changed. Call it after DDL, or when a name is not found in
// a cached schema that may be stale.
func (db *DB) RefreshSchema(ctx context.Context) (*Schema, error) { return db.refreshSchema(ctx) }

func (db *DB) refreshSchema(ctx context.Context) (*Schema, error) {
	var v int64
	if err := db.read.QueryRowContext(ctx, "PRAGMA schema_version").Scan(&v); err != nil {
		return nil, fmt.Errorf("read schema version: %w", err)
	}
	db.schemaMu.Lock()
	cur := db.schema
	if cur != nil && cur.Version == v {
		db.schemaCheckedAt = time.Now()
		db.schemaMu.Unlock()
		return cur, nil
	}
	db.schemaMu.Unlock()
	s, err := introspect(ctx, db.read)
	if err != nil {
		return nil, err
	}
	s.Version = v
	db.schemaMu.Lock()
	if cur != nil {
		// Prepared statements for dropped tables would linger otherwise.
		db.pool.gen.Add(1)
		db.wrapMu.Lock()
		db.wrap = map[string]string{}
		db.wrapMu.Unlock()
		db.checked.Clear()
	}
	db.schema = s
	db.schemaCheckedAt = time.Now()
	db.schemaMu.Unlock()
	return s, nil
}

// ftsUsingRE finds an FTS virtual table's module in its upper-cased SQL.
var ftsUsingRE = regexp.MustCompile(`USING\s+FTS[345]`)

var ftsContentRE = regexp.MustCompile(`(?is)content\s*=\s*(?:"((?:[^"]|"")*)"|'((?:[^']|'')*)'|\[([^\]]*)\]|([A-Za-z0-9_]+))`)

// introspect reads the whole schema in one read transaction-free pass.
func introspect(ctx context.Context, db *sql.DB) (*Schema, error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("introspect: %w", err)
	}
	defer conn.Close()
	rows, err := conn.QueryContext(ctx, `SELECT type, name, tbl_name, coalesce(sql, '') FROM sqlite_master WHERE type IN ('table', 'view') ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("introspect: list tables: %w", err)
	}
	s := &Schema{byName: map[string]*Table{}}
	var tables, views []*Table
	for rows.Next() {
		var typ, name, tblName, sqlText string
		if err := rows.Scan(&typ, &name, &tblName, &sqlText); err != nil {
			rows.Close()
			return nil, fmt.Errorf("introspect: %w", err)
		}
		t := &Table{Name: name, IsView: typ == "view", SQL: sqlText}
		upper := strings.ToUpper(sqlText)
		t.Virtual = strings.HasPrefix(upper, "CREATE VIRTUAL TABLE")
		if t.IsView {
			views = append(views, t)
		} else {
			tables = append(tables, t)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("introspect: %w", err)
	}
	s.Tables = append(tables, views...)
	for _, t := range s.Tables {
		s.byName[t.Name] = t
	}

	if rows, err := conn.QueryContext(ctx, `SELECT tbl_name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL ORDER BY name`); err == nil {
		for rows.Next() {
			var tbl, sqlText string
			if rows.Scan(&tbl, &sqlText) == nil {
				if t := s.byName[tbl]; t != nil {
					t.IndexSQL = append(t.IndexSQL, sqlText)
				}
			}
		}
		rows.Close()
	}

	// Shadow tables (FTS _data, _idx, ...) per PRAGMA table_list, and
	// WITHOUT ROWID tables.
	shadow := map[string]bool{}
	if rows, err := conn.QueryContext(ctx, `SELECT name, type, wr FROM pragma_table_list WHERE schema = 'main'`); err == nil {
		for rows.Next() {
			var name, typ string
			var wr int
			if rows.Scan(&name, &typ, &wr) == nil {
				if typ == "shadow" {
					shadow[name] = true
				}
				if t := s.byName[name]; t != nil && wr == 1 {
					t.WithoutRowid = true
				}
			}
		}
		rows.Close()
	}

	for _, t := range s.Tables {
		if err := readColumns(ctx, conn, t); err != nil {
			// A virtual table whose module is missing (e.g. FTS5 without the
			// build tag) cannot be described; keep it listed without columns.
			if t.Virtual {
				continue
			}
			return nil, err
		}
	}

	for _, t := range s.Tables {
		upper := strings.ToUpper(t.SQL)
		isFTS := t.Virtual && ftsUsingRE.MatchString(upper)
		lower := strings.ToLower(t.Name)
		// Datasette's rule: shadow tables, names that start with "_"
		// (Litestream's _litestream_seq and _litestream_lock among them)
		// and FTS tables over a content table are hidden; a standalone FTS
		// table is data and is shown. Lode also hides every sqlite_ table.
		t.Hidden = shadow[t.Name] || isFTS && strings.Contains(strings.ToLower(t.SQL), "content=") ||
			strings.HasPrefix(lower, "sqlite_") || strings.HasPrefix(t.Name, "_")
		if isFTS {
			t.FTSTable = t.Name
			if m := ftsContentRE.FindStringSubmatch(t.SQL); m != nil {
				target := firstNonEmpty(m[1:]...)
				target = strings.NewReplacer(`""`, `"`, `''`, `'`).Replace(target)
				if other := s.byName[target]; other != nil && other != t && other.FTSTable == "" {
					other.FTSTable = t.Name
				}
			}
		}
	}
	// A shadow table is a table, never an FTS table; sort hidden tables
	// after visible ones as Datasette lists them.
	sort.SliceStable(s.Tables, func(i, j int) bool {
		a, b := s.Tables[i], s.Tables[j]
		if a.IsView != b.IsView {
			return !a.IsView
		}
		if a.Hidden != b.Hidden {
			return !a.Hidden
		}
		return a.Name < b.Name
	})

	// Foreign keys: outgoing from PRAGMA foreign_key_list, compound keys
	// dropped; incoming derived from every table's outgoing keys.
	for _, t := range s.Tables {
		if t.IsView || t.Virtual {
			continue
		}
		fks, err := readForeignKeys(ctx, conn, t.Name)
		if err != nil {
			return nil, err
		}
		t.Outgoing = fks
	}
	for _, t := range s.Tables {
		for i := range t.Outgoing {
			fk := &t.Outgoing[i]
			other := s.byName[fk.OtherTable]
			if other == nil {
				continue
			}
			if fk.OtherColumn == "" && len(other.PrimaryKeys) == 1 {
				// REFERENCES parent without a column means its primary key.
				fk.OtherColumn = other.PrimaryKeys[0]
			}
			other.Incoming = append(other.Incoming, ForeignKey{Column: fk.OtherColumn, OtherTable: t.Name, OtherColumn: fk.Column})
		}
	}
	for _, t := range s.Tables {
		sort.SliceStable(t.Incoming, func(i, j int) bool {
			a, b := t.Incoming[i], t.Incoming[j]
			if a.OtherTable != b.OtherTable {
				return a.OtherTable < b.OtherTable
			}
			return a.OtherColumn < b.OtherColumn
		})
		if !t.IsView && !t.Virtual && len(t.Incoming) > 0 {
			// Only a table that others link to needs a label.
			unique, err := uniqueColumns(ctx, conn, t.Name)
			if err != nil {
				return nil, err
			}
			t.LabelColumn = labelColumn(t.Columns, unique)
		}
	}
	return s, nil
}

// uniqueColumns lists the columns that a unique index covers alone
// (declared UNIQUE, a non-integer PRIMARY KEY's automatic index, or
// CREATE UNIQUE INDEX on one column).
func uniqueColumns(ctx context.Context, conn *sql.Conn, table string) (map[string]bool, error) {
	rows, err := conn.QueryContext(ctx, `SELECT min(ii.name) FROM pragma_index_list(?) AS il, pragma_index_info(il.name) AS ii
		WHERE il."unique" GROUP BY il.name HAVING count(*) = 1`, table)
	if err != nil {
		return nil, fmt.Errorf("introspect %q indexes: %w", table, err)
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var name sql.NullString // NULL for an index on an expression
		if err := rows.Scan(&name); err != nil {
			return nil, fmt.Errorf("introspect %q indexes: %w", table, err)
		}
		if name.Valid {
			out[name.String] = true
		}
	}
	return out, rows.Err()
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

func readColumns(ctx context.Context, conn *sql.Conn, t *Table) error {
	rows, err := conn.QueryContext(ctx, "SELECT name, type, \"notnull\", pk, hidden FROM pragma_table_xinfo(?)", t.Name)
	if err != nil {
		return fmt.Errorf("introspect %q columns: %w", t.Name, err)
	}
	defer rows.Close()
	type pkCol struct {
		pos  int
		name string
	}
	var pks []pkCol
	for rows.Next() {
		var c Column
		var notNull, hidden int
		var typ sql.NullString
		if err := rows.Scan(&c.Name, &typ, &notNull, &c.PK, &hidden); err != nil {
			return fmt.Errorf("introspect %q columns: %w", t.Name, err)
		}
		c.Type = typ.String
		c.NotNull = notNull != 0
		c.Hidden = hidden != 0
		t.Columns = append(t.Columns, c)
		if c.PK > 0 {
			pks = append(pks, pkCol{c.PK, c.Name})
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("introspect %q columns: %w", t.Name, err)
	}
	sort.Slice(pks, func(i, j int) bool { return pks[i].pos < pks[j].pos })
	if !t.IsView {
		for _, p := range pks {
			t.PrimaryKeys = append(t.PrimaryKeys, p.name)
		}
	}
	return nil
}

func readForeignKeys(ctx context.Context, conn *sql.Conn, table string) ([]ForeignKey, error) {
	rows, err := conn.QueryContext(ctx, `SELECT id, "table", "from", coalesce("to", '') FROM pragma_foreign_key_list(?)`, table)
	if err != nil {
		return nil, fmt.Errorf("introspect %q foreign keys: %w", table, err)
	}
	defer rows.Close()
	type fkRow struct {
		id int
		fk ForeignKey
	}
	var all []fkRow
	perID := map[int]int{}
	for rows.Next() {
		var r fkRow
		if err := rows.Scan(&r.id, &r.fk.OtherTable, &r.fk.Column, &r.fk.OtherColumn); err != nil {
			return nil, fmt.Errorf("introspect %q foreign keys: %w", table, err)
		}
		all = append(all, r)
		perID[r.id]++
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("introspect %q foreign keys: %w", table, err)
	}
	var out []ForeignKey
	for _, r := range all {
		if perID[r.id] == 1 {
			out = append(out, r.fk)
		}
	}
	return out, nil
}

// labelColumn applies Datasette's rule for the label of a linked row: the
// only text column that a unique index covers alone, if there is exactly
// one; else a column called name or title (any case, first wins); else,
// for a two-column table with an id or pk column, the other one.
func labelColumn(cols []Column, unique map[string]bool) string {
	var names, uniqueText []string
	for _, c := range cols {
		if c.Hidden {
			continue
		}
		names = append(names, c.Name)
		if unique[c.Name] && textAffinity(c.Type) {
			uniqueText = append(uniqueText, c.Name)
		}
	}
	if len(uniqueText) == 1 {
		return uniqueText[0]
	}
	for _, c := range names {
		if l := strings.ToLower(c); l == "name" || l == "title" {
			return c
		}
	}
	if len(names) == 2 {
		hasID := false
		for _, c := range names {
			if c == "id" || c == "pk" {
				hasID = true
			}
		}
		if hasID && !(names[0] == "id" && names[1] == "pk" || names[0] == "pk" && names[1] == "id") {
			for _, c := range names {
				if c != "id" && c != "pk" {
					return c
				}
			}
		}
	}
	return ""
}

// textAffinity reports whether a declared type has TEXT affinity as
// Datasette reads it (sqlite-utils' column_affinity): no type at all
// counts as text, then INT wins, then CHAR, CLOB or TEXT.
func textAffinity(declared string) bool {
	t := strings.ToUpper(strings.TrimSpace(declared))
	switch {
	case t == "":
		return true
	case strings.Contains(t, "INT"):
		return false
	}
	return strings.Contains(t, "CHAR") || strings.Contains(t, "CLOB") || strings.Contains(t, "TEXT")
}
