package replica

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/benbjohnson/litestream"
	_ "modernc.org/sqlite" // Litestream's SQLite driver; only this child process loads it
)

// ReplicateConfig configures Replicate, the primary's replicator.
type ReplicateConfig struct {
	// Path is the database file; Name the name it is served as.
	Path, Name string
	// URL is the destination (see NewClient).
	URL string
	// SyncInterval is how often new WAL frames are shipped
	// (DefaultSyncInterval when zero).
	SyncInterval time.Duration
	// ShutdownTimeout bounds the final sync when ctx ends (10 s when zero).
	ShutdownTimeout time.Duration
	// Logger receives Litestream's log lines; nil discards.
	Logger *slog.Logger
}

// Replicate runs Litestream on cfg.Path until ctx is cancelled, then
// ships what is left in the WAL (bounded by ShutdownTimeout) and returns.
// It must run in a process that has no other SQLite library open on the
// file (see the package comment). Litestream keeps the WAL from being
// checkpointed behind its back by holding a read transaction, checkpoints
// itself (PASSIVE at 1000 pages, TRUNCATE only past ~500 MB), and takes the
// write lock for a moment on each sync to read a consistent end of the
// WAL; Lode's writer waits for it within --busy-timeout.
func Replicate(ctx context.Context, cfg ReplicateConfig) error {
	log := logOrDiscard(cfg.Logger)
	if cfg.SyncInterval <= 0 {
		cfg.SyncInterval = DefaultSyncInterval
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 10 * time.Second
	}
	abs, err := filepath.Abs(cfg.Path)
	if err != nil {
		return err
	}
	if _, err := os.Stat(abs); err != nil {
		return fmt.Errorf("replicate: %w", err)
	}
	client, err := NewClient(cfg.URL)
	if err != nil {
		return err
	}
	client.SetLogger(log)
	db := litestream.NewDB(abs)
	db.Logger = log.With("db", filepath.Base(abs))
	// Litestream polls the WAL every MonitorInterval and uploads at most
	// every SyncInterval; one knob sets both so the interval is the bound
	// on how long a commit waits before it starts its way out.
	db.MonitorInterval = cfg.SyncInterval
	db.ShutdownSyncTimeout = cfg.ShutdownTimeout
	r := litestream.NewReplicaWithClient(db, client)
	r.SyncInterval = cfg.SyncInterval
	db.Replica = r
	attachFileOwner(client, r)
	store := litestream.NewStore([]*litestream.DB{db}, litestream.DefaultCompactionLevels)
	store.Logger = log
	// Level-0 files (one per sync) are kept a minute after they were
	// compacted into level 1 (every 30 s) instead of Litestream's five: a
	// follower lists level 0 on every poll, and with a short interval five
	// minutes are thousands of files. A follower away for longer continues
	// from level 1.
	store.SetL0Retention(time.Minute)
	store.ShutdownSyncTimeout = cfg.ShutdownTimeout
	db.ShutdownSyncTimeout = cfg.ShutdownTimeout

	st := &Status{Role: "primary", Database: cfg.Name, Path: abs, URL: Redact(cfg.URL),
		IntervalMS: cfg.SyncInterval.Milliseconds(), PID: os.Getpid(), Restarts: restartsFromEnv(), Started: time.Now().UTC()}
	statusPath := StatusPath(abs)
	write := func() {
		st.Updated = time.Now().UTC()
		if err := writeJSONFile(statusPath, st, false); err != nil {
			log.Warn("write replication status", "path", statusPath, "err", err)
		}
	}
	write()
	if err := store.Open(ctx); err != nil {
		st.Error = err.Error()
		write()
		return fmt.Errorf("start litestream on %s: %w", abs, err)
	}
	st.Ready = true
	log.Info("replicating", "db", abs, "url", Redact(cfg.URL), "sync_interval", cfg.SyncInterval)

	// Report positions: polled often enough that last_sync is within a
	// few ms of the upload that moved the destination's position.
	poll := min(cfg.SyncInterval/4, 100*time.Millisecond)
	var lastWrite time.Time
	var walReadAt time.Time
	for {
		changed := false
		// A finished sync that started at S copied every commit made
		// before S (it reads the WAL to its end under the write lock), so
		// once the destination's position equals the local one, everything
		// committed before S is at the destination. Read the diagnostic
		// first: the positions read after it include that sync.
		if d := db.SyncDiagnostic(); !d.Active && d.StartedAt != nil && d.Error == "" {
			walReadAt = *d.StartedAt
		}
		if pos, err := db.Pos(); err == nil && uint64(pos.TXID) != st.TXID {
			st.TXID, changed = uint64(pos.TXID), true
		}
		if rp := r.Pos(); uint64(rp.TXID) != st.ReplicatedTXID {
			now := time.Now().UTC()
			st.ReplicatedTXID, st.LastSync, changed = uint64(rp.TXID), &now, true
			st.Error = ""
		}
		if st.ReplicatedTXID == st.TXID && !walReadAt.IsZero() && (st.ShippedBefore == nil || walReadAt.After(*st.ShippedBefore)) {
			t := walReadAt.UTC()
			st.ShippedBefore, changed = &t, true
		}
		if changed || time.Since(lastWrite) >= statusEvery {
			write()
			lastWrite = time.Now()
		}
		if !waitTick(ctx, poll) {
			break
		}
	}
	cctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout+time.Second)
	defer cancel()
	err = store.Close(cctx)
	if rp := r.Pos(); uint64(rp.TXID) != st.ReplicatedTXID {
		now := time.Now().UTC()
		st.ReplicatedTXID, st.LastSync = uint64(rp.TXID), &now
	}
	st.Ready = false
	if err != nil && !errors.Is(err, context.Canceled) {
		st.Error = err.Error()
		write()
		return fmt.Errorf("stop litestream: %w", err)
	}
	write()
	log.Info("replication stopped", "txid", st.TXID, "replicated_txid", st.ReplicatedTXID)
	return nil
}
