package main

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
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

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"lode/internal/auth"
	"lode/internal/prefork"
)

// serveProc is `lode serve` run as a real process through
// TestServeHelperProcess.
type serveProc struct {
	cmd    *exec.Cmd
	base   string // http://127.0.0.1:PORT
	exited chan error
	mu     sync.Mutex
	stdout []string
	stderr strings.Builder
}

func startServe(t *testing.T, args ...string) *serveProc {
	t.Helper()
	p := &serveProc{exited: make(chan error, 1)}
	p.cmd = exec.Command(os.Args[0], "-test.run=^TestServeHelperProcess$")
	p.cmd.Env = append(os.Environ(), "LODE_SERVE_HELPER=1", "LODE_ARGS="+strings.Join(append([]string{"serve"}, args...), "\x1f"))
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	urlRE := regexp.MustCompile(`url=(http://\S+)/`)
	found := make(chan string, 1)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.mu.Lock()
			p.stderr.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
			if m := urlRE.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
		}
	}()
	go func() {
		defer wg.Done()
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.mu.Lock()
			p.stdout = append(p.stdout, sc.Text())
			p.mu.Unlock()
		}
	}()
	go func() { wg.Wait(); p.exited <- p.cmd.Wait() }()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-p.exited:
			case <-time.After(30 * time.Second):
				_ = p.cmd.Process.Kill()
			}
		}
	})
	select {
	case p.base = <-found:
	case err := <-p.exited:
		t.Fatalf("lode serve exited: %v\n%s", err, p.log())
	case <-time.After(30 * time.Second):
		t.Fatalf("no serving line within 30s:\n%s", p.log())
	}
	return p
}

func (p *serveProc) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

func (p *serveProc) stdoutLines() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.stdout...)
}

var metricsClient = &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

func (p *serveProc) get(t *testing.T, path string) (int, string, http.Header) {
	t.Helper()
	res, err := metricsClient.Get(p.base + path)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b), res.Header
}

func (p *serveProc) scrape(t *testing.T) (string, map[string]*dto.MetricFamily) {
	t.Helper()
	code, body, _ := p.get(t, "/-/metrics")
	if code != 200 {
		t.Fatalf("GET /-/metrics = %d: %s", code, body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse /-/metrics: %v", err)
	}
	return body, mfs
}

// sum adds up the series of name whose labels include want ("k=v"):
// counter and gauge values, histogram counts (or sums with histSum).
func sum(mfs map[string]*dto.MetricFamily, name string, histSum bool, want ...string) float64 {
	var total float64
	mf := mfs[name]
	if mf == nil {
		return 0
	}
	for _, m := range mf.Metric {
		have := map[string]string{}
		for _, l := range m.Label {
			have[l.GetName()] = l.GetValue()
		}
		ok := true
		for _, kv := range want {
			k, v, _ := strings.Cut(kv, "=")
			ok = ok && have[k] == v
		}
		if !ok {
			continue
		}
		switch {
		case m.Counter != nil:
			total += m.Counter.GetValue()
		case m.Gauge != nil:
			total += m.Gauge.GetValue()
		case m.Histogram != nil && histSum:
			total += m.Histogram.GetSampleSum()
		case m.Histogram != nil:
			total += float64(m.Histogram.GetSampleCount())
		}
	}
	return total
}

func (p *serveProc) waitMetrics(t *testing.T, what string, cond func(map[string]*dto.MetricFamily) bool) (string, map[string]*dto.MetricFamily) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		text, mfs := p.scrape(t)
		if cond(mfs) {
			return text, mfs
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s within 30s; last scrape:\n%s\nserver log:\n%s", what, text, p.log())
		}
		time.Sleep(50 * time.Millisecond) // poll interval
	}
}

func writeMetricsDB(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "things.db")
	db, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`create table things (id integer primary key, name text); insert into things (name) values ('a'), ('b')`); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestServeMetricsWorkers runs `lode serve --workers 2` and checks that
