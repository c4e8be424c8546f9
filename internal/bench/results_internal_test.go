package bench

import (
	"testing"
	"time"

	"lode/internal/report"
)

func TestLockCause(t *testing.T) {
	deferred5s := Cell{BusyTimeout: "5s", TxLock: "deferred"}
	for _, tt := range []struct {
		msg    string
		c      Cell
		waited time.Duration
		want   string
	}{
		{"503 database is locked", deferred5s, time.Millisecond, CauseUpgrade},
		{"503 database is locked", deferred5s, 5 * time.Second, CauseTimeout},
		{"503 database is locked", deferred5s, 300 * time.Millisecond, CauseUpgrade},
		{"503 database is locked", Cell{}, 300 * time.Millisecond, CauseOther},
		{"503 database is locked (SQLITE_BUSY_SNAPSHOT)", deferred5s, time.Millisecond, CauseSnapshot},
		{"503 database is locked", Cell{BusyTimeout: "0s"}, time.Millisecond, CauseNoWait},
		{"503 database is locked", Cell{BusyTimeout: "5s", JournalMode: "wal"}, 2 * time.Millisecond, CauseAtOnceWAL},
		{"503 database is locked (SQLITE_BUSY)", Cell{BusyTimeout: "5s", JournalMode: "wal"}, 2 * time.Millisecond, CauseUpgrade},
		{"503 database is locked (SQLITE_BUSY)", Cell{BusyTimeout: "5s", JournalMode: "wal"}, 5 * time.Second, CauseTimeout},
	} {
		if got := lockCause(tt.msg, tt.c, tt.waited); got != tt.want {
			t.Errorf("lockCause(%q, busy %s, %v) = %q; want %q", tt.msg, tt.c.BusyTimeout, tt.waited, got, tt.want)
		}
	}
	for msg, want := range map[string]bool{"503 database is locked": true, "500 SQLITE_BUSY": true, "404 not found": false} {
		if got := isLockError(msg); got != want {
			t.Errorf("isLockError(%q) = %v; want %v", msg, got, want)
		}
	}
}

func TestSummarise(t *testing.T) {
	c := report.Cell{Runs: []report.Run{
		{RPS: 100, OKRPS: 90, P99MS: 10, MaxMS: 50, Requests: 100, Errors: 10, ErrorsByMessage: map[string]int64{"503 database is locked": 10},
			Locks: []report.LockCause{{Cause: CauseUpgrade, Count: 10, Buckets: emptyBuckets()}}, Percentiles: []report.Percentile{{P: 50, MS: 1}}},
		{RPS: 300, OKRPS: 300, P99MS: 30, MaxMS: 70, Requests: 300, Percentiles: []report.Percentile{{P: 50, MS: 3}}},
		{RPS: 200, OKRPS: 190, P99MS: 20, MaxMS: 60, Requests: 200, Errors: 10, ErrorsByMessage: map[string]int64{"503 database is locked": 6, "500 boom": 4},
			Locks: []report.LockCause{{Cause: CauseUpgrade, Count: 6, Buckets: emptyBuckets()}}, Percentiles: []report.Percentile{{P: 50, MS: 2}}},
	}}
	c.Runs[0].Locks[0].Buckets[0].Count = 10
	c.Runs[2].Locks[0].Buckets[1].Count = 6
	summarise(&c)
	if c.RPS != 200 || c.RPSMin != 100 || c.RPSMax != 300 || c.OKRPS != 190 || c.P99MS != 20 || c.MaxMS != 70 {
		t.Errorf("summary rps %v [%v, %v], ok %v, p99 %v, max %v; want medians 200/190/20, spread 100-300, max 70",
			c.RPS, c.RPSMin, c.RPSMax, c.OKRPS, c.P99MS, c.MaxMS)
	}
	if c.Requests != 600 || c.Errors != 20 || c.LockErrors != 16 || c.ErrorsByMessage["500 boom"] != 4 {
		t.Errorf("sums: requests %d errors %d lock %d by message %v", c.Requests, c.Errors, c.LockErrors, c.ErrorsByMessage)
	}
	if len(c.Locks) != 1 || c.Locks[0].Count != 16 || c.Locks[0].Buckets[0].Count != 10 || c.Locks[0].Buckets[1].Count != 6 {
		t.Errorf("locks = %+v; want one cause with 16 split 10/6 across the first two buckets", c.Locks)
	}
	if len(c.Percentiles) != 1 || c.Percentiles[0].MS != 2 {
		t.Errorf("percentiles = %v; want the median run's (p50 2 ms)", c.Percentiles)
	}
}

func TestGenBound(t *testing.T) {
	for _, tt := range []struct {
		gen, srv float64
		cores    int
		want     bool
	}{
		{80, 110, 2, true},   // the machine was saturated; the generator took 42% of it
		{30, 160, 2, false},  // saturated, but the generator took only 16%
		{60, 100, 2, false},  // 160% of 200%: the server had CPU to spare
		{120, 100, 4, false}, // a 4-core machine was half idle
		{100, 260, 4, true},  //
		{0, 0, 2, false},     //
		{200, 200, 0, false}, // unknown core count
	} {
		if got := genBound(tt.gen, tt.srv, tt.cores); got != tt.want {
			t.Errorf("genBound(gen %.0f%%, server %.0f%%, %d cores) = %v; want %v", tt.gen, tt.srv, tt.cores, got, tt.want)
		}
	}
}
