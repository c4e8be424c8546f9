package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"lode/internal/shot/shottest"
	"lode/internal/sqlitedb"
)

// TestReadmeExamples runs the README's examples as a new user would, in a
// temp folder with a freshly built `lode` on PATH: every line of the command blocks of "Serving databases",
// "Writing data", "Load testing" and "Screenshots" runs in bash as written,
// so that a README change that breaks an example fails here. Only these
// changes are made, all mechanical: the ports 8001 and 8002 become free
// ports (a `lode serve` line without --port gets one); load durations are
// cut to 1 s (-d, --rate steps) to keep the test short; `lode serve` lines
// run in the background until the next one or the end of their block; a
// curl fails on an HTTP error (--fail-with-body). Files the README takes
// for granted are provided: fixtures.db (the repository's copy, as the
// README says), the other databases its serve lines name as copies of it, the
// scenario and people.csv the load section shows, a bench report, a
// shots.yaml and an auth.json. `lode shot auth` (interactive) is the one
// line not run.
func TestReadmeExamples(t *testing.T) {
	if testing.Short() {
		t.Skip("runs processes for a minute")
	}
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl is not installed (.ci/run installs it)")
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	sections := readmeSections(string(readme))
	r := newReadmeRunner(t)
	const fixtures = "../../internal/server/testdata/datasette/fixtures.db"
	r.provide("fixtures.db", fixtures)

	// Serving databases: each serve line starts and answers; the endpoint
	// lines run against the first one.
	serving := sections.get(t, "Serving databases")
	blocks := serving.commandBlocks()
	if len(blocks) < 2 {
		t.Fatalf("Serving databases: %d command blocks; want the serve lines and the endpoints", len(blocks))
	}
	for _, line := range blocks[0] {
		// The other databases the lines name are copies of fixtures.db,
		// except those --create makes.
		for _, f := range regexp.MustCompile(`\S+\.db\b`).FindAllString(line, -1) {
			if _, err := os.Stat(filepath.Join(r.dir, f)); err != nil && !strings.Contains(line, "--create") {
				r.provide(f, fixtures)
			}
		}
		r.serve(line).stop()
	}
	srv := r.serve(blocks[0][0])
	for _, line := range blocks[1] {
		out := r.run(line, 0)
		if isJSONURL(line) && !json.Valid([]byte(out)) {
			t.Errorf("%s: not JSON:\n%s", line, clip(out))
		}
	}
	if _, err := os.Stat(filepath.Join(r.dir, "new.db")); err != nil {
		t.Errorf("lode serve new.db --create made no file: %v", err)
	}

	// Writing data: the whole flow, from a database that does not exist.
	write := sections.get(t, "Writing data").commandBlocks()[0]
	var last string
	for _, line := range write {
		if isServe(line) {
			srv.stop()
			srv = r.serve(line)
			continue
		}
		last = r.run(line, 0)
	}
	srv.stop()
	var docs []map[string]any
	if err := json.Unmarshal([]byte(last), &docs); err != nil || len(docs) != 2 || docs[0]["title"] != "Hello" || docs[1]["title"] != "World" {
		t.Errorf("after the write example, docs = %s (%v); want Hello and World", clip(last), err)
	}

	// Load testing, against the server its prose names, with the
	// scenario it shows.
	loading := sections.get(t, "Load testing (`lode load`)")
	serveCmd := regexp.MustCompile("`(lode serve [^`]+)`").FindStringSubmatch(loading.text)
	if serveCmd == nil {
		t.Fatal("Load testing: no `lode serve ...` command for the examples to run against")
	}
	yamls := loading.blocks("yaml")
	if len(yamls) == 0 {
		t.Fatal("Load testing: no scenario (yaml block)")
	}
	r.write("scenario.yaml", strings.Join(yamls[0], "\n"))
	r.provide("people.csv", "../../internal/loadgen/testdata/people.csv")
	srv = r.serve(serveCmd[1])
	for _, line := range loading.commandBlocks()[0] {
		want := 0
		if strings.Contains(line, "--threshold") || strings.Contains(line, "--require-rate") {
			want = 99 // a verdict on this machine's speed: 0 or 99 both show it works
		}
		r.run(shortLoad(line), want)
	}
	srv.stop()
	for _, f := range []string{"out/run_stats.csv", "out/run_failures.csv", "out/run_stats_history.csv", "out/run_exceptions.csv", "all.json"} {
		if _, err := os.Stat(filepath.Join(r.dir, f)); err != nil {
			t.Errorf("the load examples did not write %s: %v", f, err)
		}
	}
	// The scenario's requests reached what they ask for: no 4xx.
	if b, err := os.ReadFile(filepath.Join(r.dir, "out/run.json")); err != nil {
		t.Error(err)
	} else if m := regexp.MustCompile(`"message": "(4\d\d [^"]*)"`).FindSubmatch(b); m != nil {
		t.Errorf("the README's scenario got %s from lode serve", m[1])
	}

	// Screenshots, if Chromium is there.
	t.Run("Screenshots", func(t *testing.T) {
		shottest.RequireBrowser(t)
		r := r.with(t)
		r.write("lode-report/index.html", `<!DOCTYPE html><title>report</title><svg width="10" height="10"></svg>`)
		r.write("shots.yaml", "- url: http://127.0.0.1:8001/fixtures\n  output: fixtures.png\n")
		r.write("auth.json", `{"cookies": [], "origins": []}`)
		srv := r.serve(blocks[0][0])
		defer srv.stop()
		// One line at a time: each starts its own browser, and browsers
		// side by side on two cores were slower in total.
		var outputs []string
		for _, line := range sections.get(t, "Screenshots (`lode shot`)").commandBlocks()[0] {
			if strings.HasPrefix(line, "lode shot auth ") {
				continue // waits for <enter> in a visible browser window
			}
			out := r.run(line, 0)
			cmdPart, _, _ := strings.Cut(line, " # ")
			if o := regexp.MustCompile(`(?:-o|>) (\S+\.(?:png|jpg|pdf))`).FindStringSubmatch(cmdPart); o != nil {
				outputs = append(outputs, o[1])
			} else if strings.Contains(line, " multi ") {
				outputs = append(outputs, "docs/img/fixtures.png")
			} else if strings.TrimSpace(out) == "" {
				t.Errorf("%s: printed nothing", line)
			}
		}
		magic := map[string]string{".png": "\x89PNG", ".jpg": "\xff\xd8", ".pdf": "%PDF"}
		for _, o := range outputs {
			b, err := os.ReadFile(filepath.Join(r.dir, o))
			if err != nil || !bytes.HasPrefix(b, []byte(magic[filepath.Ext(o)])) {
				t.Errorf("shot output %s: %v, %d bytes; want a %s file", o, err, len(b), filepath.Ext(o))
			}
		}
	})
}

