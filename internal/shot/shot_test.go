package shot_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"image/png"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"lode/internal/shot"
	"lode/internal/shot/shottest"
)

// All tests share one Chromium (a start costs seconds); each shot still
// gets its own tab and browser context.
func TestMain(m *testing.M) { os.Exit(shottest.Main(m)) }

// pages is the local site the tests shoot.
func pages(t testing.TB) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	html := func(body string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			fmt.Fprint(w, `<!DOCTYPE html><html><head><title>Test page</title></head><body style="margin:0">`+body+`</body></html>`)
		}
	}
	// #box is 200x100 at (30,40), #b2 50x50 at (300,200); the page is 2000px tall.
	mux.HandleFunc("GET /page", html(`<h1 style="position:absolute;left:0;top:400px;margin:0;font-size:10px">Heading one</h1>
<div id="box" style="position:absolute;left:30px;top:40px;width:200px;height:100px;background:rgb(255,0,0)"></div>
<div id="b2" class="sq" style="position:absolute;left:300px;top:200px;width:50px;height:50px;background:rgb(0,0,255)"></div>
<div style="height:2000px"></div>`))
	// window.ready turns true and the page green only after a delay.
	mux.HandleFunc("GET /late", html(`<script>setTimeout(() => {
  document.body.style.background = 'rgb(0,255,0)';
  document.body.insertAdjacentHTML('beforeend', '<p id="late">late</p>');
  window.ready = true;
}, 300)</script>`))
	mux.HandleFunc("GET /dom", html(`<main id="main"></main><script>
document.getElementById('main').insertAdjacentHTML('beforeend', '<p id="added">added by script</p>');
</script>`))
	mux.HandleFunc("GET /missing", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `<!DOCTYPE html><p>not here</p>`)
	})
	mux.HandleFunc("GET /throws", html(`<p>ok</p><script>throw new Error("boom from page")</script>`))
	mux.HandleFunc("GET /blank", html(``))
	// /login sets an HttpOnly session cookie and a localStorage token;
	// /private shows who the cookie says you are, and the token.
	mux.HandleFunc("GET /login", func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "session", Value: "s3cret", Path: "/", HttpOnly: true})
		html(`<p>signed in</p><script>localStorage.setItem('token', 't0k')</script>`)(w, r)
	})
	mux.HandleFunc("GET /private", func(w http.ResponseWriter, r *http.Request) {
		who := "anonymous"
		if c, err := r.Cookie("session"); err == nil && c.Value == "s3cret" {
			who = "welcome"
		}
		html(`<p id="who">`+who+`</p><script>
document.body.insertAdjacentHTML('beforeend', '<p id="ls">' + (localStorage.getItem('token') || 'none') + '</p>');
</script>`)(w, r)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// pageTimeout is the tests' page limit: twice the 30 s default, because the
// shared CI machine has been seen with a load of 50 on 2 cores.
const pageTimeout = 60 * time.Second

func testCtx(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func decodePNG(t testing.TB, data []byte) image.Image {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("decode PNG (%d bytes, starts %q): %v", len(data), data[:min(8, len(data))], err)
	}
	return img
}

// rgb returns the 8-bit colour at x, y.
func rgb(img image.Image, x, y int) [4]uint8 {
	r, g, b, a := img.At(img.Bounds().Min.X+x, img.Bounds().Min.Y+y).RGBA()
	return [4]uint8{uint8(r >> 8), uint8(g >> 8), uint8(b >> 8), uint8(a >> 8)}
}

func TestScreenshotDimensions(t *testing.T) {
	t.Parallel()
	b := shottest.Shared(t)
	srv := pages(t)
	tests := []struct {
		name          string
		opts          shot.Options
		width, height int
	}{
		{"viewport", shot.Options{Page: shot.Page{Timeout: pageTimeout, URL: srv.URL + "/page", Width: 400, Height: 300}}, 400, 300},
		{"viewport retina doubles", shot.Options{Page: shot.Page{Timeout: pageTimeout, URL: srv.URL + "/page", Width: 400, Height: 300, ScaleFactor: 2}}, 800, 600},
		{"full page without height", shot.Options{Page: shot.Page{Timeout: pageTimeout, URL: srv.URL + "/page", Width: 500}}, 500, 2000},
		{"default width", shot.Options{Page: shot.Page{Timeout: pageTimeout, URL: srv.URL + "/blank", Height: 200}}, 1280, 200},
		{"selector padding", shot.Options{Page: shot.Page{Timeout: pageTimeout, URL: srv.URL + "/page"}, Selectors: []string{"#box"}, Padding: 10}, 220, 120},
		{"selector padding retina", shot.Options{Page: shot.Page{Timeout: pageTimeout, URL: srv.URL + "/page", ScaleFactor: 2}, Selectors: []string{"#box"}, Padding: 10}, 440, 240},
		// The union of (30,40)-(230,140) and (300,200)-(350,250).
		{"two selectors", shot.Options{Page: shot.Page{Timeout: pageTimeout, URL: srv.URL + "/page"}, Selectors: []string{"#box", "#b2"}}, 320, 210},
		{"selector all", shot.Options{Page: shot.Page{Timeout: pageTimeout, URL: srv.URL + "/page"}, SelectorsAll: []string{".sq"}}, 50, 50},
		{"js selector", shot.Options{Page: shot.Page{Timeout: pageTimeout, URL: srv.URL + "/page"}, JSSelectors: []string{`el.id == "b2"`}, Padding: 5}, 60, 60},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			data, err := b.Screenshot(testCtx(t), tt.opts)
			if err != nil {
				t.Fatalf("Screenshot: %v", err)
			}
			img := decodePNG(t, data)
			if got := img.Bounds().Size(); got.X != tt.width || got.Y != tt.height {
				t.Errorf("image is %dx%d; want %dx%d", got.X, got.Y, tt.width, tt.height)
			}
		})
	}
}