// one scrape of the public port sees both workers (each series labelled
// worker="1" or "2") and the master's worker metrics, that counters move
// as requests are made — table reads, inserts (the batch sizes add up to
// the requests), a lock error, a worker restart — that promtool accepts
// the merged scrape, and that the access log file holds one JSON line per
// request from both workers.
func TestServeMetricsWorkers(t *testing.T) {
	dbPath := writeMetricsDB(t)
	logPath := filepath.Join(t.TempDir(), "access.log")
	p := startServe(t, dbPath, "--port", "0", "--workers", "2", "--root", "--secret", "s3cret",
		"--busy-timeout", "300ms", "--worker-timeout", "10s",
		"--access-log", logPath, "--access-log-format", "json")
	_, mfs := p.waitMetrics(t, "both workers", func(m map[string]*dto.MetricFamily) bool {
		return sum(m, "lode_worker_up", false) == 2 && sum(m, "lode_workers", false, "state=idle") == 2
	})
	for _, w := range []string{"1", "2"} {
		if sum(mfs, "lode_info", false, "worker="+w) != 1 || sum(mfs, "process_resident_memory_bytes", false, "worker="+w) == 0 {
			t.Errorf("worker %s's own series missing from the scrape", w)
		}
	}
	if sum(mfs, "lode_workers_target", false) != 2 {
		t.Errorf("lode_workers_target = %v; want 2", sum(mfs, "lode_workers_target", false))
	}

	// Table reads until both workers answered: every one is counted once,
	// whichever worker served it.
	pids := map[string]bool{}
	reads := 0
	for len(pids) < 2 && reads < 400 {
		code, body, h := p.get(t, "/things/things.json")
		if code != 200 {
			t.Fatalf("GET things.json = %d %s", code, body)
		}
		pids[h.Get(prefork.PidHeader)] = true
		reads++
	}
	if len(pids) < 2 {
		t.Fatalf("one worker answered all %d reads", reads)
	}
	p.waitMetrics(t, fmt.Sprintf("%d table reads", reads), func(m map[string]*dto.MetricFamily) bool {
		return sum(m, "lode_http_requests_total", false, "route=table", "status=2xx") == float64(reads)
	})

	tok := rootToken(t, "s3cret")
	const inserts = 8
	var wg sync.WaitGroup
	for i := range inserts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if code, body := postJSON(t, p.base+"/things/things/-/insert", tok, fmt.Sprintf(`{"row": {"name": "n%d"}}`, i)); code != 201 {
				t.Errorf("insert = %d %s", code, body)
			}
		}()
	}
	wg.Wait()
	p.waitMetrics(t, "the inserts' batches", func(m map[string]*dto.MetricFamily) bool {
		// Each insert is in exactly one transaction of one worker's writer.
		return sum(m, "lode_sqlite_commit_batch_size", true, "db=things") == inserts &&
			sum(m, "lode_http_requests_total", false, "route=insert", "status=2xx") == inserts
	})

	// Another connection holds the write lock past the busy timeout.
	lock, err := sql.Open("sqlite3", dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	conn, err := lock.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(context.Background(), "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	code, body := postJSON(t, p.base+"/things/things/-/insert", tok, `{"row": {"name": "locked"}}`)
	_, _ = conn.ExecContext(context.Background(), "ROLLBACK")
	conn.Close()
	if code != 503 || !strings.Contains(body, "SQLITE_BUSY") {
		t.Fatalf("insert under a held lock = %d %s; want 503 SQLITE_BUSY", code, body)
	}
	p.waitMetrics(t, "the lock error", func(m map[string]*dto.MetricFamily) bool {
		return sum(m, "lode_sqlite_lock_errors_total", false, "db=things", "code=SQLITE_BUSY") == 1 &&
			sum(m, "lode_sqlite_lock_wait_sleeps_total", false, "db=things") > 0
	})

	// A worker dies: the master restarts it and counts the restart.
	_, stBody, _ := p.get(t, "/-/workers.json")
	var st prefork.Status
	if err := json.Unmarshal([]byte(stBody), &st); err != nil || len(st.Workers) != 2 {
		t.Fatalf("/-/workers.json: %v %s", err, stBody)
	}
	victim := st.Workers[0]
	if err := syscall.Kill(victim.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	text, mfs := p.waitMetrics(t, "the restart", func(m map[string]*dto.MetricFamily) bool {
		return sum(m, "lode_worker_restarts_total", false, "worker="+strconv.Itoa(victim.ID), "cause=exit") == 1 &&
			sum(m, "lode_worker_up", false) == 2
	})
	if promtool, err := exec.LookPath("promtool"); err == nil {
		cmd := exec.Command(promtool, "check", "metrics")
		cmd.Stdin = strings.NewReader(text)
		if out, err := cmd.CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) > 0 {
			t.Errorf("promtool check metrics on the workers' scrape: %v\n%s", err, out)
		}
	} else if os.Getenv("LODE_REQUIRE_PROMTOOL") != "" {
		t.Error("promtool not found (apt-get install prometheus)")
	} else {
		t.Log("promtool not found (apt-get install prometheus): merged scrape not checked by it")
	}
	if sum(mfs, "lode_worker_restarts_total", false) != 1 {
		t.Errorf("restarts = %v; want only the one", sum(mfs, "lode_worker_restarts_total", false))
	}

	// The access log: one JSON line per request, from both workers.
	raw, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	logPids := map[int]int{}
	byRoute := map[string]int{}
	for _, l := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		var e struct {
			PID    int    `json:"pid"`
			Route  string `json:"route"`
			Status int    `json:"status"`
			Actor  any    `json:"actor"`
		}
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("access log line %q: %v", l, err)
		}
		if strings.Contains(l, tok) {
			t.Errorf("access log line holds the token: %s", l)
		}
		logPids[e.PID]++
		byRoute[e.Route]++
		if e.Route == "insert" && e.Actor != "root" {
			t.Errorf("insert logged with actor %v; want root", e.Actor)
		}
	}
	if byRoute["table"] != reads || byRoute["insert"] != inserts+1 {
		t.Errorf("access log lines by route = %v; want %d table, %d insert", byRoute, reads, inserts+1)
	}
	for pid := range pids {
		n, _ := strconv.Atoi(pid)
		if logPids[n] == 0 {
			t.Errorf("worker pid %d wrote no access log line (lines by pid: %v)", n, logPids)
		}
	}
}

