package shot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// Defaults follow shot-scraper (which uses Playwright's defaults).
const (
	// DefaultWidth is the browser window width in CSS pixels.
	DefaultWidth = 1280
	// DefaultViewportHeight is the window height used when Page.Height is 0
	// (screenshots are then full-page, so it only affects layout).
	DefaultViewportHeight = 720
	// DefaultTimeout bounds loading the page, --javascript, --wait-for and
	// the capture together (Playwright's default action timeout is 30 s).
	DefaultTimeout = 30 * time.Second
	// waitForInterval is how often a --wait-for expression is re-evaluated.
	// A timer rather than requestAnimationFrame, because background tabs
	// get no animation frames.
	waitForInterval = 50 * time.Millisecond
)

// Page says which page to load and what to do before capturing it. The zero
// value (plus a URL) loads the page in a 1280x720 window with a 30 s limit.
type Page struct {
	// URL is an http(s) or file URL, a path to a local file, or a host name
	// (http:// is added, as shot-scraper does).
	URL string
	// Width and Height of the browser window in CSS pixels. Width 0 means
	// DefaultWidth. Height 0 means a DefaultViewportHeight window and, for
	// screenshots, a full-page capture.
	Width, Height int
	// ScaleFactor is the device pixel ratio; 0 means 1, 2 is --retina.
	ScaleFactor float64
	// Auth, when set, is loaded into the page's browser context first.
	Auth *AuthState
	// UserAgent overrides the User-Agent header and navigator.userAgent.
	UserAgent string
	// ReducedMotion emulates prefers-reduced-motion: reduce.
	ReducedMotion bool
	// Wait is a pause after the load event, before JavaScript runs.
	Wait time.Duration
	// JavaScript runs after Wait; a returned Promise is awaited.
	JavaScript string
	// WaitFor is a JavaScript expression polled until it is truthy.
	WaitFor string
	// Timeout bounds the whole page operation (plus Wait); 0 means
	// DefaultTimeout.
	Timeout time.Duration
	// FailOnHTTPError fails when the page's document has a 4xx/5xx status
	// (shot-scraper --fail); otherwise the error page is captured.
	FailOnHTTPError bool
	// FailOnJSError also fails when the page throws an uncaught exception.
	FailOnJSError bool
	// Console, when set, receives the page's console messages, one a line
	// (shot-scraper --log-console).
	Console io.Writer
}

// HTTPError reports a page whose document answered with a 4xx/5xx status
// while Page.FailOnHTTPError was set.
type HTTPError struct {
	URL    string
	Status int
}

func (e *HTTPError) Error() string { return fmt.Sprintf("%d error for %s", e.Status, e.URL) }

// ResolveURL turns a command-line argument into a URL the browser can load,
// like shot-scraper: an existing local file becomes a file:// URL, a string
// with no scheme gets http:// in front, and anything else is kept.
func ResolveURL(arg string) (string, error) {
	if arg == "" {
		return "", errors.New("no URL given")
	}
	if st, err := os.Stat(arg); err == nil && !st.IsDir() {
		abs, err := filepath.Abs(arg)
		if err != nil {
			return "", fmt.Errorf("resolve %q: %w", arg, err)
		}
		return (&url.URL{Scheme: "file", Path: filepath.ToSlash(abs)}).String(), nil
	}
	lower := strings.ToLower(arg)
	for _, scheme := range []string{"http://", "https://", "file://", "about:", "data:"} {
		if strings.HasPrefix(lower, scheme) {
			return arg, nil
		}
	}
	if strings.Contains(arg, "://") {
		return "", fmt.Errorf("URL %q: only http, https and file URLs are supported", arg)
	}
	return "http://" + arg, nil
}

// loaded is a page that has been opened, loaded and prepared.
type loaded struct {
	ctx    context.Context // the tab's chromedp context, bounded by the timeout
	url    string
	status int
	errs   *pageErrors
}

