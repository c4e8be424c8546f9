package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"lode/internal/loadgen"
)

// loadRunCmd runs the command tree in-process and returns stdout, stderr and
// the exit status main would use.
func loadRunCmd(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	root := newRootCmd()
	root.SetArgs(args)
	root.SetOut(&out)
	root.SetErr(&errb)
	err := root.ExecuteContext(context.Background())
	code := 0
	if err != nil {
		code = 1
		var ee *exitError
		if errors.As(err, &ee) {
			code = ee.code
		}
		errb.WriteString(err.Error())
	}
	return out.String(), errb.String(), code
}

func loadOKServer(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"ok":true}`)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestLoadThresholdsExitStatus(t *testing.T) {
	srv := loadOKServer(t)
	out, _, code := loadRunCmd(t, "load", srv.URL, "-c", "2", "-n", "50", "--threshold", "p99<10s", "--threshold", "errors<1%")
	if code != 0 || !strings.Contains(out, "threshold ok   p99<10s") || !strings.Contains(out, "Aggregated") {
		t.Fatalf("passing thresholds: exit %d, output:\n%s", code, out)
	}
	out, errOut, code := loadRunCmd(t, "load", srv.URL, "-c", "2", "-n", "50", "--threshold", "p99<1us", "--threshold", "rps>0")
	if code != 99 || !strings.Contains(out, "threshold FAIL p99<1us") || !strings.Contains(errOut, "threshold failed: p99<1us (actual") || strings.Contains(errOut, "rps>0") {
		t.Fatalf("failing threshold: exit %d, stdout:\n%s\nstderr: %s", code, out, errOut)
	}
}

// TestLoadScenarioBaseURLFlag: --base-url supplies the base URL of a
// scenario file that has none (paths only), and a scenario without one
// fails with a message naming the flag.
func TestLoadScenarioBaseURLFlag(t *testing.T) {
	srv := loadOKServer(t)
	file := filepath.Join(t.TempDir(), "paths.yaml")
	if err := os.WriteFile(file, []byte("requests:\n  - name: one\n    url: /one?i={{.iter}}\n  - path: /two\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := loadRunCmd(t, "load", "-f", file, "--base-url", srv.URL, "-c", "2", "-n", "30", "-q")
	if code != 0 || !strings.Contains(out, "Aggregated") || !strings.Contains(out, "/two") {
		t.Fatalf("--base-url with a scenario lacking base_url: exit %d\nstdout:\n%s\nstderr: %s", code, out, errOut)
	}
	_, errOut, code = loadRunCmd(t, "load", "-f", file, "-n", "1")
	if code != 1 || !strings.Contains(errOut, "no base_url") || !strings.Contains(errOut, "--base-url") {
		t.Fatalf("no base URL at all: exit %d, stderr %q; want exit 1 naming --base-url", code, errOut)
	}
}

func TestLoadRequireRate(t *testing.T) {
	// The first requests are answered (a run where none succeeds exits 1
	// first), the rest held until the end.
	release := make(chan struct{})
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) > 2 {
			<-release
		}
	}))
	defer srv.Close()
	defer close(release)
	out, errOut, code := loadRunCmd(t, "load", srv.URL, "--rate", "100/s", "-d", "200ms", "--max-in-flight", "2", "--graceful-stop", "10ms", "--require-rate")
	if code != 99 || !strings.Contains(out, "target rate NOT ACHIEVED") || !strings.Contains(errOut, "--require-rate: target rate 100.0/s not achieved") {
		t.Fatalf("exit %d, stdout:\n%s\nstderr: %s", code, out, errOut)
	}
}

// TestLoadNoServer: against a port where nothing listens, lode load stops
// after refusedStop instead of running its whole duration, prints what it
// saw, and exits 1 naming the likely cause and the address. The URL has no
// scheme, as lode shot accepts.
func TestLoadNoServer(t *testing.T) {
	ln := httptest.NewUnstartedServer(nil).Listener // a free port, closed below
	addr := ln.Addr().String()
	ln.Close()
	start := time.Now()
	out, errOut, code := loadRunCmd(t, "load", addr+"/fixtures.json", "-c", "2", "-d", "1m")
	took := time.Since(start)
	want := "no request succeeded: connection refused — is the server running at http://" + addr + "/? (every connection was refused for 2s, so the run stopped)"
	if code != 1 || !strings.Contains(errOut, want) || !strings.Contains(out, "connection refused") || !strings.Contains(out, "stopped early") {
		t.Fatalf("exit %d, stdout:\n%s\nstderr: %s\nwant exit 1 and %q", code, out, errOut, want)
	}
	if took > 30*time.Second {
		t.Errorf("a refused run took %s of its 1m duration; want it stopped after about %s", took, refusedStop)
	}
	// A run shorter than the stop still fails when nothing succeeded.
	_, errOut, code = loadRunCmd(t, "load", "http://"+addr+"/", "-n", "5", "--rate", "50/s")
	if code != 1 || !strings.Contains(errOut, "no request succeeded: connection refused") {
		t.Fatalf("open model: exit %d, stderr: %s", code, errOut)
	}
}

// TestLoadAllFailed: a server that answers every request with an error
// is a failed run too, with its error named.
func TestLoadAllFailed(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(srv.Close)
	_, errOut, code := loadRunCmd(t, "load", srv.URL+"/nope", "-c", "2", "-n", "20")
	if code != 1 || !strings.Contains(errOut, "no request succeeded: all 20 failed with 404 404 page not found") {
		t.Fatalf("exit %d, stderr: %s", code, errOut)
	}
	// A status: check that accepts 404 makes them successes.
	sc := filepath.Join(t.TempDir(), "s.yaml")
	os.WriteFile(sc, []byte("base_url: "+srv.URL+"\nrequests:\n  - url: /nope\n    checks: [{status: 404}]\n"), 0o644)
	if _, errOut, code := loadRunCmd(t, "load", "-f", sc, "-c", "2", "-n", "20"); code != 0 {
		t.Fatalf("accepted 404s: exit %d, stderr: %s", code, errOut)
	}
}

// TestLoadOutputFolders: --csv and --json create missing folders before
// the run, and an output that cannot be written stops the run before it
// starts.
func TestLoadOutputFolders(t *testing.T) {
	srv := loadOKServer(t)
	dir := t.TempDir()
	prefix, js := filepath.Join(dir, "out", "deep", "run"), filepath.Join(dir, "json", "run.json")
	if _, errOut, code := loadRunCmd(t, "load", srv.URL, "-c", "1", "-n", "5", "--csv", prefix, "--json", js); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, p := range []string{prefix + "_stats.csv", prefix + "_failures.csv", prefix + "_stats_history.csv", prefix + "_exceptions.csv", js} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("output %s: %v", p, err)
		}
	}
	// Not writable: a file where a folder should be; a folder where the
	// JSON file should be. The server must see no request.
	var hits atomic.Int64
	counting := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	t.Cleanup(counting.Close)
	blocker := filepath.Join(dir, "file")
	os.WriteFile(blocker, nil, 0o644)
	for _, args := range [][]string{{"--csv", filepath.Join(blocker, "run")}, {"--json", dir}} {
		_, errOut, code := loadRunCmd(t, append([]string{"load", counting.URL, "-c", "1", "-n", "5"}, args...)...)
		if code != 1 || !strings.Contains(errOut, "output ") {
			t.Errorf("load %q: exit %d, stderr: %s; want exit 1 with an output error", args, code, errOut)
		}
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the server got %d requests from runs whose output could not be written", n)
	}
}

func TestLoadUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"load"}, "give a URL"},
		{[]string{"load", "http://127.0.0.1:1/", "-f", "x.yaml"}, "not both"},
		{[]string{"load", "http://127.0.0.1:1/", "--rate", "10/s", "-c", "3"}, "exclude each other"},
		{[]string{"load", "http://127.0.0.1:1/", "--rate", "lots"}, "--rate"},
		{[]string{"load", "http://127.0.0.1:1/", "--require-rate"}, "need --rate"},
		{[]string{"load", "http://127.0.0.1:1/", "--threshold", "p99>>1"}, "--threshold"},
		{[]string{"load", "http://192.0.2.1/"}, "--allow-host 192.0.2.1"},
		{[]string{"load", "http://127.0.0.1:1/", "-H", "nocolon"}, `want "Name: value"`},
		{[]string{"report", "merge", "a.json"}, "give -o"},
	}
	for _, tt := range tests {
		_, errOut, code := loadRunCmd(t, tt.args...)
		if code != 1 || !strings.Contains(errOut, tt.want) {
			t.Errorf("lode %s: exit %d, stderr %q; want exit 1 mentioning %q", strings.Join(tt.args, " "), code, errOut, tt.want)
		}
	}
}

func TestReportMerge(t *testing.T) {
	srv := loadOKServer(t)
	dir := t.TempDir()
	a, b, all := filepath.Join(dir, "a.json"), filepath.Join(dir, "b.json"), filepath.Join(dir, "all.json")
	for _, p := range []string{a, b} {
		if _, errOut, code := loadRunCmd(t, "load", srv.URL, "-c", "2", "-n", "200", "--json", p, "--csv", p); code != 0 {
			t.Fatalf("load: exit %d: %s", code, errOut)
		}
	}
	out, errOut, code := loadRunCmd(t, "report", "merge", a, b, "-o", all)
	if code != 0 || !strings.Contains(out, "merged from 2 runs") {
		t.Fatalf("merge: exit %d, stdout:\n%s\nstderr: %s", code, out, errOut)
	}
	ra, _ := loadgen.ReadJSON(a)
	rb, _ := loadgen.ReadJSON(b)
	m, err := loadgen.ReadJSON(all)
	if err != nil {
		t.Fatal(err)
	}
	want := ra.Total.Latency.Clone()
	want.Merge(rb.Total.Latency)
	if m.Total.Count != 400 || !m.Total.Latency.Equal(want) || m.Total.P99 != want.Percentile(99) {
		t.Fatalf("merged count %d p99 %v; want 400 and p99 %v of the combined histogram", m.Total.Count, m.Total.P99, want.Percentile(99))
	}
}

// TestLoadHelperProcess is not a test: TestLoadCtrlC runs the test binary
// as a lode process through it, so that a real SIGINT reaches main's
// signal handling.
func TestLoadHelperProcess(t *testing.T) {
	if os.Getenv("LODE_LOAD_HELPER") != "1" {
		t.Skip("helper process for TestLoadCtrlC")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := newRootCmd()
	root.SetArgs(strings.Split(os.Getenv("LODE_ARGS"), "\x1f"))
	err := root.ExecuteContext(ctx)
	var ee *exitError
	switch {
	case errors.As(err, &ee):
		os.Stderr.WriteString("lode: " + ee.msg + "\n")
		os.Exit(ee.code)
	case err != nil:
		os.Stderr.WriteString("lode: " + err.Error() + "\n")
		os.Exit(1)
	}
	os.Exit(0)
}

func TestLoadCtrlCPrintsPartialResults(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		io.WriteString(w, "ok")
	}))
	defer srv.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^TestLoadHelperProcess$")
	cmd.Env = append(os.Environ(), "LODE_LOAD_HELPER=1",
		"LODE_ARGS="+strings.Join([]string{"load", srv.URL, "-c", "2", "-d", "2m"}, "\x1f"))
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for n.Load() < 50 {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("the load process sent only %d requests in 30 s", n.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	var xe *exec.ExitError
	if !errors.As(err, &xe) || xe.ExitCode() != 130 {
		t.Fatalf("exit: %v; want status 130\nstdout:\n%s\nstderr:\n%s", err, out.String(), errOut.String())
	}
	if !strings.Contains(out.String(), "Aggregated") || !strings.Contains(out.String(), "run interrupted: partial results") ||
		!strings.Contains(errOut.String(), "interrupted: the results above are partial") {
		t.Fatalf("stdout:\n%s\nstderr:\n%s", out.String(), errOut.String())
	}
}
