//go:build stress

package loadgen_test

import (
	"context"
	"os/exec"
	"regexp"
	"testing"
	"time"

	"lode/internal/loadgen"
)

// TestCoordinatedOmissionFullScale is the demo at the scale: a
// server that answers in 2 ms but stalls for 1 s every 10 s, driven for
// 20 s by the open model (1000/s), the closed model (20 users) and, when
// installed, wrk (closed loop, 20 connections). Only the open model's
// percentiles show that ~5% of the time the server answered nothing.
//
//	go test -tags 'sqlite_fts5 stress' -run FullScale -v ./internal/loadgen/
func TestCoordinatedOmissionFullScale(t *testing.T) {
	const (
		normal = 2 * time.Millisecond
		stall  = time.Second
		run    = 20 * time.Second
	)
	// Stalls at 4–5 s and 14–15 s after the first request of each run.
	newSrv := func() string {
		srv := periodicStallServer(t, normal, 10*time.Second, 4*time.Second, stall)
		return srv.URL
	}
	open, err := loadgen.Run(context.Background(), loadgen.Config{
		Scenario: loadgen.URLScenario(newSrv()), Rate: loadgen.Schedule{{Rate: 1000}}, Duration: run,
	})
	if err != nil {
		t.Fatal(err)
	}
	closed, err := loadgen.Run(context.Background(), loadgen.Config{
		Scenario: loadgen.URLScenario(newSrv()), Users: 20, Duration: run,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []*loadgen.Result{open, closed} {
		s := r.Total
		t.Logf("%-6s n=%-7d p50=%-9v p90=%-9v p99=%-9v p99.9=%-9v max=%v", r.Model, s.Count, s.P50, s.P90, s.P99, s.P999, s.Max)
	}
	if open.Total.P99 < stall/2 {
		t.Errorf("open p99 %v; want ≥ %v", open.Total.P99, stall/2)
	}
	if closed.Total.P99 > stall/4 {
		t.Errorf("closed p99 %v; want ≤ %v (coordinated omission hides the stall)", closed.Total.P99, stall/4)
	}
	if wrk, err := exec.LookPath("wrk"); err == nil {
		out, err := exec.Command(wrk, "-t2", "-c20", "-d20s", "--latency", newSrv()).CombinedOutput()
		if err != nil {
			t.Fatalf("wrk: %v\n%s", err, out)
		}
		m := regexp.MustCompile(`(?m)^\s+(50|90|99)%\s+(\S+)`).FindAllStringSubmatch(string(out), -1)
		t.Logf("wrk    %v", m)
	}
}
