package sqlitedb

import (
	"context"
	"database/sql/driver"
	"fmt"
	"io"
	"sync"

	"github.com/mattn/go-sqlite3"
)

// The raw path runs SQL that Lode generates (table pages, rows by key,
// counts, facets) straight on the driver connection: statements are
// prepared once per connection and values come back as driver values, so a
// row lookup skips database/sql's per-query statement lookup, Rows
// bookkeeping and value conversion. Cancellation still interrupts the
// statement (mattn/go-sqlite3 calls sqlite3_interrupt when ctx is done).

// connStmts is the prepared-statement cache of one read connection. It is
// only touched by the goroutine holding that connection (inside Conn.Raw).
type connStmts struct {
	gen int64
	m   map[string]*sqlite3.SQLiteStmt
}

// rawCache maps *sqlite3.SQLiteConn to *connStmts.
type rawCache struct {
	conns sync.Map
	gen   int64 // bumped (under DB.schemaMu) when the schema changes
	mu    sync.Mutex
}

func (c *rawCache) generation() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

func (c *rawCache) bump() {
	c.mu.Lock()
	c.gen++
	c.mu.Unlock()
}

// stmt returns the prepared statement for q on conn, preparing it on first
// use. Caller holds conn.
func (c *rawCache) stmt(conn *sqlite3.SQLiteConn, q string) (*sqlite3.SQLiteStmt, error) {
	v, _ := c.conns.LoadOrStore(conn, &connStmts{m: map[string]*sqlite3.SQLiteStmt{}})
	cs := v.(*connStmts)
	if g := c.generation(); cs.gen != g || len(cs.m) >= maxCachedStmts {
		for _, st := range cs.m {
			st.Close()
		}
		cs.m = map[string]*sqlite3.SQLiteStmt{}
		cs.gen = g
	}
	if st := cs.m[q]; st != nil {
		return st, nil
	}
	ds, err := conn.Prepare(q)
	if err != nil {
		return nil, err
	}
	st, ok := ds.(*sqlite3.SQLiteStmt)
	if !ok {
		ds.Close()
		return nil, fmt.Errorf("unexpected statement type %T", ds)
	}
	cs.m[q] = st
	return st, nil
}

// closeAll finalizes every cached statement; call only when no query runs
// (DB.Close).
func (c *rawCache) closeAll() {
	c.conns.Range(func(k, v any) bool {
		for _, st := range v.(*connStmts).m {
			st.Close()
		}
		c.conns.Delete(k)
		return true
	})
}

// rawEach is Each for generated SQL, on the raw driver connection.
func (db *DB) rawEach(ctx context.Context, q string, args []any, onColumns func([]string) error, onRow func([]any) error) error {
	nargs := make([]driver.NamedValue, len(args))
	for i, a := range args {
		v, err := driver.DefaultParameterConverter.ConvertValue(a)
		if err != nil {
			return fmt.Errorf("argument %d: %w", i+1, err)
		}
		nargs[i] = driver.NamedValue{Ordinal: i + 1, Value: v}
	}
	conn, err := db.read.Conn(ctx)
	if err != nil {
		return db.mapErr(ctx, err)
	}
	defer conn.Close()
	var cbErr error // an error from a callback, returned unchanged
	err = conn.Raw(func(dc any) error {
		c, ok := dc.(*sqlite3.SQLiteConn)
		if !ok {
			return fmt.Errorf("unexpected driver connection %T", dc)
		}
		run := func(q string) (*sqlite3.SQLiteRows, error) {
			st, err := db.raw.stmt(c, q)
			if err != nil {
				return nil, err
			}
			rows, err := st.QueryContext(ctx, nargs)
			if err != nil {
				return nil, err
			}
			return rows.(*sqlite3.SQLiteRows), nil
		}
		if w := db.wrapped(q); w != "" {
			q = w
		}
		rows, err := run(q)
		if err != nil {
			return err
		}
		if !db.typesChecked(q) {
			if needsWrapDecl(rows.DeclTypes()) && db.wrapped(q) == "" {
				cols := rows.Columns()
				rows.Close()
				w := wrapSQL(q, cols)
				db.wrapMu.Lock()
				db.wrap[q] = w
				db.wrapMu.Unlock()
				if rows, err = run(w); err != nil {
					return err
				}
			} else {
				db.markTypesChecked(q)
			}
		}
		defer rows.Close()
		cols := rows.Columns()
		if err := onColumns(cols); err != nil {
			cbErr = err
			return err
		}
		dest := make([]driver.Value, len(cols))
		vals := make([]any, len(cols))
		for {
			if err := rows.Next(dest); err != nil {
				if err == io.EOF {
					return nil
				}
				return err
			}
			for i, v := range dest {
				vals[i] = normalize(v)
			}
			if err := onRow(vals); err != nil {
				cbErr = err
				return err
			}
		}
	})
	if cbErr != nil {
		if cbErr == errStop {
			return nil
		}
		return cbErr
	}
	return db.mapErr(ctx, err)
}

func needsWrapDecl(types []string) bool {
	for _, t := range types {
		switch t {
		case "date", "datetime", "timestamp", "boolean":
			return true
		}
	}
	return false
}
