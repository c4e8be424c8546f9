package server_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"lode/internal/config"
	"lode/internal/server"
	"lode/internal/sqlitedb"
)

// observedOpts configure newObservedEnv: a write env (write_test.go)
// with settings and an access log.
type observedOpts struct {
	envOpts
	settings  map[string]string
	accessLog io.Writer
	logFormat string
}

func newObservedEnv(t testing.TB, o observedOpts) *writeEnv {
	t.Helper()
	path := filepath.Join(t.TempDir(), "data.db")
	raw, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec(writeSchema); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	var lc *config.Config
	if o.yaml != "" {
		if lc, err = config.Parse([]byte(o.yaml)); err != nil {
			t.Fatal(err)
		}
	}
	srv, err := server.New(context.Background(), server.Config{Files: []string{path}, DB: o.db, Lode: lc,
		Settings: o.settings, AccessLog: o.accessLog, AccessLogFormat: o.logFormat})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	e := &writeEnv{t: t, path: path, secret: []byte("test-secret"), now: time.Now()}
	api, err := server.NewWriteAPI(srv, server.WriteConfig{Secret: e.secret, Root: o.root, Writer: sqlitedb.WriterOptions{Mode: o.mode}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { api.Close() })
	e.api = api
	hs := httptest.NewServer(api)
	t.Cleanup(hs.Close)
	e.url = hs.URL
	return e
}

// scrape reads /-/metrics and parses it.
func scrape(t testing.TB, base, token string) (string, map[string]*dto.MetricFamily) {
	t.Helper()
	req, _ := http.NewRequest("GET", base+"/-/metrics", nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 {
		t.Fatalf("GET /-/metrics = %d: %s", res.StatusCode, b)
	}
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type = %q; want the Prometheus text format", ct)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("parse /-/metrics: %v\n%s", err, b)
	}
	return string(b), mfs
}

// metricValue is the value of the series of name whose labels include
// want ("k=v" pairs): a counter's or gauge's value, a histogram's count.
// It is 0 when no series matches, -1 when several do.
func metricValue(mfs map[string]*dto.MetricFamily, name string, want ...string) float64 {
	m := findMetric(mfs, name, want...)
	switch {
	case m == nil:
		return 0
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	}
	return -1
}

func findMetric(mfs map[string]*dto.MetricFamily, name string, want ...string) *dto.Metric {
	mf := mfs[name]
	if mf == nil {
		return nil
	}
	var found *dto.Metric
	for _, m := range mf.Metric {
		have := map[string]string{}
		for _, l := range m.Label {
			have[l.GetName()] = l.GetValue()
		}
		ok := true
		for _, kv := range want {
			k, v, _ := strings.Cut(kv, "=")
			if have[k] != v {
				ok = false
			}
		}
		if ok {
			if found != nil {
				return &dto.Metric{} // ambiguous: neither counter nor gauge
			}
			found = m
		}
	}
	return found
}

// bucketCount is a histogram's count of observations in (lo, hi].
func bucketCount(h *dto.Histogram, lo, hi float64) uint64 {
	var below, upTo uint64
	for _, b := range h.Bucket {
		if b.GetUpperBound() == lo {
			below = b.GetCumulativeCount()
		}
		if b.GetUpperBound() == hi {
			upTo = b.GetCumulativeCount()
		}
	}
	return upTo - below
}

// waitMetric scrapes until cond holds, or fails after 20 s.
func waitMetric(t testing.TB, base, token, what string, cond func(map[string]*dto.MetricFamily) bool) map[string]*dto.MetricFamily {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		text, mfs := scrape(t, base, token)
		if cond(mfs) {
			return mfs
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s within 20s; last scrape:\n%s", what, text)
		}
		time.Sleep(20 * time.Millisecond) // poll interval
	}
}

// holdWriteLock takes the database's write lock on a connection of its
// own (as another process would) until the returned function is called.
func holdWriteLock(t testing.TB, path string) (release func()) {
	t.Helper()
	db, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(context.Background(), "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	release = func() {
		once.Do(func() {
			_, _ = conn.ExecContext(context.Background(), "ROLLBACK")
			conn.Close()
			db.Close()
		})
	}
	t.Cleanup(release)
	return release
}

