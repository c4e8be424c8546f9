package report

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
)

// ServerStats is what a lode target's /-/metrics showed for one measured
// run (the counters at its end minus those at its start, summed over the
// server's workers), or for a cell (its runs summed): the evidence inside
// the server behind a write cell's throughput.
type ServerStats struct {
	// Workers is how many worker processes' metrics were read (the
	// smallest count of a cell's runs); fewer than the cell's workers
	// means the numbers are partial.
	Workers int `json:"workers"`
	// BatchSizes holds the write requests per transaction: the single
	// writer's group-commit batches, 1 each with --writer pool. Its Count
	// is the transactions, its Sum the write requests.
	BatchSizes Hist `json:"batch_sizes"`
	// CommitMS is the time of each COMMIT (with synchronous=full it
	// includes the fsync), FsyncMS of each fsync of any file (WAL,
	// journal, database), QueueWaitMS of each request's wait for its
	// transaction, CheckpointMS of each WAL checkpoint.
	CommitMS     Hist `json:"commit_ms"`
	FsyncMS      Hist `json:"fsync_ms"`
	QueueWaitMS  Hist `json:"queue_wait_ms"`
	CheckpointMS Hist `json:"checkpoint_ms"`
	// LockWaitSleeps counts the sleeps of SQLite's busy handler while
	// another connection held a lock, LockWaitMS their total time.
	LockWaitSleeps float64 `json:"lock_wait_sleeps"`
	LockWaitMS     float64 `json:"lock_wait_ms"`
	// LockErrors counts lock errors by SQLite code (SQLITE_BUSY, ...).
	LockErrors map[string]float64 `json:"lock_errors,omitempty"`
}

// Hist is a histogram with fixed buckets: Counts[i] observations were at
// most Le[i] (and above Le[i-1]); the last count, one past Le, is above
// them all.
type Hist struct {
	Le     []float64 `json:"le"`
	Counts []uint64  `json:"counts"`
	Count  uint64    `json:"count"`
	Sum    float64   `json:"sum"`
}

// Add adds o's observations to h (the buckets must match, or h be empty).
func (h *Hist) Add(o Hist) {
	if len(h.Counts) == 0 {
		h.Le, h.Counts = slices.Clone(o.Le), make([]uint64, len(o.Counts))
	}
	if len(o.Counts) == len(h.Counts) {
		for i, c := range o.Counts {
			h.Counts[i] += c
		}
	}
	h.Count += o.Count
	h.Sum += o.Sum
}

// Mean is Sum/Count, 0 without observations.
func (h Hist) Mean() float64 {
	if h.Count == 0 {
		return 0
	}
	return h.Sum / float64(h.Count)
}

// Quantile is the upper bound of the bucket holding quantile q (0..1):
// no observation of that quantile was larger. +Inf past the last bound.
func (h Hist) Quantile(q float64) float64 {
	var n uint64
	for i, c := range h.Counts {
		n += c
		if n > 0 && float64(n) >= q*float64(h.Count) {
			if i < len(h.Le) {
				return h.Le[i]
			}
			break
		}
	}
	return math.Inf(1)
}

// Distribution lists the non-empty buckets, e.g. "1: 20, 2: 15, 3–4: 40,
// 5–8: 200" (for integer sizes; durations get their bounds).
func (h Hist) Distribution(integer bool) string {
	var parts []string
	for i, c := range h.Counts {
		if c == 0 {
			continue
		}
		lo := math.Inf(-1)
		if i > 0 {
			lo = h.Le[i-1]
		}
		var r string
		switch {
		case i == len(h.Le):
			r = fmt.Sprintf(">%g", lo)
		case integer && (i == 0 || h.Le[i] == lo+1):
			r = fmt.Sprintf("%g", h.Le[i])
		case integer:
			r = fmt.Sprintf("%g–%g", lo+1, h.Le[i])
		case i == 0:
			r = fmt.Sprintf("≤%g", h.Le[i])
		default:
			r = fmt.Sprintf("%g–%g", lo, h.Le[i])
		}
		parts = append(parts, fmt.Sprintf("%s: %d", r, c))
	}
	return strings.Join(parts, ", ")
}

