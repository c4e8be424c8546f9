package replica

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/superfly/ltx"
)

// FollowConfig configures Follow, a replica's follower.
type FollowConfig struct {
	// URL is the destination the primary replicates to.
	URL string
	// Path is the local database file the follower keeps current; Name
	// the name it is served as.
	Path, Name string
	// Interval is how often the destination is listed for new LTX files
	// (DefaultFollowInterval when zero).
	Interval time.Duration
	// MaxBatch caps how many LTX files one transaction applies (256 when
	// zero), which bounds the WAL a catching-up replica writes at once.
	MaxBatch int
	// Logger receives progress and errors; nil discards.
	Logger *slog.Logger
}

// Follow restores the latest state from cfg.URL into cfg.Path (unless the
// file is a replica this follower left earlier, which it resumes), then
// applies new transactions every Interval until ctx is cancelled. The
// status file (StatusPath) turns ready once the file can be served; it
// also records the last applied transaction, from which a restarted
// follower resumes. Re-applying a transaction that is already in the file
// writes the same pages again, so the status may lag the file but never
// run ahead of it (it is written after the COMMIT, whose WAL is synced).
func Follow(ctx context.Context, cfg FollowConfig) error {
	log := logOrDiscard(cfg.Logger)
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultFollowInterval
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = 256
	}
	abs, err := filepath.Abs(cfg.Path)
	if err != nil {
		return err
	}
	client, err := NewClient(cfg.URL)
	if err != nil {
		return err
	}
	client.SetLogger(log)
	if err := client.Init(ctx); err != nil {
		return fmt.Errorf("follow %s: %w", Redact(cfg.URL), err)
	}
	f := &follower{cfg: cfg, log: log, client: client, path: abs, statusPath: StatusPath(abs)}
	f.st = Status{Role: "replica", Database: cfg.Name, Path: abs, URL: Redact(cfg.URL),
		IntervalMS: cfg.Interval.Milliseconds(), PID: os.Getpid(), Restarts: restartsFromEnv(), Started: time.Now().UTC()}
	if err := f.prepare(ctx); err != nil {
		if ctx.Err() != nil {
			return nil // stopped while restoring: a clean stop
		}
		return err
	}
	if err := f.open(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	defer f.db.Close()
	f.st.Ready = true
	f.writeStatus()
	log.Info("following", "url", Redact(cfg.URL), "db", abs, "txid", ltx.TXID(f.st.TXID).String(), "interval", cfg.Interval)

	var lastWrite time.Time
	for {
		more, err := f.step(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			if f.st.Error != err.Error() {
				log.Error("follow: cannot apply", "err", err)
			}
			f.st.Error = err.Error()
			f.writeStatus()
			lastWrite = time.Now()
		case more:
			continue // a capped batch: apply the rest now
		}
		if time.Since(lastWrite) >= statusEvery {
			f.writeStatus()
			lastWrite = time.Now()
		}
		if !waitTick(ctx, cfg.Interval) {
			return nil
		}
	}
}

type follower struct {
	cfg        FollowConfig
	log        *slog.Logger
	client     litestream.ReplicaClient
	path       string
	statusPath string
	db         *sql.DB
	st         Status
	pageSize   uint32
}

// writeStatus saves the status (and with it the resume position), synced:
// after an OS crash it must not name a transaction the file lacks, and a
// torn status file would force a fresh restore.
func (f *follower) writeStatus() {
	f.st.Updated = time.Now().UTC()
	if err := writeJSONFile(f.statusPath, &f.st, true); err != nil {
		f.log.Warn("write replication status", "path", f.statusPath, "err", err)
	}
}

