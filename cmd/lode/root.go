package main

import (
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"

	"lode/internal/sqlitedb"
)

// newRootCmd builds the command tree. Each subcommand lives in its own file
// (serve.go, load.go, bench.go, shot.go, ...) and is added here.
func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "lode",
		Short: "Serve SQLite over HTTP, load-test it, and benchmark SQLite settings",
		Long: `Lode is one binary that serves SQLite databases over HTTP (a Datasette-compatible
JSON API, HTML pages and a write API, with many worker processes), generates HTTP load
with honest latency numbers, benchmarks SQLite settings and servers, and takes screenshots
of pages in headless Chromium.`,
		Example: `  lode serve fixtures.db                 # http://127.0.0.1:8001/
  lode load http://127.0.0.1:8001/fixtures/facetable.json -c 32 -d 30s
  lode bench                             # the default study on a generated demo database
  lode shot http://127.0.0.1:8001/ -o index.png`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().String("log-level", "info", "log level: debug, info, warn, error")
	root.PersistentFlags().String("log-format", "text", "log format: text or json")
	root.AddCommand(
		newVersionCmd(),
		newServeCmd(),
		newLoadCmd(),
		newReportCmd(),
		newBenchCmd(),
		newShotCmd(),
		newTokenCmd(),
		newReplicaCmd(),
	)
	return root
}

// newLogger builds the slog logger from the persistent --log-level and
// --log-format flags. Loggers are passed down as fields, never kept global.
func newLogger(cmd *cobra.Command) (*slog.Logger, error) {
	levelName, _ := cmd.Flags().GetString("log-level")
	format, _ := cmd.Flags().GetString("log-format")
	var level slog.Level
	if err := level.UnmarshalText([]byte(levelName)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", levelName)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	default:
		return nil, fmt.Errorf("--log-format %q: want text or json", format)
	}
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print Lode's version, the Go version and the bundled SQLite version (with or without FTS5)",
		Long: `Print Lode's version (the module version, else the git commit it was built from, when the
build recorded it), the Go version and platform, and the SQLite compiled into the binary:
its version and whether the FTS5 full-text module is in (it is with -tags sqlite_fts5).`,
		Example: "  lode version",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "lode %s\ngo %s %s/%s\n", lodeVersion(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
			lib, err := sqlitedb.LibraryInfo()
			if err != nil {
				return err
			}
			fts5 := "FTS5 compiled in"
			if !lib.FTS5 {
				fts5 = "no FTS5 (databases with FTS5 tables are refused; build with -tags sqlite_fts5)"
			}
			fmt.Fprintf(out, "sqlite %s, %s\n", lib.Version, fts5)
			return nil
		},
	}
}

// lodeVersion is the version this binary was built as: the module version
// when it has one (go install lode@v1.2.3), else "(devel)" with the git
// commit, its time and "modified" for uncommitted changes, as far as the
// build recorded them (go build in a git clone does; -buildvcs=false and
// git worktrees do not).
func lodeVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "(unknown: no build information)"
	}
	return formatVersion(bi)
}

func formatVersion(bi *debug.BuildInfo) string {
	version := bi.Main.Version
	if version == "" {
		version = "(devel)"
	}
	vcs := map[string]string{}
	for _, s := range bi.Settings {
		vcs[s.Key] = s.Value
	}
	rev := vcs["vcs.revision"]
	if rev == "" || strings.Contains(version, rev[:min(12, len(rev))]) {
		return version // a pseudo-version names the commit already
	}
	version += " commit " + rev[:min(12, len(rev))]
	var extra []string
	if t := vcs["vcs.time"]; t != "" {
		extra = append(extra, t)
	}
	if vcs["vcs.modified"] == "true" {
		extra = append(extra, "with uncommitted changes")
	}
	if len(extra) > 0 {
		version += " (" + strings.Join(extra, ", ") + ")"
	}
	return version
}
