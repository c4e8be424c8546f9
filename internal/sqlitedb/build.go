package sqlitedb

import (
	"context"
	"database/sql/driver"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"

	"github.com/mattn/go-sqlite3"
)

// Library describes the SQLite compiled into this binary (mattn/go-sqlite3
// bundles it; the system libsqlite3 is never used).
type Library struct {
	// Version is SQLite's version, e.g. "3.50.4"; SourceID its check-in.
	Version  string
	SourceID string
	// CompileOptions are sqlite_compileoption_get's list, without the
	// SQLITE_ prefix (e.g. "ENABLE_FTS5", "THREADSAFE=1").
	CompileOptions []string
	// FTS5 reports whether the FTS5 module is compiled in: it is when Lode
	// is built with -tags sqlite_fts5. FTS3 and FTS4 always are.
	FTS5 bool
}

// LibraryInfo asks the bundled SQLite about itself, on an in-memory
// database.
func LibraryInfo() (Library, error) {
	var lib Library
	lib.Version, _, lib.SourceID = sqlite3.Version()
	conn, err := (&sqlite3.SQLiteDriver{}).Open(":memory:")
	if err != nil {
		return lib, fmt.Errorf("open in-memory database: %w", err)
	}
	defer conn.Close()
	c := conn.(*sqlite3.SQLiteConn)
	rows, err := c.QueryContext(context.Background(), "SELECT compile_options FROM pragma_compile_options", nil)
	if err != nil {
		return lib, fmt.Errorf("read compile options: %w", err)
	}
	defer rows.Close()
	dest := []driver.Value{nil}
	for {
		if err := rows.Next(dest); err == io.EOF {
			break
		} else if err != nil {
			return lib, fmt.Errorf("read compile options: %w", err)
		}
		lib.CompileOptions = append(lib.CompileOptions, fmt.Sprint(textValue(dest[0])))
	}
	lib.FTS5 = slices.Contains(lib.CompileOptions, "ENABLE_FTS5")
	return lib, nil
}

func textValue(v driver.Value) any {
	if b, ok := v.([]byte); ok {
		return string(b)
	}
	return v
}

var fts5RE = regexp.MustCompile(`(?i)\bUSING\s+"?fts5\b`)

// checkModules refuses a schema whose FTS5 tables this build cannot read
// (fts5 reports Library.FTS5; asked only when there is one): without the module every request touching them
// would fail with "no such module: fts5", so Open says it once, up front,
// with the fix.
func checkModules(s *Schema, fts5 func() bool) error {
	var names []string
	for _, t := range s.Tables {
		if t.Virtual && fts5RE.MatchString(t.SQL) {
			names = append(names, fmt.Sprintf("%q", t.Name))
		}
	}
	if len(names) == 0 || fts5() {
		return nil
	}
	return fmt.Errorf("table %s uses FTS5; this build of Lode lacks it: build with -tags sqlite_fts5 (go install -tags sqlite_fts5 ./cmd/lode)",
		strings.Join(names, ", "))
}

// compiledFTS5 asks db's SQLite whether FTS5 is compiled in.
func compiledFTS5(ctx context.Context, db *DB) bool {
	var used int
	err := db.read.QueryRowContext(ctx, "SELECT sqlite_compileoption_used('ENABLE_FTS5')").Scan(&used)
	return err == nil && used == 1
}
