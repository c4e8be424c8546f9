package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/pflag"

	"lode/internal/server"
)

// addObserveFlags registers lode serve's access-log flags (the metrics are
// a setting: --setting metrics off).
func addObserveFlags(f *pflag.FlagSet) {
	f.String("access-log", "", "write one line per request to FILE (appended), or - for standard output")
	f.String("access-log-format", server.AccessLogCombined, "access log format: combined (Apache's, plus duration in µs and pid) or json")
}

// checkAccessLog validates the access-log flags once, in the process that
// parses them first (the master of --workers N), so a bad path or format
// fails at startup instead of as a crash loop of workers.
func checkAccessLog(f *pflag.FlagSet) error {
	path, _ := f.GetString("access-log")
	format, _ := f.GetString("access-log-format")
	if format != server.AccessLogCombined && format != server.AccessLogJSON {
		return fmt.Errorf("--access-log-format %q: want %s or %s", format, server.AccessLogCombined, server.AccessLogJSON)
	}
	if path == "" || path == "-" {
		return nil
	}
	w, err := openAccessLog(path)
	if err != nil {
		return err
	}
	return w.Close()
}

// setAccessLog opens the access log for the serving process and puts it in
// cfg; the returned closer closes it (nil without a file).
func setAccessLog(f *pflag.FlagSet, cfg *server.Config) (io.Closer, error) {
	path, _ := f.GetString("access-log")
	cfg.AccessLogFormat, _ = f.GetString("access-log-format")
	switch path {
	case "":
		return nil, nil
	case "-":
		cfg.AccessLog = os.Stdout
		return nil, nil
	}
	w, err := openAccessLog(path)
	if err != nil {
		return nil, err
	}
	cfg.AccessLog = w
	return w, nil
}

// openAccessLog opens path for appending. O_APPEND makes every line one
// atomic append, so worker processes writing the same file never
// interleave within a line.
func openAccessLog(path string) (*os.File, error) {
	w, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("--access-log %s: %w (does its directory exist?)", path, err)
		}
		return nil, fmt.Errorf("--access-log %s: %w", path, err)
	}
	return w, nil
}
