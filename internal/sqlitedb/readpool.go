package sqlitedb

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mattn/go-sqlite3"
)

// The read pool runs every statement of Each/Query straight on
// mattn/go-sqlite3 connections, outside database/sql: a row lookup then
// costs a channel receive and send instead of database/sql's Conn, Raw and
// Rows bookkeeping, statements Lode generates stay prepared per connection,
// and values come back as driver values.
//
// Time limits and request cancellation are enforced by one watchdog
// goroutine per pool instead of a context with a timer per statement: a
// statement registers its deadline and its request's context on its
// connection, and the watchdog, which runs only while statements are
// registered, cancels the connection's driver context when either passes;
// mattn/go-sqlite3 then calls sqlite3_interrupt. Statements without either
// run with context.Background, which costs the driver nothing.

// watchdogTick is how often the watchdog looks at running statements, so a
// time limit is enforced within about this much.
const watchdogTick = 5 * time.Millisecond

// errPoolClosed is returned for statements started after DB.Close.
var errPoolClosed = errors.New("sqlitedb: database is closed")

// readConn is one read-only connection with its prepared statements.
type readConn struct {
	c     *sqlite3.SQLiteConn
	stmts map[string]*sqlite3.SQLiteStmt
	gen   int64 // readPool.gen when stmts was last cleared

	mu       sync.Mutex         // guards the fields below (watchdog vs owner)
	ctx      context.Context    // handed to the driver while watched
	cancel   context.CancelFunc // interrupts the running statement
	watched  bool
	deadline time.Time       // zero: no time limit
	req      context.Context // nil: not cancellable
	timedOut bool            // the watchdog interrupted for the deadline
}

// readPool is a fixed set of read-only connections, all opened by
// openReadPool. Connections are never opened later: a statement takes an
// idle one or waits for one, so it cannot fail for want of a file
// descriptor ("too many open files") or because the file was moved.
type readPool struct {
	max int

	free   chan *readConn // idle connections; capacity max
	closed chan struct{}  // closed by close

	mu     sync.Mutex // guards isShut
	conns  []*readConn
	isShut bool

	gen      atomic.Int64 // bumped when cached statements must be dropped
	watching atomic.Bool  // the watchdog goroutine runs
	nWatched atomic.Int64 // statements registered with the watchdog

	waits    *histogram    // waits for a free connection (ns)
	timeouts atomic.Uint64 // waits that ran out (ErrNoConnection)
}

// openReadPool opens n connections with open. Each runs one read, which
// makes SQLite open the WAL file (it does so at a connection's first read)
// and load the schema, so the first requests pay for neither.
func openReadPool(n int, open func() (*sqlite3.SQLiteConn, error)) (*readPool, error) {
	p := &readPool{max: n, free: make(chan *readConn, n), closed: make(chan struct{}), waits: newDurationHistogram()}
	for range n {
		c, err := open()
		if err == nil {
			_, err = c.Exec("SELECT count(*) FROM sqlite_schema", nil)
			if err != nil {
				c.Close()
			}
		}
		if err != nil {
			p.close()
			return nil, err
		}
		rc := &readConn{c: c, stmts: map[string]*sqlite3.SQLiteStmt{}}
		rc.ctx, rc.cancel = context.WithCancel(context.Background())
		p.conns = append(p.conns, rc)
		p.free <- rc
	}
	return p, nil
}

// get returns an idle connection, or waits for one until ctx is done or
// wait passes (0: no bound).
func (p *readPool) get(ctx context.Context, wait time.Duration) (*readConn, error) {
	select {
	case rc := <-p.free:
		return rc, nil
	default:
	}
	p.mu.Lock()
	shut := p.isShut
	p.mu.Unlock()
	if shut {
		return nil, errPoolClosed
	}
	start := time.Now()
	defer func() { p.waits.observe(int64(time.Since(start))) }()
	var timeout <-chan time.Time
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case rc := <-p.free:
		return rc, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-timeout:
		p.timeouts.Add(1)
		return nil, ErrNoConnection
	case <-p.closed:
		return nil, errPoolClosed
	}
}

// put returns rc to the pool, or closes it when the pool was closed.
func (p *readPool) put(rc *readConn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.isShut {
		rc.close()
		return
	}
	p.free <- rc // never blocks: capacity is max and rc came from the pool
}

// close closes idle connections now and busy ones when they come back.
func (p *readPool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.isShut {
		return
	}
	p.isShut = true
	close(p.closed)
	for {
		select {
		case rc := <-p.free:
			rc.close()
		default:
			return
		}
	}
}

