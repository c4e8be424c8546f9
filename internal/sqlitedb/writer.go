package sqlitedb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mattn/go-sqlite3"
)

// Default group-commit limits of a Writer. A batch is closed as soon as no
// further request is already waiting, so MaxWait only matters when it is set:
// the fsync of one COMMIT is the natural window in which the next batch
// gathers.
const (
	DefaultMaxBatch = 128
	DefaultMaxWait  = 0
)

// ErrWriterClosed is returned by Writer.Do after Close.
var ErrWriterClosed = errors.New("sqlitedb: writer closed")

// Execer is what a write function may use: the write connection inside the
// batch transaction (single mode) or the request's own transaction (pool mode).
// Every SQLITE_BUSY it returns is a *BusyError.
type Execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// WriteFunc is one write request. It runs inside a transaction (in single
// mode inside its own SAVEPOINT) and must not BEGIN, COMMIT or ROLLBACK
// itself. It may run more than once only if it returned an error before,
// which never happens today: a request is never retried.
type WriteFunc func(ctx context.Context, ex Execer) error

// WriterOptions configures a Writer. The zero value is a single writer with
// BEGIN IMMEDIATE and the default batch limits.
type WriterOptions struct {
	// Mode is "single" (default: one goroutine owns the one write connection
	// and group-commits) or "pool" (each request runs its own transaction on
	// any connection of the *sql.DB: the naive design, kept for benchmarks).
	Mode string
	// TxLock is "immediate" (default) or "deferred": the BEGIN used for
	// every write transaction. Deferred transactions upgrade to a write lock
	// at their first write, which SQLite refuses at once when another
	// connection holds it (no busy timeout applies).
	TxLock string
	// MaxBatch caps the requests in one group-commit transaction.
	MaxBatch int
	// MaxWait is how long the writer waits for more requests after the first
	// one of a batch; 0 takes only those already queued.
	MaxWait time.Duration
	// Check, if set, runs before every write transaction; an error fails
	// the transaction's requests without running them (DB.CheckFile
	// refuses writes to a file that was deleted or replaced).
	Check func() error
}

// Writer serialises the writes of one database. In single mode one goroutine
// owns one connection: requests queue on a channel, and every loop turn takes
// the waiting requests (up to MaxBatch) into one transaction, each request in
// its own SAVEPOINT, so a failing request is rolled back alone while its
// neighbours commit. Do returns only after the COMMIT that contains the
// request returned, so a nil error means the write is as durable as the
// synchronous setting makes it. A failed COMMIT fails every request of the
// batch. Writer is safe for concurrent use.
type Writer struct {
	opts  WriterOptions
	db    *sql.DB
	queue chan *writeReq
	stop  chan struct{}
	done  chan struct{}
	once  sync.Once

	// Counters for metrics and tests (stats.go).
	batches   atomic.Int64
	requests  atomic.Int64
	batchSize *histogram // requests per transaction
	commit    *histogram // COMMIT time (ns)
	queueWait *histogram // time from Do to the start of the request's transaction (ns)
	locks     lockCounts
}

type writeReq struct {
	ctx   context.Context
	fn    WriteFunc
	state atomic.Int32 // 0 queued, 1 started, 2 abandoned by the caller
	reply chan error
	enq   time.Time
}

// WriterStats are cumulative counters of a Writer.
type WriterStats struct {
	Batches  int64 // committed or failed transactions (single mode)
	Requests int64 // requests run
	// BatchSize holds the requests of each transaction: group commit's
	// batches in single mode, always 1 in pool mode.
	BatchSize Histogram
	// Commit holds the time of each COMMIT statement (seconds), which
	// includes the fsync that synchronous=FULL asks for.
	Commit Histogram
	// QueueWait holds how long each request waited for its transaction
	// to start (seconds): in single mode its turn at the writer.
	QueueWait Histogram
	// Queued is the number of requests waiting for the writer now.
	Queued int
	// LockErrors counts the lock errors SQLite returned to this writer,
	// by extended code (SQLITE_BUSY, SQLITE_BUSY_SNAPSHOT, ...): once per
	// failed statement, however many requests of a batch it failed.
	LockErrors map[string]uint64
}

