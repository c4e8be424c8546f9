package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"lode/internal/report"
)

// The evidence inside the server: for lode targets the runner reads
// /-/metrics when the measured period starts and when it ends, and the
// difference — group-commit batch sizes, COMMIT and fsync times, lock
// waits and lock errors, summed over the server's workers — goes into the
// run's report.ServerStats. Other targets are not asked.

// metricsTimeout bounds one read of /-/metrics (the master gathers every
// worker's within 2 s).
const metricsTimeout = 5 * time.Second

// readServerStats scrapes base's /-/metrics into cumulative ServerStats.
func readServerStats(ctx context.Context, base string) (*report.ServerStats, error) {
	ctx, cancel := context.WithTimeout(ctx, metricsTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(base, "/")+"/-/metrics", nil)
	if err != nil {
		return nil, err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("read /-/metrics: %w", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(res.Body, 512))
		return nil, fmt.Errorf("read /-/metrics: %s: %s", res.Status, strings.TrimSpace(string(b)))
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(res.Body)
	if err != nil {
		return nil, fmt.Errorf("parse /-/metrics: %w", err)
	}
	return serverStats(mfs), nil
}

// serverStats sums the metrics the report shows over every worker and
// database.
func serverStats(mfs map[string]*dto.MetricFamily) *report.ServerStats {
	s := &report.ServerStats{
		BatchSizes:   histOf(mfs["lode_sqlite_commit_batch_size"], 1),
		CommitMS:     histOf(mfs["lode_sqlite_commit_seconds"], 1000),
		FsyncMS:      histOf(mfs["lode_sqlite_fsync_seconds"], 1000),
		QueueWaitMS:  histOf(mfs["lode_sqlite_writer_queue_wait_seconds"], 1000),
		CheckpointMS: histOf(mfs["lode_sqlite_checkpoint_seconds"], 1000),
	}
	for _, m := range metricsOf(mfs["lode_sqlite_lock_wait_sleeps_total"]) {
		s.LockWaitSleeps += m.GetCounter().GetValue()
	}
	for _, m := range metricsOf(mfs["lode_sqlite_lock_wait_seconds_total"]) {
		s.LockWaitMS += 1000 * m.GetCounter().GetValue()
	}
	for _, m := range metricsOf(mfs["lode_sqlite_lock_errors_total"]) {
		if s.LockErrors == nil {
			s.LockErrors = map[string]float64{}
		}
		s.LockErrors[label(m, "code")] += m.GetCounter().GetValue()
	}
	if mf := mfs["lode_worker_up"]; mf != nil {
		for _, m := range mf.Metric {
			s.Workers += int(m.GetGauge().GetValue())
		}
	} else if mfs["lode_info"] != nil {
		s.Workers = 1 // one process: --workers 0
	}
	return s
}

func metricsOf(mf *dto.MetricFamily) []*dto.Metric {
	if mf == nil {
		return nil
	}
	return mf.Metric
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.Label {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// histOf sums a histogram family's series into one report.Hist, with
// bounds and sum multiplied by scale (1000: seconds to ms).
func histOf(mf *dto.MetricFamily, scale float64) report.Hist {
	var out report.Hist
	for _, m := range metricsOf(mf) {
		h := m.GetHistogram()
		if h == nil {
			continue
		}
		var one report.Hist
		var prev uint64
		for _, b := range h.Bucket {
			if b.GetUpperBound() > 1e300 { // +Inf, when the parser keeps it
				continue
			}
			one.Le = append(one.Le, b.GetUpperBound()*scale)
			one.Counts = append(one.Counts, b.GetCumulativeCount()-prev)
			prev = b.GetCumulativeCount()
		}
		one.Counts = append(one.Counts, h.GetSampleCount()-prev)
		one.Count, one.Sum = h.GetSampleCount(), h.GetSampleSum()*scale
		out.Add(one)
	}
	return out
}

// statsDelta is after minus before: what happened during the measured
// run. A counter that went down (a worker restarted during the run)
// counts from zero.
func statsDelta(after, before *report.ServerStats) *report.ServerStats {
	if before == nil {
		return after
	}
	d := &report.ServerStats{Workers: after.Workers,
		BatchSizes: histDelta(after.BatchSizes, before.BatchSizes), CommitMS: histDelta(after.CommitMS, before.CommitMS),
		FsyncMS: histDelta(after.FsyncMS, before.FsyncMS), QueueWaitMS: histDelta(after.QueueWaitMS, before.QueueWaitMS),
		CheckpointMS:   histDelta(after.CheckpointMS, before.CheckpointMS),
		LockWaitSleeps: max(after.LockWaitSleeps-before.LockWaitSleeps, 0), LockWaitMS: max(after.LockWaitMS-before.LockWaitMS, 0)}
	for k, v := range after.LockErrors {
		if n := v - before.LockErrors[k]; n > 0 {
			if d.LockErrors == nil {
				d.LockErrors = map[string]float64{}
			}
			d.LockErrors[k] = n
		}
	}
	return d
}

func histDelta(a, b report.Hist) report.Hist {
	if len(b.Counts) != len(a.Counts) {
		return a
	}
	d := report.Hist{Le: a.Le, Counts: make([]uint64, len(a.Counts)), Sum: max(a.Sum-b.Sum, 0)}
	for i := range a.Counts {
		if a.Counts[i] > b.Counts[i] {
			d.Counts[i] = a.Counts[i] - b.Counts[i]
		}
		d.Count += d.Counts[i]
	}
	return d
}

// sumServerStats adds up a cell's runs; nil when no run has any.
func sumServerStats(runs []report.Run) *report.ServerStats {
	var s *report.ServerStats
	for i := range runs {
		if runs[i].Server == nil {
			continue
		}
		if s == nil {
			s = &report.ServerStats{}
		}
		s.Add(runs[i].Server)
	}
	return s
}

// groupCommitEvidence is finding 5's citation of the batch sizes the
// single writer's server reported at synchronous=full (and the pool's
// commit time beside it); "" without server metrics.
func groupCommitEvidence(single, pool *report.Cell) string {
	s := single.Server
	if s == nil || s.BatchSizes.Count == 0 {
		return ""
	}
	out := fmt.Sprintf(" Inside the server (cell %d's /-/metrics): group commit put %s; COMMIT took %.2f ms on average",
		single.ID, s.BatchSummary(), s.CommitMS.Mean())
	if s.FsyncMS.Count > 0 {
		out += fmt.Sprintf(", with %d fsyncs of %.2f ms", s.FsyncMS.Count, s.FsyncMS.Mean())
	}
	if pool != nil && pool.Server != nil && pool.Server.BatchSizes.Count > 0 {
		ps := pool.Server
		out += fmt.Sprintf(", against the pool's %.1f requests per transaction and %.2f ms per COMMIT (cell %d)",
			ps.BatchSizes.Mean(), ps.CommitMS.Mean(), pool.ID)
	}
	return out + "."
}
