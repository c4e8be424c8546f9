package loadgen_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"lode/internal/loadgen"
)

func TestParseRate(t *testing.T) {
	tests := []struct {
		in   string
		want loadgen.Schedule
	}{
		{"2000/s", loadgen.Schedule{{Rate: 2000}}},
		{"2000", loadgen.Schedule{{Rate: 2000}}},
		{"120/m", loadgen.Schedule{{Rate: 2}}},
		{"100/s:10s,500/s:20s", loadgen.Schedule{{Rate: 100, Duration: 10 * time.Second}, {Rate: 500, Duration: 20 * time.Second}}},
		{"100/s:10s, 50/s", loadgen.Schedule{{Rate: 100, Duration: 10 * time.Second}, {Rate: 50}}},
	}
	for _, tt := range tests {
		got, err := loadgen.ParseRate(tt.in)
		if err != nil || len(got) != len(tt.want) {
			t.Fatalf("ParseRate(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
		for i := range got {
			if got[i] != tt.want[i] {
				t.Errorf("ParseRate(%q)[%d] = %v; want %v", tt.in, i, got[i], tt.want[i])
			}
		}
	}
	for _, bad := range []string{"", "fast", "-5/s", "10/d", "100/s,200/s:5s", "100/s:soon"} {
		if _, err := loadgen.ParseRate(bad); err == nil {
			t.Errorf("ParseRate(%q) accepted; want an error", bad)
		}
	}
}

// TestOpenModelDroppedArrivals: the server holds every request, so after
// MaxInFlight arrivals every further arrival finds all slots busy and
// must be counted as dropped — never queued or silently delayed.
func TestOpenModelDroppedArrivals(t *testing.T) {
	release := make(chan struct{})
	var got atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Add(1)
		<-release
	}))
	defer srv.Close()
	defer close(release) // before srv.Close: unblock the handlers
	res, err := loadgen.Run(context.Background(), loadgen.Config{
		Scenario:     loadgen.URLScenario(srv.URL),
		Rate:         loadgen.Schedule{{Rate: 200}},
		Duration:     300 * time.Millisecond,
		MaxInFlight:  5,
		GracefulStop: 50 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	o := res.Open
	// A sender starved of CPU may not reach the last arrivals before the
	// graceful stop runs out: those count as missed instead of dropped.
	if o.Scheduled != 60 || o.Sent != 5 || o.Dropped+o.Missed != 55 || o.Dropped == 0 {
		t.Fatalf("scheduled %d sent %d dropped %d missed %d; want 60, 5, 55 dropped or missed", o.Scheduled, o.Sent, o.Dropped, o.Missed)
	}
	if o.Achieved || o.PeakFlight != 5 || res.Unfinished != 5 || res.Total.Count != 0 {
		t.Fatalf("achieved %v peak %d unfinished %d count %d; want false, 5, 5, 0", o.Achieved, o.PeakFlight, res.Unfinished, res.Total.Count)
	}
	var out strings.Builder
	loadgen.WriteTable(&out, res)
	if want := fmt.Sprintf("dropped %d (they found all 5 in-flight slots busy)", o.Dropped); !strings.Contains(out.String(), want) {
		t.Errorf("verdict lacks %q:\n%s", want, out.String())
	}
}

// TestOpenModelVerdictNoDrops: a verdict with no dropped arrivals says
// "dropped 0" and nothing about busy slots (which would claim they were).
func TestOpenModelVerdictNoDrops(t *testing.T) {
	srv := helloServer(t)
	res, err := loadgen.Run(context.Background(), loadgen.Config{
		Scenario: loadgen.URLScenario(srv.URL), Rate: loadgen.Schedule{{Rate: 50}}, Duration: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Open.Dropped != 0 { // 10 arrivals, 1000 slots
		t.Fatalf("%d arrivals dropped", res.Open.Dropped)
	}
	var out strings.Builder
	loadgen.WriteTable(&out, res)
	if !strings.Contains(out.String(), ", dropped 0, missed") || strings.Contains(out.String(), "slots busy") {
		t.Errorf("verdict with no drops:\n%s", out.String())
	}
}

func TestOpenModelSteppedSchedule(t *testing.T) {
	srv := helloServer(t)
	sched, err := loadgen.ParseRate("100/s:200ms,300/s:200ms")
	if err != nil {
		t.Fatal(err)
	}
	res, err := loadgen.Run(context.Background(), loadgen.Config{Scenario: loadgen.URLScenario(srv.URL), Rate: sched})
	if err != nil {
		t.Fatal(err)
	}
	o := res.Open
	// Duration defaults to the steps' total: 20 + 60 arrivals.
	if o.Scheduled != 80 || o.Sent+o.Dropped+o.Missed != 80 || res.Total.Count+res.Unfinished != o.Sent {
		t.Fatalf("scheduled %d sent %d dropped %d missed %d completed %d unfinished %d; want 80 scheduled, all accounted for",
			o.Scheduled, o.Sent, o.Dropped, o.Missed, res.Total.Count, res.Unfinished)
	}
	// One verdict per step, adding up to the whole.
	if len(o.Steps) != 2 || o.Steps[0].Scheduled != 20 || o.Steps[1].Scheduled != 60 || o.Steps[0].Rate != 100 || o.Steps[1].Rate != 300 {
		t.Fatalf("steps %+v; want 20 arrivals at 100/s, then 60 at 300/s", o.Steps)
	}
	var sent, completed int64
	for _, st := range o.Steps {
		sent += st.Sent
		completed += st.Completed
		if st.Duration != 200*time.Millisecond || st.Latency.Count() != st.Completed {
			t.Errorf("step %+v: want 200ms and a histogram of its completed requests", st)
		}
	}
	if sent != o.Sent || completed != res.Total.Count {
		t.Fatalf("steps sent %d completed %d; want %d, %d", sent, completed, o.Sent, res.Total.Count)
	}
}

// periodicStallServer sleeps `normal` per request; every `period` after
// the first request, from `at` for `stall`, requests wait until the
// stall ends.
func periodicStallServer(t testing.TB, normal, period, at, stall time.Duration) *httptest.Server {
	var once sync.Once
	var t0 time.Time
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		once.Do(func() { t0 = time.Now() })
		phase := time.Since(t0) % period
		if phase >= at && phase < at+stall {
			time.Sleep(at + stall - phase)
		}
		time.Sleep(normal)
		io.WriteString(w, "ok")
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestOpenModelMaxRequests: an open-model run bounded by -n alone sends
// exactly n arrivals, however long that takes (here 1.2 s).
func TestOpenModelMaxRequests(t *testing.T) {
	srv := helloServer(t)
	res, err := loadgen.Run(context.Background(), loadgen.Config{
		Scenario: loadgen.URLScenario(srv.URL), Rate: loadgen.Schedule{{Rate: 200}}, MaxRequests: 240,
	})
	if err != nil {
		t.Fatal(err)
	}
	o := res.Open
	if o.Scheduled != 240 || o.Sent+o.Dropped != 240 || o.Missed != 0 || res.Total.Count+res.Unfinished != o.Sent {
		t.Fatalf("scheduled %d sent %d dropped %d missed %d completed %d; want 240 arrivals, none missed", o.Scheduled, o.Sent, o.Dropped, o.Missed, res.Total.Count)
	}
}

// stallServer sleeps `normal` per request, except that requests arriving
// in [at, at+stall) after the first request wait until the stall ends —
// a scaled-down "stalls for 1 s every 10 s" server.
func stallServer(t testing.TB, normal, at, stall time.Duration) *httptest.Server {
	return periodicStallServer(t, normal, time.Hour, at, stall)
}

// TestCoordinatedOmission shows why the open model measures from the
// intended start: during a server stall a closed-loop user simply stops
// sending, so only one request per user sees the stall and the
// percentiles hide it; the open model keeps the schedule and charges
// every request that should have been sent during the stall.
func TestCoordinatedOmission(t *testing.T) {
	const (
		normal = time.Millisecond
		at     = 300 * time.Millisecond
		stall  = 200 * time.Millisecond
		run    = 1200 * time.Millisecond
	)
	closedSrv := stallServer(t, normal, at, stall)
	closed, err := loadgen.Run(context.Background(), loadgen.Config{
		Scenario: loadgen.URLScenario(closedSrv.URL), Users: 4, Duration: run,
	})
	if err != nil {
		t.Fatal(err)
	}
	openSrv := stallServer(t, normal, at, stall)
	open, err := loadgen.Run(context.Background(), loadgen.Config{
		Scenario: loadgen.URLScenario(openSrv.URL), Rate: loadgen.Schedule{{Rate: 500}}, Duration: run,
	})
	if err != nil {
		t.Fatal(err)
	}
	c, o := closed.Total, open.Total
	t.Logf("closed (4 users): n=%d p50=%v p95=%v p99=%v max=%v", c.Count, c.P50, c.P95, c.P99, c.Max)
	t.Logf("open (500/s):     n=%d p50=%v p95=%v p99=%v max=%v (sender behind schedule: mean %v, max %v)", o.Count, o.P50, o.P95, o.P99, o.Max, open.Open.MeanBehind, open.Open.MaxBehind)
	// Both saw the stall (max), but only the open model's percentiles show it.
	if c.Max < stall/2 || o.Max < stall/2 {
		t.Fatalf("max closed %v open %v; want both ≥ %v (the stall happened)", c.Max, o.Max, stall/2)
	}
	if o.P99 < stall/2 {
		t.Errorf("open-model p99 = %v; want ≥ %v: it must reflect the stall", o.P99, stall/2)
	}
	// The open model keeps sending during the stall: the 50 arrivals of its
	// first half wait at least stall/2 (allow half of them for noise).
	oSlow, cSlow := o.Latency.CountAtOrAbove(stall/2), c.Latency.CountAtOrAbove(stall/2)
	if oSlow < 25 {
		t.Errorf("open model: %d requests ≥ %v; want ≥ 25", oSlow, stall/2)
	}
	// A closed-loop user waits out the stall with one request, so the
	// share of slow requests is about users/count: far below the open
	// model's share (which is the share of time the server stalled).
	oFrac, cFrac := float64(oSlow)/float64(o.Count), float64(cSlow)/float64(c.Count)
	t.Logf("share of requests ≥ %v: open %.1f%%, closed %.1f%%", stall/2, 100*oFrac, 100*cFrac)
	if cFrac*4 > oFrac {
		t.Errorf("closed-loop share of slow requests %.2f%% is not far below the open model's %.2f%%", 100*cFrac, 100*oFrac)
	}
	if c.P50 > stall/4 {
		t.Errorf("closed-loop p50 = %v; want ≤ %v (near the normal %v)", c.P50, stall/4, normal)
	}
}

func TestInterruptReturnsPartialResult(t *testing.T) {
	forEachDriver(t, testInterruptReturnsPartialResult)
}

func testInterruptReturnsPartialResult(t *testing.T, driver func(loadgen.Config) loadgen.Config) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) > 100 {
			<-r.Context().Done() // hang: the interrupt must not wait for it
			return
		}
		io.WriteString(w, "ok")
	}))
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		deadline := time.Now().Add(20 * time.Second)
		for n.Load() < 104 && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	res, err := loadgen.Run(ctx, driver(loadgen.Config{
		Scenario: loadgen.URLScenario(srv.URL), Users: 4, Duration: time.Minute,
	}))
	if err != nil {
		t.Fatal(err)
	}
	if !res.Interrupted || res.Total.Count != 100 || res.Unfinished != 4 {
		t.Fatalf("interrupted %v count %d unfinished %d; want true, 100, 4", res.Interrupted, res.Total.Count, res.Unfinished)
	}
	if res.Duration >= time.Minute {
		t.Fatalf("duration %v: the run did not stop", res.Duration)
	}
}