// NewWriter starts a Writer over db. In single mode db should allow exactly
// one open connection (SetMaxOpenConns(1)); the writer holds it until Close.
// Options are validated here so a bad flag fails at startup.
func NewWriter(db *sql.DB, opts WriterOptions) (*Writer, error) {
	if opts.Mode == "" {
		opts.Mode = "single"
	}
	if opts.TxLock == "" {
		opts.TxLock = "immediate"
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = DefaultMaxBatch
	}
	if opts.Mode != "single" && opts.Mode != "pool" {
		return nil, fmt.Errorf("writer mode %q: want single or pool", opts.Mode)
	}
	if opts.TxLock != "immediate" && opts.TxLock != "deferred" {
		return nil, fmt.Errorf("txlock %q: want immediate or deferred", opts.TxLock)
	}
	w := &Writer{opts: opts, db: db, stop: make(chan struct{}), done: make(chan struct{}),
		batchSize: newHistogram(1, batchBounds), commit: newDurationHistogram(), queueWait: newDurationHistogram()}
	if opts.Mode == "single" {
		w.queue = make(chan *writeReq, opts.MaxBatch*4)
		conn, err := db.Conn(context.Background())
		if err != nil {
			return nil, fmt.Errorf("take write connection: %w", err)
		}
		go w.loop(conn)
	} else {
		close(w.done)
	}
	return w, nil
}

// Options returns the options in force after defaults were applied.
func (w *Writer) Options() WriterOptions { return w.opts }

// Stats returns a snapshot of the writer's counters.
func (w *Writer) Stats() WriterStats {
	return WriterStats{Batches: w.batches.Load(), Requests: w.requests.Load(),
		BatchSize: w.batchSize.snapshot(), Commit: w.commit.snapshot(), QueueWait: w.queueWait.snapshot(),
		Queued: w.Queued(), LockErrors: w.locks.snapshot()}
}

// Queued returns how many requests wait for the writer (single mode).
func (w *Writer) Queued() int { return len(w.queue) }

// Close stops the writer after the batch in progress; queued requests fail
// with ErrWriterClosed. It does not close the *sql.DB.
func (w *Writer) Close() error {
	w.once.Do(func() { close(w.stop) })
	<-w.done
	return nil
}

// Do runs fn in a write transaction and returns once it committed (nil) or
// failed. If ctx ends while the request is still queued, Do returns ctx.Err()
// and fn never runs; once fn started, Do waits for the outcome, so a nil
// error is never lost and an error never hides a committed write.
func (w *Writer) Do(ctx context.Context, fn WriteFunc) error {
	if w.opts.Mode == "pool" {
		select {
		case <-w.stop:
			return ErrWriterClosed
		default:
		}
		w.requests.Add(1)
		err := w.runPool(ctx, fn)
		w.locks.count(err)
		return err
	}
	r := &writeReq{ctx: ctx, fn: fn, reply: make(chan error, 1), enq: time.Now()}
	select {
	case w.queue <- r:
	case <-w.stop:
		return ErrWriterClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-r.reply:
		return err
	case <-w.done:
		// Close raced with the send: the loop is gone, so the request
		// either ran (and was answered) or never will.
		if r.state.CompareAndSwap(0, 2) {
			return ErrWriterClosed
		}
		return <-r.reply
	case <-ctx.Done():
		if r.state.CompareAndSwap(0, 2) {
			return ctx.Err()
		}
		return <-r.reply
	}
}

func (w *Writer) begin() string {
	if w.opts.TxLock == "deferred" {
		return "BEGIN DEFERRED"
	}
	return "BEGIN IMMEDIATE"
}

