// Package replica runs Lode's read replicas on Litestream
// (github.com/benbjohnson/litestream, used as a library).
//
// A primary (`lode serve data.db --replicate URL`) runs a replicator next to
// its workers: a child process (`lode replica replicate`) in which
// Litestream copies every committed transaction from the WAL to the
// destination URL (file:///…, s3://…) as LTX files. A replica (`lode serve
// --follow URL --as NAME`) runs a follower child (`lode replica follow`)
// that restores the latest snapshot into a local file and then applies
// each new LTX file to it, while the serving processes read that file
// through read-only connections.
//
// Both run in their own processes because Litestream talks to SQLite
// through modernc.org/sqlite while Lode serves through mattn/go-sqlite3:
// two SQLite libraries in one process that open the same file break each
// other's POSIX locks (closing one's descriptor drops the other's locks).
// Across processes both follow SQLite's one locking protocol.
//
// The follower does not use Litestream's own follow mode (restore -f),
// which writes pages straight into the database file: a reader could see a
// transaction half written if the follower died mid-way, a reader's page
// cache is not invalidated when page 1 is not among the changed pages, and
// it rewrites the file to rollback-journal mode, whose exclusive lock waits
// on every reader. Instead each batch of LTX files is applied as one SQLite
// transaction through the sqlite_dbpage virtual table (compiled into
// modernc.org/sqlite) on a database in WAL mode: readers keep their
// snapshot until the commit and then see the whole batch, a crash rolls
// the batch back, and readers and the follower never wait for each other.
package replica

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/file"
	_ "github.com/benbjohnson/litestream/s3" // registers s3:// destinations
)

// Defaults of the intervals (see README "Read replicas").
const (
	// DefaultSyncInterval is how often the primary's replicator looks for
	// new WAL frames and ships them (Litestream's monitor and sync
	// intervals, which Lode sets together).
	DefaultSyncInterval = time.Second
	// DefaultFollowInterval is how often a follower lists the destination
	// for new LTX files.
	DefaultFollowInterval = 500 * time.Millisecond
	// MinInterval is the shortest sync or follow interval accepted: below
	// it Litestream would take the primary's write lock (it does on every
	// sync) so often that the writer slows, and the destination would fill
	// with thousands of tiny files a minute.
	MinInterval = 50 * time.Millisecond
	// statusEvery is how often a child rewrites its status file when
	// nothing happens, so a reader can tell a live child from a dead one.
	statusEvery = time.Second
)

// Schemes are the destination URL schemes Lode links in.
var Schemes = []string{"file", "s3"}

// NewClient returns the Litestream replica client for a destination URL
// such as file:///srv/lode-replica/data or s3://bucket/data. Errors say
// what a valid URL looks like.
func NewClient(rawURL string) (litestream.ReplicaClient, error) {
	if err := ValidateURL(rawURL); err != nil {
		return nil, err
	}
	c, err := litestream.NewReplicaClientFromURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("replica URL %q: %w", Redact(rawURL), err)
	}
	return c, nil
}

// ValidateURL checks a destination URL without touching the destination.
func ValidateURL(rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme == "" {
		return fmt.Errorf("replica URL %q: want a URL such as file:///srv/lode-replica/data or s3://bucket/data", Redact(rawURL))
	}
	switch u.Scheme {
	case "file":
		if u.Host != "" && u.Host != "localhost" {
			return fmt.Errorf("replica URL %q: a file URL names a local directory, e.g. file:///srv/lode-replica/data (three slashes)", rawURL)
		}
		if !strings.HasPrefix(u.Path, "/") {
			return fmt.Errorf("replica URL %q: the directory must be absolute, e.g. file:///srv/lode-replica/data", rawURL)
		}
	case "s3":
		if u.Host == "" {
			return fmt.Errorf("replica URL %q: name a bucket, e.g. s3://bucket/data (endpoint=, region= and force-path-style=true as query parameters for S3-compatible storage)", Redact(rawURL))
		}
	default:
		return fmt.Errorf("replica URL %q: scheme %q is not supported; use one of %s", Redact(rawURL), u.Scheme, strings.Join(Schemes, ", "))
	}
	return nil
}

