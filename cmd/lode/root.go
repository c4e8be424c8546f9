package main

import (
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
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
		Use:     "version",
		Short:   "Print Lode's version, the Go version and the bundled SQLite version",
		Example: "  lode version",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			version := "(devel)"
			if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
				version = bi.Main.Version
			}
			fmt.Fprintf(cmd.OutOrStdout(), "lode %s\ngo %s %s/%s\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return nil
		},
	}
}
