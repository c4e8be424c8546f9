package prefork_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"lode/internal/prefork"
)

// The test binary plays three roles, chosen by PREFORK_TEST_ROLE: the test
// runner (unset), a master process ("master", configured by PREFORK_TEST_*
// variables) and a worker ("worker", started by that master).
func TestMain(m *testing.M) {
	switch os.Getenv("PREFORK_TEST_ROLE") {
	case "master":
		os.Exit(runTestMaster())
	case "worker":
		os.Exit(runTestWorker())
	}
	os.Exit(m.Run())
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

func envDur(name string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(os.Getenv(name)); err == nil {
		return d
	}
	return def
}

func runTestMaster() int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	env := []string{}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PREFORK_TEST_ROLE=") {
			env = append(env, kv)
		}
	}
	m := &prefork.Master{
		Workers:           envInt("PREFORK_TEST_WORKERS", 2),
		Addr:              "127.0.0.1:0",
		ReusePort:         os.Getenv("PREFORK_TEST_REUSEPORT") != "",
		Path:              os.Getenv("PREFORK_TEST_PATH"),
		Name:              "prefork-test",
		Args:              []string{"-test.run=^$"},
		Env:               append(env, "PREFORK_TEST_ROLE=worker"),
		GracefulTimeout:   envDur("PREFORK_TEST_GRACEFUL", 10*time.Second),
		WorkerTimeout:     envDur("PREFORK_TEST_WORKER_TIMEOUT", 10*time.Second),
		MaxRequests:       envInt("PREFORK_TEST_MAX_REQUESTS", 0),
		MaxRequestsJitter: envInt("PREFORK_TEST_MAX_REQUESTS_JITTER", 0),
		MinUptime:         envDur("PREFORK_TEST_MIN_UPTIME", 0),
		Logger:            slog.New(slog.NewTextHandler(os.Stderr, nil)),
	}
	if err := m.Listen(); err != nil {
		fmt.Fprintln(os.Stderr, "master:", err)
		return 1
	}
	fmt.Printf("ADDR %s\n", m.BoundAddr())
	if err := m.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "master:", err)
		return 1
	}
	return 0
}

func runTestWorker() int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if os.Getenv("PREFORK_TEST_CRASH") != "" {
		fmt.Fprintln(os.Stderr, "test worker: cannot open database: boom")
		return 3
	}
	w, err := prefork.NewWorker(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "test worker:", err)
		return 1
	}
	version := os.Getenv("PREFORK_TEST_VERSION")
	// The worker's own metrics, gathered by the master for every scrape
	// of /-/metrics, which any worker answers.
	reg := prometheus.NewRegistry()
	served := prometheus.NewCounter(prometheus.CounterOpts{Name: "test_requests_total", Help: "Requests to / served."})
	reg.MustRegister(served)
	w.Metrics = reg
	mux := http.NewServeMux()
	mux.Handle(prefork.StatusPath, w.StatusHandler())
	mux.Handle(prefork.MetricsPath, promhttp.HandlerFor(w.MetricsGatherer(), promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
	mux.HandleFunc("/", func(rw http.ResponseWriter, r *http.Request) {
		served.Inc()
		_, _ = io.Copy(io.Discard, r.Body)
		rw.Header().Set("X-Test-Version", version)
		_, _ = io.WriteString(rw, "ok\n")
	})
	mux.HandleFunc("/slow", func(rw http.ResponseWriter, r *http.Request) {
		d, _ := time.ParseDuration(r.URL.Query().Get("d"))
		fmt.Println("slow request started")
		time.Sleep(d) // the slow work a graceful stop must wait for
		_, _ = io.WriteString(rw, "slow done\n")
	})
	fmt.Println("test worker up")
	if err := w.Serve(ctx, &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}); err != nil {
		fmt.Fprintln(os.Stderr, "test worker:", err)
		return 1
	}
	return 0
}

// master is a master process started by a test.
type master struct {
	t      *testing.T
	cmd    *exec.Cmd
	base   string // http://127.0.0.1:PORT
	mu     sync.Mutex
	stdout bytes.Buffer
	stderr bytes.Buffer
	exited chan struct{}
	err    error
}

// startMaster runs the test binary as a master with the given PREFORK_TEST_*
// settings and waits for its address.
func startMaster(t *testing.T, env ...string) *master {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	m := &master{t: t, exited: make(chan struct{})}
	m.cmd = exec.Command(exe, "-test.run=^$")
	// The race runtime sleeps 1 s at exit by default (atexit_sleep_ms);
	// masters and workers exit often here, so skip that.
	gorace := strings.TrimSpace(os.Getenv("GORACE") + " atexit_sleep_ms=0")
	m.cmd.Env = append(append(os.Environ(), "PREFORK_TEST_ROLE=master", "GORACE="+gorace), env...)
	m.cmd.Stderr = &lockedWriter{mu: &m.mu, w: &m.stderr}
	out, err := m.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := m.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			if a, ok := strings.CutPrefix(line, "ADDR "); ok {
				addr <- a
			}
			m.mu.Lock()
			m.stdout.WriteString(line + "\n")
			m.mu.Unlock()
		}
		m.err = m.cmd.Wait()
		close(m.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-m.exited:
		default:
			_ = m.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-m.exited:
			case <-time.After(20 * time.Second):
				_ = m.cmd.Process.Kill()
				<-m.exited
			}
		}
		if t.Failed() || os.Getenv("PREFORK_TEST_DEBUG") != "" {
			t.Logf("master stderr:\n%s", m.output(true))
		}
	})
	select {
	case a := <-addr:
		m.base = "http://" + a
	case <-m.exited:
		t.Fatalf("master exited before listening: %v\n%s", m.err, m.output(true))
	case <-time.After(30 * time.Second):
		t.Fatal("master did not report its address within 30s")
	}
	return m
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

