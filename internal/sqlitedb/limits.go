package sqlitedb

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"

	"github.com/mattn/go-sqlite3"
)

// Resource limits of the read pool. A single SQL function call runs inside
// one step of SQLite's virtual machine, where sqlite3_interrupt (the time
// limit) cannot reach it: printf('%.*c', 900000000, 'x') builds a 900 MB
// string before the next check. Only sqlite3_limit stops it, by failing
// the allocation early with SQLITE_TOOBIG ("string or blob too big").
const (
	// DefaultMaxValueBytes is SQLITE_LIMIT_LENGTH on read connections when
	// Settings.MaxValueBytes is 0: the largest string or blob a read may
	// load from the file or build (SQLite's own default is 1e9).
	DefaultMaxValueBytes = 32 << 20
	// maxSQLBytes is SQLITE_LIMIT_SQL_LENGTH on read connections. A URL
	// is at most 64 KiB (the server's header limit), so no ?sql= comes
	// near it; it only stops a statement built to be huge.
	maxSQLBytes = 1 << 20
	// DefaultMaxResultBytes bounds the values one Query holds when
	// Settings.MaxResultBytes is 0.
	DefaultMaxResultBytes = 16 << 20
	// valueOverhead is what each value costs besides its bytes (an
	// interface and a string or slice header), for MaxResultBytes.
	valueOverhead = 24
)

// ErrResultTooLarge means the rows of a Query hold more bytes than
// Settings.MaxResultBytes (or QueryOptions.MaxBytes): the statement was
// stopped, so nothing of its result is returned.
var ErrResultTooLarge = errors.New("sqlitedb: result too large")

// setReadLimits sets sqlite3_limit values on a read connection. The
// length limit also applies to values stored in the file: a read of a
// larger value fails with SQLITE_TOOBIG (writes are not limited).
// ATTACH is denied by the authorizer already; a limit of 0 attached
// databases makes that a second, independent refusal.
func setReadLimits(c *sqlite3.SQLiteConn, maxValue int) {
	c.SetLimit(sqlite3.SQLITE_LIMIT_LENGTH, maxValue)
	c.SetLimit(sqlite3.SQLITE_LIMIT_SQL_LENGTH, maxSQLBytes)
	c.SetLimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
}

// valueSize is what a value of a result row counts against MaxBytes.
func valueSize(v any) int64 {
	switch x := v.(type) {
	case string:
		return int64(len(x)) + valueOverhead
	case []byte:
		return int64(len(x)) + valueOverhead
	}
	return valueOverhead
}

// HeapLimits are SQLite's process-wide memory limits
// (sqlite3_soft_heap_limit64 and sqlite3_hard_heap_limit64), in bytes;
// 0 means no limit. Past the soft limit SQLite frees page cache before it
// allocates more; past the hard limit an allocation fails with
// SQLITE_NOMEM, which fails that one statement ("out of memory").
type HeapLimits struct {
	Soft, Hard int64
	// Malloc reports (from SetHeapLimits) that the C allocator was set to
	// return freed memory to the system (glibc; see tuneMalloc).
	Malloc bool `json:"-"`
}

// SetHeapLimits sets SQLite's process-wide heap limits and returns the
// limits in force afterwards. They cover every connection of the process
// (read, write, every database): they bound what SQLite itself
// allocates, not what Go holds. SQLite only lowers a hard limit that is
// already set (PRAGMA hard_heap_limit), so a second call can tighten but
// not loosen it. With a hard limit it also fixes the C allocator's mmap
// and trim thresholds (tuneMalloc), so that memory SQLite frees leaves the
// process. Call it once at startup, from main: it is process state.
func SetHeapLimits(l HeapLimits) (HeapLimits, error) {
	if l.Soft < 0 || l.Hard < 0 {
		return HeapLimits{}, fmt.Errorf("heap limits must not be negative: %+v", l)
	}
	d := &sqlite3.SQLiteDriver{}
	dc, err := d.Open(":memory:")
	if err != nil {
		return HeapLimits{}, fmt.Errorf("heap limits: %w", err)
	}
	c := dc.(*sqlite3.SQLiteConn)
	defer c.Close()
	var out HeapLimits
	for _, p := range []struct {
		name string
		val  int64
		dst  *int64
	}{{"hard_heap_limit", l.Hard, &out.Hard}, {"soft_heap_limit", l.Soft, &out.Soft}} {
		if _, err := c.Exec(fmt.Sprintf("PRAGMA %s = %d", p.name, p.val), nil); err != nil {
			return out, fmt.Errorf("PRAGMA %s: %w", p.name, err)
		}
		n, err := pragmaInt(c, "PRAGMA "+p.name)
		if err != nil {
			return out, err
		}
		*p.dst = n
	}
	if l.Hard > 0 {
		out.Malloc = tuneMalloc()
	}
	return out, nil
}

// CurrentHeapLimits reads SQLite's process-wide heap limits.
func CurrentHeapLimits() (HeapLimits, error) {
	d := &sqlite3.SQLiteDriver{}
	dc, err := d.Open(":memory:")
	if err != nil {
		return HeapLimits{}, fmt.Errorf("heap limits: %w", err)
	}
	c := dc.(*sqlite3.SQLiteConn)
	defer c.Close()
	var out HeapLimits
	if out.Hard, err = pragmaInt(c, "PRAGMA hard_heap_limit"); err != nil {
		return out, err
	}
	out.Soft, err = pragmaInt(c, "PRAGMA soft_heap_limit")
	return out, err
}

func pragmaInt(c *sqlite3.SQLiteConn, q string) (int64, error) {
	rows, err := c.QueryContext(context.Background(), q, nil)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", q, err)
	}
	defer rows.Close()
	dest := make([]driver.Value, len(rows.Columns()))
	if err := rows.Next(dest); err != nil {
		return 0, fmt.Errorf("%s: %w", q, err)
	}
	n, _ := dest[0].(int64)
	return n, nil
}