func (rc *readConn) close() {
	for _, st := range rc.stmts {
		st.Close()
	}
	rc.stmts = nil
	rc.c.Close()
}

// stmt returns the cached prepared statement for q, preparing it on first
// use. Only SQL Lode generates is cached; the cache is bounded and dropped
// when the schema changes (gen).
func (rc *readConn) stmt(q string, gen int64) (*sqlite3.SQLiteStmt, error) {
	if rc.gen != gen || len(rc.stmts) >= maxCachedStmts {
		for _, st := range rc.stmts {
			st.Close()
		}
		rc.stmts = map[string]*sqlite3.SQLiteStmt{}
		rc.gen = gen
	}
	if st := rc.stmts[q]; st != nil {
		return st, nil
	}
	ds, err := rc.c.Prepare(q)
	if err != nil {
		return nil, err
	}
	st, ok := ds.(*sqlite3.SQLiteStmt)
	if !ok {
		ds.Close()
		return nil, fmt.Errorf("unexpected statement type %T", ds)
	}
	rc.stmts[q] = st
	return st, nil
}

// watch registers the statement about to run on rc with the watchdog and
// returns the context to hand to the driver.
func (p *readPool) watch(rc *readConn, req context.Context, limit time.Duration) context.Context {
	if limit <= 0 && req.Done() == nil {
		return context.Background()
	}
	rc.mu.Lock()
	if rc.ctx.Err() != nil { // interrupted last time: a fresh one
		rc.ctx, rc.cancel = context.WithCancel(context.Background())
	}
	rc.watched, rc.timedOut = true, false
	rc.deadline = time.Time{}
	if limit > 0 {
		rc.deadline = time.Now().Add(limit)
	}
	rc.req = nil
	if req.Done() != nil {
		rc.req = req
	}
	ctx := rc.ctx
	rc.mu.Unlock()
	p.nWatched.Add(1)
	if !p.watching.Load() && p.watching.CompareAndSwap(false, true) {
		go p.watchdog()
	}
	return ctx
}

// unwatch ends the registration; it reports whether the watchdog
// interrupted the statement for its time limit.
func (p *readPool) unwatch(rc *readConn) (timedOut bool) {
	rc.mu.Lock()
	if !rc.watched {
		rc.mu.Unlock()
		return false
	}
	rc.watched, rc.req = false, nil
	timedOut = rc.timedOut
	rc.mu.Unlock()
	p.nWatched.Add(-1)
	return timedOut
}

// watchdog interrupts statements past their deadline or whose request was
// cancelled. It exits when no statement has been registered for a while
// and is started again by the next watch.
func (p *readPool) watchdog() {
	t := time.NewTicker(watchdogTick)
	defer t.Stop()
	idle := 0
	for {
		select {
		case <-p.closed:
			p.watching.Store(false)
			return
		case <-t.C:
		}
		if p.nWatched.Load() == 0 {
			if idle++; idle < 20 {
				continue
			}
			p.watching.Store(false)
			// A watch between the load above and the store would have
			// seen watching=true and not started a watchdog: take over.
			if p.nWatched.Load() == 0 || !p.watching.CompareAndSwap(false, true) {
				return
			}
		}
		idle = 0
		now := time.Now()
		p.mu.Lock()
		conns := p.conns
		p.mu.Unlock()
		for _, rc := range conns {
			rc.mu.Lock()
			if rc.watched && rc.ctx.Err() == nil {
				switch {
				case !rc.deadline.IsZero() && now.After(rc.deadline):
					rc.timedOut = true
					rc.cancel()
				case rc.req != nil && rc.req.Err() != nil:
					rc.cancel()
				}
			}
			rc.mu.Unlock()
		}
	}
}

// namedValues converts query arguments (including sql.NamedArg) the way
// database/sql would.
func namedValues(args []any) ([]driver.NamedValue, error) {
	nargs := make([]driver.NamedValue, len(args))
	for i, a := range args {
		nv := driver.NamedValue{Ordinal: i + 1}
		if na, ok := a.(sql.NamedArg); ok {
			nv.Name, a = na.Name, na.Value
		}
		v, err := driver.DefaultParameterConverter.ConvertValue(a)
		if err != nil {
			return nil, fmt.Errorf("argument %d: %w", i+1, err)
		}
		nv.Value = v
		nargs[i] = nv
	}
	return nargs, nil
}