// pageErrors collects uncaught exceptions from the page's listener.
type pageErrors struct {
	mu   sync.Mutex
	msgs []string
}

func (p *pageErrors) add(s string) {
	p.mu.Lock()
	p.msgs = append(p.msgs, s)
	p.mu.Unlock()
}

func (p *pageErrors) err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.msgs) == 0 {
		return nil
	}
	return fmt.Errorf("page threw %d uncaught JavaScript error(s): %s", len(p.msgs), strings.Join(p.msgs, "; "))
}

// open loads p in a new tab and runs the Wait, JavaScript and WaitFor steps.
// fn then works on the prepared page. The tab is closed when open returns.
func (b *Browser) open(ctx context.Context, p Page, fn func(l *loaded) error) error {
	target, err := ResolveURL(p.URL)
	if err != nil {
		return err
	}
	timeout := timeoutOf(p)
	tab, closeTab, err := b.NewTab(ctx)
	if err != nil {
		return err
	}
	defer b.closeLater(closeTab)
	tctx, cancel := context.WithTimeout(tab, timeout+p.Wait)
	defer cancel()

	l := &loaded{ctx: tctx, url: target, errs: &pageErrors{}}
	err = b.load(l, p)
	if err == nil && fn != nil {
		err = fn(l)
	}
	if err == nil && p.FailOnJSError {
		err = l.errs.err()
	}
	if err != nil && errors.Is(err, context.DeadlineExceeded) && tctx.Err() != nil && ctx.Err() == nil {
		return fmt.Errorf("%s: timed out after %s (raise --timeout): %w", target, timeout+p.Wait, err)
	}
	return err
}

func (b *Browser) load(l *loaded, p Page) error {
	ctx := l.ctx
	width, height := int64(p.Width), int64(p.Height)
	if width <= 0 {
		width = DefaultWidth
	}
	if height <= 0 {
		height = DefaultViewportHeight
	}
	scale := p.ScaleFactor
	if scale <= 0 {
		scale = 1
	}
	if _, err := chromedp.Call(ctx, emulation.SetDeviceMetricsOverride, emulation.SetDeviceMetricsOverrideParams{
		Width: width, Height: height, DeviceScaleFactor: scale,
	}); err != nil {
		return fmt.Errorf("set window size: %w", err)
	}
	if p.UserAgent != "" {
		if _, err := chromedp.Call(ctx, emulation.SetUserAgentOverride, emulation.SetUserAgentOverrideParams{UserAgent: p.UserAgent}); err != nil {
			return fmt.Errorf("set user agent: %w", err)
		}
	}
	if p.ReducedMotion {
		if _, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-reduced-motion", Value: "reduce"}},
		}); err != nil {
			return fmt.Errorf("emulate reduced motion: %w", err)
		}
	}
	if p.Auth != nil {
		if err := p.Auth.apply(ctx); err != nil {
			return err
		}
	}
	console := p.Console
	if err := chromedp.Listen(ctx, func(ev any) {
		switch ev := ev.(type) {
		case *runtime.EventExceptionThrown:
			l.errs.add(exceptionText(ev.ExceptionDetails))
		case *runtime.EventConsoleAPICalled:
			if console != nil {
				fmt.Fprintf(console, "console.%s: %s\n", ev.Type, consoleArgs(ev.Args))
			}
		}
	}); err != nil {
		return err
	}

	resp, err := chromedp.Run(ctx, chromedp.NavigateResponse(l.url))
	if err != nil {
		return fmt.Errorf("load %s: %w", l.url, err)
	}
	if resp != nil {
		l.status = int(resp.Status)
	}
	if p.FailOnHTTPError && l.status >= 400 {
		return &HTTPError{URL: l.url, Status: l.status}
	}
	if p.Wait > 0 {
		t := time.NewTimer(p.Wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("--wait %s: %w", p.Wait, context.Cause(ctx))
		}
	}
	if p.JavaScript != "" {
		if _, err := evaluate(ctx, p.JavaScript); err != nil {
			return fmt.Errorf("--javascript: %w", err)
		}
	}
	if p.WaitFor != "" {
		_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](p.WaitFor,
			chromedp.WithPollingInterval(waitForInterval),
			chromedp.WithPollingTimeout(pollTimeout(ctx))))
		if err != nil {
			if errors.Is(err, chromedp.ErrPollingTimeout) || ctx.Err() != nil {
				return fmt.Errorf("--wait-for %q was still false after %s; fix the expression or raise --timeout", p.WaitFor, timeoutOf(p))
			}
			return fmt.Errorf("--wait-for %q: %w", p.WaitFor, err)
		}
	}
	return nil
}

