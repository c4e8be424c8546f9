package bench

import (
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// A two-worker scrape, as lode serve --workers 2 gives it.
const twoWorkers = `# HELP lode_sqlite_commit_batch_size x
# TYPE lode_sqlite_commit_batch_size histogram
lode_sqlite_commit_batch_size_bucket{db="demo",worker="1",le="1"} 2
lode_sqlite_commit_batch_size_bucket{db="demo",worker="1",le="2"} 2
lode_sqlite_commit_batch_size_bucket{db="demo",worker="1",le="4"} 5
lode_sqlite_commit_batch_size_bucket{db="demo",worker="1",le="+Inf"} 5
lode_sqlite_commit_batch_size_sum{db="demo",worker="1"} 11
lode_sqlite_commit_batch_size_count{db="demo",worker="1"} 5
lode_sqlite_commit_batch_size_bucket{db="demo",worker="2",le="1"} 1
lode_sqlite_commit_batch_size_bucket{db="demo",worker="2",le="2"} 1
lode_sqlite_commit_batch_size_bucket{db="demo",worker="2",le="4"} 1
lode_sqlite_commit_batch_size_bucket{db="demo",worker="2",le="+Inf"} 2
lode_sqlite_commit_batch_size_sum{db="demo",worker="2"} 9
lode_sqlite_commit_batch_size_count{db="demo",worker="2"} 2
# HELP lode_sqlite_commit_seconds x
# TYPE lode_sqlite_commit_seconds histogram
lode_sqlite_commit_seconds_bucket{db="demo",worker="1",le="0.001"} 4
lode_sqlite_commit_seconds_bucket{db="demo",worker="1",le="+Inf"} 5
lode_sqlite_commit_seconds_sum{db="demo",worker="1"} 0.006
lode_sqlite_commit_seconds_count{db="demo",worker="1"} 5
# HELP lode_sqlite_lock_errors_total x
# TYPE lode_sqlite_lock_errors_total counter
lode_sqlite_lock_errors_total{code="SQLITE_BUSY",db="demo",worker="1"} 2
lode_sqlite_lock_errors_total{code="SQLITE_BUSY",db="demo",worker="2"} 1
# HELP lode_sqlite_lock_wait_seconds_total x
# TYPE lode_sqlite_lock_wait_seconds_total counter
lode_sqlite_lock_wait_seconds_total{db="demo",worker="1"} 0.25
# HELP lode_sqlite_lock_wait_sleeps_total x
# TYPE lode_sqlite_lock_wait_sleeps_total counter
lode_sqlite_lock_wait_sleeps_total{db="demo",worker="1"} 7
# HELP lode_worker_up x
# TYPE lode_worker_up gauge
lode_worker_up{worker="1"} 1
lode_worker_up{worker="2"} 1
`

func TestServerStatsSumsWorkers(t *testing.T) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(twoWorkers))
	if err != nil {
		t.Fatal(err)
	}
	s := serverStats(mfs)
	b := s.BatchSizes
	if b.Count != 7 || b.Sum != 20 || len(b.Le) != 3 || b.Counts[0] != 3 || b.Counts[2] != 3 || b.Counts[3] != 1 {
		t.Errorf("batch sizes = %+v; want 7 transactions, 20 requests, counts [3 0 3 1]", b)
	}
	if got := b.Distribution(true); got != "1: 3, 3–4: 3, >4: 1" {
		t.Errorf("Distribution = %q", got)
	}
	if s.CommitMS.Count != 5 || s.CommitMS.Sum != 6 || s.CommitMS.Le[0] != 1 {
		t.Errorf("commit = %+v; want 5 commits, 6 ms, bounds in ms", s.CommitMS)
	}
	if s.LockErrors["SQLITE_BUSY"] != 3 || s.LockWaitSleeps != 7 || s.LockWaitMS != 250 || s.Workers != 2 {
		t.Errorf("stats = %+v", s)
	}
	// The run's share: the end minus the start.
	before := serverStats(mfs)
	after := serverStats(mfs)
	after.BatchSizes.Counts[2] += 4
	after.BatchSizes.Count += 4
	after.BatchSizes.Sum += 14
	after.LockErrors["SQLITE_BUSY_SNAPSHOT"] = 1
	d := statsDelta(after, before)
	if d.BatchSizes.Count != 4 || d.BatchSizes.Sum != 14 || d.BatchSizes.Counts[2] != 4 || d.LockErrors["SQLITE_BUSY"] != 0 ||
		d.LockErrors["SQLITE_BUSY_SNAPSHOT"] != 1 || d.CommitMS.Count != 0 {
		t.Errorf("delta = %+v", d)
	}
}
