package loadgen

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Histogram geometry: latencies in microseconds from 1 µs to 1 hour with 3
// significant digits (0.1% resolution), the HdrHistogram default. Every
// histogram Lode writes has this geometry, so any two merge exactly.
// Time-to-error histograms use 2 digits (1% resolution, an eighth of the
// memory): a run may keep up to maxErrorGroups of them per request name
// and recorder shard.
const (
	histLowest     = 1
	histHighest    = int64(time.Hour / time.Microsecond)
	histSigFigs    = 3
	errHistSigFigs = 2
)

// Histogram is an HDR histogram of latencies. The zero value is not usable;
// call [NewHistogram]. Not safe for concurrent use.
type Histogram struct {
	h *hdrhistogram.Histogram
}

// NewHistogram returns an empty latency histogram.
func NewHistogram() *Histogram {
	return &Histogram{h: hdrhistogram.New(histLowest, histHighest, histSigFigs)}
}

// newErrorHistogram returns an empty time-to-error histogram.
func newErrorHistogram() *Histogram {
	return &Histogram{h: hdrhistogram.New(histLowest, histHighest, errHistSigFigs)}
}

// Record adds one latency; values beyond one hour are recorded as one hour
// and values below 1 µs as 1 µs.
func (h *Histogram) Record(d time.Duration) {
	us := int64(d / time.Microsecond)
	if us < histLowest {
		us = histLowest
	}
	if us > histHighest {
		us = histHighest
	}
	_ = h.h.RecordValue(us) // in range by construction
}

// Count returns the number of recorded latencies.
func (h *Histogram) Count() int64 { return h.h.TotalCount() }

// Percentile returns the latency at percentile p (0-100); 0 when empty.
func (h *Histogram) Percentile(p float64) time.Duration {
	if h.h.TotalCount() == 0 {
		return 0
	}
	return time.Duration(h.h.ValueAtPercentile(p)) * time.Microsecond
}

// Max returns the largest recorded latency (to histogram resolution).
func (h *Histogram) Max() time.Duration {
	if h.h.TotalCount() == 0 {
		return 0
	}
	return time.Duration(h.h.Max()) * time.Microsecond
}

// Min returns the smallest recorded latency (to histogram resolution).
func (h *Histogram) Min() time.Duration {
	if h.h.TotalCount() == 0 {
		return 0
	}
	return time.Duration(h.h.Min()) * time.Microsecond
}

// Mean returns the mean latency.
func (h *Histogram) Mean() time.Duration {
	if h.h.TotalCount() == 0 {
		return 0
	}
	return time.Duration(h.h.Mean() * float64(time.Microsecond))
}

// CountAtOrAbove returns how many recorded latencies are at least d (to
// histogram resolution), e.g. to count requests that missed a target.
func (h *Histogram) CountAtOrAbove(d time.Duration) int64 {
	us := int64(d / time.Microsecond)
	var n int64
	for _, b := range h.h.Distribution() {
		if b.To >= us {
			n += b.Count
		}
	}
	return n
}

// Merge adds every value of o to h. Latency histograms made by this
// package share one geometry (and time-to-error histograms another), so
// merging like with like is exact.
func (h *Histogram) Merge(o *Histogram) {
	if o != nil {
		h.h.Merge(o.h)
	}
}

// Clone returns an independent copy.
func (h *Histogram) Clone() *Histogram { return &Histogram{h: h.h.Clone()} }

// Equal reports whether h and o hold exactly the same counts.
func (h *Histogram) Equal(o *Histogram) bool { return h.h.Equals(o.h) }

// HDR returns the underlying hdrhistogram-go histogram (values in µs).
func (h *Histogram) HDR() *hdrhistogram.Histogram { return h.h }

// MarshalJSON encodes the histogram losslessly in HdrHistogram's V2
// compressed format (base64), which HdrHistogram tools in other languages
// also read.
func (h *Histogram) MarshalJSON() ([]byte, error) {
	b, err := h.h.Encode(hdrhistogram.V2CompressedEncodingCookieBase)
	if err != nil {
		return nil, fmt.Errorf("encode histogram: %w", err)
	}
	return json.Marshal(string(b))
}

// UnmarshalJSON decodes a histogram written by MarshalJSON.
func (h *Histogram) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("histogram: want a base64 string: %w", err)
	}
	d, err := hdrhistogram.Decode([]byte(s))
	if err != nil {
		return fmt.Errorf("decode histogram: %w", err)
	}
	sf := d.SignificantFigures()
	if d.LowestTrackableValue() != histLowest || d.HighestTrackableValue() < histHighest || (sf != histSigFigs && sf != errHistSigFigs) {
		// A geometry Lode does not write: re-record into ours.
		n := NewHistogram()
		n.h.Merge(d)
		d = n.h
	}
	h.h = d
	return nil
}