// Requests move the counters of their route kind, method and status
// class; a group-commit batch of known size lands in its bucket, with its
// commit, its fsyncs, its wait in the queue and the busy handler's sleeps
// while another connection held the lock.
func TestMetricsCountRequestsAndBatches(t *testing.T) {
	e := newObservedEnv(t, observedOpts{envOpts: envOpts{root: true, db: sqlitedb.Settings{BusyTimeout: 20 * time.Second}}})
	tok := e.root()
	for _, p := range []string{"/data/docs.json", "/data/docs/1.json", "/data/docs/1.json", "/data/nope.json", "/data.json?sql=select+1"} {
		res, err := http.Get(e.url + p)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
	}
	if r := e.post("/data/docs/-/insert", tok, `{"row": {"title": "x"}}`); r.status != 201 {
		t.Fatalf("insert = %d %s", r.status, r.raw)
	}
	_, mfs := scrape(t, e.url, "")
	for _, tc := range []struct {
		labels []string
		want   float64
	}{
		{[]string{"route=table", "method=GET", "status=2xx"}, 1},
		{[]string{"route=row", "method=GET", "status=2xx"}, 2},
		{[]string{"route=table", "method=GET", "status=4xx"}, 1},
		{[]string{"route=query", "method=GET", "status=2xx"}, 1},
		{[]string{"route=insert", "method=POST", "status=2xx"}, 1},
	} {
		if got := metricValue(mfs, "lode_http_requests_total", tc.labels...); got != tc.want {
			t.Errorf("lode_http_requests_total%v = %v; want %v", tc.labels, got, tc.want)
		}
		if got := metricValue(mfs, "lode_http_request_duration_seconds", tc.labels...); got != tc.want {
			t.Errorf("lode_http_request_duration_seconds%v count = %v; want %v", tc.labels, got, tc.want)
		}
	}
	if got := metricValue(mfs, "lode_http_response_bytes_total", "route=row"); got < 100 {
		t.Errorf("row response bytes = %v; want the two bodies", got)
	}
	batches0 := findMetric(mfs, "lode_sqlite_commit_batch_size", "db=data").GetHistogram()

	// Another connection holds the write lock: the writer's next
	// transaction waits in BEGIN IMMEDIATE while five more requests queue
	// behind it, and they commit together once the lock is released.
	release := holdWriteLock(t, e.path)
	var wg sync.WaitGroup
	codes := make(chan int, 6)
	insert := func() {
		defer wg.Done()
		codes <- e.post("/data/docs/-/insert", tok, `{"row": {"title": "batched"}}`).status
	}
	wg.Add(1)
	go insert()
	waitMetric(t, e.url, "", "a transaction waiting for the lock", func(m map[string]*dto.MetricFamily) bool {
		return metricValue(m, "lode_sqlite_writer_queue_wait_seconds", "db=data") == 2 &&
			metricValue(m, "lode_sqlite_lock_wait_sleeps_total", "db=data") > 0
	})
	const n = 5
	for range n {
		wg.Add(1)
		go insert()
	}
	waitMetric(t, e.url, "", "5 queued writes", func(m map[string]*dto.MetricFamily) bool {
		return metricValue(m, "lode_sqlite_writer_queue_length", "db=data") == n
	})
	release()
	wg.Wait()
	close(codes)
	for c := range codes {
		if c != 201 {
			t.Errorf("batched insert = %d; want 201", c)
		}
	}
	_, mfs = scrape(t, e.url, "")
	h := findMetric(mfs, "lode_sqlite_commit_batch_size", "db=data").GetHistogram()
	if got := h.GetSampleCount() - batches0.GetSampleCount(); got != 2 {
		t.Errorf("batches = %d; want 2 (the waiting request, then the 5 queued)", got)
	}
	if got := h.GetSampleSum() - batches0.GetSampleSum(); got != 1+n {
		t.Errorf("requests in the batches = %v; want %d", got, 1+n)
	}
	if got := bucketCount(h, 4, 8) - bucketCount(batches0, 4, 8); got != 1 {
		t.Errorf("batches of 5..8 requests = %d; want 1", got)
	}
	if got := metricValue(mfs, "lode_sqlite_commit_seconds", "db=data"); got != 3 {
		t.Errorf("commits = %v; want 3", got)
	}
	if got := metricValue(mfs, "lode_sqlite_fsync_seconds", "db=data", "file=wal"); got < 3 {
		t.Errorf("WAL fsyncs = %v; want one per commit at least (synchronous=full)", got)
	}
	if got := findMetric(mfs, "lode_sqlite_lock_wait_seconds_total", "db=data").GetCounter().GetValue(); got <= 0 {
		t.Errorf("lock wait seconds = %v; want the time the writer waited", got)
	}
	if got := metricValue(mfs, "lode_sqlite_lock_errors_total", "db=data"); got != 0 {
		t.Errorf("lock errors = %v; want none (the lock came within the busy timeout)", got)
	}
}

