package server

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"lode/internal/sqlitedb"
)

// This file holds the limits of one lode serve process as a whole: its
// memory (SQLite's heap, Go's heap, the largest value a query may build)
// and its file descriptors (how many client connections it accepts at
// once). Both are process state, so cmd/lode applies them once per
// serving process (ApplyProcessLimits), never server.New.

// DefaultMemoryLimit is lode serve's --memory-limit: what one serving
// process (a worker, or the single process of --workers 0) aims to stay
// under.
const DefaultMemoryLimit = 512 << 20

// minMemoryLimit is the smallest --memory-limit accepted (besides 0).
const minMemoryLimit = 32 << 20

// MemoryPlan is how a process's memory limit is shared out.
type MemoryPlan struct {
	// Limit is the whole budget (--memory-limit); 0 means no limits.
	Limit int64 `json:"memory_limit"`
	// SQLiteHard and SQLiteSoft are SQLite's process-wide heap limits
	// (a quarter and an eighth of Limit): past the soft one SQLite frees
	// page cache first, past the hard one an allocation fails with
	// SQLITE_NOMEM (that statement gets 503 "out of memory").
	SQLiteHard int64 `json:"sqlite_hard_heap_limit"`
	SQLiteSoft int64 `json:"sqlite_soft_heap_limit"`
	// GoSoft is the Go runtime's soft memory limit (half of Limit; see
	// runtime/debug.SetMemoryLimit): near it the collector runs more
	// often. GOMEMLIMIT in the environment wins.
	GoSoft int64 `json:"go_memory_limit"`
	// MaxValue is SQLITE_LIMIT_LENGTH on read connections (a sixteenth
	// of Limit): the largest string or blob one query may read or build.
	MaxValue int `json:"max_value_bytes"`
}

// PlanMemory shares out limit (bytes; 0 = no limits, SQLite's own
// 1,000,000,000-byte value limit). A value limit is never below 1 MiB.
func PlanMemory(limit int64) (MemoryPlan, error) {
	if limit == 0 {
		return MemoryPlan{MaxValue: 1_000_000_000}, nil
	}
	if limit < minMemoryLimit {
		return MemoryPlan{}, fmt.Errorf("--memory-limit %s: want at least %s, or 0 for no limit", formatSize(limit), formatSize(minMemoryLimit))
	}
	return MemoryPlan{
		Limit:      limit,
		SQLiteHard: limit / 4,
		SQLiteSoft: limit / 8,
		GoSoft:     limit / 2,
		MaxValue:   int(min(max(limit/16, 1<<20), 1_000_000_000)),
	}, nil
}

// ParseSize parses a byte size such as 512MiB, 1GiB, 300MB, 65536 or 0.
// Units: B, K/KB/KiB, M/MB/MiB, G/GB/GiB (all powers of 1024, as GOMEMLIMIT
// reads them).
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := len(t)
	for i > 0 && (t[i-1] < '0' || t[i-1] > '9') {
		i--
	}
	num, unit := t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("size %q: want a number of bytes with an optional unit, e.g. 512MiB or 1GiB", s)
	}
	shift := map[string]uint{"": 0, "b": 0, "k": 10, "kb": 10, "kib": 10, "m": 20, "mb": 20, "mib": 20, "g": 30, "gb": 30, "gib": 30}
	sh, ok := shift[unit]
	if !ok {
		return 0, fmt.Errorf("size %q: unknown unit %q (use B, KiB, MiB or GiB)", s, unit)
	}
	if n > (1<<62)>>sh {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return n << sh, nil
}

func formatSize(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%dGiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", n>>20)
	}
	return strconv.FormatInt(n, 10)
}

// ProcessLimits are the limits ApplyProcessLimits put in force.
type ProcessLimits struct {
	Memory MemoryPlan
	// FDLimit is the process's file descriptor limit (RLIMIT_NOFILE,
	// which the Go runtime raises to the hard limit at start).
	FDLimit int
	// FDReserve is what is kept for SQLite and the process itself;
	// MaxConns = FDLimit - FDReserve client connections at once.
	FDReserve int
	MaxConns  int
	// MallocTuned: the C allocator returns memory SQLite frees (glibc).
	MallocTuned bool
}

// Descriptors a database may use besides client connections: per
// connection the database file, its WAL and a temporary file (sorts,
// rollback journal), for the read pool, the schema pool and up to
// PoolWriteConns writers; plus the shared-memory file and slack.
func fdsPerDatabase(readConns int) int {
	return (readConns+2+PoolWriteConns)*3 + 8
}