// prepare leaves a file to open: the one a previous follower of the same
// URL left (resumed from its status), or a fresh restore of the latest
// snapshot. It refuses to touch a file it did not create.
func (f *follower) prepare(ctx context.Context) error {
	prev, perr := ReadStatus(f.statusPath)
	_, serr := os.Stat(f.path)
	switch {
	case serr == nil && (perr != nil || prev.Role != "replica" || prev.TXID == 0):
		return fmt.Errorf("%s exists and is not a replica left by lode serve --follow (no usable %s); move it away or choose another --follow-dir", f.path, filepath.Base(f.statusPath))
	case serr == nil && prev.URL != Redact(f.cfg.URL):
		return fmt.Errorf("%s is a replica of %s, not of %s; move it away or choose another --follow-dir", f.path, prev.URL, Redact(f.cfg.URL))
	case serr == nil:
		f.st.TXID, f.st.LastSync, f.st.SourceTime = prev.TXID, prev.LastSync, prev.SourceTime
		f.log.Info("resuming replica", "db", f.path, "txid", ltx.TXID(prev.TXID).String())
		return nil
	case !errors.Is(serr, os.ErrNotExist):
		return serr
	}
	for _, p := range []string{f.statusPath, f.path + "-wal", f.path + "-shm", f.path + ".restore"} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	f.writeStatus() // not ready: says what the node is doing while it waits
	waiting := false
	for {
		txid, err := f.restore(ctx)
		if err == nil {
			f.st.TXID = uint64(txid)
			now := time.Now().UTC()
			f.st.LastSync = &now
			return nil
		}
		if !isNoBackup(err) || ctx.Err() != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("restore from %s: %w", Redact(f.cfg.URL), err)
		}
		if !waiting {
			f.log.Info("waiting for a first snapshot at the destination (is the primary running with --replicate?)", "url", Redact(f.cfg.URL))
			waiting = true
		}
		f.st.Error = "no snapshot at the destination yet"
		f.writeStatus()
		if !waitTick(ctx, f.cfg.Interval) {
			return ctx.Err()
		}
	}
}

// restore writes the latest state to a side file, records its transaction
// id and only then moves it into place, so an existing file always has a
// status to resume from.
func (f *follower) restore(ctx context.Context) (ltx.TXID, error) {
	plan, err := litestream.CalcRestorePlan(ctx, f.client, 0, time.Time{}, f.log)
	if err != nil {
		return 0, err
	}
	txid := plan[len(plan)-1].MaxTXID
	side := f.path + ".restore"
	r := litestream.NewReplicaWithClient(nil, f.client)
	opt := litestream.NewRestoreOptions()
	opt.OutputPath = side
	opt.TXID = txid
	opt.IntegrityCheck = litestream.IntegrityCheckQuick
	if err := r.Restore(ctx, opt); err != nil {
		return 0, err
	}
	f.st.TXID = uint64(txid)
	f.st.SourceTime = tsPtr(plan[len(plan)-1].CreatedAt)
	f.writeStatus()
	if err := os.Rename(side, f.path); err != nil {
		return 0, err
	}
	f.log.Info("restored", "db", f.path, "txid", txid.String(), "files", len(plan))
	return txid, nil
}

// open opens the file read-write with modernc.org/sqlite, in WAL mode so
// that readers never wait for an apply, with synchronous=FULL so that a
// committed apply survives an OS crash before the status names it.
func (f *follower) open(ctx context.Context) error {
	u := url.URL{Path: f.path}
	dsn := "file:" + u.EscapedPath() + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(wal)&_pragma=synchronous(full)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return err
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	var mode string
	var ps uint32
	if err := db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		db.Close()
		return fmt.Errorf("open replica %s: %w", f.path, err)
	}
	if mode != "wal" {
		db.Close()
		return fmt.Errorf("open replica %s: journal mode is %q, want wal", f.path, mode)
	}
	if err := db.QueryRowContext(ctx, "PRAGMA page_size").Scan(&ps); err != nil {
		db.Close()
		return fmt.Errorf("open replica %s: %w", f.path, err)
	}
	f.db, f.pageSize, f.st.PageSize = db, ps, ps
	return nil
}