// readmeSection is the text of one "## " section of the README.
type readmeSection struct{ text string }

type readmeDoc map[string]readmeSection

func readmeSections(doc string) readmeDoc {
	out := readmeDoc{}
	for _, part := range regexp.MustCompile(`(?m)^## `).Split(doc, -1)[1:] {
		title, body, _ := strings.Cut(part, "\n")
		out[strings.TrimSpace(title)] = readmeSection{body}
	}
	return out
}

func (d readmeDoc) get(t testing.TB, title string) readmeSection {
	t.Helper()
	s, ok := d[title]
	if !ok {
		t.Fatalf("README has no section %q (renamed? update TestReadmeExamples)", title)
	}
	return s
}

// blocks returns the fenced blocks with the given language ("" for none),
// each as its lines.
func (s readmeSection) blocks(lang string) [][]string {
	var out [][]string
	var cur []string
	in, keep := false, false
	for _, l := range strings.Split(s.text, "\n") {
		switch {
		case strings.HasPrefix(l, "```") && !in:
			in, keep, cur = true, strings.TrimPrefix(l, "```") == lang, nil
		case strings.HasPrefix(l, "```"):
			in = false
			if keep {
				out = append(out, cur)
			}
		case in:
			cur = append(cur, l)
		}
	}
	return out
}