// fdBase is kept for the process itself: standard streams, the listener,
// the prefork control socket, the Go runtime's epoll and pipes, logs.
const fdBase = 64

// minConns is the fewest client connections lode serve will run with.
const minConns = 16

// ApplyProcessLimits puts cfg.MemoryLimit in force for this process
// (SQLite's heap limits, Go's soft memory limit unless GOMEMLIMIT is set,
// and the value limit of every database's read connections, written into
// cfg.DB) and works out how many client connections the file descriptor
// limit allows. It logs both, with a warning when the descriptor limit
// leaves few connections. Call it once per serving process, before New.
func ApplyProcessLimits(cfg *Config, log *slog.Logger) (ProcessLimits, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var pl ProcessLimits
	plan, err := PlanMemory(cfg.MemoryLimit)
	if err != nil {
		return pl, err
	}
	pl.Memory = plan
	cfg.DB.MaxValueBytes = plan.MaxValue
	if plan.Limit > 0 {
		hl, err := sqlitedb.SetHeapLimits(sqlitedb.HeapLimits{Soft: plan.SQLiteSoft, Hard: plan.SQLiteHard})
		if err != nil {
			return pl, fmt.Errorf("set SQLite heap limits: %w", err)
		}
		pl.MallocTuned = hl.Malloc
		if os.Getenv("GOMEMLIMIT") == "" {
			debug.SetMemoryLimit(plan.GoSoft)
		}
	}
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return pl, fmt.Errorf("read the file descriptor limit: %w", err)
	}
	pl.FDLimit = int(min(rl.Cur, 1<<30))
	readConns := cfg.DB.ReadConns
	if readConns <= 0 {
		readConns = runtime.NumCPU()
	}
	pl.FDReserve = fdBase + (len(cfg.Files)+len(cfg.Immutable))*fdsPerDatabase(readConns)
	pl.MaxConns = pl.FDLimit - pl.FDReserve
	if pl.MaxConns < minConns {
		return pl, fmt.Errorf("the file descriptor limit (ulimit -n) is %d, but %d databases with %d read connections each need about %d of them, which leaves fewer than %d for clients; raise it (e.g. ulimit -n 65536) or use --read-conns",
			pl.FDLimit, len(cfg.Files)+len(cfg.Immutable), readConns, pl.FDReserve, minConns)
	}
	log.Info("process limits", "memory_limit", plan.Limit, "sqlite_hard_heap_limit", plan.SQLiteHard,
		"go_memory_limit", plan.GoSoft, "max_value_bytes", plan.MaxValue, "malloc_tuned", pl.MallocTuned,
		"fd_limit", pl.FDLimit, "max_connections", pl.MaxConns)
	if pl.MaxConns < 1024 {
		log.Warn("low file descriptor limit: at most this many client connections are accepted at once; others wait in the listen queue (raise it with ulimit -n)",
			"fd_limit", pl.FDLimit, "max_connections", pl.MaxConns)
	}
	return pl, nil
}

// LimitListener returns a listener that accepts at most n connections at
// once (n <= 0: ln itself). At the limit, Accept waits for a connection to
// close, so further clients wait in the kernel's listen queue (or another
// worker takes them from the shared socket) instead of being accepted
// into a process that has no file descriptor left for SQLite. The first
// time the limit is reached, and then at most once a minute, it logs a
// warning.
func LimitListener(ln net.Listener, n int, log *slog.Logger) net.Listener {
	if n <= 0 {
		return ln
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &limitListener{Listener: ln, slots: make(chan struct{}, n), done: make(chan struct{}), log: log}
}

type limitListener struct {
	net.Listener
	slots chan struct{} // one token per open connection
	done  chan struct{} // closed by Close
	once  sync.Once
	log   *slog.Logger

	mu     sync.Mutex
	warned time.Time
}

func (l *limitListener) Accept() (net.Conn, error) {
	select {
	case l.slots <- struct{}{}:
	default:
		l.atLimit()
		select {
		case l.slots <- struct{}{}:
		case <-l.done:
			return nil, net.ErrClosed
		}
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.slots
		return nil, err
	}
	return &limitConn{Conn: c, release: func() { <-l.slots }}, nil
}

func (l *limitListener) atLimit() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now := time.Now(); now.Sub(l.warned) > time.Minute {
		l.warned = now
		l.log.Warn("connection limit reached: new connections wait until one closes", "max_connections", cap(l.slots))
	}
}

func (l *limitListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// limitConn frees its listener slot when closed (once).
type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

// CloseWrite keeps net/http's half-close of a connection it is done with.
func (c *limitConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
