package bench

import (
	"cmp"
	"runtime"
	"slices"
	"strings"
	"time"

	"lode/internal/loadgen"
	"lode/internal/report"
)

// Lock-failure causes. The load generator groups failures by status and
// message with a time-to-error histogram; for Lode the message carries the
// 503 body's SQLite extended code ("503 database is locked
// (SQLITE_BUSY_SNAPSHOT)"). So the cause is read from the message when it
// names the code, else (other servers) deduced from
// the time to error and the busy timeout: SQLite's busy handler gives up
// only after sleeping the whole timeout, so a failure that came sooner did
// not wait for the lock at all — a deferred transaction's refused upgrade
// (SQLite does not call the busy handler for it) or, under WAL, a stale
// snapshot. The time to error is measured by the client and includes
// queueing in the server, so it is an upper bound on SQLite's own wait.
const (
	CauseUpgrade = "refused upgrade (no busy wait)"
	// CauseAtOnceWAL is a no-wait failure under WAL, where a refused
	// upgrade (SQLITE_BUSY) and a stale snapshot (SQLITE_BUSY_SNAPSHOT)
	// look the same from outside.
	CauseAtOnceWAL = "refused upgrade or snapshot conflict (no busy wait)"
	CauseTimeout   = "busy timeout exhausted"
	CauseSnapshot  = "snapshot conflict (SQLITE_BUSY_SNAPSHOT)"
	CauseNoWait    = "busy timeout 0"
	CauseOther     = "lock failure (busy timeout unknown)"
)

// bucketBounds are the time-to-error histogram's upper bounds in ms.
var bucketBounds = []float64{1, 10, 100, 1000, 5000, 20000}

// percentilePoints are the latency curve's points.
var percentilePoints = []float64{50, 75, 90, 95, 99, 99.5, 99.9, 99.99, 100}

// isLockError reports whether an error message is SQLite lock contention.
func isLockError(msg string) bool {
	m := strings.ToLower(msg)
	return strings.Contains(m, "locked") || strings.Contains(m, "sqlite_busy") || strings.Contains(m, "database is busy")
}

