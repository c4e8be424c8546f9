// Package shottest has helpers for tests that drive pages in Chromium, such
// as journeys through `lode serve` HTML pages. Only _test.go files import it.
//
// Tests skip with a clear message when no Chromium is installed, except when
// the environment sets LODE_REQUIRE_BROWSER=1 (CI does), where a missing
// browser fails the test instead: browser tests must not silently vanish.
//
// Typical use, sharing one browser across a package's tests:
//
//	func TestMain(m *testing.M) { os.Exit(shottest.Main(m)) }
//
//	func TestTablePage(t *testing.T) {
//		tab := shottest.NewTab(t, shottest.Shared(t))
//		if err := chromedp.Do(tab, chromedp.Navigate(srv.URL+"/fixtures/facetable")); err != nil {
//			t.Fatal(err)
//		}
//		...
//	}
package shottest

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"lode/internal/shot"
)

// RequireEnv is the environment variable that turns a missing browser from
// a skip into a failure.
const RequireEnv = "LODE_REQUIRE_BROWSER"

// RequireBrowser returns the path of the Chromium executable. Without one it
// skips the test, or fails it when LODE_REQUIRE_BROWSER=1.
func RequireBrowser(tb testing.TB) string {
	tb.Helper()
	path, err := shot.FindBrowser(os.Getenv("LODE_BROWSER"))
	if err != nil {
		if os.Getenv(RequireEnv) == "1" {
			tb.Fatalf("%s=1 but no browser: %v", RequireEnv, err)
		}
		tb.Skipf("skipping browser test: %v (set %s=1 to make this a failure)", err, RequireEnv)
	}
	return path
}

// NewBrowser starts a browser for one test and stops it in tb.Cleanup. Prefer
// Shared when many tests need a browser: each start costs 1-3 s.
func NewBrowser(tb testing.TB) *shot.Browser {
	tb.Helper()
	path := RequireBrowser(tb)
	b, err := shot.NewBrowser(context.Background(), shot.BrowserOptions{ExecPath: path})
	if err != nil {
		tb.Fatalf("start browser: %v", err)
	}
	tb.Cleanup(func() { b.Close() })
	return b
}

// shared is the one browser of a test binary, started on first use by
// Shared and stopped by Main. Test-only process state, on purpose: a
// browser start is the slowest step of a browser test.
var shared struct {
	once sync.Once
	b    *shot.Browser
	err  error
}

// Shared returns a browser shared by all tests of the test binary, started
// on first use. Stop it by running the tests through Main. Tests using it
// may run in parallel: every tab has its own cookies and storage.
func Shared(tb testing.TB) *shot.Browser {
	tb.Helper()
	path := RequireBrowser(tb)
	shared.once.Do(func() {
		shared.b, shared.err = shot.NewBrowser(context.Background(), shot.BrowserOptions{ExecPath: path})
	})
	if shared.err != nil {
		tb.Fatalf("start shared browser: %v", shared.err)
	}
	return shared.b
}

// Main runs the tests and then stops the shared browser, if one started.
// Use it as os.Exit(shottest.Main(m)) in TestMain.
func Main(m *testing.M) int {
	code := m.Run()
	if shared.b != nil {
		shared.b.Close()
	}
	return code
}

// DefaultTabTimeout bounds a tab from NewTab when the test has no deadline.
const DefaultTabTimeout = 2 * time.Minute

// NewTab opens a tab (own cookies and storage) in b for the test, bounded by
// the test's deadline, and closes it in tb.Cleanup. The result is a chromedp
// context: pass it to chromedp.Do and chromedp.Run.
func NewTab(tb testing.TB, b *shot.Browser) context.Context {
	tb.Helper()
	ctx := context.Background()
	var cancel context.CancelFunc
	if d, ok := deadline(tb); ok {
		ctx, cancel = context.WithDeadline(ctx, d)
	} else {
		ctx, cancel = context.WithTimeout(ctx, DefaultTabTimeout)
	}
	tab, closeTab, err := b.NewTab(ctx)
	if err != nil {
		cancel()
		tb.Fatalf("open tab: %v", err)
	}
	tb.Cleanup(func() {
		closeTab()
		cancel()
	})
	return tab
}

// deadline returns the test's deadline less a margin for cleanup.
func deadline(tb testing.TB) (time.Time, bool) {
	t, ok := tb.(interface{ Deadline() (time.Time, bool) })
	if !ok {
		return time.Time{}, false
	}
	d, ok := t.Deadline()
	if !ok {
		return time.Time{}, false
	}
	return d.Add(-5 * time.Second), true
}
