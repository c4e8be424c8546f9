package loadgen

import (
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestCPUBoundWarning(t *testing.T) {
	c0 := readCPU()
	// Burn CPU on this goroutine for a while to see getrusage move.
	deadline := time.Now().Add(50 * time.Millisecond)
	x := 0
	for time.Now().Before(deadline) {
		x++
	}
	st := cpuSince(c0, 50*time.Millisecond, runtime.GOMAXPROCS(0))
	if st.User+st.System <= 0 || st.Utilization <= 0 {
		t.Fatalf("cpuSince = %+v (x=%d); want some CPU used", st, x)
	}
	res := &Result{CPU: CPUStats{Utilization: 0.95, Cores: 2, Bound: true}}
	res.addWarnings()
	if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "CPU-BOUND (95% of 2 cores)") || !strings.Contains(res.Warnings[0], "floor") {
		t.Fatalf("warnings = %q; want the CPU-bound warning", res.Warnings)
	}
	if st := cpuSince(readCPU(), time.Hour, runtime.GOMAXPROCS(0)); st.Bound {
		t.Fatalf("an idle hour counted as CPU-bound: %+v", st)
	}
}