func TestSelectorCropShowsTheElement(t *testing.T) {
	t.Parallel()
	b := shottest.Shared(t)
	srv := pages(t)
	data, err := b.Screenshot(testCtx(t), shot.Options{Page: shot.Page{Timeout: pageTimeout, URL: srv.URL + "/page"}, Selectors: []string{"#box"}, Padding: 10})
	if err != nil {
		t.Fatal(err)
	}
	img := decodePNG(t, data)
	// Inside the padding: the white page. Inside the element: red.
	if got := rgb(img, 2, 2); got != [4]uint8{255, 255, 255, 255} {
		t.Errorf("padding pixel = %v; want white", got)
	}
	if got := rgb(img, 110, 60); got != [4]uint8{255, 0, 0, 255} {
		t.Errorf("element pixel = %v; want red", got)
	}
}

func TestSelectorMatchingNothingFails(t *testing.T) {
	t.Parallel()
	b := shottest.Shared(t)
	srv := pages(t)
	err := shortLimit(t, func(limit time.Duration) error {
		_, err := b.Screenshot(testCtx(t), shot.Options{Page: shot.Page{URL: srv.URL + "/page", Timeout: limit}, Selectors: []string{"#nope"}})
		return err
	})
	if err == nil || !strings.Contains(err.Error(), `selector "#nope" matched no element`) {
		t.Fatalf("err = %v; want selector \"#nope\" matched no element", err)
	}
}

// shortLimit runs a shot that must fail at its time limit, first with a
// short limit. When the page did not even load within it (the error is a
// plain load timeout), the machine is too busy to judge, so it retries
// once with a limit long enough to load.
func shortLimit(t *testing.T, shoot func(limit time.Duration) error) error {
	t.Helper()
	err := shoot(6 * time.Second)
	if err != nil && strings.Contains(err.Error(), "(raise --timeout)") {
		t.Logf("the page did not load within 6 s (%v); retrying with 40 s", err)
		err = shoot(40 * time.Second)
	}
	return err
}

func TestJavaScriptRunsBeforeShot(t *testing.T) {
	t.Parallel()
	b := shottest.Shared(t)
	srv := pages(t)
	data, err := b.Screenshot(testCtx(t), shot.Options{Page: shot.Page{
		Timeout: pageTimeout, URL: srv.URL + "/blank", Width: 100, Height: 100,
		JavaScript: `document.body.style.background = 'rgb(0,0,255)'`,
	}})
	if err != nil {
		t.Fatal(err)
	}
	if got := rgb(decodePNG(t, data), 50, 50); got != [4]uint8{0, 0, 255, 255} {
		t.Errorf("pixel = %v; want the blue the JavaScript painted", got)
	}
	// A returned Promise is awaited before the shot.
	data, err = b.Screenshot(testCtx(t), shot.Options{Page: shot.Page{
		Timeout: pageTimeout, URL: srv.URL + "/blank", Width: 100, Height: 100,
		JavaScript: `new Promise(done => setTimeout(() => { document.body.style.background = 'rgb(255,0,255)'; done(); }, 100))`,
	}})
	if err != nil {
		t.Fatal(err)
	}
	if got := rgb(decodePNG(t, data), 50, 50); got != [4]uint8{255, 0, 255, 255} {
		t.Errorf("pixel = %v; want the magenta the Promise painted", got)
	}
}