// step applies what is new at the destination, at most MaxBatch files in
// one transaction; more reports that files remained.
func (f *follower) step(ctx context.Context) (more bool, err error) {
	cur := ltx.TXID(f.st.TXID)
	l0, err := f.list(ctx, 0, cur+1)
	if err != nil {
		return false, err
	}
	var chain []*ltx.FileInfo
	gap := false
	for len(chain) < f.cfg.MaxBatch {
		var next *ltx.FileInfo
		for _, info := range l0 {
			if info.MaxTXID > cur && info.MinTXID <= cur+1 {
				next = info
				break
			}
		}
		if next == nil {
			// Files beyond cur that do not continue it: level 0 was pruned
			// (Litestream keeps it 5 minutes after compacting it) while this
			// replica was away. A compacted level may cover the gap.
			if !slices.ContainsFunc(l0, func(i *ltx.FileInfo) bool { return i.MinTXID > cur+1 }) {
				break
			}
			if next, err = f.bridge(ctx, cur); err != nil {
				return false, err
			}
			if next == nil {
				gap = true
				break
			}
			f.log.Info("level 0 was pruned past this replica; continuing from a compacted level", "txid", cur.String(), "level", next.Level, "to", next.MaxTXID.String())
		}
		chain = append(chain, next)
		cur = next.MaxTXID
	}
	if gap && len(chain) == 0 {
		// The history this replica needs is gone: catch up from the latest
		// snapshot, applied like any other batch (every page, one commit).
		plan, err := litestream.CalcRestorePlan(ctx, f.client, 0, time.Time{}, f.log)
		if err != nil {
			return false, fmt.Errorf("catch up from snapshot: %w", err)
		}
		f.log.Warn("replica fell behind the destination's history; applying the latest snapshot", "txid", ltx.TXID(f.st.TXID).String(), "snapshot_txid", plan[len(plan)-1].MaxTXID.String())
		chain = plan
	}
	if len(chain) == 0 {
		return false, nil
	}
	if err := f.apply(ctx, chain); err != nil {
		return false, err
	}
	return len(chain) == f.cfg.MaxBatch, nil
}

// list returns the files of a level starting at seek, sorted (a file
// destination lists in directory order).
func (f *follower) list(ctx context.Context, level int, seek ltx.TXID) ([]*ltx.FileInfo, error) {
	itr, err := f.client.LTXFiles(ctx, level, seek, false)
	if err != nil {
		return nil, fmt.Errorf("list level %d: %w", level, err)
	}
	defer itr.Close()
	var out []*ltx.FileInfo
	for itr.Next() {
		out = append(out, itr.Item())
	}
	if err := itr.Err(); err != nil {
		return nil, fmt.Errorf("list level %d: %w", level, err)
	}
	slices.SortFunc(out, func(a, b *ltx.FileInfo) int { return cmp.Compare(a.MinTXID, b.MinTXID) })
	return out, nil
}

// bridge finds the compacted file (levels 1..8) that continues cur the
// furthest, or nil.
func (f *follower) bridge(ctx context.Context, cur ltx.TXID) (*ltx.FileInfo, error) {
	var best *ltx.FileInfo
	for level := 1; level < litestream.SnapshotLevel; level++ {
		infos, err := f.list(ctx, level, 0)
		if err != nil {
			return nil, err
		}
		for _, info := range infos {
			if info.MinTXID <= cur+1 && info.MaxTXID > cur && (best == nil || info.MaxTXID > best.MaxTXID) {
				best = info
			}
		}
	}
	return best, nil
}

