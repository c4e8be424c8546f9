package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"lode/internal/shot"
)

// shotFlags are the flags most `lode shot` commands share; each command
// registers the ones it uses.
type shotFlags struct {
	browser     string
	browserArgs []string
	auth        string
	width       int
	height      int
	retina      bool
	javascript  string
	wait        int
	waitFor     string
	timeout     int
	userAgent   string
	fail        bool
	failOnError bool
	logConsole  bool
	silent      bool
}

func (f *shotFlags) addBrowser(fs *pflag.FlagSet) {
	fs.StringVarP(&f.browser, "browser", "b", "", "Chromium executable `PATH` (default: chromium, chromium-browser or google-chrome on PATH)")
	fs.StringArrayVar(&f.browserArgs, "browser-arg", nil, "extra Chromium command-line flag, e.g. --browser-arg=--lang=de (repeatable)")
	fs.StringVarP(&f.auth, "auth", "a", "", "load cookies and localStorage from this `FILE`, written by lode shot auth (Playwright storage-state JSON)")
	fs.IntVar(&f.timeout, "timeout", 0, "milliseconds before giving up on loading, --javascript and --wait-for (default 30000)")
	fs.StringVar(&f.userAgent, "user-agent", "", "User-Agent header to send")
	fs.BoolVar(&f.fail, "fail", false, "fail if the page returns an HTTP 4xx/5xx status")
	fs.BoolVar(&f.failOnError, "fail-on-error", false, "fail on an HTTP 4xx/5xx status or an uncaught JavaScript error in the page")
	fs.BoolVar(&f.logConsole, "log-console", false, "write the page's console.log() messages to stderr")
}

func (f *shotFlags) addSteps(fs *pflag.FlagSet) {
	fs.StringVarP(&f.javascript, "javascript", "j", "", "JavaScript to run after the page loads (a returned Promise is awaited)")
	fs.IntVar(&f.wait, "wait", 0, "milliseconds to wait after the load event, before --javascript")
	fs.StringVar(&f.waitFor, "wait-for", "", "JavaScript expression to wait for until it is true, e.g. 'document.querySelector(\"#chart svg\")'")
}

// options turns the flags into the browser and page settings.
func (f *shotFlags) options(cmd *cobra.Command, url string) (shot.BrowserOptions, shot.Page, error) {
	b := shot.BrowserOptions{ExecPath: f.browser, Args: f.browserArgs}
	p := shot.Page{
		URL: url, Width: f.width, Height: f.height,
		JavaScript: f.javascript, WaitFor: f.waitFor, UserAgent: f.userAgent,
		Wait:            time.Duration(f.wait) * time.Millisecond,
		Timeout:         time.Duration(f.timeout) * time.Millisecond,
		FailOnHTTPError: f.fail || f.failOnError,
		FailOnJSError:   f.failOnError,
	}
	if f.wait < 0 || f.timeout < 0 {
		return b, p, fmt.Errorf("--wait and --timeout are milliseconds and must not be negative")
	}
	if f.retina {
		p.ScaleFactor = 2
	}
	if f.logConsole {
		p.Console = cmd.ErrOrStderr()
	}
	if f.auth != "" {
		a, err := shot.LoadAuth(f.auth)
		if err != nil {
			return b, p, fmt.Errorf("--auth: %w", err)
		}
		p.Auth = a
	}
	return b, p, nil
}

func shotIO(cmd *cobra.Command) shot.IO {
	return shot.IO{Stdin: cmd.InOrStdin(), Stdout: cmd.OutOrStdout(), Stderr: cmd.ErrOrStderr()}
}

func needURL(use string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != 1 {
			return fmt.Errorf("%s needs exactly one URL or HTML file, got %d arguments; e.g. lode %s http://127.0.0.1:8001/", cmd.CommandPath(), len(args), use)
		}
		return nil
	}
}