// TestWarmupNotCounted: requests sent during the warm-up are served but
// not counted. The run is bounded by count (MaxRequests), not by a time
// window, so it measures its requests however little CPU it gets; the
// server notes the requests that reached it before the warm-up can have
// ended (the run starts after the test reads the clock), and those must
// not be among the counted ones. A warm-up during which no request got
// through is retried longer.
func TestWarmupNotCounted(t *testing.T) {
	forEachDriver(t, testWarmupNotCounted)
}

func testWarmupNotCounted(t *testing.T, driver func(loadgen.Config) loadgen.Config) {
	var served, early atomic.Int64
	var warmEnd atomic.Int64 // UnixNano before which a request is surely in the warm-up
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		if time.Now().UnixNano() < warmEnd.Load() {
			early.Add(1)
		}
	}))
	defer srv.Close()
	const measured = 50
	for warmup := 200 * time.Millisecond; ; warmup *= 4 {
		served.Store(0)
		early.Store(0)
		warmEnd.Store(time.Now().Add(warmup).UnixNano())
		res, err := loadgen.Run(context.Background(), driver(loadgen.Config{
			Scenario: loadgen.URLScenario(srv.URL), Users: 2, Warmup: warmup, MaxRequests: measured, Duration: time.Minute,
		}))
		if err != nil {
			t.Fatal(err)
		}
		if res.Total.Count != measured {
			t.Fatalf("counted %d; want %d (MaxRequests)", res.Total.Count, measured)
		}
		if early.Load() == 0 {
			if warmup >= 3*time.Second {
				t.Skipf("no request got through in %v of warm-up (the machine is starved); nothing to check", warmup)
			}
			continue
		}
		if got, min := served.Load(), res.Total.Count+early.Load(); got < min {
			t.Fatalf("served %d, counted %d, %d of them sent during the warm-up; want at least %d served: warm-up requests were counted",
				got, res.Total.Count, early.Load(), min)
		}
		return
	}
}

