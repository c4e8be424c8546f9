package shot

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// The Config types below back the `lode shot` commands: cmd/lode fills one
// from flags and calls Run, which validates it and does the work. Messages
// ("Screenshot of ... written to ...") go to Stderr unless Silent.

// IO holds a command's streams.
type IO struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
}

// ShotConfig is `lode shot URL`.
type ShotConfig struct {
	Browser BrowserOptions
	// Use, when set, runs in this browser instead of starting one.
	Use     *Browser
	Options Options
	// Output is the file to write; "-" is stdout; "" derives a name from
	// the URL (FilenameForURL, not overwriting). A .pdf output prints a PDF.
	Output string
	Silent bool
}

// Run takes the shot.
func (c *ShotConfig) Run(ctx context.Context, s IO) error {
	out := c.Output
	if out == "" {
		u, err := ResolveURL(c.Options.URL)
		if err != nil {
			return err
		}
		ext := "png"
		if c.Options.Quality > 0 {
			ext = "jpg"
		}
		out = FilenameForURL(u, ext, fileExists)
	}
	pdf := strings.EqualFold(filepath.Ext(out), ".pdf")
	if !pdf {
		f, err := imageFormat(out, c.Options.Quality)
		if err != nil {
			return err
		}
		c.Options.Format = f
		if err := c.Options.Validate(); err != nil {
			return err
		}
	}
	return withBrowser(ctx, c.Browser, c.Use, func(b *Browser) error {
		var data []byte
		var err error
		if pdf {
			data, err = b.PDF(ctx, PDFOptions{Page: c.Options.Page})
		} else {
			data, err = b.Screenshot(ctx, c.Options)
		}
		if err != nil {
			return err
		}
		if err := emit(out, data, s.Stdout); err != nil {
			return err
		}
		if out != "-" && !c.Silent {
			what := "Screenshot of '" + c.Options.URL + "'"
			if sel := allSelectors(c.Options); sel != "" {
				what = "Screenshot of '" + sel + "' on '" + c.Options.URL + "'"
			}
			fmt.Fprintf(s.Stderr, "%s written to '%s'\n", what, out)
		}
		return nil
	})
}

func allSelectors(o Options) string {
	all := append(append(append(append([]string{}, o.Selectors...), o.SelectorsAll...), o.JSSelectors...), o.JSSelectorsAll...)
	return strings.Join(all, ", ")
}

// MultiConfig is `lode shot multi shots.yaml`.
type MultiConfig struct {
	Browser BrowserOptions
	// Use, when set, runs in this browser instead of starting one.
	Use *Browser
	// File is the shots.yaml path; "-" reads stdin.
	File  string
	Multi MultiOptions
	// AuthFile, when set, is loaded into Multi.Defaults.Auth.
	AuthFile string
	Silent   bool
}

// Run parses the file and takes every shot with one browser.
func (c *MultiConfig) Run(ctx context.Context, s IO) error {
	var r io.Reader = s.Stdin
	name := "stdin"
	if c.File != "-" {
		f, err := os.Open(c.File)
		if err != nil {
			return fmt.Errorf("open shots file: %w", err)
		}
		defer f.Close()
		r, name = f, c.File
	}
	shots, err := ParseShots(r, name)
	if err != nil {
		return err
	}
	if len(shots) == 0 {
		return fmt.Errorf("%s has no shots; write a YAML list like:\n- url: http://localhost:8001/\n  output: index.png", name)
	}
	if c.AuthFile != "" {
		if c.Multi.Defaults.Auth, err = LoadAuth(c.AuthFile); err != nil {
			return err
		}
	}
	if c.Multi.Log == nil && !c.Silent {
		c.Multi.Log = s.Stderr
	}
	return withBrowser(ctx, c.Browser, c.Use, func(b *Browser) error {
		return b.RunMulti(ctx, shots, c.Multi)
	})
}

// PDFConfig is `lode shot pdf URL`.
type PDFConfig struct {
	Browser BrowserOptions
	// Use, when set, runs in this browser instead of starting one.
	Use     *Browser
	Options PDFOptions
	// Output as in ShotConfig; "" derives NAME.pdf from the URL.
	Output string
	Silent bool
}

// Run prints the page to PDF.
func (c *PDFConfig) Run(ctx context.Context, s IO) error {
	if err := c.Options.Validate(); err != nil {
		return err
	}
	out := c.Output
	if out == "" {
		u, err := ResolveURL(c.Options.URL)
		if err != nil {
			return err
		}
		out = FilenameForURL(u, "pdf", fileExists)
	}
	return withBrowser(ctx, c.Browser, c.Use, func(b *Browser) error {
		data, err := b.PDF(ctx, c.Options)
		if err != nil {
			return err
		}
		if err := emit(out, data, s.Stdout); err != nil {
			return err
		}
		if out != "-" && !c.Silent {
			fmt.Fprintf(s.Stderr, "PDF of '%s' written to '%s'\n", c.Options.URL, out)
		}
		return nil
	})
}

// HTMLConfig is `lode shot html URL`.
type HTMLConfig struct {
	Browser BrowserOptions
	// Use, when set, runs in this browser instead of starting one.
	Use      *Browser
	Page     Page
	Selector string
	// Output is a file, or "-"/"" for stdout.
	Output string
}