// A lock that outlives the busy timeout is a 503 counted by its SQLite
// code, and a statement past its time limit is counted as interrupted.
func TestMetricsLockErrorAndTimeLimit(t *testing.T) {
	e := newObservedEnv(t, observedOpts{envOpts: envOpts{root: true, db: sqlitedb.Settings{BusyTimeout: 100 * time.Millisecond}},
		settings: map[string]string{"sql_time_limit_ms": "50"}})
	release := holdWriteLock(t, e.path)
	r := e.post("/data/docs/-/insert", e.root(), `{"row": {"title": "locked out"}}`)
	release()
	if r.status != 503 || r.body["code"] != "SQLITE_BUSY" {
		t.Fatalf("insert under a held lock = %d %s; want 503 SQLITE_BUSY", r.status, r.raw)
	}
	slow := "with recursive c(x) as (select 1 union all select x+1 from c) select count(*) from c"
	res, err := http.Get(e.url + "/data.json?sql=" + url.QueryEscape(slow))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 400 || !strings.Contains(string(body), "SQL Interrupted") {
		t.Fatalf("slow query = %d %s; want 400 SQL Interrupted", res.StatusCode, body)
	}
	_, mfs := scrape(t, e.url, "")
	if got := metricValue(mfs, "lode_sqlite_lock_errors_total", "db=data", "code=SQLITE_BUSY"); got != 1 {
		t.Errorf("lock errors SQLITE_BUSY = %v; want 1", got)
	}
	if got := metricValue(mfs, "lode_http_requests_total", "route=insert", "status=5xx"); got != 1 {
		t.Errorf("insert 5xx = %v; want 1", got)
	}
	if got := metricValue(mfs, "lode_sqlite_statements_interrupted_total", "db=data", "reason=time_limit"); got != 1 {
		t.Errorf("statements interrupted by the time limit = %v; want 1", got)
	}
}