func TestSpawnRateStartsUsersGradually(t *testing.T) {
	var mu sync.Mutex
	conns := map[string]bool{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		conns[r.RemoteAddr] = true
		mu.Unlock()
	}))
	defer srv.Close()
	// At 2 users/s the second user would start at 500 ms: a 200 ms run
	// has only the first, whose one connection carries every request.
	res, err := loadgen.Run(context.Background(), loadgen.Config{
		Scenario: loadgen.URLScenario(srv.URL), Users: 3, SpawnRate: 2, Duration: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(conns) != 1 || res.Total.Count == 0 {
		t.Fatalf("connections %d, requests %d; want 1 user on 1 connection", len(conns), res.Total.Count)
	}
}

// TestMaxRequestsCountsMeasuredOnly: -n bounds the measured requests;
// warm-up requests come on top, in both models.
func TestMaxRequestsCountsMeasuredOnly(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { n.Add(1) }))
	defer srv.Close()
	for _, cfg := range []loadgen.Config{
		{Users: 2},
		{Rate: loadgen.Schedule{{Rate: 400}}},
	} {
		n.Store(0)
		cfg.Scenario, cfg.MaxRequests, cfg.Warmup = loadgen.URLScenario(srv.URL), 100, 100*time.Millisecond
		res, err := loadgen.Run(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		// Exactly MaxRequests are measured, however many the warm-up sent.
		if res.Total.Count != 100 {
			t.Errorf("%s model: measured %d, served %d; want 100 measured", res.Model, res.Total.Count, n.Load())
		}
		// The warm-up's requests come on top; on a starved machine none
		// may have finished in its 100 ms, and then there is nothing to
		// tell apart.
		switch served := n.Load(); {
		case served < 100:
			t.Errorf("%s model: served %d; want at least the 100 measured", res.Model, served)
		case served == 100:
			t.Logf("%s model: no request was served during the warm-up; its exclusion is not checked", res.Model)
		}
	}
}