// runPool is the naive design: any connection, one transaction per request.
func (w *Writer) runPool(ctx context.Context, fn WriteFunc) error {
	t0 := time.Now()
	conn, err := w.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("take write connection: %w", err)
	}
	defer conn.Close()
	w.queueWait.observe(int64(time.Since(t0)))
	w.batchSize.observe(1)
	// Statements run with a context that the client cannot cancel halfway:
	// an interrupt inside a transaction rolls it back behind our back.
	bg := context.WithoutCancel(ctx)
	ex := busyExecer{c: conn}
	if w.opts.Check != nil {
		if err := w.opts.Check(); err != nil {
			return err
		}
	}
	if _, err := ex.ExecContext(bg, w.begin()); err != nil {
		return err
	}
	if err := fn(bg, ex); err != nil {
		_, _ = conn.ExecContext(bg, "ROLLBACK")
		if code, _ := ErrorCode(err); code == CodeFull || code == CodeIOErr || code == CodeNoMem {
			w.recover(conn)
		}
		return err
	}
	tc := time.Now()
	_, err = ex.ExecContext(bg, "COMMIT")
	w.commit.observe(int64(time.Since(tc)))
	if err != nil {
		_, _ = conn.ExecContext(bg, "ROLLBACK")
		w.recover(conn)
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

func (w *Writer) loop(conn *sql.Conn) {
	defer close(w.done)
	defer conn.Close()
	batch := make([]*writeReq, 0, w.opts.MaxBatch)
	for {
		batch = batch[:0]
		select {
		case r := <-w.queue:
			batch = append(batch, r)
		case <-w.stop:
			w.drain()
			return
		}
		batch = w.gather(batch)
		w.runBatch(conn, batch)
	}
}

// gather adds the requests already waiting, and those arriving within
// MaxWait of the first, up to MaxBatch.
func (w *Writer) gather(batch []*writeReq) []*writeReq {
	var timer <-chan time.Time
	if w.opts.MaxWait > 0 {
		t := time.NewTimer(w.opts.MaxWait)
		defer t.Stop()
		timer = t.C
	}
	for len(batch) < w.opts.MaxBatch {
		select {
		case r := <-w.queue:
			batch = append(batch, r)
			continue
		default:
		}
		if timer == nil {
			return batch
		}
		select {
		case r := <-w.queue:
			batch = append(batch, r)
		case <-timer:
			return batch
		}
	}
	return batch
}

func (w *Writer) drain() {
	for {
		select {
		case r := <-w.queue:
			r.reply <- ErrWriterClosed
		default:
			return
		}
	}
}

// runBatch runs one group-commit transaction and answers every request.
func (w *Writer) runBatch(conn *sql.Conn, batch []*writeReq) {
	ctx := context.Background()
	ex := busyExecer{c: conn}
	live := batch[:0:0]
	for _, r := range batch {
		if r.state.CompareAndSwap(0, 1) {
			live = append(live, r)
		}
	}
	if len(live) == 0 {
		return
	}
	w.batches.Add(1)
	w.requests.Add(int64(len(live)))
	w.batchSize.observe(int64(len(live)))
	start := time.Now()
	for _, r := range live {
		w.queueWait.observe(int64(start.Sub(r.enq)))
	}
	if w.opts.Check != nil {
		if err := w.opts.Check(); err != nil {
			for _, r := range live {
				r.reply <- err
			}
			return
		}
	}
	if _, err := ex.ExecContext(ctx, w.begin()); err != nil {
		w.locks.count(err)
		for _, r := range live {
			r.reply <- err
		}
		return
	}
	errs := make([]error, len(live))
	for i, r := range live {
		if _, err := conn.ExecContext(ctx, "SAVEPOINT lode_req"); err != nil {
			errs[i] = fmt.Errorf("savepoint: %w", err)
			continue
		}
		err := r.fn(context.WithoutCancel(r.ctx), ex)
		if err == nil {
			if _, err = conn.ExecContext(ctx, "RELEASE lode_req"); err == nil {
				continue
			}
		}
		errs[i] = err
		var be *BusyError
		if errors.As(err, &be) {
			w.locks.count(be)
			// A lock failure inside the batch (a deferred upgrade refused, or
			// another process holding the lock): the transaction cannot
			// write, so no neighbour may be told it committed.
			_, _ = conn.ExecContext(ctx, "ROLLBACK")
			for j, r := range live {
				if j == i {
					r.reply <- err
				} else {
					r.reply <- be
				}
			}
			return
		}
		if txGone(conn) {
			// SQLite rolled back the whole transaction itself, closing
			// every savepoint: it does so after SQLITE_FULL, SQLITE_IOERR
			// or SQLITE_NOMEM in a statement without a statement
			// journal. The neighbours' work is gone too, so each is
			// answered with the cause (a full disk is 507 for all).
			w.recover(conn)
			for _, r := range live {
				r.reply <- err
			}
			return
		}
		if _, rerr := conn.ExecContext(ctx, "ROLLBACK TO lode_req"); rerr != nil {
			w.failAll(conn, live, fmt.Errorf("rollback to savepoint: %w", rerr))
			return
		}
		_, _ = conn.ExecContext(ctx, "RELEASE lode_req")
	}
	tc := time.Now()
	_, err := ex.ExecContext(ctx, "COMMIT")
	w.commit.observe(int64(time.Since(tc)))
	if err != nil {
		w.locks.count(err)
		w.failAll(conn, live, fmt.Errorf("commit: %w", err))
		return
	}
	for i, r := range live {
		r.reply <- errs[i]
	}
}

// txGone reports whether conn is back in autocommit mode, i.e. SQLite
// ended the batch's transaction on its own.
func txGone(conn *sql.Conn) bool {
	gone := false
	_ = conn.Raw(func(dc any) error {
		if c, ok := dc.(*sqlite3.SQLiteConn); ok {
			gone = c.AutoCommit()
		}
		return nil
	})
	return gone
}

// recover makes the write connection clean up after a transaction that
// failed in I/O (a full disk): in rollback-journal mode SQLite leaves the
// journal on disk until the failed connection next reads, and until then
// every read-only connection fails with SQLITE_READONLY_ROLLBACK, since it
// may not roll a hot journal back itself. One read here does it at once
// (it needs no free space); in WAL mode it costs a page-cache lookup.
func (w *Writer) recover(conn *sql.Conn) {
	_, _ = conn.ExecContext(context.Background(), "SELECT count(*) FROM sqlite_schema")
}

func (w *Writer) failAll(conn *sql.Conn, live []*writeReq, err error) {
	_, _ = conn.ExecContext(context.Background(), "ROLLBACK")
	w.recover(conn)
	for _, r := range live {
		r.reply <- err
	}
}

// BusyError is SQLITE_BUSY (or SQLITE_LOCKED) that survived the busy
// timeout, or that SQLite returned at once because waiting could deadlock
// (a deferred transaction's read→write upgrade). Waited tells the two apart:
// about zero for a refused upgrade, about the busy timeout otherwise.
type BusyError struct {
	Code   sqlite3.ErrNoExtended // extended result code, e.g. SQLITE_BUSY_SNAPSHOT
	Waited time.Duration         // how long the failing statement ran before giving up
	Err    error                 // the driver's error
}

// Error returns SQLite's message, "database is locked" for SQLITE_BUSY.
func (e *BusyError) Error() string { return e.Err.Error() }

// Unwrap returns the driver's error.
func (e *BusyError) Unwrap() error { return e.Err }

// CodeName returns the extended result code's C name, e.g. "SQLITE_BUSY".
func (e *BusyError) CodeName() string { return ExtendedCodeName(e.Code) }

// ExtendedCodeName names SQLite's busy and locked extended result codes
// ("SQLITE_BUSY_SNAPSHOT"); other codes come out as "SQLITE_ERROR_<n>".
func ExtendedCodeName(c sqlite3.ErrNoExtended) string {
	switch c {
	case sqlite3.ErrNoExtended(sqlite3.ErrBusy):
		return "SQLITE_BUSY"
	case sqlite3.ErrBusyRecovery:
		return "SQLITE_BUSY_RECOVERY"
	case sqlite3.ErrBusySnapshot:
		return "SQLITE_BUSY_SNAPSHOT"
	case sqlite3.ErrBusy.Extend(3):
		return "SQLITE_BUSY_TIMEOUT"
	case sqlite3.ErrNoExtended(sqlite3.ErrLocked):
		return "SQLITE_LOCKED"
	case sqlite3.ErrLockedSharedCache:
		return "SQLITE_LOCKED_SHAREDCACHE"
	case sqlite3.ErrLocked.Extend(2):
		return "SQLITE_LOCKED_VTAB"
	}
	return fmt.Sprintf("SQLITE_ERROR_%d", int(c))
}

// AsBusy converts a driver error that is SQLITE_BUSY or SQLITE_LOCKED into a
// *BusyError with the given wait; other errors come back unchanged.
func AsBusy(err error, waited time.Duration) error {
	if err == nil {
		return nil
	}
	var be *BusyError
	if errors.As(err, &be) {
		return err
	}
	var se sqlite3.Error
	if errors.As(err, &se) && (se.Code == sqlite3.ErrBusy || se.Code == sqlite3.ErrLocked) {
		return &BusyError{Code: se.ExtendedCode, Waited: waited, Err: err}
	}
	// database/sql may hide the code behind its own wrapping on COMMIT.
	if strings.Contains(err.Error(), "database is locked") {
		return &BusyError{Code: sqlite3.ErrNoExtended(sqlite3.ErrBusy), Waited: waited, Err: err}
	}
	return err
}

// busyExecer times every statement and turns lock failures into *BusyError.
type busyExecer struct{ c *sql.Conn }

func (b busyExecer) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	t := time.Now()
	res, err := b.c.ExecContext(ctx, q, args...)
	return res, AsBusy(err, time.Since(t))
}

func (b busyExecer) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	t := time.Now()
	rows, err := b.c.QueryContext(ctx, q, args...)
	return rows, AsBusy(err, time.Since(t))
}
