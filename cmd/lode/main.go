// Command lode serves SQLite databases over HTTP, generates HTTP load,
// benchmarks SQLite settings and servers, and takes browser screenshots.
//
// main stays thin: it builds the cobra command tree (root.go) and maps the
// returned error to an exit status. All logic lives under internal/.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := newRootCmd().ExecuteContext(ctx)
	if err != nil {
		var ee *exitError
		if errors.As(err, &ee) {
			if ee.msg != "" {
				fmt.Fprintln(os.Stderr, "lode:", ee.msg)
			}
			os.Exit(ee.code)
		}
		fmt.Fprintln(os.Stderr, "lode:", err)
		os.Exit(1)
	}
}

// exitError carries a specific exit status (for example 99 for failed load
// thresholds, like k6) out of a command's RunE.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return fmt.Sprintf("exit status %d: %s", e.code, e.msg) }
