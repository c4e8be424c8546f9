package loadgen_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"lode/internal/loadgen"
)

func helloServer(t testing.TB) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello")
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestClosedModelCountsRequests(t *testing.T) {
	var served atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		io.WriteString(w, "hello")
	}))
	defer srv.Close()
	res, err := loadgen.Run(context.Background(), loadgen.Config{
		Scenario:    loadgen.URLScenario(srv.URL + "/x"),
		Users:       4,
		MaxRequests: 500,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Total.Count != 500 || served.Load() != 500 {
		t.Fatalf("count = %d, served = %d; want 500", res.Total.Count, served.Load())
	}
	if res.Total.Failures != 0 || res.Total.Bytes != 500*5 {
		t.Fatalf("failures = %d bytes = %d; want 0, 2500", res.Total.Failures, res.Total.Bytes)
	}
	if res.Total.P50 <= 0 || res.Total.Max < res.Total.P99 {
		t.Fatalf("percentiles p50=%v p99=%v max=%v", res.Total.P50, res.Total.P99, res.Total.Max)
	}
	if res.Requests[0].Name != "/x" {
		t.Fatalf("name = %q; want /x", res.Requests[0].Name)
	}
}

// TestManyLoops: users spread over several event loops are all served,
// each request counted once, and MaxRequests holds across loops.
func TestManyLoops(t *testing.T) {
	var served atomic.Int64
	var mu sync.Mutex
	users := map[string]bool{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		mu.Lock()
		users[r.URL.Query().Get("u")] = true
		mu.Unlock()
	}))
	defer srv.Close()
	res, err := loadgen.Run(context.Background(), loadgen.WithLoops(loadgen.Config{
		Scenario: loadgen.URLScenario(srv.URL + "/?u={{.user}}"), Users: 7, MaxRequests: 700,
	}, 3))
	if err != nil {
		t.Fatal(err)
	}
	if res.Total.Count != 700 || served.Load() != 700 || res.Total.Failures != 0 {
		t.Fatalf("count %d, served %d, failures %d; want 700, 700, 0", res.Total.Count, served.Load(), res.Total.Failures)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(users) != 7 {
		t.Fatalf("users seen %v; want 7", users)
	}
}

func TestErrorsGroupedByMessage(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%2 == 0 {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(503)
			io.WriteString(w, `{"ok":false,"error":"database is locked","status":503}`)
			return
		}
		io.WriteString(w, "ok")
	}))
	defer srv.Close()
	res, err := loadgen.Run(context.Background(), loadgen.Config{
		Scenario: loadgen.URLScenario(srv.URL), Users: 2, MaxRequests: 200,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Total.Failures != 100 || len(res.Total.Errors) != 1 {
		t.Fatalf("failures = %d, groups = %d; want 100 in 1 group", res.Total.Failures, len(res.Total.Errors))
	}
	e := res.Total.Errors[0]
	if e.Message != "503 database is locked" || e.Count != 100 || e.Latency.Count() != 100 {
		t.Fatalf("error group = %q ×%d (latency count %d); want \"503 database is locked\" ×100", e.Message, e.Count, e.Latency.Count())
	}
}

func TestTransportErrorMessage(t *testing.T) {
	forEachDriver(t, testTransportErrorMessage)
}

func testTransportErrorMessage(t *testing.T, driver func(loadgen.Config) loadgen.Config) {
	srv := helloServer(t)
	url := srv.URL
	srv.Close()
	res, err := loadgen.Run(context.Background(), driver(loadgen.Config{
		Scenario: loadgen.URLScenario(url), Users: 1, MaxRequests: 5,
	}))
	if err != nil {
		t.Fatal(err)
	}
	if res.Total.Failures != 5 || len(res.Total.Errors) != 1 || !strings.Contains(res.Total.Errors[0].Message, "connection refused") {
		t.Fatalf("errors = %+v; want 5 × connection refused", res.Total.Errors)
	}
}

// TestStopIfRefused: a run whose every connection is refused stops at
// StopIfRefused with Refused set; a server that starts listening within
// that time keeps the run going for its whole duration.
func TestStopIfRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cfg := loadgen.Config{Scenario: loadgen.URLScenario("http://" + addr + "/"), Users: 2,
		Duration: 30 * time.Second, StopIfRefused: 300 * time.Millisecond}
	res, err := loadgen.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Refused || res.Duration > 10*time.Second || res.Total.Count == 0 || res.Total.Failures != res.Total.Count {
		t.Fatalf("refused run: refused %v, duration %s, %d of %d failed; want stopped early, all refused",
			res.Refused, res.Duration, res.Total.Failures, res.Total.Count)
	}

	// The server comes up 100 ms into the run.
	go func() {
		time.Sleep(100 * time.Millisecond)
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Errorf("listen again on %s: %v", addr, err)
			return
		}
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })}
		t.Cleanup(func() { srv.Close() })
		srv.Serve(ln)
	}()
	cfg.Duration = time.Second
	res, err = loadgen.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Refused || res.Duration < time.Second || res.Total.Count == res.Total.Failures {
		t.Fatalf("late server: refused %v, duration %s, %d of %d failed; want the full second with successes",
			res.Refused, res.Duration, res.Total.Failures, res.Total.Count)
	}
}

