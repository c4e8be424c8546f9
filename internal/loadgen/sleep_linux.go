package loadgen

import (
	"syscall"
	"time"
)

// preciseSleep sleeps for d, returning false early if stop closes. Go's
// timers wake up to ~1 ms late for sub-millisecond sleeps on Linux, which
// would add up to 1 ms to every open-model latency (they count from the
// intended time). The pacer runs on a locked OS thread, so it sleeps in
// nanosleep(2) instead, which wakes within ~0.1 ms; long waits go in
// slices so that a stop is noticed.
func preciseSleep(d time.Duration, stop <-chan struct{}) bool {
	const slice = 20 * time.Millisecond
	deadline := time.Now().Add(d)
	for {
		select {
		case <-stop:
			return false
		default:
		}
		left := time.Until(deadline)
		if left <= 0 {
			return true
		}
		if left > slice {
			left = slice
		}
		ts := syscall.NsecToTimespec(int64(left))
		_ = syscall.Nanosleep(&ts, nil) // EINTR: loop recomputes
	}
}
