package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"lode/internal/prefork"
	"lode/internal/replica"
	"lode/internal/server"
)

// followReadyTimeout bounds how long lode serve --follow waits for the
// follower's first restore (which waits for the primary's first snapshot).
const followReadyTimeout = 10 * time.Minute

// addReplicaFlags registers lode serve's replication flags.
func addReplicaFlags(f *pflag.FlagSet) {
	f.String("replicate", "", "primary: ship every committed transaction to this Litestream destination\n(file:///srv/lode-replica/data, s3://bucket/data)")
	f.Duration("sync-interval", replica.DefaultSyncInterval, "primary: how often new WAL frames are shipped to --replicate")
	f.String("follow", "", "replica: serve a read-only copy of the database replicated to this destination")
	f.String("as", "", "replica: the name the followed database is served as (its copy is --follow-dir/NAME.db)")
	f.String("follow-dir", ".", "replica: directory of the local copy")
	f.Duration("follow-interval", replica.DefaultFollowInterval, "replica: how often the destination is checked for new transactions")
	f.String("primary", "", "replica: the primary's base URL (http://primary:8001); writes sent to this node go there")
	f.String("primary-mode", "proxy", "replica: proxy (forward writes to --primary) or redirect (answer 307)")
}

// replicaConfig reads the replication flags and the serve settings they
// constrain, validated.
func replicaConfig(f *pflag.FlagSet, cfg server.Config) (replica.ServeConfig, error) {
	rc := replica.ServeConfig{Files: cfg.Files, Immutable: cfg.Immutable, JournalMode: cfg.DB.JournalMode, Changed: f.Changed}
	rc.Replicate, _ = f.GetString("replicate")
	rc.SyncInterval, _ = f.GetDuration("sync-interval")
	rc.Follow, _ = f.GetString("follow")
	rc.As, _ = f.GetString("as")
	rc.FollowDir, _ = f.GetString("follow-dir")
	rc.FollowInterval, _ = f.GetDuration("follow-interval")
	rc.Primary, _ = f.GetString("primary")
	rc.PrimaryMode, _ = f.GetString("primary-mode")
	return rc, rc.Validate()
}

// applyReplicaConfig adjusts the served databases to the node's role: a
// replica serves its local copy read-only (no write connection, a short
// schema check interval); a primary's writer leaves checkpoints to
// Litestream.
func applyReplicaConfig(rc replica.ServeConfig, cfg *server.Config) {
	switch rc.Role() {
	case "replica":
		cfg.Files = []string{rc.LocalPath()}
		cfg.DB.ReadOnly = true
		cfg.DB.SchemaCheckInterval = replica.SchemaCheckInterval
	case "primary":
		cfg.DB.AutoCheckpoint = -1
	}
}

// startReplication starts the node's replicator or follower (not in a
// worker: the master or the single process owns it) and, for a replica,
// waits for its first restore. The caller stops it after serving.
func startReplication(ctx context.Context, cmd *cobra.Command, rc replica.ServeConfig, log *slog.Logger) (*replica.Sidecar, error) {
	if rc.Role() == "" || prefork.IsWorker() {
		return nil, nil
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find the lode executable for the %s: %w", rc.Role(), err)
	}
	level, _ := cmd.Flags().GetString("log-level")
	format, _ := cmd.Flags().GetString("log-format")
	if rc.Role() == "primary" {
		if _, err := os.Stat(rc.Files[0]); err != nil {
			return nil, fmt.Errorf("open database %q: %w", rc.Files[0], err)
		}
	}
	return rc.StartSidecar(ctx, exe, level, format, log.With("role", rc.Role()), followReadyTimeout)
}

// replicaHandler mounts the replication status (/-/replication.json) on
// srv, behind its gate, and on a replica puts the forwarding of writes to
// the primary in front of h.
func replicaHandler(rc replica.ServeConfig, srv *server.Server, h http.Handler) (http.Handler, error) {
	if rc.Role() == "" {
		return h, nil
	}
	rh := replica.NewHandler(h, rc)
	if err := srv.AddStatusEndpoint(replica.StatusEndpoint, rh.StatusHandler()); err != nil {
		return nil, err
	}
	if rc.Role() != "replica" {
		return h, nil
	}
	return rh, nil
}