// /-/metrics passes the gate like any page (view-instance), is a JSON 404
// when the metrics setting is off, and never shows names or values from
// the data.
func TestMetricsGateOffAndPrivacy(t *testing.T) {
	e := newObservedEnv(t, observedOpts{envOpts: envOpts{root: true, yaml: "allow:\n  id: root\n"}})
	res, err := http.Get(e.url + "/-/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 403 || !strings.Contains(string(body), `"ok": false`) {
		t.Errorf("anonymous /-/metrics under allow {id: root} = %d %s; want a JSON 403", res.StatusCode, body)
	}
	tok := e.root()
	secret := "zz-row-value-4242"
	if r := e.post("/data/-/create", tok, `{"table": "private_tbl_77", "row": {"v": "`+secret+`"}}`); r.status != 201 {
		t.Fatalf("create = %d %s", r.status, r.raw)
	}
	if r := e.post("/data/docs/-/insert", tok, `{"row": {"title": "`+secret+`"}}`); r.status != 201 {
		t.Fatalf("insert = %d %s", r.status, r.raw)
	}
	for _, p := range []string{"/data/private_tbl_77.json?v=" + secret, "/data/docs.json?_search=" + secret, "/data/zz_missing_77.json"} {
		req, _ := http.NewRequest("GET", e.url+p, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		if res, err := http.DefaultClient.Do(req); err == nil {
			res.Body.Close()
		}
	}
	text, mfs := scrape(t, e.url, tok)
	for _, s := range []string{secret, "private_tbl_77", "zz_missing_77", "docs"} {
		if strings.Contains(text, s) {
			t.Errorf("/-/metrics contains %q from the data or a path:\n%s", s, text)
		}
	}
	if metricValue(mfs, "lode_http_requests_total", "route=create", "status=2xx") != 1 {
		t.Errorf("create not counted")
	}

	off := newObservedEnv(t, observedOpts{settings: map[string]string{"metrics": "off"}})
	res, err = http.Get(off.url + "/-/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 404 || !strings.Contains(string(body), "metrics are off") {
		t.Errorf("/-/metrics with metrics off = %d %s; want a JSON 404 naming the setting", res.StatusCode, body)
	}
}

// promtool (Debian package prometheus) accepts a live scrape.
func TestMetricsPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("LODE_REQUIRE_PROMTOOL") != "" {
			t.Fatal("promtool not found (apt-get install prometheus)")
		}
		t.Skip("promtool not found (apt-get install prometheus); .ci/run installs it")
	}
	e := newObservedEnv(t, observedOpts{envOpts: envOpts{root: true}})
	_ = e.post("/data/docs/-/insert", e.root(), `{"row": {"title": "x"}}`)
	for _, p := range []string{"/data/docs.json", "/data/docs/1.json", "/nope"} {
		if res, err := http.Get(e.url + p); err == nil {
			res.Body.Close()
		}
	}
	text, _ := scrape(t, e.url, "")
	checkPromtool(t, promtool, text)
}

// checkPromtool runs `promtool check metrics` on text.
func checkPromtool(t *testing.T, promtool, text string) {
	t.Helper()
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(text)
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

// syncBuffer is a bytes.Buffer safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) lines(t *testing.T, n int) []string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s.mu.Lock()
		text := s.b.String()
		s.mu.Unlock()
		lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
		if len(lines) >= n && text != "" {
			return lines
		}
		if time.Now().After(deadline) {
			t.Fatalf("access log has %d lines; want %d:\n%s", len(lines), n, text)
		}
		time.Sleep(10 * time.Millisecond) // poll interval
	}
}

// combinedLine matches the combined access log format with duration and
// pid: host, user, time, method, target, protocol, status, bytes,
// referer, user agent, µs, pid.
var combinedLine = regexp.MustCompile(`^(\S+) - (\S+) \[([^\]]+)\] "(\S+) (\S+) (\S+)" (\d{3}) (\d+|-) "((?:[^"\\]|\\.)*)" "((?:[^"\\]|\\.)*)" (\d+) (\d+)$`)