// timeoutOf is the page's limit, without Wait.
func timeoutOf(p Page) time.Duration {
	if p.Timeout <= 0 {
		return DefaultTimeout
	}
	return p.Timeout
}

// remaining is the time left before ctx's deadline (DefaultTimeout if none).
func remaining(ctx context.Context) time.Duration {
	if d, ok := ctx.Deadline(); ok {
		if r := time.Until(d); r > 0 {
			return r
		}
		return time.Millisecond
	}
	return DefaultTimeout
}

// pollTimeout leaves half a second of the deadline for reporting a poll
// that timed out.
func pollTimeout(ctx context.Context) time.Duration {
	return max(remaining(ctx)-500*time.Millisecond, waitForInterval)
}

// evaluate runs a JavaScript expression in the page, awaits a returned
// Promise, and returns the result as JSON (undefined becomes null).
func evaluate(ctx context.Context, expr string) (json.RawMessage, error) {
	res, err := chromedp.Call(ctx, runtime.Evaluate, runtime.EvaluateParams{
		Expression:    expr,
		ReturnByValue: new(true),
		AwaitPromise:  new(true),
		UserGesture:   new(true),
	})
	if err != nil {
		return nil, err
	}
	if res.ExceptionDetails != nil {
		return nil, errors.New(exceptionText(res.ExceptionDetails))
	}
	if res.Result == nil || len(res.Result.Value) == 0 {
		if res.Result != nil && res.Result.UnserializableValue != "" {
			// NaN, Infinity, -0, bigint: JSON has no spelling, use a string.
			return json.Marshal(string(res.Result.UnserializableValue))
		}
		return json.RawMessage("null"), nil
	}
	return json.RawMessage(res.Result.Value), nil
}

func exceptionText(d *runtime.ExceptionDetails) string {
	if d == nil {
		return "unknown exception"
	}
	if d.Exception != nil && d.Exception.Description != "" {
		// The description holds "Error: message\n    at stack..."; keep line one.
		first, _, _ := strings.Cut(d.Exception.Description, "\n")
		return first
	}
	return d.Text
}

func consoleArgs(args []*runtime.RemoteObject) string {
	parts := make([]string, 0, len(args))
	for _, a := range args {
		switch {
		case len(a.Value) > 0:
			var s string
			if json.Unmarshal(a.Value, &s) == nil {
				parts = append(parts, s)
			} else {
				parts = append(parts, string(a.Value))
			}
		case a.Description != "":
			parts = append(parts, a.Description)
		default:
			parts = append(parts, string(a.Type))
		}
	}
	return strings.Join(parts, " ")
}

// setCookies loads cookies into the tab's browser context.
func setCookies(ctx context.Context, cookies []*network.CookieParam) error {
	if len(cookies) == 0 {
		return nil
	}
	if _, err := chromedp.Call(ctx, network.SetCookies, network.SetCookiesParams{Cookies: cookies}); err != nil {
		return fmt.Errorf("set cookies: %w", err)
	}
	return nil
}

// epoch converts a cookie expiry in seconds since the epoch.
func epoch(sec float64) cdp.TimeSinceEpoch { return cdp.TimeSinceEpoch(sec) }