func TestJavaScriptErrorFails(t *testing.T) {
	t.Parallel()
	b := shottest.Shared(t)
	srv := pages(t)
	_, err := b.Screenshot(testCtx(t), shot.Options{Page: shot.Page{Timeout: pageTimeout, URL: srv.URL + "/blank", JavaScript: `throw new Error("nope from test")`}})
	if err == nil || !strings.Contains(err.Error(), "nope from test") {
		t.Fatalf("err = %v; want the exception message", err)
	}
}

func TestWaitForWaits(t *testing.T) {
	t.Parallel()
	b := shottest.Shared(t)
	srv := pages(t)
	data, err := b.Screenshot(testCtx(t), shot.Options{Page: shot.Page{
		Timeout: pageTimeout, URL: srv.URL + "/late", Width: 100, Height: 100, WaitFor: `window.ready === true`,
	}})
	if err != nil {
		t.Fatal(err)
	}
	if got := rgb(decodePNG(t, data), 50, 50); got != [4]uint8{0, 255, 0, 255} {
		t.Errorf("pixel = %v; want the green painted after the delay", got)
	}
	html, err := b.HTML(testCtx(t), shot.Page{Timeout: pageTimeout, URL: srv.URL + "/late", WaitFor: `document.querySelector('#late')`}, "#late")
	if err != nil {
		t.Fatal(err)
	}
	if html != `<p id="late">late</p>` {
		t.Errorf("HTML = %q; want the late element", html)
	}
}

func TestWaitForTimesOut(t *testing.T) {
	t.Parallel()
	b := shottest.Shared(t)
	srv := pages(t)
	err := shortLimit(t, func(limit time.Duration) error {
		_, err := b.Screenshot(testCtx(t), shot.Options{Page: shot.Page{URL: srv.URL + "/blank", WaitFor: "false", Timeout: limit}})
		return err
	})
	if err == nil || !strings.Contains(err.Error(), `--wait-for "false" was still false after`) {
		t.Fatalf("err = %v; want a --wait-for timeout", err)
	}
}

func TestJPEGAndTransparentPNG(t *testing.T) {
	t.Parallel()
	b := shottest.Shared(t)
	srv := pages(t)
	data, err := b.Screenshot(testCtx(t), shot.Options{Page: shot.Page{Timeout: pageTimeout, URL: srv.URL + "/page", Width: 320, Height: 240}, Quality: 70})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := jpeg.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("decode JPEG: %v", err)
	}
	if cfg.Width != 320 || cfg.Height != 240 {
		t.Errorf("JPEG is %dx%d; want 320x240", cfg.Width, cfg.Height)
	}

	data, err = b.Screenshot(testCtx(t), shot.Options{Page: shot.Page{Timeout: pageTimeout, URL: srv.URL + "/page", Width: 320, Height: 240}, OmitBackground: true})
	if err != nil {
		t.Fatal(err)
	}
	img := decodePNG(t, data)
	if got := rgb(img, 310, 10); got[3] != 0 {
		t.Errorf("background pixel = %v; want alpha 0", got)
	}
	if got := rgb(img, 100, 60); got != [4]uint8{255, 0, 0, 255} {
		t.Errorf("element pixel = %v; want opaque red", got)
	}
}

