package sqlitedb

import (
	"errors"
	"math"
	"sync"
	"sync/atomic"

	"github.com/mattn/go-sqlite3"
)

// Counters for monitoring. A DB and a Writer count what happens to them in
// plain atomic counters and fixed-bucket histograms, which cost a few
// nanoseconds to update, and hand out snapshots (DB.Stats, Writer.Stats);
// the server turns the snapshots into Prometheus metrics when it is
// scraped. The package itself exports nothing to a registry, so two
// databases, or two servers in one test binary, never share counters.

// Histogram is a snapshot of a histogram with fixed buckets: Counts[i]
// observations were at most Bounds[i] (and above Bounds[i-1]); the last
// element of Counts, one past the bounds, counts those above every bound.
// Durations are in seconds.
type Histogram struct {
	Bounds []float64
	Counts []uint64
	Count  uint64
	Sum    float64
}

// Cumulative returns the number of observations at most each bound, the
// form Prometheus histograms use.
func (h Histogram) Cumulative() []uint64 {
	out := make([]uint64, len(h.Bounds))
	var n uint64
	for i := range h.Bounds {
		n += h.Counts[i]
		out[i] = n
	}
	return out
}

// Mean returns Sum/Count, 0 without observations.
func (h Histogram) Mean() float64 {
	if h.Count == 0 {
		return 0
	}
	return h.Sum / float64(h.Count)
}

// Quantile returns the upper bound of the bucket that holds quantile q
// (0..1) of the observations: a value no observation of that quantile
// exceeds. It is +Inf past the last bound and 0 without observations.
func (h Histogram) Quantile(q float64) float64 {
	if h.Count == 0 {
		return 0
	}
	rank := q * float64(h.Count)
	var n uint64
	for i, c := range h.Counts {
		n += c
		if n > 0 && float64(n) >= rank {
			if i == len(h.Bounds) {
				return math.Inf(1)
			}
			return h.Bounds[i]
		}
	}
	return math.Inf(1)
}

// histogram counts observations of an integer quantity (nanoseconds,
// requests) in fixed buckets; scale converts the unit for the snapshot
// (1e-9: nanoseconds to seconds). Safe for concurrent use.
type histogram struct {
	bounds []int64
	scale  float64
	counts []atomic.Uint64
	count  atomic.Uint64
	sum    atomic.Int64
}

func newHistogram(scale float64, bounds []int64) *histogram {
	return &histogram{bounds: bounds, scale: scale, counts: make([]atomic.Uint64, len(bounds)+1)}
}

// newDurationHistogram is a histogram of nanoseconds over durationBounds.
func newDurationHistogram() *histogram { return newHistogram(1e-9, durationBounds) }

func (h *histogram) observe(v int64) {
	i := 0
	for i < len(h.bounds) && v > h.bounds[i] {
		i++
	}
	h.counts[i].Add(1)
	h.sum.Add(v)
	h.count.Add(1)
}

func (h *histogram) snapshot() Histogram {
	s := Histogram{Bounds: make([]float64, len(h.bounds)), Counts: make([]uint64, len(h.counts))}
	for i, b := range h.bounds {
		s.Bounds[i] = float64(b) * h.scale
	}
	for i := range h.counts {
		s.Counts[i] = h.counts[i].Load()
	}
	s.Sum = float64(h.sum.Load()) * h.scale
	s.Count = h.count.Load()
	return s
}

// batchBounds are the buckets of group-commit batch sizes (requests per
// transaction): powers of two up to DefaultMaxBatch.
var batchBounds = []int64{1, 2, 4, 8, 16, 32, 64, 128}

// lockCounts counts lock errors by SQLite's extended code name. Lock
// errors are rare, so a mutex and a map are cheap enough.
type lockCounts struct {
	mu sync.Mutex
	n  map[string]uint64
}

// count records err if it is a lock error (*BusyError, or the driver's
// SQLITE_BUSY/SQLITE_LOCKED).
func (l *lockCounts) count(err error) {
	var be *BusyError
	if err == nil || !errors.As(AsBusy(err, 0), &be) {
		return
	}
	l.mu.Lock()
	if l.n == nil {
		l.n = map[string]uint64{}
	}
	l.n[be.CodeName()]++
	l.mu.Unlock()
}

func (l *lockCounts) snapshot() map[string]uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string]uint64, len(l.n))
	for k, v := range l.n {
		out[k] = v
	}
	return out
}

// Stats are a database's cumulative counters since Open (DB.Stats). The
// write side's counters are the Writer's (Writer.Stats).
type Stats struct {
	// ReadWait holds the statements that found every read connection in
	// use, by how long they waited for one (seconds); ReadWaitTimeouts of
	// them gave up (ErrNoConnection).
	ReadWait         Histogram
	ReadWaitTimeouts uint64
	// TimeLimitInterrupts counts statements interrupted because their time
	// limit passed (ErrTimeLimit); Cancelled those interrupted because
	// their request went away.
	TimeLimitInterrupts uint64
	Cancelled           uint64
	// LockErrors counts lock errors of reads by SQLite's extended code
	// (SQLITE_BUSY, ...): a rollback-journal reader that found a writer
	// committing for longer than the busy timeout.
	LockErrors map[string]uint64
	// File holds what the counting VFS saw of every connection of this
	// database (the writer's and the readers'); zero when it could not be
	// installed.
	File FileStats
}

// FileStats are the counting VFS's counters (vfsstat.go).
type FileStats struct {
	// Sync is the time of each fsync by file: "db", "wal", "journal",
	// "other" (seconds). In WAL mode commits sync the WAL and checkpoints
	// the database file; in rollback modes commits sync the journal and
	// the database file.
	Sync map[string]Histogram
	// Checkpoints is the time each WAL checkpoint held the checkpoint
	// lock (seconds): the automatic ones after a commit that grew the WAL
	// past wal_autocheckpoint pages, and explicit ones (not the one the
	// last connection runs when it closes: it holds the file exclusively
	// and takes no checkpoint lock).
	Checkpoints Histogram
	// BusySleeps counts the sleeps of SQLite's busy handler while another
	// connection (another worker process, or a reader in rollback mode)
	// held a lock, and BusySleepSeconds their total time: how long
	// statements waited for locks, whether they then got them or failed.
	BusySleeps       uint64
	BusySleepSeconds float64
}

// dbStats are the counters of a DB's read side.
type dbStats struct {
	timeLimit atomic.Uint64
	cancelled atomic.Uint64
	locks     lockCounts
}

// Stats returns a snapshot of the database's counters.
func (db *DB) Stats() Stats {
	s := Stats{
		ReadWait:            db.pool.waits.snapshot(),
		ReadWaitTimeouts:    db.pool.timeouts.Load(),
		TimeLimitInterrupts: db.stats.timeLimit.Load(),
		Cancelled:           db.stats.cancelled.Load(),
		LockErrors:          db.stats.locks.snapshot(),
	}
	if db.vfs != nil {
		s.File = db.vfs.read()
	}
	return s
}

// isBusyCode reports whether a driver error is SQLITE_BUSY or SQLITE_LOCKED.
func isBusyCode(err error) bool {
	var se sqlite3.Error
	return errors.As(err, &se) && (se.Code == sqlite3.ErrBusy || se.Code == sqlite3.ErrLocked)
}

// Version returns the version of the SQLite compiled into the binary.
func Version() string {
	v, _, _ := sqlite3.Version()
	return v
}
