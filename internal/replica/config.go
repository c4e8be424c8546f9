package replica

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// SchemaCheckInterval is how long a replica's serving process trusts its
// cached schema before it reads PRAGMA schema_version again (the primary's
// default is a second): a replica's schema changes under it, so columns,
// tables and facets follow within this much of the data that needs them.
const SchemaCheckInterval = 10 * time.Millisecond

// ServeConfig is the replication part of lode serve: the flags
// --replicate/--sync-interval (primary) or --follow/--as/--follow-dir/
// --follow-interval/--primary/--primary-mode (replica), plus the serve
// settings they constrain. cmd/lode fills it; Validate says what cannot
// work.
type ServeConfig struct {
	// Replicate is the destination URL of a primary.
	Replicate    string
	SyncInterval time.Duration
	// Follow is the destination URL a replica follows, As the name it
	// serves the database as, FollowDir where it keeps its copy.
	Follow         string
	As             string
	FollowDir      string
	FollowInterval time.Duration
	// Primary is where a replica sends writes; PrimaryMode is "proxy"
	// (forward them and return the primary's answer) or "redirect" (307).
	Primary     string
	PrimaryMode string

	// Files and Immutable are lode serve's database arguments; JournalMode
	// its --journal-mode; Changed reports whether a flag was given.
	Files, Immutable []string
	JournalMode      string
	Changed          func(flag string) bool
}

// Role returns "primary", "replica" or "" (no replication).
func (c *ServeConfig) Role() string {
	switch {
	case c.Follow != "":
		return "replica"
	case c.Replicate != "":
		return "primary"
	}
	return ""
}

// LocalPath is the replica's copy of the followed database.
func (c *ServeConfig) LocalPath() string {
	return filepath.Join(c.FollowDir, c.As+".db")
}

// DBPath is the database file whose replication status is served.
func (c *ServeConfig) DBPath() string {
	if c.Role() == "replica" {
		return c.LocalPath()
	}
	if len(c.Files) > 0 {
		return c.Files[0]
	}
	return ""
}

