package shot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Shot is one entry of a shots.yaml file for `lode shot multi`. The keys
// are shot-scraper's multi keys; wait, timeout are in milliseconds.
type Shot struct {
	URL            string   `yaml:"url"`
	Output         string   `yaml:"output"`
	Width          int      `yaml:"width"`
	Height         int      `yaml:"height"`
	Selector       string   `yaml:"selector"`
	Selectors      []string `yaml:"selectors"`
	SelectorAll    string   `yaml:"selector_all"`
	SelectorsAll   []string `yaml:"selectors_all"`
	JSSelector     string   `yaml:"js_selector"`
	JSSelectors    []string `yaml:"js_selectors"`
	JSSelectorAll  string   `yaml:"js_selector_all"`
	JSSelectorsAll []string `yaml:"js_selectors_all"`
	Padding        int      `yaml:"padding"`
	JavaScript     string   `yaml:"javascript"`
	Quality        int      `yaml:"quality"`
	Wait           int      `yaml:"wait"`
	WaitFor        string   `yaml:"wait_for"`
	Timeout        int      `yaml:"timeout"`
	OmitBackground bool     `yaml:"omit_background"`
	Retina         bool     `yaml:"retina"`
	// Line is the entry's line in the YAML file, for messages.
	Line int `yaml:"-"`
}

// shotKeys are the YAML keys Shot accepts, for the unknown-key message.
var shotKeys = []string{"url", "output", "width", "height", "selector", "selectors", "selector_all",
	"selectors_all", "js_selector", "js_selectors", "js_selector_all", "js_selectors_all", "padding",
	"javascript", "quality", "wait", "wait_for", "timeout", "omit_background", "retina"}

// ParseShots reads a shots.yaml list. name is used in messages. Unknown keys
// are errors (a typo should not silently drop an option); shot-scraper's
// sh, python and server keys are not supported.
func ParseShots(r io.Reader, name string) ([]Shot, error) {
	var doc yaml.Node
	if err := yaml.NewDecoder(r).Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(doc.Content) == 0 {
		return nil, nil
	}
	list := doc.Content[0]
	if list.Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("%s:%d: want a list of shots (- url: ...), got %s", name, list.Line, kindName(list))
	}
	shots := make([]Shot, 0, len(list.Content))
	for i, item := range list.Content {
		if item.Kind != yaml.MappingNode {
			return nil, fmt.Errorf("%s:%d: shot %d: want a mapping like \"url: ...\", got %s", name, item.Line, i+1, kindName(item))
		}
		for k := 0; k+1 < len(item.Content); k += 2 {
			key := item.Content[k]
			if !slices.Contains(shotKeys, key.Value) {
				return nil, fmt.Errorf("%s:%d: shot %d: unknown key %q; known keys: %s", name, key.Line, i+1, key.Value, strings.Join(shotKeys, ", "))
			}
		}
		var s Shot
		if err := item.Decode(&s); err != nil {
			return nil, fmt.Errorf("%s:%d: shot %d: %w", name, item.Line, i+1, err)
		}
		s.Line = item.Line
		shots = append(shots, s)
	}
	return shots, nil
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	}
	return "something else"
}

// Options turns the entry into screenshot options; d holds the defaults
// given on the command line (auth, timeout, retina, failure policy).
func (s *Shot) Options(d Page) Options {
	p := d
	p.URL = s.URL
	p.Width, p.Height = s.Width, s.Height
	p.JavaScript = s.JavaScript
	p.WaitFor = s.WaitFor
	p.Wait = time.Duration(s.Wait) * time.Millisecond
	if s.Timeout > 0 {
		p.Timeout = time.Duration(s.Timeout) * time.Millisecond
	}
	if s.Retina {
		p.ScaleFactor = 2
	}
	o := Options{
		Page:           p,
		Selectors:      append(slices.Clone(s.Selectors), nonEmpty(s.Selector)...),
		SelectorsAll:   append(slices.Clone(s.SelectorsAll), nonEmpty(s.SelectorAll)...),
		JSSelectors:    append(slices.Clone(s.JSSelectors), nonEmpty(s.JSSelector)...),
		JSSelectorsAll: append(slices.Clone(s.JSSelectorsAll), nonEmpty(s.JSSelectorAll)...),
		Padding:        s.Padding,
		Quality:        s.Quality,
		OmitBackground: s.OmitBackground,
	}
	return o
}

func nonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}

var disallowed = regexp.MustCompile(`[^a-zA-Z0-9_-]`)