// apply merges the chain's LTX files (later pages win, as Litestream's own
// restore does) and writes the pages through sqlite_dbpage in one
// transaction, then truncates the file to the last file's page count.
// SQLite journals the writes in the WAL like any transaction: readers see
// all of it or none of it.
func (f *follower) apply(ctx context.Context, chain []*ltx.FileInfo) (err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	rdrs := make([]io.Reader, 0, len(chain))
	defer func() {
		for _, r := range rdrs {
			if c, ok := r.(io.Closer); ok {
				c.Close()
			}
		}
	}()
	for _, info := range chain {
		rc, err := f.client.OpenLTXFile(ctx, info.Level, info.MinTXID, info.MaxTXID, 0, 0)
		if err != nil {
			return fmt.Errorf("open %s at level %d: %w", ltx.FormatFilename(info.MinTXID, info.MaxTXID), info.Level, err)
		}
		rdrs = append(rdrs, rc)
	}
	// The merged stream carries a checksum only if the inputs do (level 0
	// files are written without one).
	last := len(rdrs) - 1
	lastHdr, replay, err := ltx.PeekHeader(rdrs[last])
	if err != nil {
		return fmt.Errorf("read ltx header: %w", err)
	}
	closer := rdrs[last].(io.Closer)
	rdrs[last] = struct {
		io.Reader
		io.Closer
	}{replay, closer}
	pr, pw := io.Pipe()
	c, err := ltx.NewCompactor(pw, rdrs)
	if err != nil {
		return err
	}
	if lastHdr.NoChecksum() {
		c.HeaderFlags = ltx.HeaderFlagNoChecksum
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		pw.CloseWithError(c.Compact(ctx))
	}()
	defer func() {
		pr.Close()
		<-done
	}()

	dec := ltx.NewDecoder(pr)
	if err := dec.DecodeHeader(); err != nil {
		return fmt.Errorf("decode ltx header: %w", err)
	}
	hdr := dec.Header()
	if hdr.PageSize != f.pageSize {
		return fmt.Errorf("the primary's page size is now %d and this replica's is %d (VACUUM with a new page_size?): remove %s and its %s to restore afresh", hdr.PageSize, f.pageSize, f.path, filepath.Base(f.statusPath))
	}
	tx, err := f.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	stmt, err := tx.PrepareContext(ctx, "INSERT INTO sqlite_dbpage(pgno, data) VALUES (?, ?)")
	if err != nil {
		return fmt.Errorf("prepare page write: %w", err)
	}
	defer stmt.Close()
	data := make([]byte, hdr.PageSize)
	pages := 0
	for {
		var ph ltx.PageHeader
		if err := dec.DecodePage(&ph, data); err == io.EOF {
			break
		} else if err != nil {
			return fmt.Errorf("decode page: %w", err)
		}
		if _, err := stmt.ExecContext(ctx, int64(ph.Pgno), data); err != nil {
			return fmt.Errorf("write page %d: %w", ph.Pgno, err)
		}
		pages++
	}
	if err := dec.Close(); err != nil {
		return fmt.Errorf("verify ltx: %w", err)
	}
	var n uint32
	if err := tx.QueryRowContext(ctx, "PRAGMA page_count").Scan(&n); err != nil {
		return fmt.Errorf("page count: %w", err)
	}
	if n > hdr.Commit {
		// A NULL page truncates the database from that page on.
		if _, err := tx.ExecContext(ctx, "INSERT INTO sqlite_dbpage(pgno, data) VALUES (?, NULL)", int64(hdr.Commit)+1); err != nil {
			return fmt.Errorf("truncate to %d pages: %w", hdr.Commit, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	now := time.Now().UTC()
	f.st.TXID = uint64(hdr.MaxTXID)
	f.st.LastSync = &now
	f.st.Pages = hdr.Commit
	f.st.Error = ""
	if hdr.Timestamp > 0 {
		src := time.UnixMilli(hdr.Timestamp).UTC()
		lag := now.Sub(src).Milliseconds()
		f.st.SourceTime, f.st.LagMS = &src, &lag
	}
	f.writeStatus()
	f.log.Debug("applied", "from", chain[0].MinTXID.String(), "to", hdr.MaxTXID.String(), "files", len(chain), "pages", pages, "commit", hdr.Commit)
	return nil
}

func tsPtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}
