package loadgen

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Threshold is a pass/fail criterion on a result, as in k6:
//
//	p99<250ms   p(95)<1s   avg<100ms   max<=2s   med<50ms
//	errors<0.1%   rps>100   count>=1000   dropped<1%
//	"insert:p99<50ms"      (only the requests named insert)
//
// Latency values take a unit (µs/us, ms, s; a bare number is ms, as in k6),
// errors and dropped take a percentage or a fraction.
type Threshold struct {
	Expr   string  // as given
	Name   string  // request name, or "" for all requests
	Metric string  // normalised: p99, p99.9, avg, min, max, errors, rps, count, dropped
	Op     string  // <, <=, >, >=
	Value  float64 // ns for latencies, fraction for errors/dropped
	pct    float64 // percentile for pNN metrics
}

// ThresholdResult is one evaluated threshold.
type ThresholdResult struct {
	Expr   string `json:"expr"`
	Actual string `json:"actual"`
	Pass   bool   `json:"pass"`
}

// ParseThreshold parses one threshold expression.
func ParseThreshold(s string) (Threshold, error) {
	t := Threshold{Expr: s}
	expr := strings.TrimSpace(s)
	if i := strings.LastIndex(expr, ":"); i >= 0 {
		t.Name = strings.TrimSpace(expr[:i])
		expr = strings.TrimSpace(expr[i+1:])
	}
	opAt := strings.IndexAny(expr, "<>")
	if opAt <= 0 {
		return t, fmt.Errorf("threshold %q: want METRIC<VALUE or METRIC>VALUE, e.g. p99<250ms or errors<0.1%%", s)
	}
	metric := strings.ToLower(strings.TrimSpace(expr[:opAt]))
	rest := expr[opAt:]
	t.Op = rest[:1]
	if strings.HasPrefix(rest[1:], "=") {
		t.Op += "="
	}
	val := strings.TrimSpace(rest[len(t.Op):])
	metric = strings.NewReplacer("(", "", ")", "", " ", "").Replace(metric)
	switch metric {
	case "med", "median":
		metric = "p50"
	case "mean":
		metric = "avg"
	case "error", "error_rate", "errors_rate", "failures", "fail", "http_req_failed":
		metric = "errors"
	case "req/s", "reqs", "throughput":
		metric = "rps"
	case "requests":
		metric = "count"
	}
	t.Metric = metric
	var err error
	switch {
	case strings.HasPrefix(metric, "p"):
		if t.pct, err = strconv.ParseFloat(metric[1:], 64); err != nil || t.pct <= 0 || t.pct > 100 {
			return t, fmt.Errorf("threshold %q: metric %q: want p50, p95, p99, p99.9 ...", s, metric)
		}
		t.Value, err = parseLatency(val)
	case metric == "avg" || metric == "min" || metric == "max":
		t.Value, err = parseLatency(val)
	case metric == "errors" || metric == "dropped":
		t.Value, err = parseFraction(val)
	case metric == "rps" || metric == "count":
		t.Value, err = strconv.ParseFloat(val, 64)
	default:
		return t, fmt.Errorf("threshold %q: unknown metric %q: want pNN, avg, min, max, med, errors, rps, count or dropped", s, metric)
	}
	if err != nil {
		return t, fmt.Errorf("threshold %q: value %q: %w", s, val, err)
	}
	return t, nil
}

func parseLatency(v string) (float64, error) {
	v = strings.ReplaceAll(v, "µs", "us")
	if f, err := strconv.ParseFloat(v, 64); err == nil {
		return f * float64(time.Millisecond), nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, errors.New("want a duration like 250ms or 1s")
	}
	return float64(d), nil
}

func parseFraction(v string) (float64, error) {
	if p, ok := strings.CutSuffix(v, "%"); ok {
		f, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil {
			return 0, errors.New("want a percentage like 0.1% or a fraction like 0.001")
		}
		return f / 100, nil
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f > 1 {
		return 0, errors.New("want a percentage like 0.1% or a fraction like 0.001")
	}
	return f, nil
}

// Evaluate judges the threshold on res.
func (t Threshold) Evaluate(res *Result) ThresholdResult {
	out := ThresholdResult{Expr: t.Expr}
	s := res.Total
	if t.Name != "" {
		s = nil
		for _, r := range res.Requests {
			if r.Name == t.Name {
				s = r
				break
			}
		}
		if s == nil {
			out.Actual = "no request named " + strconv.Quote(t.Name)
			return out
		}
	}
	var actual float64
	switch {
	case strings.HasPrefix(t.Metric, "p"):
		actual = float64(s.Latency.Percentile(t.pct))
		out.Actual = fmtDur(time.Duration(actual))
	case t.Metric == "avg":
		actual = float64(s.Latency.Mean())
		out.Actual = fmtDur(time.Duration(actual))
	case t.Metric == "min":
		actual = float64(s.Latency.Min())
		out.Actual = fmtDur(time.Duration(actual))
	case t.Metric == "max":
		actual = float64(s.Latency.Max())
		out.Actual = fmtDur(time.Duration(actual))
	case t.Metric == "errors":
		actual = s.ErrorRate
		out.Actual = trimZeros(strconv.FormatFloat(100*actual, 'f', 3, 64)) + "%"
	case t.Metric == "rps":
		actual = s.RPS
		out.Actual = strconv.FormatFloat(actual, 'f', 1, 64) + "/s"
	case t.Metric == "count":
		actual = float64(s.Count)
		out.Actual = strconv.FormatInt(s.Count, 10)
	case t.Metric == "dropped":
		if res.Open != nil {
			actual = safeDiv(float64(res.Open.Dropped+res.Open.Missed), float64(res.Open.Scheduled))
		}
		out.Actual = trimZeros(strconv.FormatFloat(100*actual, 'f', 3, 64)) + "%"
	}
	if s.Count == 0 && t.Metric != "count" && t.Metric != "dropped" {
		out.Actual = "no requests"
		return out
	}
	switch t.Op {
	case "<":
		out.Pass = actual < t.Value
	case "<=":
		out.Pass = actual <= t.Value
	case ">":
		out.Pass = actual > t.Value
	case ">=":
		out.Pass = actual >= t.Value
	}
	return out
}

// EvaluateThresholds judges every threshold and reports whether all passed.
func EvaluateThresholds(res *Result, ts []Threshold) ([]ThresholdResult, bool) {
	all := true
	var out []ThresholdResult
	for _, t := range ts {
		r := t.Evaluate(res)
		all = all && r.Pass
		out = append(out, r)
	}
	return out, all
}