func newShotCmd() *cobra.Command {
	var f shotFlags
	var c shot.ShotConfig
	cmd := &cobra.Command{
		Use:   "shot URL",
		Short: "Take screenshots, PDFs and HTML/JS snapshots of pages in headless Chromium",
		Long: `Take a screenshot of a page (or part of it) in headless Chromium, like shot-scraper.

URL is an http(s) URL, a host (http:// is added) or a local HTML file. The image is
full-page unless --height is given; -o picks the file and its format by extension
(.png, .jpg, .pdf); -o - writes to stdout. Needs Chromium: apt-get install chromium.`,
		Example: `  lode shot http://127.0.0.1:8001/ -o index.png
  lode shot http://127.0.0.1:8001/fixtures/facetable -s table --padding 10 -o table.png
  lode shot lode-report/index.html --wait-for 'document.querySelector("svg")' -o report.png
  lode shot http://127.0.0.1:8001/ --width 400 --height 800 --retina -o - > small.png
  lode shot multi shots.yaml
  lode shot pdf http://127.0.0.1:8001/ -o page.pdf --landscape`,
		Args: needURL("shot"),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, p, err := f.options(cmd, args[0])
			if err != nil {
				return err
			}
			c.Browser, c.Options.Page, c.Silent = b, p, f.silent
			return c.Run(cmd.Context(), shotIO(cmd))
		},
	}
	fs := cmd.Flags()
	f.addBrowser(fs)
	f.addSteps(fs)
	fs.IntVarP(&f.width, "width", "w", 0, "browser window width in CSS pixels (default 1280)")
	// -h is --height, as in shot-scraper, so help is only --help.
	fs.Bool("help", false, "help for shot")
	fs.IntVarP(&f.height, "height", "h", 0, "window height; the shot is then this tall instead of the full page")
	fs.BoolVar(&f.retina, "retina", false, "device scale factor 2: images have twice the width and height")
	fs.BoolVar(&f.silent, "silent", false, "print no messages")
	fs.StringVarP(&c.Output, "output", "o", "", "output file (.png, .jpg, .pdf) or - for stdout (default: a name from the URL)")
	fs.StringArrayVarP(&c.Options.Selectors, "selector", "s", nil, "shoot the box around the first element matching this CSS selector (repeatable)")
	fs.StringArrayVar(&c.Options.SelectorsAll, "selector-all", nil, "shoot the box around every element matching this CSS selector (repeatable)")
	fs.StringArrayVar(&c.Options.JSSelectors, "js-selector", nil, "shoot the first element for which this JavaScript expression over el is true")
	fs.StringArrayVar(&c.Options.JSSelectorsAll, "js-selector-all", nil, "shoot every element for which this JavaScript expression over el is true")
	fs.IntVarP(&c.Options.Padding, "padding", "p", 0, "pixels of padding around the selected elements")
	fs.IntVar(&c.Options.Quality, "quality", 0, "save as JPEG with this quality, e.g. 80")
	fs.BoolVar(&c.Options.OmitBackground, "omit-background", false, "transparent instead of white page background (PNG only)")
	fs.BoolVar(&c.Options.ReducedMotion, "reduced-motion", false, "emulate prefers-reduced-motion: reduce")

	cmd.AddCommand(newShotMultiCmd(), newShotPDFCmd(), newShotHTMLCmd(), newShotJavaScriptCmd(),
		newShotAccessibilityCmd(), newShotAuthCmd())
	return cmd
}

func newShotMultiCmd() *cobra.Command {
	var f shotFlags
	var c shot.MultiConfig
	cmd := &cobra.Command{
		Use:   "multi shots.yaml",
		Short: "Take many screenshots defined in a YAML file, with one browser",
		Long: `Take every shot listed in a YAML file (shot-scraper's format), with one browser.
Each entry has url: and optionally output:, width:, height:, selector(s):,
selector_all:, js_selector:, padding:, javascript:, wait:, wait_for:, quality:,
timeout:, omit_background:, retina:. A failing entry is reported and the others
are still taken; the exit status is then 1. Use - to read the YAML from stdin.`,
		Example: `  lode shot multi shots.yaml --output-dir docs/img
  lode shot multi shots.yaml --no-clobber
  echo '- url: http://127.0.0.1:8001/' | lode shot multi -`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return fmt.Errorf("lode shot multi needs one YAML file (or - for stdin), got %d arguments", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			b, p, err := f.options(cmd, "")
			if err != nil {
				return err
			}
			c.Browser, c.Multi.Defaults, c.File, c.Silent = b, p, args[0], f.silent
			return c.Run(cmd.Context(), shotIO(cmd))
		},
	}
	fs := cmd.Flags()
	f.addBrowser(fs)
	fs.BoolVar(&f.retina, "retina", false, "device scale factor 2 for every shot")
	fs.BoolVar(&f.silent, "silent", false, "print no messages")
	fs.BoolVarP(&c.Multi.NoClobber, "no-clobber", "n", false, "skip shots whose output file exists")
	fs.StringVar(&c.Multi.OutputDir, "output-dir", "", "directory for relative output paths (created if missing)")
	fs.StringArrayVarP(&c.Multi.Only, "output", "o", nil, "only take the shots with this output: value (repeatable)")
	return cmd
}

