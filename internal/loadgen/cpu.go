package loadgen

import (
	"syscall"
	"time"
)

// cpuTimes is the process's user and system CPU time (getrusage).
type cpuTimes struct{ user, sys time.Duration }

func readCPU() cpuTimes {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return cpuTimes{}
	}
	return cpuTimes{
		user: time.Duration(ru.Utime.Nano()),
		sys:  time.Duration(ru.Stime.Nano()),
	}
}

// cpuSince returns the CPU used since c0 over wall time wall on cores
// cores (GOMAXPROCS at the start of the run). The process
// includes anything else running in it (for example an in-process server
// in a test), so the number is an upper bound for the generator.
func cpuSince(c0 cpuTimes, wall time.Duration, cores int) CPUStats {
	c1 := readCPU()
	s := CPUStats{User: c1.user - c0.user, System: c1.sys - c0.sys, Wall: wall, Cores: cores}
	s.Utilization = safeDiv(float64(s.User+s.System), float64(wall)*float64(s.Cores))
	s.Bound = s.Utilization >= CPUBoundThreshold
	return s
}