// Run prints the rendered DOM.
func (c *HTMLConfig) Run(ctx context.Context, s IO) error {
	return withBrowser(ctx, c.Browser, c.Use, func(b *Browser) error {
		html, err := b.HTML(ctx, c.Page, c.Selector)
		if err != nil {
			return err
		}
		return emit(orStdout(c.Output), []byte(html+"\n"), s.Stdout)
	})
}

// JavaScriptConfig is `lode shot javascript URL EXPRESSION`.
type JavaScriptConfig struct {
	Browser BrowserOptions
	// Use, when set, runs in this browser instead of starting one.
	Use        *Browser
	Page       Page
	Expression string
	// Raw prints a string result as plain text instead of JSON.
	Raw bool
	// Output is a file, or "-"/"" for stdout.
	Output string
}

// Run evaluates the expression and prints the result as indented JSON.
func (c *JavaScriptConfig) Run(ctx context.Context, s IO) error {
	return withBrowser(ctx, c.Browser, c.Use, func(b *Browser) error {
		raw, err := b.Evaluate(ctx, c.Page, c.Expression)
		if err != nil {
			return err
		}
		var text string
		if c.Raw && json.Unmarshal(raw, &text) == nil {
			return emit(orStdout(c.Output), []byte(text+"\n"), s.Stdout)
		}
		return emit(orStdout(c.Output), indentJSON(raw), s.Stdout)
	})
}

// AccessibilityConfig is `lode shot accessibility URL`.
type AccessibilityConfig struct {
	Browser BrowserOptions
	// Use, when set, runs in this browser instead of starting one.
	Use    *Browser
	Page   Page
	Output string
}

// Run prints the accessibility tree as indented JSON.
func (c *AccessibilityConfig) Run(ctx context.Context, s IO) error {
	return withBrowser(ctx, c.Browser, c.Use, func(b *Browser) error {
		raw, err := b.Accessibility(ctx, c.Page)
		if err != nil {
			return err
		}
		return emit(orStdout(c.Output), indentJSON(raw), s.Stdout)
	})
}

// AuthConfig is `lode shot auth URL auth.json`.
type AuthConfig struct {
	Browser BrowserOptions
	// Use, when set, runs in this browser instead of starting one.
	Use  *Browser
	Page Page
	// Output is the auth file; "-" prints it.
	Output string
	// Interactive waits for Enter on stdin before saving, so a person can
	// sign in (set Browser.Visible to give them a window); otherwise the
	// page's JavaScript/WaitFor do the sign-in.
	Interactive bool
	Silent      bool
}

// Run opens the page, waits, and saves cookies and localStorage.
func (c *AuthConfig) Run(ctx context.Context, s IO) error {
	if err := c.Page.validate(); err != nil {
		return err
	}
	if c.Output == "" {
		return errors.New("no auth file given: lode shot auth URL auth.json")
	}
	var ready func(context.Context) error
	if c.Interactive {
		if c.Page.Timeout == 0 {
			// The person signing in sets the pace.
			c.Page.Timeout = time.Hour
		}
		ready = func(ctx context.Context) error {
			fmt.Fprintln(s.Stderr, "Sign in in the browser window, then hit <enter> here:")
			line := make(chan error, 1)
			go func() {
				_, err := bufio.NewReader(s.Stdin).ReadString('\n')
				line <- err
			}()
			select {
			case err := <-line:
				if err != nil && !errors.Is(err, io.EOF) {
					return fmt.Errorf("read stdin: %w", err)
				}
				return nil
			case <-ctx.Done():
				return context.Cause(ctx)
			}
		}
	}
	return withBrowser(ctx, c.Browser, c.Use, func(b *Browser) error {
		state, err := b.CaptureAuth(ctx, c.Page, ready)
		if err != nil {
			return err
		}
		if c.Output == "-" {
			data, err := json.MarshalIndent(state, "", "  ")
			if err != nil {
				return err
			}
			_, err = s.Stdout.Write(append(data, '\n'))
			return err
		}
		if err := SaveAuth(c.Output, state); err != nil {
			return err
		}
		if !c.Silent {
			fmt.Fprintf(s.Stderr, "Saved %d cookie(s) and %d origin(s) of localStorage to '%s'\n", len(state.Cookies), len(state.Origins), c.Output)
		}
		return nil
	})
}

func withBrowser(ctx context.Context, opts BrowserOptions, use *Browser, fn func(*Browser) error) error {
	if use != nil {
		return fn(use)
	}
	b, err := NewBrowser(ctx, opts)
	if err != nil {
		return err
	}
	defer b.Close()
	return fn(b)
}

func orStdout(out string) string {
	if out == "" {
		return "-"
	}
	return out
}

// emit writes data to the file out, or to stdout when out is "-".
func emit(out string, data []byte, stdout io.Writer) error {
	if out == "-" {
		if _, err := stdout.Write(data); err != nil {
			return fmt.Errorf("write stdout: %w", err)
		}
		return nil
	}
	return writeFile(out, data)
}

// indentJSON indents with four spaces, as shot-scraper prints, keeping the
// key order of the page's object.
func indentJSON(raw json.RawMessage) []byte {
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "    "); err != nil {
		return append(raw, '\n')
	}
	buf.WriteByte('\n')
	return buf.Bytes()
}