func newShotPDFCmd() *cobra.Command {
	var f shotFlags
	var c shot.PDFConfig
	cmd := &cobra.Command{
		Use:   "pdf URL",
		Short: "Print a page to PDF",
		Example: `  lode shot pdf http://127.0.0.1:8001/ -o page.pdf
  lode shot pdf lode-report/index.html -o report.pdf --landscape --format A4 --print-background`,
		Args: needURL("shot pdf"),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, p, err := f.options(cmd, args[0])
			if err != nil {
				return err
			}
			c.Browser, c.Options.Page, c.Silent = b, p, f.silent
			return c.Run(cmd.Context(), shotIO(cmd))
		},
	}
	fs := cmd.Flags()
	f.addBrowser(fs)
	f.addSteps(fs)
	fs.BoolVar(&f.silent, "silent", false, "print no messages")
	fs.StringVarP(&c.Output, "output", "o", "", "output file or - for stdout (default: a name from the URL)")
	fs.BoolVar(&c.Options.Landscape, "landscape", false, "landscape orientation")
	fs.Float64Var(&c.Options.Scale, "scale", 0, "scale of the rendering, 0.1 to 2 (default 1)")
	fs.StringVar(&c.Options.Format, "format", "", "paper size: Letter (default), Legal, Tabloid, Ledger, A0-A6")
	fs.BoolVar(&c.Options.PrintBackground, "print-background", false, "print background colours and images")
	fs.BoolVar(&c.Options.MediaScreen, "media-screen", false, "use screen styles instead of print styles")
	return cmd
}

func newShotHTMLCmd() *cobra.Command {
	var f shotFlags
	var c shot.HTMLConfig
	cmd := &cobra.Command{
		Use:   "html URL",
		Short: "Print the rendered DOM of a page as HTML (content added by scripts included)",
		Example: `  lode shot html http://127.0.0.1:8001/
  lode shot html http://127.0.0.1:8001/fixtures/facetable -s table`,
		Args: needURL("shot html"),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, p, err := f.options(cmd, args[0])
			if err != nil {
				return err
			}
			c.Browser, c.Page = b, p
			return c.Run(cmd.Context(), shotIO(cmd))
		},
	}
	fs := cmd.Flags()
	f.addBrowser(fs)
	f.addSteps(fs)
	fs.StringVarP(&c.Selector, "selector", "s", "", "print only the outerHTML of the first element matching this CSS selector")
	fs.StringVarP(&c.Output, "output", "o", "-", "output file or - for stdout")
	return cmd
}