// newReplicaCmd builds `lode replica`: restore a database from a
// destination, and the child processes lode serve runs for replication.
func newReplicaCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "replica",
		Short: "Restore a database from a Litestream destination (and run replication children)",
		Long: `Lode's replication runs on Litestream. lode serve data.db --replicate URL starts
"lode replica replicate" beside its workers; lode serve --follow URL --as NAME starts
"lode replica follow". Both can also be run by hand. lode replica restore writes the latest
state (or an earlier transaction) of a destination to a new file, e.g. to promote a replica.`,
	}
	restore := &cobra.Command{
		Use:   "restore URL -o FILE",
		Short: "Write the latest state of a destination to a new database file",
		Example: `  lode replica restore file:///srv/lode-replica/data -o data.db
  lode replica restore s3://bucket/data -o data.db --txid 0000000000000123`,
		Args: exactArgs(1, "give the destination, e.g. lode replica restore file:///srv/lode-replica/data -o data.db"),
		RunE: func(cmd *cobra.Command, args []string) error {
			log, err := newLogger(cmd)
			if err != nil {
				return err
			}
			out, _ := cmd.Flags().GetString("output")
			txid, _ := cmd.Flags().GetString("txid")
			if out == "" {
				return fmt.Errorf("-o FILE is required: the database file to create")
			}
			slog.SetDefault(log)
			return replica.Restore(cmd.Context(), replica.RestoreConfig{URL: args[0], Output: out, TXID: txid, Logger: log})
		},
	}
	restore.Flags().StringP("output", "o", "", "database file to create (must not exist)")
	restore.Flags().String("txid", "", "restore up to this transaction id (hex, as in /-/replication.json); default: the latest")

	replicate := &cobra.Command{
		Use:   "replicate DB URL",
		Short: "Ship a database's WAL to a destination until stopped (lode serve --replicate runs this)",
		Args:  exactArgs(2, "give the database and the destination, e.g. lode replica replicate data.db file:///srv/lode-replica/data"),
		RunE: func(cmd *cobra.Command, args []string) error {
			log, err := newLogger(cmd)
			if err != nil {
				return err
			}
			slog.SetDefault(log)
			name, _ := cmd.Flags().GetString("name")
			iv, _ := cmd.Flags().GetDuration("sync-interval")
			return replica.Replicate(cmd.Context(), replica.ReplicateConfig{Path: args[0], URL: args[1], Name: name, SyncInterval: iv, Logger: log})
		},
	}
	replicate.Flags().String("name", "", "name the database is served as (for the status)")
	replicate.Flags().Duration("sync-interval", replica.DefaultSyncInterval, "how often new WAL frames are shipped")

	follow := &cobra.Command{
		Use:   "follow URL --db FILE",
		Short: "Keep a local copy of a destination's database current (lode serve --follow runs this)",
		Args:  exactArgs(1, "give the destination, e.g. lode replica follow file:///srv/lode-replica/data --db copy.db"),
		RunE: func(cmd *cobra.Command, args []string) error {
			log, err := newLogger(cmd)
			if err != nil {
				return err
			}
			slog.SetDefault(log)
			db, _ := cmd.Flags().GetString("db")
			name, _ := cmd.Flags().GetString("name")
			iv, _ := cmd.Flags().GetDuration("interval")
			if db == "" {
				return fmt.Errorf("--db FILE is required: the local copy to keep current")
			}
			return replica.Follow(cmd.Context(), replica.FollowConfig{URL: args[0], Path: db, Name: name, Interval: iv, Logger: log})
		},
	}
	follow.Flags().String("db", "", "the local copy")
	follow.Flags().String("name", "", "name the database is served as (for the status)")
	follow.Flags().Duration("interval", replica.DefaultFollowInterval, "how often the destination is checked")
	cmd.AddCommand(restore, replicate, follow)
	return cmd
}

// exactArgs is cobra.ExactArgs with a message that says what to give.
func exactArgs(n int, hint string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return fmt.Errorf("%s takes %d argument(s), got %d: %s", cmd.CommandPath(), n, len(args), hint)
		}
		return nil
	}
}