func TestLocalFile(t *testing.T) {
	t.Parallel()
	b := shottest.Shared(t)
	path := filepath.Join(t.TempDir(), "report.html")
	if err := os.WriteFile(path, []byte(`<!DOCTYPE html><body style="margin:0"><div id="x" style="width:64px;height:32px;background:#000"></div></body>`), 0o644); err != nil {
		t.Fatal(err)
	}
	data, err := b.Screenshot(testCtx(t), shot.Options{Page: shot.Page{Timeout: pageTimeout, URL: path}, Selectors: []string{"#x"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := decodePNG(t, data).Bounds().Size(); got != (image.Point{64, 32}) {
		t.Errorf("image is %v; want 64x32", got)
	}
}

func TestPDF(t *testing.T) {
	t.Parallel()
	b := shottest.Shared(t)
	srv := pages(t)
	for _, o := range []shot.PDFOptions{
		{Page: shot.Page{Timeout: pageTimeout, URL: srv.URL + "/page"}},
		{Page: shot.Page{Timeout: pageTimeout, URL: srv.URL + "/page"}, Landscape: true, Scale: 0.5, Format: "A4", PrintBackground: true},
	} {
		data, err := b.PDF(testCtx(t), o)
		if err != nil {
			t.Fatalf("PDF(%+v): %v", o, err)
		}
		if !bytes.HasPrefix(data, []byte("%PDF-")) {
			t.Errorf("PDF starts %q; want %%PDF-", data[:min(8, len(data))])
		}
	}
	o := shot.PDFOptions{Page: shot.Page{Timeout: pageTimeout, URL: srv.URL}, Scale: 3}
	if _, err := b.PDF(testCtx(t), o); err == nil || !strings.Contains(err.Error(), "--scale 3") {
		t.Errorf("PDF with scale 3: err = %v; want a --scale error", err)
	}
}

func TestHTMLHasScriptContent(t *testing.T) {
	t.Parallel()
	b := shottest.Shared(t)
	srv := pages(t)
	html, err := b.HTML(testCtx(t), shot.Page{Timeout: pageTimeout, URL: srv.URL + "/dom"}, "")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(html, "<!DOCTYPE html><html>") || !strings.Contains(html, `<p id="added">added by script</p>`) {
		t.Errorf("HTML = %q; want the doctype and the script-added paragraph", html)
	}
	part, err := b.HTML(testCtx(t), shot.Page{Timeout: pageTimeout, URL: srv.URL + "/dom"}, "#main")
	if err != nil {
		t.Fatal(err)
	}
	if want := `<main id="main"><p id="added">added by script</p></main>`; part != want {
		t.Errorf("HTML(#main) = %q; want %q", part, want)
	}
	if _, err := b.HTML(testCtx(t), shot.Page{Timeout: pageTimeout, URL: srv.URL + "/dom"}, "#nope"); err == nil {
		t.Error("HTML(#nope) succeeded; want an error")
	}
}

func TestEvaluate(t *testing.T) {
	t.Parallel()
	b := shottest.Shared(t)
	srv := pages(t)
	tests := []struct{ expr, want string }{
		// An object, from an awaited Promise, keeps its key order.
		{`new Promise(done => setTimeout(() => done({title: document.title, n: document.querySelectorAll('div').length}), 50))`, `{"title":"Test page","n":3}`},
		{`undefined`, `null`},
	}
	for _, tt := range tests {
		got, err := b.Evaluate(testCtx(t), shot.Page{Timeout: pageTimeout, URL: srv.URL + "/page"}, tt.expr)
		if err != nil {
			t.Fatalf("Evaluate(%q): %v", tt.expr, err)
		}
		if string(got) != tt.want {
			t.Errorf("Evaluate(%q) = %s; want %s", tt.expr, got, tt.want)
		}
	}
}

func TestAccessibility(t *testing.T) {
	t.Parallel()
	b := shottest.Shared(t)
	srv := pages(t)
	raw, err := b.Accessibility(testCtx(t), shot.Page{Timeout: pageTimeout, URL: srv.URL + "/page"})
	if err != nil {
		t.Fatal(err)
	}
	var tree struct {
		Role     string `json:"role"`
		Name     string `json:"name"`
		Children []struct {
			Role  string `json:"role"`
			Name  string `json:"name"`
			Level int    `json:"level"`
		} `json:"children"`
	}
	if err := json.Unmarshal(raw, &tree); err != nil {
		t.Fatalf("decode %s: %v", raw, err)
	}
	if tree.Name != "Test page" || len(tree.Children) == 0 || tree.Children[0].Role != "heading" ||
		tree.Children[0].Name != "Heading one" || tree.Children[0].Level != 1 {
		t.Errorf("tree = %s; want the page named \"Test page\" with heading \"Heading one\" level 1", raw)
	}
}

func TestFailOnHTTPError(t *testing.T) {
	t.Parallel()
	b := shottest.Shared(t)
	srv := pages(t)
	// Without --fail the error page is captured, as shot-scraper does.
	if _, err := b.Screenshot(testCtx(t), shot.Options{Page: shot.Page{Timeout: pageTimeout, URL: srv.URL + "/missing", Height: 100}}); err != nil {
		t.Fatalf("shot of a 404 page: %v", err)
	}
	_, err := b.Screenshot(testCtx(t), shot.Options{Page: shot.Page{Timeout: pageTimeout, URL: srv.URL + "/missing", FailOnHTTPError: true}})
	var he *shot.HTTPError
	if !errors.As(err, &he) || he.Status != 404 {
		t.Fatalf("err = %v; want an HTTPError with status 404", err)
	}
}

func TestFailOnJSError(t *testing.T) {
	t.Parallel()
	b := shottest.Shared(t)
	srv := pages(t)
	if _, err := b.Screenshot(testCtx(t), shot.Options{Page: shot.Page{Timeout: pageTimeout, URL: srv.URL + "/throws", Height: 100}}); err != nil {
		t.Fatalf("shot without FailOnJSError: %v", err)
	}
	_, err := b.Screenshot(testCtx(t), shot.Options{Page: shot.Page{Timeout: pageTimeout, URL: srv.URL + "/throws", Height: 100, FailOnJSError: true}})
	if err == nil || !strings.Contains(err.Error(), "boom from page") {
		t.Fatalf("err = %v; want the page's uncaught error", err)
	}
}

func TestAuthSaveAndReuse(t *testing.T) {
	t.Parallel()
	b := shottest.Shared(t)
	srv := pages(t)
	state, err := b.CaptureAuth(testCtx(t), shot.Page{Timeout: pageTimeout, URL: srv.URL + "/login"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "auth.json")
	if err := shot.SaveAuth(path, state); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("auth file mode = %v (%v); want 0600", st.Mode().Perm(), err)
	}
	loaded, err := shot.LoadAuth(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(loaded.Cookies) != 1 || loaded.Cookies[0].Name != "session" || !loaded.Cookies[0].HTTPOnly ||
		len(loaded.Origins) != 1 || loaded.Origins[0].Origin != srv.URL || len(loaded.Origins[0].LocalStorage) != 1 ||
		loaded.Origins[0].LocalStorage[0] != (shot.AuthNameValue{Name: "token", Value: "t0k"}) {
		data, _ := os.ReadFile(path)
		t.Fatalf("auth file = %s; want the session cookie and the token for %s", data, srv.URL)
	}

	got, err := b.Evaluate(testCtx(t), shot.Page{Timeout: pageTimeout, URL: srv.URL + "/private", Auth: loaded},
		`document.querySelector('#who').textContent + ' ' + document.querySelector('#ls').textContent`)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != `"welcome t0k"` {
		t.Errorf("with --auth the page says %s; want \"welcome t0k\"", got)
	}
	// Each shot has its own browser context: nothing leaks into the next.
	got, err = b.Evaluate(testCtx(t), shot.Page{Timeout: pageTimeout, URL: srv.URL + "/private"},
		`document.querySelector('#who').textContent + ' ' + document.querySelector('#ls').textContent`)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != `"anonymous none"` {
		t.Errorf("without --auth the page says %s; want \"anonymous none\"", got)
	}
}

func TestAuthConfigWaitsForEnterThenSaves(t *testing.T) {
	t.Parallel()
	srv := pages(t)
	out := filepath.Join(t.TempDir(), "auth.json")
	var stderr bytes.Buffer
	c := shot.AuthConfig{
		Use:         shottest.Shared(t), // headless: no display in tests
		Page:        shot.Page{Timeout: pageTimeout, URL: srv.URL + "/login"},
		Output:      out,
		Interactive: true,
	}
	if err := c.Run(testCtx(t), shot.IO{Stdin: strings.NewReader("\n"), Stdout: &bytes.Buffer{}, Stderr: &stderr}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stderr.String(), "hit <enter>") || !strings.Contains(stderr.String(), "Saved 1 cookie(s) and 1 origin(s)") {
		t.Errorf("stderr = %q; want the prompt and the saved counts", stderr.String())
	}
	a, err := shot.LoadAuth(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Cookies) != 1 || a.Cookies[0].Value != "s3cret" {
		t.Errorf("saved cookies = %+v; want session=s3cret", a.Cookies)
	}
}

// closedPort returns a loopback URL nothing listens on.
func closedPort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr + "/"
}

func TestMultiReportsBadEntryAndTakesTheRest(t *testing.T) {
	t.Parallel()
	b := shottest.Shared(t)
	srv := pages(t)
	dir := t.TempDir()
	yaml := fmt.Sprintf(`- url: %[1]s/page
  output: box.png
  selector: "#box"
  padding: 5
- url: %[2]s
  output: bad.png
- url: %[1]s/page
  output: sub/small.jpg
  width: 300
  height: 200
  quality: 80
- url: %[1]s/dom
  output: dom.pdf
`, srv.URL, closedPort(t))
	shots, err := shot.ParseShots(strings.NewReader(yaml), "shots.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	err = b.RunMulti(testCtx(t), shots, shot.MultiOptions{OutputDir: dir, Log: &log, Defaults: shot.Page{Timeout: pageTimeout}})
	var me *shot.MultiError
	if !errors.As(err, &me) || me.Failed != 1 || me.Total != 4 {
		t.Fatalf("RunMulti err = %v; want 1 of 4 failed", err)
	}
	if !strings.Contains(log.String(), "shot 2 (line 5, "+shots[1].URL+") failed") {
		t.Errorf("log = %q; want the failure of shot 2 at line 5", log.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "bad.png")); !os.IsNotExist(err) {
		t.Errorf("bad.png exists (err %v); want no file for the failed shot", err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "box.png"))
	if err != nil {
		t.Fatal(err)
	}
	if got := decodePNG(t, data).Bounds().Size(); got != (image.Point{210, 110}) {
		t.Errorf("box.png is %v; want 210x110", got)
	}
	f, err := os.Open(filepath.Join(dir, "sub", "small.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if cfg, err := jpeg.DecodeConfig(f); err != nil || cfg.Width != 300 || cfg.Height != 200 {
		t.Errorf("small.jpg: %+v, %v; want a 300x200 JPEG", cfg, err)
	}
	if data, err := os.ReadFile(filepath.Join(dir, "dom.pdf")); err != nil || !bytes.HasPrefix(data, []byte("%PDF")) {
		t.Errorf("dom.pdf: %v; want a PDF", err)
	}

	// --no-clobber skips what exists; --output limits the run.
	log.Reset()
	err = b.RunMulti(testCtx(t), shots, shot.MultiOptions{OutputDir: dir, Log: &log, Defaults: shot.Page{Timeout: pageTimeout}, NoClobber: true, Only: []string{"box.png", "sub/small.jpg"}})
	if err != nil {
		t.Fatalf("second run: %v", err)
	}
	if n := strings.Count(log.String(), "skipping"); n != 2 {
		t.Errorf("log = %q; want 2 skipped shots", log.String())
	}
}

func TestParseShots(t *testing.T) {
	tests := []struct {
		name, yaml, wantErr string
		want                int
	}{
		{"list", "- url: http://x/\n- url: http://y/\n  output: y.png\n", "", 2},
		{"empty", "", "", 0},
		{"not a list", "url: http://x/\n", "shots.yaml:1: want a list of shots", 0},
		{"unknown key", "- url: http://x/\n- url: http://y/\n  sever: python -m http.server\n", `shots.yaml:3: shot 2: unknown key "sever"`, 0},
		{"bad type", "- url: http://x/\n  width: wide\n", "shots.yaml:1: shot 1:", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			shots, err := shot.ParseShots(strings.NewReader(tt.yaml), "shots.yaml")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseShots(%q) err = %v; want %q", tt.yaml, err, tt.wantErr)
				}
				return
			}
			if err != nil || len(shots) != tt.want {
				t.Fatalf("ParseShots(%q) = %d shots, %v; want %d", tt.yaml, len(shots), err, tt.want)
			}
		})
	}
}

func TestResolveURL(t *testing.T) {
	file := filepath.Join(t.TempDir(), "a b.html")
	if err := os.WriteFile(file, []byte("<p>x"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ in, want string }{
		{"http://127.0.0.1:8001/x", "http://127.0.0.1:8001/x"},
		{"localhost:8001/db", "http://localhost:8001/db"},
		{"example.com", "http://example.com"},
		{file, "file://" + filepath.ToSlash(file[:len(file)-len("a b.html")]) + "a%20b.html"},
	}
	for _, tt := range tests {
		if got, err := shot.ResolveURL(tt.in); err != nil || got != tt.want {
			t.Errorf("ResolveURL(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	if _, err := shot.ResolveURL("ftp://x/"); err == nil {
		t.Error("ResolveURL(ftp://x/) succeeded; want an error")
	}
}

func TestFilenameForURL(t *testing.T) {
	taken := map[string]bool{"localhost8001-db-t.png": true, "localhost8001-db-t.1.png": true}
	tests := []struct {
		url, ext string
		exists   func(string) bool
		want     string
	}{
		{"https://datasette.io/", "png", nil, "datasette-io.png"},
		{"http://localhost:8001/db/t", "jpg", nil, "localhost8001-db-t.jpg"},
		{"http://localhost:8001/db/t", "png", func(n string) bool { return taken[n] }, "localhost8001-db-t.2.png"},
		{"file:///tmp/lode-report/index.html", "png", nil, "tmp-lode-report-index-html.png"},
	}
	for _, tt := range tests {
		if got := shot.FilenameForURL(tt.url, tt.ext, tt.exists); got != tt.want {
			t.Errorf("FilenameForURL(%q, %q) = %q; want %q", tt.url, tt.ext, got, tt.want)
		}
	}
}

func TestOptionsValidate(t *testing.T) {
	tests := []struct {
		name string
		o    shot.Options
		want string
	}{
		{"quality with png", shot.Options{Page: shot.Page{Timeout: pageTimeout, URL: "x"}, Format: shot.FormatPNG, Quality: 80}, "--quality applies to JPEG only"},
		{"transparent jpeg", shot.Options{Page: shot.Page{Timeout: pageTimeout, URL: "x"}, Format: shot.FormatJPEG, OmitBackground: true}, "--omit-background needs PNG"},
		{"quality range", shot.Options{Page: shot.Page{Timeout: pageTimeout, URL: "x"}, Quality: 101}, "--quality 101"},
		{"no url", shot.Options{}, "no URL given"},
	}
	for _, tt := range tests {
		if err := tt.o.Validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: Validate() = %v; want %q", tt.name, err, tt.want)
		}
	}
}

func TestShotConfigWritesStdout(t *testing.T) {
	t.Parallel()
	srv := pages(t)
	var stdout, stderr bytes.Buffer
	c := shot.ShotConfig{
		Use:     shottest.Shared(t),
		Options: shot.Options{Page: shot.Page{Timeout: pageTimeout, URL: srv.URL + "/page", Width: 200, Height: 150}},
		Output:  "-",
	}
	if err := c.Run(testCtx(t), shot.IO{Stdout: &stdout, Stderr: &stderr}); err != nil {
		t.Fatal(err)
	}
	if got := decodePNG(t, stdout.Bytes()).Bounds().Size(); got != (image.Point{200, 150}) {
		t.Errorf("stdout image is %v; want 200x150", got)
	}
	if stderr.Len() != 0 {
		t.Errorf("stderr = %q; want nothing when writing to stdout", stderr.String())
	}
}

func TestMissingBrowserSaysHowToInstall(t *testing.T) {
	c := shot.ShotConfig{
		Browser: shot.BrowserOptions{ExecPath: filepath.Join(t.TempDir(), "no-chromium")},
		Options: shot.Options{Page: shot.Page{Timeout: pageTimeout, URL: "http://127.0.0.1:1/"}},
		Output:  filepath.Join(t.TempDir(), "x.png"),
	}
	err := c.Run(testCtx(t), shot.IO{Stdout: &bytes.Buffer{}, Stderr: &bytes.Buffer{}})
	if err == nil || !strings.Contains(err.Error(), "apt-get install chromium") {
		t.Fatalf("err = %v; want a message saying apt-get install chromium", err)
	}
	t.Setenv("PATH", t.TempDir())
	if _, err := shot.FindBrowser(""); !errors.Is(err, shot.ErrNoBrowser) {
		t.Fatalf("FindBrowser with an empty PATH: err = %v; want ErrNoBrowser", err)
	}
}

func BenchmarkScreenshot(b *testing.B) {
	br := shottest.Shared(b)
	srv := pages(b)
	for _, bc := range []struct {
		name string
		o    shot.Options
	}{
		{"viewport", shot.Options{Page: shot.Page{Timeout: pageTimeout, URL: srv.URL + "/page", Width: 800, Height: 600}}},
		{"fullpage", shot.Options{Page: shot.Page{Timeout: pageTimeout, URL: srv.URL + "/page", Width: 800}}},
		{"selector", shot.Options{Page: shot.Page{Timeout: pageTimeout, URL: srv.URL + "/page"}, Selectors: []string{"#box"}}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := br.Screenshot(context.Background(), bc.o); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