// FileURL returns the file:// URL of a local directory.
func FileURL(dir string) string {
	return (&url.URL{Scheme: "file", Path: filepath.ToSlash(dir)}).String()
}

// Redact hides a password in a URL's user info (s3://KEY:SECRET@bucket is
// accepted by some tools) so URLs can be logged and shown.
func Redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil || u.User == nil {
		return rawURL
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

// attachFileOwner lets a file destination copy the database's ownership
// to the files it writes, as the litestream command does.
func attachFileOwner(c litestream.ReplicaClient, r *litestream.Replica) {
	if fc, ok := c.(*file.ReplicaClient); ok {
		fc.Replica = r
	}
}

// Status is what a replicator or follower reports about itself; the
// child rewrites it (StatusPath) after every change and at least every
// second, and /-/replication.json serves it.
type Status struct {
	// Role is "primary" (a replicator) or "replica" (a follower).
	Role string `json:"role"`
	// Database is the name the database is served as.
	Database string `json:"database"`
	// Path is the local database file.
	Path string `json:"path"`
	// URL is the destination (primary) or source (replica), password
	// redacted.
	URL string `json:"url"`
	// IntervalMS is the sync interval (primary) or follow interval
	// (replica) in milliseconds.
	IntervalMS int64 `json:"interval_ms"`
	// PID is the child process; Restarts how often the supervisor has
	// restarted it; Started when this one started.
	PID      int       `json:"pid"`
	Restarts int       `json:"restarts"`
	Started  time.Time `json:"started"`
	// Ready is false until a follower has restored its first snapshot and
	// until a replicator has opened the database.
	Ready bool `json:"ready"`
	// TXID is Litestream's transaction id: on a primary the last
	// transaction copied out of the WAL, on a replica the last applied.
	TXID uint64 `json:"txid"`
	// ReplicatedTXID (primary) is the last transaction known to be at the
	// destination.
	ReplicatedTXID uint64 `json:"replicated_txid,omitempty"`
	// LastSync is when the destination last received new transactions
	// (primary) or the replica last applied some (replica).
	LastSync *time.Time `json:"last_sync"`
	// ShippedBefore (primary): every transaction committed before this
	// time is at the destination. now - ShippedBefore is what the
	// primary's loss would cost right now.
	ShippedBefore *time.Time `json:"shipped_before,omitempty"`
	// SourceTime (replica) is when the primary wrote the last applied
	// transaction's LTX file; LagMS is LastSync minus SourceTime, the
	// replication lag of that transaction as the clocks see it.
	SourceTime *time.Time `json:"source_time,omitempty"`
	LagMS      *int64     `json:"lag_ms,omitempty"`
	// PageSize and Pages describe the replica's file after the last apply.
	PageSize uint32 `json:"page_size,omitempty"`
	Pages    uint32 `json:"pages,omitempty"`
	// Error is the last error, cleared by the next success.
	Error string `json:"error,omitempty"`
	// Updated is when this status was written.
	Updated time.Time `json:"updated"`
}

// StatusPath is where the child for the database at dbPath writes its
// status: next to the database, so every worker process can read it.
func StatusPath(dbPath string) string { return dbPath + "-lode-replication.json" }

// writeJSONFile writes v to path atomically (temp file + rename), so a
// reader never sees half a file.
func writeJSONFile(path string, v any, sync bool) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return err
	}
	if sync {
		if err := f.Sync(); err != nil {
			f.Close()
			return err
		}
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// ReadStatus reads a status file written by a replicator or follower.
func ReadStatus(path string) (*Status, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var st Status
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("status file %s: %w", path, err)
	}
	return &st, nil
}

// envRestarts carries the supervisor's restart count to the child, which
// reports it in its status.
const envRestarts = "LODE_REPLICA_RESTARTS"

func restartsFromEnv() int {
	var n int
	fmt.Sscan(os.Getenv(envRestarts), &n)
	return n
}

// waitTick sleeps d or until ctx is done; it reports whether ctx is still
// live.
func waitTick(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// isNoBackup reports whether err means the destination holds nothing to
// restore yet.
func isNoBackup(err error) bool {
	return errors.Is(err, litestream.ErrTxNotAvailable) || errors.Is(err, litestream.ErrNoSnapshots)
}

func logOrDiscard(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}