func TestRejectsNonLoopbackHost(t *testing.T) {
	_, err := loadgen.Run(context.Background(), loadgen.Config{
		Scenario: loadgen.URLScenario("http://example.com/"), MaxRequests: 1,
	})
	if err == nil || !strings.Contains(err.Error(), "--allow-host example.com") {
		t.Fatalf("err = %v; want a message naming --allow-host", err)
	}
}

func TestOpenModelSmoke(t *testing.T) {
	srv := helloServer(t)
	res, err := loadgen.Run(context.Background(), loadgen.Config{
		Scenario: loadgen.URLScenario(srv.URL),
		Rate:     loadgen.Schedule{{Rate: 500}},
		Duration: 400 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	o := res.Open
	if o.Scheduled != 200 || o.Sent+o.Dropped+o.Missed != o.Scheduled {
		t.Fatalf("scheduled %d sent %d dropped %d missed %d; want 200 = sent+dropped+missed", o.Scheduled, o.Sent, o.Dropped, o.Missed)
	}
}

func TestRejectsNonLoopbackBaseURLWithTemplates(t *testing.T) {
	sc := &loadgen.Scenario{BaseURL: "http://192.0.2.7:8001"}
	sc.Add(&loadgen.Request{URL: "/t/{{.iter}}.json"})
	_, err := loadgen.Run(context.Background(), loadgen.Config{Scenario: sc, MaxRequests: 1})
	if err == nil || !strings.Contains(err.Error(), "--allow-host 192.0.2.7") {
		t.Fatalf("err = %v; want a message naming --allow-host", err)
	}
	// (Tests never send to a non-loopback address, so AllowHosts is only
	// checked through Validate.)
	cfg := loadgen.Config{Scenario: sc, MaxRequests: 1, AllowHosts: []string{"192.0.2.7"}}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Validate with AllowHosts: %v", err)
	}
}

// TestRunLeavesNoGoroutines: after Run returns, its users, pacer,
// reporter and connections are gone (the server's connection goroutines
// end once they see the connections closed).
func TestRunLeavesNoGoroutines(t *testing.T) {
	srv := helloServer(t)
	before := runtime.NumGoroutine()
	for _, cfg := range []loadgen.Config{
		{Users: 8, Duration: 200 * time.Millisecond},
		{Rate: loadgen.Schedule{{Rate: 300}}, Duration: 200 * time.Millisecond},
	} {
		cfg.Scenario = loadgen.URLScenario(srv.URL)
		if _, err := loadgen.Run(context.Background(), cfg); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines after the runs, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestThinkTimeHonoured: a closed-model user pauses its think time after
// each response, so a run cannot send more than users × duration / think
// requests; and every user sends some.
func TestThinkTimeHonoured(t *testing.T) {
	forEachDriver(t, func(t *testing.T, driver func(loadgen.Config) loadgen.Config) {
		var mu sync.Mutex
		perUser := map[string]int{}
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			perUser[r.URL.Query().Get("u")]++
			mu.Unlock()
		}))
		defer srv.Close()
		sc := &loadgen.Scenario{ThinkMin: 20 * time.Millisecond, ThinkMax: 30 * time.Millisecond}
		sc.Add(&loadgen.Request{URL: srv.URL + "/?u={{.user}}"})
		const users, run = 8, 400 * time.Millisecond
		res, err := loadgen.Run(context.Background(), driver(loadgen.Config{Scenario: sc, Users: users, Duration: run}))
		if err != nil {
			t.Fatal(err)
		}
		max := int64(users * (run/(20*time.Millisecond) + 1))
		if res.Total.Count == 0 || res.Total.Count > max || res.Total.Failures != 0 {
			t.Fatalf("%d requests (%d failed) in %v by %d users thinking 20-30ms; want 1..%d", res.Total.Count, res.Total.Failures, run, users, max)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(perUser) != users {
			t.Fatalf("requests came from users %v; want all %d", perUser, users)
		}
	})
}

// TestLoopRunHoldsProcs: a run on event loops lowers GOMAXPROCS to its
// number of loops (one loop per two cores) while it runs, reports the
// cores it started with, and restores GOMAXPROCS when it ends; with the
// GOMAXPROCS environment variable set it leaves it alone.
func TestLoopRunHoldsProcs(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(4))
	var during atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		during.Store(int64(runtime.GOMAXPROCS(0)))
		io.WriteString(w, "hello")
	}))
	defer srv.Close()
	cfg := loadgen.Config{Scenario: loadgen.URLScenario(srv.URL + "/"), Users: 8, MaxRequests: 200}
	if !loadgen.UsesLoops(cfg) {
		t.Skip("no event loops on this system")
	}
	res, err := loadgen.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if during.Load() != 2 || runtime.GOMAXPROCS(0) != 4 || res.CPU.Cores != 4 {
		t.Errorf("GOMAXPROCS during the run = %d, after = %d, reported cores = %d; want 2 (two loops), 4, 4",
			during.Load(), runtime.GOMAXPROCS(0), res.CPU.Cores)
	}
	t.Setenv("GOMAXPROCS", "4")
	if _, err := loadgen.Run(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	if during.Load() != 4 {
		t.Errorf("GOMAXPROCS during a run with $GOMAXPROCS=4 = %d; want it left at 4", during.Load())
	}
}