// Add sums o into s.
func (s *ServerStats) Add(o *ServerStats) {
	if o == nil {
		return
	}
	if s.Workers == 0 || o.Workers < s.Workers {
		s.Workers = o.Workers
	}
	s.BatchSizes.Add(o.BatchSizes)
	s.CommitMS.Add(o.CommitMS)
	s.FsyncMS.Add(o.FsyncMS)
	s.QueueWaitMS.Add(o.QueueWaitMS)
	s.CheckpointMS.Add(o.CheckpointMS)
	s.LockWaitSleeps += o.LockWaitSleeps
	s.LockWaitMS += o.LockWaitMS
	for k, v := range o.LockErrors {
		if s.LockErrors == nil {
			s.LockErrors = map[string]float64{}
		}
		s.LockErrors[k] += v
	}
}

// BatchSummary is the batch sizes in words, for findings: "7.6 requests
// per transaction on average (median ≤ 8, 90% ≤ 16)".
func (s *ServerStats) BatchSummary() string {
	b := s.BatchSizes
	if b.Count == 0 {
		return "no write transactions"
	}
	return fmt.Sprintf("%.1f requests per transaction on average (median ≤ %s, 90%% ≤ %s; %d transactions for %.0f write requests)",
		b.Mean(), bound(b.Quantile(0.5)), bound(b.Quantile(0.9)), b.Count, b.Sum)
}

func bound(v float64) string {
	if math.IsInf(v, 1) {
		return "∞"
	}
	return fmt.Sprintf("%g", v)
}

// Evidence is one write cell's server evidence, formatted for the report.
type Evidence struct {
	ID                 int
	Label              string
	Writes, Txns       string
	BatchMean, Batches string
	CommitMean, Commit string
	Fsyncs, FsyncMean  string
	LockWaits, LockMS  string
	LockErrors         string
	Checkpoints        string
	Partial            bool
}

// ServerEvidence lists the cells whose server reported write transactions
// (lode targets with writes), in cell order.
func ServerEvidence(r *Results) []Evidence {
	var out []Evidence
	for i := range r.Cells {
		c := &r.Cells[i]
		s := c.Server
		if c.Status != StatusOK || s == nil || s.BatchSizes.Count == 0 {
			continue
		}
		errs := "none"
		if len(s.LockErrors) > 0 {
			var parts []string
			for _, k := range sortedKeys(s.LockErrors) {
				parts = append(parts, fmt.Sprintf("%s %.0f", k, s.LockErrors[k]))
			}
			errs = strings.Join(parts, ", ")
		}
		out = append(out, Evidence{
			ID: c.ID, Label: c.Label(),
			Writes: fmt.Sprintf("%.0f", s.BatchSizes.Sum), Txns: fmt.Sprintf("%d", s.BatchSizes.Count),
			BatchMean: fmt.Sprintf("%.1f", s.BatchSizes.Mean()), Batches: s.BatchSizes.Distribution(true),
			CommitMean: fmt.Sprintf("%.2f", s.CommitMS.Mean()), Commit: bound(s.CommitMS.Quantile(0.99)),
			Fsyncs: fmt.Sprintf("%d", s.FsyncMS.Count), FsyncMean: fmt.Sprintf("%.2f", s.FsyncMS.Mean()),
			LockWaits: fmt.Sprintf("%.0f", s.LockWaitSleeps), LockMS: fmt.Sprintf("%.0f", s.LockWaitMS),
			LockErrors: errs, Checkpoints: fmt.Sprintf("%d", s.CheckpointMS.Count),
			Partial: c.Workers != "" && fmt.Sprint(s.Workers) != c.Workers && c.Workers != "0",
		})
	}
	return out
}

// WriteServerEvidence prints the write cells' server evidence, one
// paragraph per cell; nothing when no cell has any.
func WriteServerEvidence(w io.Writer, r *Results) {
	ev := ServerEvidence(r)
	if len(ev) == 0 {
		return
	}
	fmt.Fprintln(w, "\nInside the server (lode's /-/metrics over each measured run, summed):")
	for _, e := range ev {
		partial := ""
		if e.Partial {
			partial = " (not every worker answered: partial)"
		}
		fmt.Fprintf(w, "  cell %d %s%s\n    %s write requests in %s transactions, %s per transaction on average; batches by size: %s\n"+
			"    COMMIT mean %s ms (99%% ≤ %s ms); %s fsyncs, mean %s ms; lock waits: %s busy-handler sleeps, %s ms; lock errors: %s; checkpoints: %s\n",
			e.ID, e.Label, partial, e.Writes, e.Txns, e.BatchMean, e.Batches, e.CommitMean, e.Commit, e.Fsyncs, e.FsyncMean,
			e.LockWaits, e.LockMS, e.LockErrors, e.Checkpoints)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
