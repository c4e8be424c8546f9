package bench

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// clockTick is Linux's USER_HZ, the unit of utime/stime in /proc/PID/stat.
// It is 100 on every mainstream architecture (sysconf(_SC_CLK_TCK)).
const clockTick = 100

// procTree returns pid and all its descendants, found by scanning /proc for
// parent ids. A pre-fork server's workers are children of its master, and a
// shell-started external target may be a grandchild of the shell.
func procTree(pid int) []int {
	parents := map[int][]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, ok := readStat(child); ok {
			parents[st.ppid] = append(parents[st.ppid], child)
		}
	}
	out := []int{pid}
	for i := 0; i < len(out) && i < 10000; i++ {
		out = append(out, parents[out[i]]...)
	}
	return out
}

type procStat struct {
	ppid int
	cpu  time.Duration // utime + stime
}

// readStat parses /proc/PID/stat. The command name (field 2) may contain
// spaces and parentheses, so fields are counted from the last ')'.
func readStat(pid int) (procStat, bool) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return procStat{}, false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, false
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); ppid is field 4, utime 14, stime 15.
	if len(f) < 13 {
		return procStat{}, false
	}
	ppid, _ := strconv.Atoi(f[1])
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return procStat{ppid: ppid, cpu: time.Duration(ut+st) * time.Second / clockTick}, true
}

// treeCPU sums the CPU time used so far by pid and its descendants, keyed by
// pid so that a sample taken later can be diffed per process.
func treeCPU(pid int) map[int]time.Duration {
	out := map[int]time.Duration{}
	for _, p := range procTree(pid) {
		if st, ok := readStat(p); ok {
			out[p] = st.cpu
		}
	}
	return out
}

// cpuSince is the CPU time used between two treeCPU samples; processes born
// in between count from zero.
func cpuSince(before, after map[int]time.Duration) time.Duration {
	var d time.Duration
	for p, t := range after {
		d += t - before[p]
	}
	return d
}

// treeRSS sums VmRSS over pid and its descendants, in bytes. Shared pages
// (the binary, SQLite's mapped file) count once per process, as ps shows.
func treeRSS(pid int) int64 {
	var total int64
	for _, p := range procTree(pid) {
		b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(p), "status"))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				f := strings.Fields(rest)
				if len(f) > 0 {
					kb, _ := strconv.ParseInt(f[0], 10, 64)
					total += kb * 1024
				}
			}
		}
	}
	return total
}
