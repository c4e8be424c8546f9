package shot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// Image formats for Options.Format.
const (
	FormatPNG  = "png"
	FormatJPEG = "jpeg"
)

// Options describe one screenshot. The zero value plus Page.URL takes a
// full-page PNG 1280 CSS pixels wide.
type Options struct {
	Page
	// Selectors crop the shot to the smallest box holding the first element
	// matching each CSS selector (shot-scraper --selector).
	Selectors []string
	// SelectorsAll add every element matching each selector (--selector-all).
	SelectorsAll []string
	// JSSelectors add the first element for which the JavaScript expression
	// over `el` is true (--js-selector); JSSelectorsAll add every such one.
	JSSelectors    []string
	JSSelectorsAll []string
	// Padding in CSS pixels around the selected box.
	Padding int
	// Format is FormatPNG (default) or FormatJPEG.
	Format string
	// Quality is the JPEG quality 1-100; setting it implies FormatJPEG.
	Quality int
	// OmitBackground makes the default white page background transparent
	// (PNG only).
	OmitBackground bool
}

// FormatForPath returns the image format an output file name asks for:
// FormatJPEG for .jpg/.jpeg, FormatPNG for .png, "" for anything else.
func FormatForPath(path string) string {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".jpg", ".jpeg":
		return FormatJPEG
	case ".png":
		return FormatPNG
	}
	return ""
}

// Validate reports option combinations that cannot work.
func (o *Options) Validate() error {
	switch o.Format {
	case "", FormatPNG, FormatJPEG:
	default:
		return fmt.Errorf("image format %q: want png or jpeg", o.Format)
	}
	if o.Quality < 0 || o.Quality > 100 {
		return fmt.Errorf("--quality %d: want 1-100", o.Quality)
	}
	if o.Quality > 0 && o.Format == FormatPNG {
		return errors.New("--quality applies to JPEG only: write to a .jpg file or drop --quality")
	}
	if o.OmitBackground && (o.Format == FormatJPEG || o.Quality > 0) {
		return errors.New("--omit-background needs PNG: JPEG has no transparency")
	}
	if o.Padding < 0 {
		return fmt.Errorf("--padding %d: want 0 or more", o.Padding)
	}
	return o.Page.validate()
}

func (p *Page) validate() error {
	if p.URL == "" {
		return errors.New("no URL given")
	}
	if p.Width < 0 || p.Height < 0 {
		return fmt.Errorf("window size %dx%d: want positive numbers", p.Width, p.Height)
	}
	if p.ScaleFactor < 0 {
		return fmt.Errorf("scale factor %g: want a positive number", p.ScaleFactor)
	}
	if p.Timeout < 0 || p.Wait < 0 {
		return errors.New("--timeout and --wait must not be negative")
	}
	return nil
}

// Screenshot starts a browser, takes one screenshot and stops the browser.
// Use Browser.Screenshot to take several with one browser.
func Screenshot(ctx context.Context, o Options) ([]byte, error) {
	b, err := NewBrowser(ctx, BrowserOptions{})
	if err != nil {
		return nil, err
	}
	defer b.Close()
	return b.Screenshot(ctx, o)
}

// Screenshot loads o.URL in a new tab and returns the encoded image.
func (b *Browser) Screenshot(ctx context.Context, o Options) ([]byte, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	var img []byte
	err := b.open(ctx, o.Page, func(l *loaded) error {
		var err error
		img, err = capture(l.ctx, o)
		return err
	})
	return img, err
}

// backgroundParams is Emulation.setDefaultBackgroundColorOverride's params
// spelled by hand: cdproto omits a zero alpha, and Chromium then reads it as
// opaque.
type backgroundParams struct {
	Color struct {
		R int     `json:"r"`
		G int     `json:"g"`
		B int     `json:"b"`
		A float64 `json:"a"`
	} `json:"color"`
}

var setBackground = cdp.Command[backgroundParams, cdp.Empty]{Method: "Emulation.setDefaultBackgroundColorOverride"}