// FilenameForURL derives an output file name from a URL like shot-scraper:
// host and path with dots and slashes turned into dashes
// ("http://localhost:8001/db/t" -> "localhost8001-db-t.png"). exists, when
// not nil, reports taken names; then ".1", ".2", ... are inserted.
func FilenameForURL(rawURL, ext string, exists func(string) bool) string {
	if ext == "" {
		ext = "png"
	}
	u, err := url.Parse(rawURL)
	base := rawURL
	if err == nil {
		base = u.Host + u.Path
	}
	base = strings.TrimRight(strings.NewReplacer(".", "-", "/", "-").Replace(base), "-")
	base = strings.TrimLeft(disallowed.ReplaceAllString(base, ""), "-")
	if base == "" {
		base = "shot"
	}
	name := base + "." + ext
	for i := 1; exists != nil && exists(name); i++ {
		name = fmt.Sprintf("%s.%d.%s", base, i, ext)
	}
	return name
}

// MultiOptions configure RunMulti.
type MultiOptions struct {
	// Defaults apply to every entry: Auth, Timeout, ScaleFactor,
	// FailOnHTTPError, FailOnJSError, UserAgent, Console.
	Defaults Page
	// OutputDir holds relative output paths; "" is the current directory.
	OutputDir string
	// NoClobber skips entries whose output file exists.
	NoClobber bool
	// Only, when not empty, limits the run to entries with these outputs.
	Only []string
	// Log receives one line per shot taken, skipped or failed; nil is quiet.
	Log io.Writer
}

// MultiError reports the entries of a multi run that failed.
type MultiError struct {
	Failed, Total int
}

func (e *MultiError) Error() string {
	return fmt.Sprintf("%d of %d shots failed (see the messages above)", e.Failed, e.Total)
}

// RunMulti takes every shot with one browser. A failed entry is reported to
// opts.Log and the run continues; the error is then a *MultiError. Outputs
// ending in .pdf are printed to PDF, others are images by extension.
func (b *Browser) RunMulti(ctx context.Context, shots []Shot, opts MultiOptions) error {
	logf := func(format string, args ...any) {
		if opts.Log != nil {
			fmt.Fprintf(opts.Log, format+"\n", args...)
		}
	}
	failed, total := 0, 0
	for i, s := range shots {
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		if len(opts.Only) > 0 && !slices.Contains(opts.Only, s.Output) {
			continue
		}
		out := s.Output
		if out == "" {
			if u, err := ResolveURL(s.URL); err == nil {
				// A derived name gets a .1, .2 suffix rather than overwrite,
				// except with NoClobber, where an existing one means done.
				exists := func(name string) bool { return fileExists(filepath.Join(opts.OutputDir, name)) }
				if opts.NoClobber {
					exists = nil
				}
				out = FilenameForURL(u, "png", exists)
			}
		}
		if out != "" && !filepath.IsAbs(out) {
			out = filepath.Join(opts.OutputDir, out)
		}
		if opts.NoClobber && out != "" && fileExists(out) {
			logf("skipping shot %d (line %d): %s exists", i+1, s.Line, out)
			continue
		}
		total++
		if err := b.takeShot(ctx, s, opts.Defaults, out); err != nil {
			failed++
			logf("shot %d (line %d, %s) failed: %v", i+1, s.Line, s.URL, err)
			continue
		}
		logf("Screenshot of '%s' written to '%s'", s.URL, out)
	}
	if failed > 0 {
		return &MultiError{Failed: failed, Total: total}
	}
	return nil
}

func (b *Browser) takeShot(ctx context.Context, s Shot, defaults Page, out string) error {
	if s.URL == "" {
		return errors.New("no url: key")
	}
	o := s.Options(defaults)
	var data []byte
	var err error
	if strings.EqualFold(filepath.Ext(out), ".pdf") {
		data, err = b.PDF(ctx, PDFOptions{Page: o.Page})
	} else {
		if o.Format, err = imageFormat(out, o.Quality); err != nil {
			return err
		}
		data, err = b.Screenshot(ctx, o)
	}
	if err != nil {
		return err
	}
	return writeFile(out, data)
}

// imageFormat picks the format for an output path: by extension, else JPEG
// when a quality is set, else PNG. "-" is stdout.
func imageFormat(out string, quality int) (string, error) {
	if f := FormatForPath(out); f != "" {
		return f, nil
	}
	if out != "-" && filepath.Ext(out) != "" {
		return "", fmt.Errorf("output %q: unknown file type %q; use .png, .jpg or .pdf", out, filepath.Ext(out))
	}
	if quality > 0 {
		return FormatJPEG, nil
	}
	return FormatPNG, nil
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// writeFile writes data, creating parent directories.
func writeFile(path string, data []byte) error {
	if dir := filepath.Dir(path); dir != "." {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("create output directory: %w", err)
		}
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	return nil
}
