package replica

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/benbjohnson/litestream"
	"github.com/superfly/ltx"
)

// RestoreConfig configures Restore.
type RestoreConfig struct {
	// URL is the destination; Output the database file to create.
	URL, Output string
	// TXID, if set (hex, as shown by /-/replication.json), restores the
	// state after that transaction instead of the latest.
	TXID string
	// Logger receives progress; nil discards.
	Logger *slog.Logger
}

// Restore writes the state of a destination to a new file and checks it
// with PRAGMA quick_check. It refuses to overwrite an existing file.
func Restore(ctx context.Context, cfg RestoreConfig) error {
	log := logOrDiscard(cfg.Logger)
	client, err := NewClient(cfg.URL)
	if err != nil {
		return err
	}
	client.SetLogger(log)
	if err := client.Init(ctx); err != nil {
		return fmt.Errorf("restore from %s: %w", Redact(cfg.URL), err)
	}
	if _, err := os.Stat(cfg.Output); err == nil {
		return fmt.Errorf("%s exists: restore writes a new file; choose another -o or move it away", cfg.Output)
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	opt := litestream.NewRestoreOptions()
	opt.OutputPath = cfg.Output
	opt.IntegrityCheck = litestream.IntegrityCheckQuick
	if cfg.TXID != "" {
		id, err := ltx.ParseTXID(cfg.TXID)
		if err != nil {
			return fmt.Errorf("--txid %q: want a hex transaction id such as 00000000000000a3: %w", cfg.TXID, err)
		}
		opt.TXID = id
	}
	r := litestream.NewReplicaWithClient(nil, client)
	if err := r.Restore(ctx, opt); err != nil {
		if isNoBackup(err) {
			return fmt.Errorf("restore from %s: nothing to restore (%w); is a primary replicating to it?", Redact(cfg.URL), err)
		}
		return fmt.Errorf("restore from %s: %w", Redact(cfg.URL), err)
	}
	log.Info("restored", "url", Redact(cfg.URL), "output", cfg.Output)
	return nil
}