func capture(ctx context.Context, o Options) ([]byte, error) {
	if o.OmitBackground {
		if _, err := chromedp.Call(ctx, setBackground, backgroundParams{}); err != nil {
			return nil, fmt.Errorf("omit background: %w", err)
		}
	}
	params := page.CaptureScreenshotParams{Format: page.CaptureScreenshotFormatPng}
	if o.Format == FormatJPEG || o.Quality > 0 {
		params.Format = page.CaptureScreenshotFormatJpeg
		if o.Quality > 0 {
			params.Quality = new(int64(o.Quality))
		}
	}
	if len(o.Selectors)+len(o.SelectorsAll)+len(o.JSSelectors)+len(o.JSSelectorsAll) > 0 {
		box, err := selectionBox(ctx, o)
		if err != nil {
			return nil, err
		}
		params.Clip = box
		params.CaptureBeyondViewport = new(true)
	} else if o.Height == 0 {
		// Full page: the whole scrollable area, as Playwright's fullPage.
		m, err := chromedp.Call(ctx, page.GetLayoutMetrics, cdp.Empty{})
		if err != nil {
			return nil, fmt.Errorf("measure page: %w", err)
		}
		if m.CSSContentSize == nil {
			return nil, errors.New("measure page: no content size")
		}
		params.Clip = &page.Viewport{
			Width:  math.Ceil(m.CSSContentSize.Width),
			Height: math.Ceil(m.CSSContentSize.Height),
			Scale:  1,
		}
		params.CaptureBeyondViewport = new(true)
	}
	res, err := chromedp.Call(ctx, page.CaptureScreenshot, params)
	if err != nil {
		return nil, fmt.Errorf("capture screenshot: %w", err)
	}
	return res.Data, nil
}

// selectionJS returns the union box, in page coordinates, of the selected
// elements plus padding, like shot-scraper's _selector_javascript. It
// returns {missing: selector} while some selector matches nothing, so the
// caller can wait for late elements.
const selectionJS = `((sels, all, jsSels, jsAll, pad) => {
  const els = [];
  for (const s of sels) { const el = document.querySelector(s); if (!el) return {missing: s}; els.push(el); }
  for (const s of all) { const found = document.querySelectorAll(s); if (!found.length) return {missing: s}; els.push(...found); }
  const every = Array.from(document.getElementsByTagName('*'));
  for (const [f, pred] of jsSels) { const el = every.find(pred); if (!el) return {missing: f}; els.push(el); }
  for (const [f, pred] of jsAll) { const found = every.filter(pred); if (!found.length) return {missing: f}; els.push(...found); }
  let top = Infinity, left = Infinity, bottom = -Infinity, right = -Infinity;
  for (const el of els) {
    const r = el.getBoundingClientRect();
    top = Math.min(top, r.top); left = Math.min(left, r.left);
    bottom = Math.max(bottom, r.bottom); right = Math.max(right, r.right);
  }
  top = Math.max(0, Math.floor(top + window.scrollY - pad));
  left = Math.max(0, Math.floor(left + window.scrollX - pad));
  bottom = Math.ceil(bottom + window.scrollY + pad);
  right = Math.ceil(right + window.scrollX + pad);
  return {x: left, y: top, width: right - left, height: bottom - top};
})`

func selectionBox(ctx context.Context, o Options) (*page.Viewport, error) {
	css, err := json.Marshal([]any{nonNil(o.Selectors), nonNil(o.SelectorsAll)})
	if err != nil {
		return nil, err
	}
	// The --js-selector expressions are spliced in as code, as shot-scraper
	// does, rather than built with new Function, which a page's
	// Content-Security-Policy can forbid.
	preds := func(exprs []string) string {
		var b strings.Builder
		b.WriteString("[")
		for _, e := range exprs {
			q, _ := json.Marshal(e)
			fmt.Fprintf(&b, "[%s, el => (%s)],", q, e)
		}
		b.WriteString("]")
		return b.String()
	}
	call := fmt.Sprintf("%s(...%s, %s, %s, %d)", selectionJS, css, preds(o.JSSelectors), preds(o.JSSelectorsAll), o.Padding)
	var box struct {
		Missing *string `json:"missing"`
		X, Y    float64
		Width   float64
		Height  float64
	}
	// Like Playwright's locator.screenshot, wait for late elements: poll
	// until every selector matches, and take the box from the same poll.
	raw, err := chromedp.Run(ctx, chromedp.Poll[[]byte](`(() => { const r = `+call+`; return r.missing ? false : r; })()`,
		chromedp.WithPollingInterval(waitForInterval),
		chromedp.WithPollingTimeout(remaining(ctx))))
	if err != nil {
		// Name the selector that still matches nothing. The page's own
		// deadline may be gone, so ask with a short one of its own.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if raw, evalErr := evaluate(dctx, call); evalErr == nil && json.Unmarshal(raw, &box) == nil && box.Missing != nil {
			return nil, fmt.Errorf("selector %q matched no element within %s; fix the selector or raise --timeout", *box.Missing, timeoutOf(o.Page))
		}
		return nil, fmt.Errorf("find selected elements: %w", err)
	}
	if err := json.Unmarshal(raw, &box); err != nil {
		return nil, fmt.Errorf("find selected elements: %w", err)
	}
	if box.Width <= 0 || box.Height <= 0 {
		return nil, fmt.Errorf("the selected elements have no size (%gx%g); are they hidden?", box.Width, box.Height)
	}
	return &page.Viewport{X: box.X, Y: box.Y, Width: box.Width, Height: box.Height, Scale: 1}, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