// Each request is one access log line that parses, names the actor and
// never the token.
func TestAccessLog(t *testing.T) {
	for _, format := range []string{server.AccessLogCombined, server.AccessLogJSON} {
		t.Run(format, func(t *testing.T) {
			var buf syncBuffer
			e := newObservedEnv(t, observedOpts{envOpts: envOpts{root: true}, accessLog: &buf, logFormat: format})
			tok := e.token("alice", nil, 0)
			if r := e.post("/data/docs/-/insert", tok, `{"row": {"title": "x"}}`); r.status != 403 {
				t.Fatalf("alice's insert = %d; want 403 (no permission)", r.status)
			}
			req, _ := http.NewRequest("GET", e.url+"/data/docs/1.json?_shape=array&token=SIGNIN-SECRET-1", nil)
			req.Header.Set("Referer", e.url+"/-/auth-token?token=SIGNIN-SECRET-2")
			req.Header.Set("User-Agent", `probe "quoted"`)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			lines := buf.lines(t, 2)
			if len(lines) != 2 {
				t.Fatalf("access log lines = %d; want 2:\n%s", len(lines), strings.Join(lines, "\n"))
			}
			for _, l := range lines {
				for _, secret := range []string{tok, "SIGNIN-SECRET"} {
					if strings.Contains(l, secret) {
						t.Errorf("access log line contains a token %q: %s", secret, l)
					}
				}
			}
			type entry struct {
				method, path, query, actor, referer, ua string
				status, bytes, pid                      int
				when                                    time.Time
			}
			parse := func(l string) entry {
				var en entry
				if format == server.AccessLogJSON {
					var j struct {
						Time       time.Time `json:"time"`
						PID        int       `json:"pid"`
						Remote     string    `json:"remote"`
						Proto      string    `json:"proto"`
						Method     string    `json:"method"`
						Path       string    `json:"path"`
						Query      string    `json:"query"`
						Status     int       `json:"status"`
						Bytes      int       `json:"bytes"`
						DurationMS *float64  `json:"duration_ms"`
						Actor      *string   `json:"actor"`
						Route      string    `json:"route"`
						Referer    string    `json:"referer"`
						UserAgent  string    `json:"user_agent"`
					}
					dec := json.NewDecoder(strings.NewReader(l))
					dec.DisallowUnknownFields()
					if err := dec.Decode(&j); err != nil {
						t.Fatalf("JSON line %q: %v", l, err)
					}
					if j.DurationMS == nil || *j.DurationMS < 0 || j.Route == "" || j.Remote != "127.0.0.1" || j.Proto != "HTTP/1.1" {
						t.Errorf("line %q lacks duration_ms, route, remote or proto", l)
					}
					en = entry{j.Method, j.Path, j.Query, "", j.Referer, j.UserAgent, j.Status, j.Bytes, j.PID, j.Time}
					if j.Actor != nil {
						en.actor = *j.Actor
					}
					return en
				}
				m := combinedLine.FindStringSubmatch(l)
				if m == nil {
					t.Fatalf("line %q is not in the combined format", l)
				}
				when, err := time.Parse("02/Jan/2006:15:04:05 -0700", m[3])
				if err != nil {
					t.Errorf("time %q: %v", m[3], err)
				}
				target, query, _ := strings.Cut(m[5], "?")
				en = entry{method: m[4], path: target, query: query, actor: m[2], referer: m[9], ua: m[10], when: when}
				en.status, _ = strconv.Atoi(m[7])
				en.bytes, _ = strconv.Atoi(strings.ReplaceAll(m[8], "-", "0"))
				en.pid, _ = strconv.Atoi(m[12])
				if m[6] != "HTTP/1.1" {
					t.Errorf("protocol = %q", m[6])
				}
				if m[2] == "-" {
					en.actor = ""
				}
				en.ua = strings.ReplaceAll(en.ua, `\"`, `"`)
				return en
			}
			ins, get := parse(lines[0]), parse(lines[1])
			if ins.method != "POST" || ins.path != "/data/docs/-/insert" || ins.status != 403 || ins.actor != "alice" || ins.bytes == 0 {
				t.Errorf("insert line = %+v; want POST /data/docs/-/insert 403 by alice", ins)
			}
			if get.method != "GET" || get.path != "/data/docs/1.json" || get.query != "_shape=array&token=REDACTED" ||
				get.status != 200 || get.bytes != len(body) || get.actor != "" || get.pid != os.Getpid() ||
				get.ua != `probe "quoted"` || !strings.HasSuffix(get.referer, "/-/auth-token?token=REDACTED") {
				t.Errorf("row line = %+v; want GET /data/docs/1.json ?_shape=array&token=REDACTED 200 %d bytes, anonymous, pid %d", get, len(body), os.Getpid())
			}
			if d := time.Since(get.when); d < 0 || d > time.Minute {
				t.Errorf("logged time %v is not the request's", get.when)
			}
		})
	}
}
