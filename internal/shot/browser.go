// Package shot takes screenshots, PDFs and snapshots of web pages in headless
// Chromium, driven over the DevTools protocol with chromedp. It follows the
// behaviour and option names of shot-scraper 1.x (https://shot-scraper.datasette.io)
// where they apply: a shot loads a page, waits (--wait), runs JavaScript
// (--javascript), waits until an expression is true (--wait-for), then
// captures the full page, the viewport or the box around CSS selectors.
//
// One Browser process serves many shots. Each shot runs in its own tab inside
// its own browser context (like an incognito window), so cookies and
// localStorage never leak from one shot to the next, and a Browser is safe
// for concurrent use by several goroutines.
//
// Other packages use it in two ways: Screenshot/Browser.Screenshot to render a
// PNG in-process (lode bench renders its HTML report), and Browser.NewTab to
// drive pages from tests (see the shottest package for the test helpers).
package shot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/chromedp/chromedp"
)

// browserNames are the programs FindBrowser looks for on PATH, in order:
// Debian's package installs "chromium", Ubuntu's "chromium-browser", and
// Google's packages "google-chrome".
var browserNames = []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"}

// ErrNoBrowser reports that no Chromium executable was found.
var ErrNoBrowser = errors.New(`shot: no Chromium browser found on PATH (looked for chromium, chromium-browser, google-chrome); install it with "apt-get install chromium" or pass --browser PATH`)

// DefaultStartTimeout bounds how long NewBrowser waits for Chromium to start
// and answer on the DevTools connection. A cold start on a busy 2-core
// machine takes 1-3 s, but over 20 s was seen with ~35 compiles and browsers
// competing for 2 cores; 2 min leaves room for such a CI runner.
const DefaultStartTimeout = 2 * time.Minute

// FindBrowser returns the path of the browser to run. A non-empty path is
// checked and used as given (a name is looked up on PATH); otherwise the
// first of browserNames found on PATH wins. The error wraps ErrNoBrowser when
// nothing is found.
func FindBrowser(path string) (string, error) {
	if path != "" {
		p, err := exec.LookPath(path)
		if err != nil {
			return "", fmt.Errorf("browser %q not found or not executable; install Chromium with \"apt-get install chromium\" or fix the --browser path: %w", path, err)
		}
		return p, nil
	}
	for _, name := range browserNames {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", ErrNoBrowser
}

// BrowserOptions configure NewBrowser. The zero value starts a headless
// Chromium found on PATH.
type BrowserOptions struct {
	// ExecPath is the browser executable (path or name on PATH). Empty means
	// FindBrowser("").
	ExecPath string
	// Visible opens a real window instead of running headless; it needs a
	// display ($DISPLAY). Used by `lode shot auth` so a person can sign in.
	Visible bool
	// Args are extra command-line flags, each like "--lang=de" or "--foo".
	Args []string
	// StartTimeout bounds the browser start; zero means DefaultStartTimeout.
	StartTimeout time.Duration
	// Output receives the browser's own stdout and stderr; nil discards it.
	Output io.Writer
}

// Browser is one running Chromium process. It is safe for concurrent use:
// every operation opens its own tab. Close stops the process and removes its
// temporary profile directory.
type Browser struct {
	// ctx is the chromedp browser context. Browser owns it for its whole
	// life (the CONVENTIONS exception for long-lived objects); Close cancels it.
	ctx         context.Context
	cancelAlloc context.CancelFunc
	cancelCtx   context.CancelFunc
	execPath    string
	closeOnce   sync.Once

	// Opening a tab costs 0.5-2 s, mostly the start of its renderer
	// process, and closing one 0.1-0.5 s. Once a Browser has served a tab,
	// it keeps one spare tab ready and closes used tabs in the background,
	// so a run of shots (multi, tests) overlaps that work with real work.
	spare     chan spareTab
	mu        sync.Mutex
	closed    bool
	served    int
	refilling bool
	bg        sync.WaitGroup // refill and background-close goroutines
}

// spareTab is a tab opened ahead of need.
type spareTab struct {
	ctx    context.Context
	cancel context.CancelFunc
}

// NewBrowser starts Chromium and waits until it answers. ctx bounds only the
// start; the browser then lives until Close.
func NewBrowser(ctx context.Context, opts BrowserOptions) (*Browser, error) {
	execPath, err := FindBrowser(opts.ExecPath)
	if err != nil {
		return nil, err
	}
	allocOpts := append([]chromedp.ExecAllocatorOption{}, chromedp.DefaultExecAllocatorOptions[:]...)
	allocOpts = append(allocOpts,
		chromedp.ExecPath(execPath),
		// Software rendering only: no GPU on servers, and stable pixels.
		chromedp.DisableGPU,
		// The machines we run on may have no network: keep Chromium from
		// phoning home (QUIC probes, component updates, sync).
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("no-first-run", true),
	)
	if os.Geteuid() == 0 {
		// Chromium refuses to start its sandbox as root (CI containers).
		allocOpts = append(allocOpts, chromedp.NoSandbox)
	}
	if opts.Visible {
		allocOpts = append(allocOpts, chromedp.VisibleWindow)
	}
	for _, a := range opts.Args {
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if hasValue {
			allocOpts = append(allocOpts, chromedp.Flag(name, value))
		} else {
			allocOpts = append(allocOpts, chromedp.Flag(name, true))
		}
	}
	out := opts.Output
	if out == nil {
		out = io.Discard
	}
	allocOpts = append(allocOpts, chromedp.CombinedOutput(out))

	// The browser must outlive ctx, so its contexts derive from Background.
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), allocOpts...)
	bctx, cancelCtx := chromedp.NewContext(allocCtx)
	b := &Browser{ctx: bctx, cancelAlloc: cancelAlloc, cancelCtx: cancelCtx, execPath: execPath, spare: make(chan spareTab, 1)}

	timeout := opts.StartTimeout
	if timeout <= 0 {
		timeout = DefaultStartTimeout
	}
	startCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// The first Run binds the browser to the context it gets, so start it on
	// bctx and give up from outside if ctx or the timeout end first.
	stop := context.AfterFunc(startCtx, cancelCtx)
	err = chromedp.Do(bctx)
	if !stop() || err != nil {
		b.Close()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("start browser %s: %w", execPath, context.Cause(ctx))
		}
		if err == nil || startCtx.Err() != nil {
			return nil, fmt.Errorf("start browser %s: no answer within %s: %w", execPath, timeout, context.Cause(startCtx))
		}
		return nil, fmt.Errorf("start browser %s: %w", execPath, err)
	}
	return b, nil
}