func (m *master) output(stderr bool) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if stderr {
		return m.stderr.String()
	}
	return m.stdout.String()
}

func (m *master) signal(sig syscall.Signal) {
	m.t.Helper()
	if err := m.cmd.Process.Signal(sig); err != nil {
		m.t.Fatalf("signal master: %v", err)
	}
}

// wait waits for the master to exit and returns its exit code.
func (m *master) wait(limit time.Duration) int {
	m.t.Helper()
	select {
	case <-m.exited:
	case <-time.After(limit):
		m.t.Fatalf("master did not exit within %v\n%s", limit, m.output(true))
	}
	var ee *exec.ExitError
	if errors.As(m.err, &ee) {
		return ee.ExitCode()
	}
	if m.err != nil {
		m.t.Fatalf("master: %v", m.err)
	}
	return 0
}

// statusClient opens a fresh connection per request so it never holds a
// keep-alive connection that would slow a worker's drain.
var statusClient = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

func (m *master) status() (*prefork.Status, error) {
	resp, err := statusClient.Get(m.base + prefork.StatusPath)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return nil, fmt.Errorf("status %d: %s", resp.StatusCode, b)
	}
	var st prefork.Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return nil, err
	}
	return &st, nil
}

// waitStatus polls /-/workers.json until cond holds or the limit passes.
func (m *master) waitStatus(limit time.Duration, what string, cond func(*prefork.Status) bool) *prefork.Status {
	m.t.Helper()
	deadline := time.Now().Add(limit)
	var last *prefork.Status
	var lastErr error
	for time.Now().Before(deadline) {
		st, err := m.status()
		if err == nil && cond(st) {
			return st
		}
		last, lastErr = st, err
		time.Sleep(20 * time.Millisecond) // poll interval, not synchronisation
	}
	b, _ := json.MarshalIndent(last, "", "  ")
	m.t.Fatalf("timed out after %v waiting for %s; last status %s (err %v)\nmaster stderr:\n%s", limit, what, b, lastErr, m.output(true))
	return nil
}

// serving reports whether st shows exactly n workers, all ready and none
// draining, and none of them in excluded.
func serving(st *prefork.Status, n int, excluded map[int]bool) bool {
	if len(st.Workers) != n || st.TargetWorkers != n {
		return false
	}
	for _, w := range st.Workers {
		if (w.State != "idle" && w.State != "busy") || excluded[w.PID] {
			return false
		}
	}
	return true
}

func pids(st *prefork.Status) map[int]bool {
	s := map[int]bool{}
	for _, w := range st.Workers {
		s[w.PID] = true
	}
	return s
}

// failure is one failed request of the load.
type failure struct {
	err    string
	pid    string // pid that served the connection's previous response; "" for a new connection
	reused bool
}

// load runs keep-alive clients that POST in a loop. Each client has its own
// transport holding at most one connection, and requests are not replayable
// (POST without GetBody), so net/http never retries: every reset or 5xx is
// counted as a failure.
type load struct {
	ok       atomic.Int64
	mu       sync.Mutex
	failures []failure
	pids     map[string]bool
	wg       sync.WaitGroup
	cancel   context.CancelFunc
}

func startLoad(url string, clients int) *load {
	ctx, cancel := context.WithCancel(context.Background())
	l := &load{cancel: cancel, pids: map[string]bool{}}
	for range clients {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			l.client(ctx, url)
		}()
	}
	return l
}

func (l *load) client(ctx context.Context, url string) {
	tr := &http.Transport{MaxIdleConnsPerHost: 1, MaxConnsPerHost: 1}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	var lastConn net.Conn
	var lastPid string
	for ctx.Err() == nil {
		var conn net.Conn
		var reused bool
		trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) { conn, reused = info.Conn, info.Reused }}
		req, err := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace),
			http.MethodPost, url, strings.NewReader("payload"))
		if err != nil {
			panic(err)
		}
		req.GetBody = nil // not replayable: the transport must not hide a failure by retrying
		resp, err := client.Do(req)
		connPid := ""
		if conn != nil && conn == lastConn {
			connPid = lastPid
		}
		if err == nil {
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if err == nil && resp.StatusCode != http.StatusOK {
				err = fmt.Errorf("status %d", resp.StatusCode)
			}
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			l.mu.Lock()
			l.failures = append(l.failures, failure{err: err.Error(), pid: connPid, reused: reused})
			l.mu.Unlock()
			lastConn = nil
			continue
		}
		pid := resp.Header.Get(prefork.PidHeader)
		lastConn, lastPid = conn, pid
		l.ok.Add(1)
		l.mu.Lock()
		l.pids[pid] = true
		l.mu.Unlock()
	}
}

func (l *load) stop() {
	l.cancel()
	l.wg.Wait()
}

func (l *load) snapshot() ([]failure, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]failure(nil), l.failures...), len(l.pids)
}

// waitOK waits until the load completed n more successful requests.
func (l *load) waitOK(t *testing.T, n int64, limit time.Duration) {
	t.Helper()
	target := l.ok.Load() + n
	deadline := time.Now().Add(limit)
	for l.ok.Load() < target {
		if time.Now().After(deadline) {
			f, _ := l.snapshot()
			t.Fatalf("load made no progress: %d ok, failures %v", l.ok.Load(), f)
		}
		time.Sleep(5 * time.Millisecond) // poll interval
	}
}