// lockCause classifies one time-to-error histogram bucket of a lock error.
func lockCause(msg string, c Cell, waited time.Duration) string {
	m := strings.ToLower(msg)
	bt := c.BusyTimeoutDuration()
	switch {
	case strings.Contains(m, "snapshot"):
		return CauseSnapshot
	case strings.Contains(m, "(sqlite_busy)") && bt > 0 && waited < bt:
		// Lode's 503 names the code: plain SQLITE_BUSY that came before
		// the timeout ran out is a refused upgrade, in any journal mode.
		return CauseUpgrade
	case bt < 0:
		return CauseOther
	case bt == 0:
		return CauseNoWait
	case waited >= bt:
		return CauseTimeout
	case c.JournalMode == "wal":
		return CauseAtOnceWAL
	}
	return CauseUpgrade
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// runResult converts one load result (plus the server's CPU time and RSS
// over the measured period) into a report.Run.
func runResult(res *loadgen.Result, c Cell, serverCPU time.Duration, rss int64) *report.Run {
	t := res.Total
	sec := res.Duration.Seconds()
	r := &report.Run{RPS: t.RPS, P50MS: ms(t.P50), P90MS: ms(t.P90), P99MS: ms(t.P99), MaxMS: ms(t.Max),
		Requests: t.Count, Errors: t.Failures, Unfinished: res.Unfinished, GenSaturated: res.CPU.Bound,
		GenCPU:      100 * res.CPU.Utilization * float64(max(res.CPU.Cores, 1)),
		ServerRSSMB: float64(rss) / (1 << 20)}
	if sec > 0 {
		r.OKRPS = float64(t.Count-t.Failures) / sec
		r.ServerCPU = 100 * serverCPU.Seconds() / sec
	}
	for _, p := range percentilePoints {
		r.Percentiles = append(r.Percentiles, report.Percentile{P: p, MS: ms(t.Percentile(p))})
	}
	if len(t.Errors) > 0 {
		r.ErrorsByMessage = map[string]int64{}
	}
	locks := map[string]*report.LockCause{}
	for _, e := range t.Errors {
		r.ErrorsByMessage[e.Message] += e.Count
		if !isLockError(e.Message) || e.Latency == nil {
			continue
		}
		for _, bar := range e.Latency.HDR().Distribution() {
			if bar.Count == 0 {
				continue
			}
			waited := time.Duration(bar.To) * time.Microsecond
			cause := lockCause(e.Message, c, waited)
			lc := locks[cause]
			if lc == nil {
				lc = &report.LockCause{Cause: cause, Buckets: emptyBuckets()}
				locks[cause] = lc
			}
			lc.Count += bar.Count
			lc.Buckets[bucketIndex(ms(waited))].Count += bar.Count
		}
	}
	for _, lc := range locks {
		r.Locks = append(r.Locks, *lc)
	}
	slices.SortFunc(r.Locks, func(a, b report.LockCause) int { return cmp.Compare(b.Count, a.Count) })
	return r
}

func emptyBuckets() []report.Bucket {
	b := make([]report.Bucket, 0, len(bucketBounds)+1)
	for _, le := range bucketBounds {
		b = append(b, report.Bucket{LeMS: le})
	}
	return append(b, report.Bucket{LeMS: -1})
}

func bucketIndex(v float64) int {
	for i, le := range bucketBounds {
		if v <= le {
			return i
		}
	}
	return len(bucketBounds)
}

func median(vs []float64) float64 {
	if len(vs) == 0 {
		return 0
	}
	vs = slices.Clone(vs)
	slices.Sort(vs)
	if len(vs)%2 == 1 {
		return vs[len(vs)/2]
	}
	return (vs[len(vs)/2-1] + vs[len(vs)/2]) / 2
}

// Thresholds of genBound.
const (
	// machineBusy is the share of all cores the generator and the server
	// used together above which the machine counts as saturated.
	machineBusy = 0.90
	// genShareBound is the generator's share of that CPU from which it
	// counts as having limited the server: with it on another machine the
	// server could have had a quarter more CPU.
	genShareBound = 0.20
)

// genBound reports whether a cell where the generator used genCPU and the
// server srvCPU (percent of one core, medians) on a machine of cores
// cores was limited by the generator: together they saturated the cores,
// and the generator took at least genShareBound of that CPU.
func genBound(genCPU, srvCPU float64, cores int) bool {
	used := genCPU + srvCPU
	return cores > 0 && used >= machineBusy*100*float64(cores) && genCPU >= genShareBound*used
}

// summarise fills a cell's summary from its runs: medians for rates,
// latencies and CPU (robust to one noisy repeat), min/max as the spread,
// sums for counts, the largest max latency, and the latency curve of the
// median run.
func summarise(c *report.Cell) {
	c.Status = report.StatusOK
	if len(c.Runs) == 0 {
		return
	}
	col := func(f func(r *report.Run) float64) []float64 {
		out := make([]float64, len(c.Runs))
		for i := range c.Runs {
			out[i] = f(&c.Runs[i])
		}
		return out
	}
	rps := col(func(r *report.Run) float64 { return r.RPS })
	c.RPS = median(rps)
	c.RPSMin, c.RPSMax = slices.Min(rps), slices.Max(rps)
	c.OKRPS = median(col(func(r *report.Run) float64 { return r.OKRPS }))
	c.P50MS = median(col(func(r *report.Run) float64 { return r.P50MS }))
	c.P99MS = median(col(func(r *report.Run) float64 { return r.P99MS }))
	c.MaxMS = slices.Max(col(func(r *report.Run) float64 { return r.MaxMS }))
	c.GenCPU = median(col(func(r *report.Run) float64 { return r.GenCPU }))
	c.ServerCPU = median(col(func(r *report.Run) float64 { return r.ServerCPU }))
	c.GenBound = genBound(c.GenCPU, c.ServerCPU, runtime.NumCPU())
	c.ServerRSSMB = median(col(func(r *report.Run) float64 { return r.ServerRSSMB }))
	c.Server = sumServerStats(c.Runs) // evidence.go
	locks := map[string]*report.LockCause{}
	var order []string
	for i := range c.Runs {
		r := &c.Runs[i]
		c.Requests += r.Requests
		c.Errors += r.Errors
		c.Unfinished += r.Unfinished
		c.GenSaturated = c.GenSaturated || r.GenSaturated
		c.GenBound = c.GenBound || r.GenSaturated
		for m, n := range r.ErrorsByMessage {
			if c.ErrorsByMessage == nil {
				c.ErrorsByMessage = map[string]int64{}
			}
			c.ErrorsByMessage[m] += n
			if isLockError(m) {
				c.LockErrors += n
			}
		}
		for _, l := range r.Locks {
			lc := locks[l.Cause]
			if lc == nil {
				lc = &report.LockCause{Cause: l.Cause, Buckets: emptyBuckets()}
				locks[l.Cause] = lc
				order = append(order, l.Cause)
			}
			lc.Count += l.Count
			for j := range l.Buckets {
				if j < len(lc.Buckets) {
					lc.Buckets[j].Count += l.Buckets[j].Count
				}
			}
		}
	}
	c.Locks = nil
	for _, k := range order {
		c.Locks = append(c.Locks, *locks[k])
	}
	slices.SortFunc(c.Locks, func(a, b report.LockCause) int { return cmp.Compare(b.Count, a.Count) })
	if c.Requests > 0 {
		c.ErrorRate = float64(c.Errors) / float64(c.Requests)
	}
	// The median run by req/s supplies the latency curve.
	idx := make([]int, len(c.Runs))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int { return cmp.Compare(c.Runs[a].RPS, c.Runs[b].RPS) })
	c.Percentiles = c.Runs[idx[len(idx)/2]].Percentiles
}
