package server

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"lode/internal/auth"
	"lode/internal/sqlitedb"
)

// This file turns lode serve's command-line choices into a Server's
// configuration, so that cmd/lode only reads flags.

// ApplyConfigSettings copies the settings of lode.yaml into cfg: SQLite
// settings (journal_mode, synchronous, txlock, busy_timeout) into cfg.DB
// unless flagSet reports that the matching command-line flag was given,
// every other known setting into cfg.Settings (a --setting given on the
// command line, applied after this, wins).
func ApplyConfigSettings(cfg *Config, settings map[string]any, flagSet func(flag string) bool) error {
	if cfg.Settings == nil {
		cfg.Settings = map[string]string{}
	}
	for k, v := range settings {
		s := fmt.Sprint(v)
		switch k {
		case "journal_mode":
			if !flagSet("journal-mode") {
				cfg.DB.JournalMode = s
			}
		case "synchronous":
			if !flagSet("synchronous") {
				cfg.DB.Synchronous = s
			}
		case "txlock":
			if !flagSet("txlock") {
				cfg.DB.TxLock = s
			}
		case "busy_timeout":
			if !flagSet("busy-timeout") {
				d, err := time.ParseDuration(s)
				if err != nil {
					return fmt.Errorf("busy_timeout %q: want a duration such as 5s", s)
				}
				cfg.DB.BusyTimeout = d
				if d == 0 {
					cfg.DB.BusyTimeout = sqlitedb.NoBusyTimeout
				}
			}
		default:
			if IsSetting(k) {
				cfg.Settings[k] = s
			}
		}
	}
	return nil
}

// WriteOptions are lode serve's write-path choices.
type WriteOptions struct {
	// Writer is "single" (one writer per database, group commit) or
	// "pool" (any connection writes; the naive design, for comparisons).
	Writer string
	// Root grants the actor "root" every permission and offers a one-time
	// browser sign-in.
	Root bool
	// Secret and ConfigPath locate the signing secret (auth.LoadSecret).
	Secret, ConfigPath string
}

// Environment variables through which the master of lode serve --root
// hands the one-time sign-in token to its worker processes.
const (
	envRootToken = "LODE_ROOT_TOKEN"
	envRootClaim = "LODE_ROOT_TOKEN_CLAIM"
)

// Check reports the first mistake in cfg that would stop New: a bad
// setting, an invalid SQLite setting, a database file that does not exist
// (unless cfg.DB.Create; an immutable file must always exist; a read-only
// one, a replica's copy, is written by its follower). lode serve calls it
// before it prints anything, so a mistake is the only output.
func (cfg Config) Check() error {
	if len(cfg.Files)+len(cfg.Immutable) == 0 {
		return errors.New("no database files: give at least one, e.g. lode serve fixtures.db (or follow a replicated one with --follow URL --as NAME)")
	}
	if _, err := ParseSettings(cfg.Settings); err != nil {
		return err
	}
	if err := cfg.DB.Validate(); err != nil {
		return err
	}
	for i, f := range append(append([]string(nil), cfg.Files...), cfg.Immutable...) {
		fi, err := os.Stat(f)
		switch {
		case errors.Is(err, os.ErrNotExist) && cfg.DB.Create && i < len(cfg.Files):
			if dir := filepath.Dir(f); !isDir(dir) {
				return fmt.Errorf("database %q: cannot create it: folder %s does not exist", f, dir)
			}
		case errors.Is(err, os.ErrNotExist) && i < len(cfg.Files) && cfg.DB.ReadOnly:
		case errors.Is(err, os.ErrNotExist) && i < len(cfg.Files):
			return fmt.Errorf("database %q: %w (lode serve --create creates missing files)", f, err)
		case err != nil:
			return fmt.Errorf("database %q: %w", f, err)
		case fi.IsDir():
			return fmt.Errorf("database %q is a folder, not an SQLite file", f)
		}
	}
	return nil
}

func isDir(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.IsDir()
}

// PrepareWrites checks o once, in the process that starts serving, before
// any worker starts. With Root it creates the one-time sign-in token
// (handed to worker processes through the environment) and returns the
// sign-in URL for addr, to be printed; a worker inherits the token and
// gets "".
func PrepareWrites(o WriteOptions, addr string, log *slog.Logger) (signInURL string, err error) {
	if o.Writer != "single" && o.Writer != "pool" {
		return "", fmt.Errorf("--writer %q: want single or pool", o.Writer)
	}
	if _, err := auth.LoadSecret(o.Secret, o.ConfigPath); err != nil {
		return "", err
	}
	if o.Writer == "single" {
		log.Debug("write path", "writer", o.Writer, "max_batch", sqlitedb.DefaultMaxBatch)
	} else {
		log.Debug("write path", "writer", o.Writer, "write_conns", PoolWriteConns)
	}
	if !o.Root || os.Getenv(envRootToken) != "" {
		return "", nil
	}
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	tok := hex.EncodeToString(b)
	os.Setenv(envRootToken, tok) // inherited by the worker processes
	// The first sign-in creates this file, so the link works once
	// whichever worker answers it.
	os.Setenv(envRootClaim, filepath.Join(os.TempDir(), "lode-root-signin-"+tok[:16]+".used"))
	return fmt.Sprintf("http://%s/-/auth-token?token=%s", addr, tok), nil
}

// EnableWrites starts s's write API as o describes it (the sign-in token
// of PrepareWrites included).
func EnableWrites(s *Server, o WriteOptions) (*WriteAPI, error) {
	secret, err := auth.LoadSecret(o.Secret, o.ConfigPath)
	if err != nil {
		return nil, err
	}
	return NewWriteAPI(s, WriteConfig{Secret: secret, Root: o.Root, RootToken: os.Getenv(envRootToken),
		RootTokenClaim: os.Getenv(envRootClaim), Writer: sqlitedb.WriterOptions{Mode: o.Writer}})
}