// With --access-log - the workers write the access log to the master's
// standard output unprefixed, one parseable combined line per request.
func TestServeAccessLogStdoutWorkers(t *testing.T) {
	dbPath := writeMetricsDB(t)
	p := startServe(t, dbPath, "--port", "0", "--workers", "2", "--access-log", "-")
	const n = 6
	for range n {
		if code, body, _ := p.get(t, "/things/things/1.json"); code != 200 {
			t.Fatalf("GET row = %d %s", code, body)
		}
	}
	combined := regexp.MustCompile(`^127\.0\.0\.1 - - \[[^\]]+\] "GET /things/things/1\.json HTTP/1\.1" 200 \d+ "-" "Go-http-client/1\.1" \d+ \d+$`)
	deadline := time.Now().Add(10 * time.Second)
	for {
		var rows []string
		for _, l := range p.stdoutLines() {
			if strings.Contains(l, "/things/things/1.json") {
				rows = append(rows, l)
			}
		}
		if len(rows) == n {
			for _, l := range rows {
				if !combined.MatchString(l) {
					t.Errorf("stdout line %q is not a combined access log line", l)
				}
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d access log lines on stdout; want %d:\n%s", len(rows), n, strings.Join(p.stdoutLines(), "\n"))
		}
		time.Sleep(20 * time.Millisecond) // poll interval
	}
}

func postJSON(t *testing.T, url, token, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := metricsClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// rootToken signs an API token for the actor root with secret.
func rootToken(t *testing.T, secret string) string {
	t.Helper()
	tok, err := auth.CreateToken([]byte(secret), auth.TokenOptions{Actor: "root"})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestServeAccessLogFlagErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no-such-dir", "access.log")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--access-log-format", "xml"}, `--access-log-format "xml": want combined or json`},
		{[]string{"--access-log", missing}, "does its directory exist?"},
	} {
		f := newServeCmd().Flags()
		if err := f.Parse(tc.args); err != nil {
			t.Fatal(err)
		}
		if err := checkAccessLog(f); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("checkAccessLog(%q) = %v; want an error containing %q", tc.args, err, tc.want)
		}
	}
	ok := filepath.Join(t.TempDir(), "access.log")
	f := newServeCmd().Flags()
	if err := f.Parse([]string{"--access-log", ok, "--access-log-format", "json"}); err != nil {
		t.Fatal(err)
	}
	if err := checkAccessLog(f); err != nil {
		t.Errorf("checkAccessLog(%s) = %v", ok, err)
	}
}