// commandBlocks are the blocks without a language whose lines are
// commands (lode, curl, export), with continued lines joined and blank
// and comment lines dropped.
func (s readmeSection) commandBlocks() [][]string {
	var out [][]string
	for _, b := range s.blocks("") {
		var lines []string
		cont := ""
		for _, l := range b {
			if strings.HasSuffix(l, `\`) {
				cont += strings.TrimSuffix(l, `\`)
				continue
			}
			l = cont + l
			cont = ""
			if t := strings.TrimSpace(l); t != "" && !strings.HasPrefix(t, "#") {
				lines = append(lines, t)
			}
		}
		if len(lines) > 0 && regexp.MustCompile(`^(lode|curl|export) `).MatchString(lines[0]) {
			out = append(out, lines)
		}
	}
	return out
}

func isServe(line string) bool { return strings.HasPrefix(line, "lode serve ") }

// isJSONURL reports whether a curl line fetches a .json URL to stdout.
func isJSONURL(line string) bool {
	cmd, _, _ := strings.Cut(line, " # ")
	m := regexp.MustCompile(`localhost:8001(/[^?' ]*)`).FindStringSubmatch(cmd)
	return m != nil && strings.HasSuffix(m[1], ".json") && !strings.Contains(cmd, " -o ")
}

// shortLoad cuts a lode load line's run to about a second.
func shortLoad(line string) string {
	if !strings.HasPrefix(line, "lode load ") {
		return line
	}
	line = regexp.MustCompile(`(^|\s)-d \S+`).ReplaceAllString(line, "$1-d 1s")
	line = regexp.MustCompile(`--rate \S+`).ReplaceAllStringFunc(line, func(s string) string {
		return regexp.MustCompile(`:\d+[smh]`).ReplaceAllString(s, ":500ms")
	})
	if !regexp.MustCompile(`(^|\s)(-d|-n) `).MatchString(line) && !strings.Contains(line, "--rate") {
		line += " -d 1s"
	}
	return line
}

// readmeRunner runs README lines in its folder.
type readmeRunner struct {
	t     testing.TB
	dir   string
	env   []string
	ports map[string]string // README port → free port
	mu    *sync.Mutex
}

// readmeBinEnv names a lode binary for TestReadmeExamples to use instead
// of building one, to save the link while iterating on the test.
const readmeBinEnv = "LODE_README_BIN"

// buildLode builds the lode binary the README's commands run, as a user's
// go install would (the same sqlite_fts5 tag as this test, no -race: the
// race detector made the examples twice as slow).
func buildLode(t *testing.T, binDir string) string {
	if bin := os.Getenv(readmeBinEnv); bin != "" {
		return bin
	}
	bin := filepath.Join(binDir, "lode-built")
	args := []string{"build", "-o", bin}
	if lib, err := sqlitedb.LibraryInfo(); err == nil && lib.FTS5 {
		args = append(args, "-tags", "sqlite_fts5")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", append(args, "lode/cmd/lode")...).CombinedOutput()
	if err != nil {
		t.Fatalf("go build lode/cmd/lode: %v\n%s", err, out)
	}
	return bin
}

func newReadmeRunner(t *testing.T) *readmeRunner {
	dir := t.TempDir()
	binDir := filepath.Join(dir, ".bin")
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(buildLode(t, binDir), filepath.Join(binDir, "lode")); err != nil {
		t.Fatal(err)
	}
	home := filepath.Join(dir, ".home")
	var env []string
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); k != "LODE_SECRET" && k != "HOME" && k != "XDG_CONFIG_HOME" && k != "PATH" {
			env = append(env, kv)
		}
	}
	env = append(env, "HOME="+home, "XDG_CONFIG_HOME="+filepath.Join(home, ".config"), "PATH="+binDir+":"+os.Getenv("PATH"))
	r := &readmeRunner{t: t, dir: dir, env: env, ports: map[string]string{}, mu: &sync.Mutex{}}
	for _, p := range []string{"8001", "8002"} {
		r.ports[p] = strconv.Itoa(freePort(t))
	}
	return r
}

// with is r for a subtest.
func (r *readmeRunner) with(t testing.TB) *readmeRunner { c := *r; c.t = t; return &c }

func freePort(t testing.TB) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func (r *readmeRunner) local(line string) string {
	for from, to := range r.ports {
		line = strings.ReplaceAll(line, from, to)
	}
	return line
}

func (r *readmeRunner) write(name, content string) {
	r.t.Helper()
	path := filepath.Join(r.dir, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		r.t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(r.local(content)), 0o644); err != nil {
		r.t.Fatal(err)
	}
}

func (r *readmeRunner) provide(name, from string) {
	r.t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		r.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(r.dir, name), b, 0o644); err != nil {
		r.t.Fatal(err)
	}
}

// curlFails makes every curl of a line fail on an HTTP error status.
const curlFails = `curl() { command curl --silent --show-error --fail-with-body "$@"; }` + "\n"

// run runs one line in bash and returns its stdout; the exit status must
// be 0, or want. An "export NAME=..." line keeps NAME for later lines.
func (r *readmeRunner) run(line string, want int) string {
	r.t.Helper()
	script := curlFails + r.local(line)
	export := regexp.MustCompile(`^export (\w+)=`).FindStringSubmatch(line)
	if export != nil {
		script += "\nprintf '%s' \"$" + export[1] + "\""
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", script)
	cmd.Dir, cmd.Env = r.dir, r.env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	r.t.Logf("%5.1fs %s", time.Since(start).Seconds(), line)
	code := 0
	if err != nil {
		code = -1
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
	}
	if code != 0 && code != want {
		r.t.Errorf("README line failed (exit %d): %s\nran: %s\nstdout:\n%s\nstderr:\n%s", code, line, r.local(line), clip(stdout.String()), clip(stderr.String()))
	}
	if export != nil {
		v := stdout.String()
		if v == "" {
			r.t.Errorf("%s: %s is empty", line, export[1])
		}
		r.env = append(r.env, export[1]+"="+v)
		return v
	}
	return stdout.String()
}

// readmeServer is a `lode serve` line running in the background.
type readmeServer struct {
	r       *readmeRunner
	line    string
	cmd     *exec.Cmd
	out     *syncBuffer
	done    chan error
	stopped bool
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// serve starts a `lode serve` line and waits until it answers.
func (r *readmeRunner) serve(line string) *readmeServer {
	r.t.Helper()
	local := r.local(line)
	port := r.ports["8001"]
	if m := regexp.MustCompile(`(?:--port|-p)[ =](\d+)`).FindStringSubmatch(local); m != nil {
		port = m[1]
	} else {
		local = strings.Replace(local, "lode serve ", "lode serve --port "+port+" ", 1)
	}
	cmd := exec.Command("bash", "-c", "exec "+local)
	cmd.Dir, cmd.Env = r.dir, r.env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		r.t.Fatalf("%s: %v", line, err)
	}
	s := &readmeServer{r: r, line: line, cmd: cmd, out: out, done: make(chan error, 1)}
	go func() { s.done <- cmd.Wait() }()
	r.t.Cleanup(s.stop)
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get("http://127.0.0.1:" + port + "/-/versions.json")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s
			}
		}
		select {
		case err := <-s.done:
			s.done <- err
			r.t.Fatalf("README line %q: the server exited (%v):\n%s", line, err, clip(out.String()))
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("README line %q: no answer on port %s within 60s:\n%s", line, port, clip(out.String()))
		}
	}
}

// stop ends the server with SIGTERM (its whole process group after 30 s).
func (s *readmeServer) stop() {
	if s.stopped {
		return
	}
	s.stopped = true
	syscall.Kill(-s.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case err := <-s.done:
		s.done <- err
		if err != nil {
			s.r.t.Errorf("README line %q: exit after SIGTERM: %v\n%s", s.line, err, clip(s.out.String()))
		}
	case <-time.After(30 * time.Second):
		syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.done
		s.r.t.Errorf("README line %q: still running 30s after SIGTERM", s.line)
	}
}

// clip shortens long output for a failure message.
func clip(s string) string {
	if len(s) <= 3000 {
		return s
	}
	return fmt.Sprintf("[... %d bytes]\n%s", len(s)-3000, s[len(s)-3000:])
}