// Each runs a read-only statement and calls onColumns once with the result
// column names, then onRow for every row (the slice is reused between calls:
// copy what you keep). Returning an error from a callback stops the
// iteration; that error is returned unchanged. opt.MaxRows is not applied.
func (db *DB) Each(ctx context.Context, q string, args []any, opt QueryOptions, onColumns func([]string) error, onRow func([]any) error) error {
	nargs, err := namedValues(args)
	if err != nil {
		return err
	}
	wait := opt.TimeLimit
	if opt.WaitLimit > 0 && (wait == 0 || opt.WaitLimit < wait) {
		wait = opt.WaitLimit
	}
	rc, err := db.pool.get(ctx, wait)
	if err != nil {
		return err // ctx's error, ErrNoConnection, closed, or opening failed
	}
	defer db.pool.put(rc)
	dctx := context.Background()
	if !opt.Bounded {
		dctx = db.pool.watch(rc, ctx, opt.TimeLimit)
	}
	cbErr, err := db.each(rc, dctx, q, nargs, opt, onColumns, onRow)
	timedOut := db.pool.unwatch(rc)
	switch {
	case cbErr != nil:
		if cbErr == errStop {
			return nil
		}
		return cbErr
	case err == nil:
		return nil
	case timedOut:
		db.stats.timeLimit.Add(1)
		return ErrTimeLimit
	case ctx.Err() != nil:
		db.stats.cancelled.Add(1)
		return ctx.Err()
	}
	if isBusyCode(err) {
		db.stats.locks.count(err)
	}
	err = db.mapErr(ctx, err)
	if errors.Is(err, ErrTimeLimit) {
		db.stats.timeLimit.Add(1)
	}
	return err
}

// each runs q on rc with the driver context dctx. cbErr is an error a
// callback returned; err is the statement's.
func (db *DB) each(rc *readConn, dctx context.Context, q string, nargs []driver.NamedValue, opt QueryOptions, onColumns func([]string) error, onRow func([]any) error) (cbErr, err error) {
	if opt.CheckReadOnly {
		ds, err := rc.c.Prepare(q)
		if err != nil {
			return nil, err
		}
		ro := true
		if st, ok := ds.(*sqlite3.SQLiteStmt); ok {
			ro = st.Readonly()
		}
		ds.Close()
		if !ro {
			return nil, ErrNotReadOnly
		}
	}
	gen := db.pool.gen.Load()
	run := func(q string) (*sqlite3.SQLiteRows, error) {
		var dr driver.Rows
		var err error
		if opt.Prepared {
			st, err := rc.stmt(q, gen)
			if err != nil {
				return nil, err
			}
			dr, err = st.QueryContext(dctx, nargs)
			if err != nil {
				return nil, err
			}
		} else if dr, err = rc.c.QueryContext(dctx, q, nargs); err != nil {
			return nil, err
		}
		rows, ok := dr.(*sqlite3.SQLiteRows)
		if !ok {
			dr.Close()
			return nil, fmt.Errorf("unexpected rows type %T", dr)
		}
		return rows, nil
	}
	if w := db.wrapped(q); w != "" {
		q = w
	}
	rows, err := run(q)
	if err != nil {
		return nil, err
	}
	// mattn/go-sqlite3 turns values of columns declared DATE, DATETIME,
	// TIMESTAMP or BOOLEAN into time.Time / bool, losing the stored text.
	// Datasette returns what SQLite stores, so such statements are re-run
	// once wrapped in a query that strips the declared types.
	if !db.typesChecked(q) {
		if needsWrapDecl(rows.DeclTypes()) && db.wrapped(q) == "" {
			cols := rows.Columns()
			rows.Close()
			w := wrapSQL(q, cols)
			db.wrapMu.Lock()
			db.wrap[q] = w
			db.wrapMu.Unlock()
			if rows, err = run(w); err != nil {
				return nil, err
			}
		} else {
			db.markTypesChecked(q)
		}
	}
	defer rows.Close()
	cols := rows.Columns()
	if err := onColumns(cols); err != nil {
		return err, nil
	}
	dest := make([]driver.Value, len(cols))
	vals := make([]any, len(cols))
	for {
		if err := rows.Next(dest); err != nil {
			if err == io.EOF {
				return nil, nil
			}
			return nil, err
		}
		for i, v := range dest {
			vals[i] = normalize(v)
		}
		if err := onRow(vals); err != nil {
			return err, nil
		}
	}
}

func needsWrapDecl(types []string) bool {
	for _, t := range types {
		switch strings.ToLower(t) {
		case "date", "datetime", "timestamp", "boolean":
			return true
		}
	}
	return false
}

// maxCachedStmts bounds the prepared statements kept per read connection.
// Only SQL generated by Lode is cached (bounded by schema × URL grammar);
// user-written ?sql= text never is.
const maxCachedStmts = 512