// Stats are the statistics of one request name, or of all requests
// together (the "Aggregated" row). Counts and histograms are exact and
// mergeable; the derived fields (RPS, percentiles) are computed by
// [Stats.Derive] from them and a duration.
type Stats struct {
	Name   string `json:"name"`
	Method string `json:"method,omitempty"`
	// Count is the number of completed requests, failures included.
	Count int64 `json:"count"`
	// Failures counts requests that failed (transport error, status of
	// 400 or more, or a failed check).
	Failures int64 `json:"failures"`
	// Bytes is the total of response body bytes.
	Bytes int64 `json:"bytes"`
	// Latency holds every completed request's latency.
	Latency *Histogram `json:"latency"`
	// Errors groups failures by message, most frequent first.
	Errors []*ErrorStats `json:"errors,omitempty"`

	// Derived values, recomputed after a merge.
	RPS            float64       `json:"rps"`
	FailuresPerSec float64       `json:"failures_per_sec"`
	ErrorRate      float64       `json:"error_rate"` // Failures / Count
	Mean           time.Duration `json:"mean_ns"`
	Min            time.Duration `json:"min_ns"`
	P50            time.Duration `json:"p50_ns"`
	P90            time.Duration `json:"p90_ns"`
	P95            time.Duration `json:"p95_ns"`
	P99            time.Duration `json:"p99_ns"`
	P999           time.Duration `json:"p99_9_ns"`
	Max            time.Duration `json:"max_ns"`
}

// ErrorStats is one group of failures with the same message, e.g.
// "503 database is locked" or "dial: connection refused", with the
// latency of those failed requests (their time-to-error).
type ErrorStats struct {
	Message string     `json:"message"`
	Method  string     `json:"method,omitempty"`
	Name    string     `json:"name,omitempty"`
	Count   int64      `json:"count"`
	Latency *Histogram `json:"latency"`
}

func newStats(name, method string) *Stats {
	return &Stats{Name: name, Method: method, Latency: NewHistogram()}
}

// Percentile returns the latency at percentile p (0-100).
func (s *Stats) Percentile(p float64) time.Duration { return s.Latency.Percentile(p) }

// Derive fills the derived fields for a run of length d.
func (s *Stats) Derive(d time.Duration) {
	sec := d.Seconds()
	s.RPS, s.FailuresPerSec, s.ErrorRate = 0, 0, 0
	if sec > 0 {
		s.RPS = float64(s.Count) / sec
		s.FailuresPerSec = float64(s.Failures) / sec
	}
	if s.Count > 0 {
		s.ErrorRate = float64(s.Failures) / float64(s.Count)
	}
	h := s.Latency
	s.Mean, s.Min, s.Max = h.Mean(), h.Min(), h.Max()
	s.P50, s.P90, s.P95 = h.Percentile(50), h.Percentile(90), h.Percentile(95)
	s.P99, s.P999 = h.Percentile(99), h.Percentile(99.9)
	sortErrors(s.Errors)
}

// merge adds o's counts, histograms and error groups into s.
func (s *Stats) merge(o *Stats) {
	s.Count += o.Count
	s.Failures += o.Failures
	s.Bytes += o.Bytes
	s.Latency.Merge(o.Latency)
	s.Errors = mergeErrors(s.Errors, o.Errors, false)
}

// mergeErrors merges error groups keyed by (method, name, message), or by
// message alone when byMessage is set.
func mergeErrors(dst, src []*ErrorStats, byMessage bool) []*ErrorStats {
	key := func(e *ErrorStats) string {
		if byMessage {
			return e.Message
		}
		return e.Method + "\x00" + e.Name + "\x00" + e.Message
	}
	idx := make(map[string]*ErrorStats, len(dst))
	for _, e := range dst {
		idx[key(e)] = e
	}
	for _, e := range src {
		if d, ok := idx[key(e)]; ok {
			d.Count += e.Count
			d.Latency.Merge(e.Latency)
			continue
		}
		c := &ErrorStats{Message: e.Message, Count: e.Count, Latency: e.Latency.Clone()}
		if !byMessage {
			c.Method, c.Name = e.Method, e.Name
		}
		idx[key(c)] = c
		dst = append(dst, c)
	}
	return dst
}

func sortErrors(es []*ErrorStats) {
	sort.SliceStable(es, func(i, j int) bool {
		if es[i].Count != es[j].Count {
			return es[i].Count > es[j].Count
		}
		return es[i].Message < es[j].Message
	})
}

// HistoryPoint is one interval of the run (default 1 s): the rates and
// latency percentiles of requests completed in that interval, and the
// running totals — the rows of Locust's stats_history.csv.
type HistoryPoint struct {
	Time        time.Time       `json:"time"`
	Elapsed     time.Duration   `json:"elapsed_ns"`
	Users       int64           `json:"users"` // active users, or requests in flight (open model)
	RPS         float64         `json:"rps"`
	FailuresPS  float64         `json:"failures_per_sec"`
	DroppedPS   float64         `json:"dropped_per_sec,omitempty"`
	Percentiles []time.Duration `json:"percentiles_ns"` // at HistoryPercentiles
	TotalCount  int64           `json:"total_count"`
	TotalFail   int64           `json:"total_failures"`
	TotalP50    time.Duration   `json:"total_p50_ns"`
	TotalMean   time.Duration   `json:"total_mean_ns"`
	TotalMin    time.Duration   `json:"total_min_ns"`
	TotalMax    time.Duration   `json:"total_max_ns"`
	TotalBytes  int64           `json:"total_bytes"`
}

// HistoryPercentiles are the percentiles of each history interval, Locust's
// stats_history.csv columns 50%..100%.
var HistoryPercentiles = []float64{50, 66, 75, 80, 90, 95, 98, 99, 99.9, 99.99, 100}

// ErrResultVersion is returned when a result file comes from an
// incompatible version of Lode.
var ErrResultVersion = errors.New("loadgen: result file version not supported")

// ResultVersion is the version of the JSON result format.
const ResultVersion = 1

// safeDiv returns a/b, or 0 when b is 0.
func safeDiv(a, b float64) float64 {
	if b == 0 || math.IsNaN(b) {
		return 0
	}
	return a / b
}