// ExecPath returns the path of the running browser executable.
func (b *Browser) ExecPath() string { return b.execPath }

// Close stops the browser and waits for the process to exit. It is safe to
// call more than once.
func (b *Browser) Close() error {
	b.closeOnce.Do(func() {
		b.mu.Lock()
		b.closed = true
		b.mu.Unlock()
		// Let tabs that are closing in the background finish, so their
		// browser contexts are disposed of cleanly, then stop the process:
		// that also ends a refill in flight.
		b.bg.Wait()
		select {
		case t := <-b.spare:
			t.cancel()
		default:
		}
		b.cancelCtx()
		b.cancelAlloc()
	})
	return nil
}

// NewTab opens a fresh tab in a fresh browser context (its own cookies and
// storage) and returns a chromedp context for it. Use chromedp.Do/Run on the
// returned context; derive per-action timeouts from it with
// context.WithTimeout. The tab closes when ctx ends or when the returned
// cancel func is called; always call it.
func (b *Browser) NewTab(ctx context.Context) (context.Context, context.CancelFunc, error) {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil, nil, errors.New("open tab: browser is closed")
	}
	b.served++
	prefetch := b.served > 1
	b.mu.Unlock()

	var tctx context.Context
	var cancelTab context.CancelFunc
	select {
	case t := <-b.spare:
		tctx, cancelTab = t.ctx, t.cancel
	default:
	}
	if prefetch {
		b.refill()
	}
	if tctx == nil {
		var err error
		tctx, cancelTab, err = b.openTab(ctx)
		if err != nil {
			return nil, nil, err
		}
	}
	stop := context.AfterFunc(ctx, cancelTab)
	cancel := func() {
		stop()
		cancelTab()
	}
	return tctx, cancel, nil
}

// openTab creates a tab; ctx bounds only the creation.
func (b *Browser) openTab(ctx context.Context) (context.Context, context.CancelFunc, error) {
	tctx, cancelTab := chromedp.NewContext(b.ctx, chromedp.WithNewBrowserContext())
	stop := context.AfterFunc(ctx, cancelTab)
	// The tab's first Run must use the untimed tab context: chromedp ties
	// the tab's lifetime to it. ctx still bounds it through AfterFunc.
	err := chromedp.Do(tctx)
	if !stop() || err != nil {
		cancelTab()
		if ctx.Err() != nil {
			return nil, nil, fmt.Errorf("open tab: %w", context.Cause(ctx))
		}
		return nil, nil, fmt.Errorf("open tab: %w", err)
	}
	return tctx, cancelTab, nil
}

// refill opens a spare tab in the background unless one is ready or on
// its way.
func (b *Browser) refill() {
	b.mu.Lock()
	if b.closed || b.refilling || len(b.spare) > 0 {
		b.mu.Unlock()
		return
	}
	b.refilling = true
	b.bg.Add(1)
	b.mu.Unlock()
	go func() {
		defer b.bg.Done()
		tctx, cancel, err := b.openTab(b.ctx)
		b.mu.Lock()
		b.refilling = false
		b.mu.Unlock()
		if err != nil {
			return // the next NewTab opens its own tab and reports errors
		}
		select {
		case b.spare <- spareTab{tctx, cancel}:
		default:
			cancel()
		}
	}()
}

// closeLater closes a used tab in the background; Close waits for it.
func (b *Browser) closeLater(cancel context.CancelFunc) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		cancel()
		return
	}
	b.bg.Add(1)
	go func() {
		defer b.bg.Done()
		cancel()
	}()
}
