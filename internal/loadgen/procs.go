package loadgen

import (
	"os"
	"runtime"
	"sync"
)

// loopProcs is the GOMAXPROCS lowering of runs on event loops. A loop is
// one goroutine that does all its run's work, so the run needs one P per
// loop; more Ps only let the Go scheduler hand the loop and the netpoller
// between threads (futex wake-ups, sysmon, context switches). On 2 cores
// against the hello server, one loop with GOMAXPROCS=1 served 1.07x the
// req/s of the same loop with GOMAXPROCS=2 at 0.97x the CPU per request
// (medians of 5 interleaved rounds), and the machine's idle share fell
// from 9.4% to 8.8%.
var loopProcs struct {
	sync.Mutex
	runs  int // event-loop runs in progress
	saved int // GOMAXPROCS before the first of them
}

// holdProcs lowers GOMAXPROCS to n for an event-loop run (never raises
// it), unless the user set the GOMAXPROCS environment variable; release
// restores it when the last such run in the process ends. Other work in
// the process (a test's in-process server, lode bench's bookkeeping) runs
// on the remaining Ps meanwhile.
func holdProcs(n int) (release func()) {
	if os.Getenv("GOMAXPROCS") != "" || n < 1 {
		return func() {}
	}
	loopProcs.Lock()
	defer loopProcs.Unlock()
	if loopProcs.runs == 0 {
		loopProcs.saved = runtime.GOMAXPROCS(0)
		if n < loopProcs.saved {
			runtime.GOMAXPROCS(n)
		}
	}
	loopProcs.runs++
	var once sync.Once
	return func() {
		once.Do(func() {
			loopProcs.Lock()
			defer loopProcs.Unlock()
			if loopProcs.runs--; loopProcs.runs == 0 && runtime.GOMAXPROCS(0) != loopProcs.saved {
				runtime.GOMAXPROCS(loopProcs.saved)
			}
		})
	}
}