// Validate fills defaults and refuses combinations that cannot work, in
// words that say what to change.
func (c *ServeConfig) Validate() error {
	changed := c.Changed
	if changed == nil {
		changed = func(string) bool { return false }
	}
	if c.SyncInterval == 0 {
		c.SyncInterval = DefaultSyncInterval
	}
	if c.FollowInterval == 0 {
		c.FollowInterval = DefaultFollowInterval
	}
	if c.FollowDir == "" {
		c.FollowDir = "."
	}
	if c.PrimaryMode == "" {
		c.PrimaryMode = "proxy"
	}
	if c.Replicate != "" && c.Follow != "" {
		return errors.New("--replicate and --follow exclude each other: a node is either the primary (--replicate URL) or a replica (--follow URL)")
	}
	for _, iv := range []struct {
		flag string
		d    time.Duration
	}{{"--sync-interval", c.SyncInterval}, {"--follow-interval", c.FollowInterval}} {
		if iv.d < MinInterval {
			return fmt.Errorf("%s %s: must be at least %s (Litestream takes the write lock on every sync, and every interval can leave a file at the destination)", iv.flag, iv.d, MinInterval)
		}
	}
	switch c.Role() {
	case "":
		for _, fl := range []string{"sync-interval", "as", "follow-dir", "follow-interval", "primary", "primary-mode"} {
			if changed(fl) {
				return fmt.Errorf("--%s applies only with --replicate URL (a primary) or --follow URL (a replica)", fl)
			}
		}
		return nil
	case "primary":
		if err := ValidateURL(c.Replicate); err != nil {
			return fmt.Errorf("--replicate: %w", err)
		}
		for _, fl := range []string{"as", "follow-dir", "follow-interval", "primary", "primary-mode"} {
			if changed(fl) {
				return fmt.Errorf("--%s is a replica's flag (with --follow); a primary replicates with --replicate", fl)
			}
		}
		if len(c.Files) != 1 || len(c.Immutable) > 0 {
			return fmt.Errorf("--replicate ships one database: give exactly one FILE and no -i/--immutable file (got %d files, %d immutable); run one lode serve per replicated database", len(c.Files), len(c.Immutable))
		}
		if jm := strings.ToLower(c.JournalMode); jm != "wal" {
			return fmt.Errorf("--journal-mode %s cannot be replicated: Litestream ships the WAL, so --replicate needs --journal-mode wal (the default)", c.JournalMode)
		}
		return nil
	}
	// A replica.
	if err := ValidateURL(c.Follow); err != nil {
		return fmt.Errorf("--follow: %w", err)
	}
	if c.As == "" {
		return errors.New("--follow needs --as NAME: the name the followed database is served as (its local copy is --follow-dir/NAME.db)")
	}
	if strings.ContainsAny(c.As, `/\`) || c.As == "." || c.As == ".." || strings.HasPrefix(c.As, "-") {
		return fmt.Errorf("--as %q: want a plain name such as data", c.As)
	}
	if len(c.Files)+len(c.Immutable) > 0 {
		return fmt.Errorf("--follow serves only the followed database; drop the FILE arguments (%s) or serve them from another lode serve", strings.Join(append(append([]string{}, c.Files...), c.Immutable...), " "))
	}
	if changed("sync-interval") {
		return errors.New("--sync-interval is the primary's flag; a replica polls every --follow-interval")
	}
	for _, fl := range []string{"journal-mode", "synchronous", "txlock", "writer"} {
		if changed(fl) {
			return fmt.Errorf("--%s does not apply to a replica: it never writes its copy through SQL (the follower applies the primary's pages)", fl)
		}
	}
	switch c.PrimaryMode {
	case "proxy", "redirect":
	default:
		return fmt.Errorf("--primary-mode %q: want proxy (forward writes to --primary and return its answer) or redirect (answer 307 with the primary's URL)", c.PrimaryMode)
	}
	if c.Primary != "" {
		u, err := url.Parse(c.Primary)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("--primary %q: want the primary's base URL, e.g. http://primary:8001", c.Primary)
		}
		if u.Path != "" && u.Path != "/" {
			return fmt.Errorf("--primary %q: give the base URL without a path, e.g. http://primary:8001", c.Primary)
		}
	} else if changed("primary-mode") {
		return errors.New("--primary-mode needs --primary URL")
	}
	if fi, err := os.Stat(c.FollowDir); err != nil || !fi.IsDir() {
		return fmt.Errorf("--follow-dir %s: not a directory; create it first", c.FollowDir)
	}
	return nil
}

// ChildArgs returns the arguments of the child process (after the
// executable) that does the replication work for this node.
func (c *ServeConfig) ChildArgs(logLevel, logFormat string) []string {
	common := []string{"--log-level", logLevel, "--log-format", logFormat}
	if c.Role() == "replica" {
		return append([]string{"replica", "follow", c.Follow, "--db", c.LocalPath(), "--name", c.As,
			"--interval", c.FollowInterval.String()}, common...)
	}
	abs, _ := filepath.Abs(c.Files[0])
	name := strings.TrimSuffix(filepath.Base(abs), filepath.Ext(abs))
	return append([]string{"replica", "replicate", abs, c.Replicate, "--name", name,
		"--sync-interval", c.SyncInterval.String()}, common...)
}

// StartSidecar starts this node's child (the replicator of a primary or
// the follower of a replica) from the executable exe. For a replica it
// waits, up to readyTimeout, until the follower has a file to serve (a
// first restore can take a while for a big database, and waits for the
// primary's first snapshot). The caller stops the sidecar after serving.
func (c *ServeConfig) StartSidecar(ctx context.Context, exe, logLevel, logFormat string, log *slog.Logger, readyTimeout time.Duration) (*Sidecar, error) {
	name := "replicator"
	if c.Role() == "replica" {
		name = "follower"
	}
	s := &Sidecar{Path: exe, Args: c.ChildArgs(logLevel, logFormat), Name: name, Logger: log}
	if err := s.Start(); err != nil {
		return nil, err
	}
	status := StatusPath(mustAbs(c.DBPath()))
	err := s.WaitReady(ctx, readyTimeout, func() bool {
		st, err := ReadStatus(status)
		return err == nil && st.Ready && st.PID == s.PID()
	})
	if err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

func mustAbs(p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		return p
	}
	return a
}
