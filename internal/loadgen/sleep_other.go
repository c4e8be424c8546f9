//go:build !linux

package loadgen

import "time"

// preciseSleep sleeps for d, returning false early if stop closes.
func preciseSleep(d time.Duration, stop <-chan struct{}) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-stop:
		return false
	}
}