func newShotJavaScriptCmd() *cobra.Command {
	var f shotFlags
	var c shot.JavaScriptConfig
	var input string
	cmd := &cobra.Command{
		Use:   "javascript URL [EXPRESSION]",
		Short: "Evaluate JavaScript in a page and print the result as JSON",
		Example: `  lode shot javascript http://127.0.0.1:8001/ document.title
  lode shot javascript http://127.0.0.1:8001/ '({title: document.title, rows: document.querySelectorAll("tr").length})'
  lode shot javascript page.html -i script.js`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 1 || len(args) > 2 {
				return fmt.Errorf("lode shot javascript needs a URL and an expression (or -i FILE), got %d arguments", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			b, p, err := f.options(cmd, args[0])
			if err != nil {
				return err
			}
			c.Browser, c.Page = b, p
			switch {
			case len(args) == 2 && input != "":
				return fmt.Errorf("give the JavaScript either as an argument or with -i, not both")
			case len(args) == 2:
				c.Expression = args[1]
			case input == "" || input == "-":
				data, err := readAll(cmd, "-")
				if err != nil {
					return err
				}
				c.Expression = data
			default:
				data, err := readAll(cmd, input)
				if err != nil {
					return err
				}
				c.Expression = data
			}
			return c.Run(cmd.Context(), shotIO(cmd))
		},
	}
	fs := cmd.Flags()
	f.addBrowser(fs)
	f.addSteps(fs)
	fs.StringVarP(&input, "input", "i", "", "read the JavaScript from this file (- for stdin)")
	fs.BoolVarP(&c.Raw, "raw", "r", false, "print a string result as plain text, not JSON")
	fs.StringVarP(&c.Output, "output", "o", "-", "output file or - for stdout")
	return cmd
}

func readAll(cmd *cobra.Command, path string) (string, error) {
	if path == "-" {
		data, err := io.ReadAll(cmd.InOrStdin())
		if err != nil {
			return "", fmt.Errorf("read JavaScript from stdin: %w", err)
		}
		return string(data), nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("-i: %w", err)
	}
	return string(data), nil
}

func newShotAccessibilityCmd() *cobra.Command {
	var f shotFlags
	var c shot.AccessibilityConfig
	cmd := &cobra.Command{
		Use:     "accessibility URL",
		Short:   "Print the accessibility tree of a page as JSON",
		Example: `  lode shot accessibility http://127.0.0.1:8001/`,
		Args:    needURL("shot accessibility"),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, p, err := f.options(cmd, args[0])
			if err != nil {
				return err
			}
			c.Browser, c.Page = b, p
			return c.Run(cmd.Context(), shotIO(cmd))
		},
	}
	fs := cmd.Flags()
	f.addBrowser(fs)
	f.addSteps(fs)
	fs.StringVarP(&c.Output, "output", "o", "-", "output file or - for stdout")
	return cmd
}

func newShotAuthCmd() *cobra.Command {
	var f shotFlags
	var c shot.AuthConfig
	var headless bool
	cmd := &cobra.Command{
		Use:   "auth URL auth.json",
		Short: "Sign in to a site in a browser and save its cookies and localStorage for --auth",
		Long: `Open URL in a visible browser window; sign in there, then hit <enter> in the terminal.
The cookies and localStorage are saved to auth.json (mode 0600; Playwright's
storage-state format, the same as shot-scraper auth), and --auth auth.json on any
lode shot command loads them. With --headless no window opens: script the sign-in
with --javascript and --wait-for instead.`,
		Example: `  lode shot auth http://127.0.0.1:8001/-/login auth.json
  lode shot http://127.0.0.1:8001/private -a auth.json -o private.png
  lode shot auth http://127.0.0.1:8001/login auth.json --headless \
    -j 'document.querySelector("#user").value="root"; document.querySelector("form").submit()' \
    --wait-for 'document.cookie.includes("ds_actor")'`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 2 {
				return fmt.Errorf("lode shot auth needs a URL and the auth file to write, e.g. lode shot auth http://127.0.0.1:8001/-/login auth.json; got %d arguments", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			b, p, err := f.options(cmd, args[0])
			if err != nil {
				return err
			}
			if !headless && os.Getenv("DISPLAY") == "" && os.Getenv("WAYLAND_DISPLAY") == "" {
				return fmt.Errorf("no display for a browser window ($DISPLAY is empty); run it on a desktop, or use --headless with --javascript/--wait-for to script the sign-in")
			}
			b.Visible = !headless
			c.Browser, c.Page, c.Output, c.Interactive, c.Silent = b, p, args[1], !headless, f.silent
			return c.Run(cmd.Context(), shotIO(cmd))
		},
	}
	fs := cmd.Flags()
	f.addBrowser(fs)
	f.addSteps(fs)
	fs.BoolVar(&headless, "headless", false, "no window and no prompt: sign in with --javascript/--wait-for, then save")
	fs.BoolVar(&f.silent, "silent", false, "print no messages")
	return cmd
}
