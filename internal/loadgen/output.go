package loadgen

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Locust 2.x CSV columns (locust/stats.py StatsCSV), so that tools written
// for Locust's --csv output read Lode's.
var (
	LocustStatsColumns = []string{
		"Type", "Name", "Request Count", "Failure Count", "Median Response Time",
		"Average Response Time", "Min Response Time", "Max Response Time",
		"Average Content Size", "Requests/s", "Failures/s",
		"50%", "66%", "75%", "80%", "90%", "95%", "98%", "99%", "99.9%", "99.99%", "100%",
	}
	LocustFailuresColumns   = []string{"Method", "Name", "Error", "Occurrences"}
	LocustExceptionsColumns = []string{"Count", "Message", "Traceback", "Nodes"}
	LocustHistoryColumns    = []string{
		"Timestamp", "User Count", "Type", "Name", "Requests/s", "Failures/s",
		"50%", "66%", "75%", "80%", "90%", "95%", "98%", "99%", "99.9%", "99.99%", "100%",
		"Total Request Count", "Total Failure Count", "Total Median Response Time",
		"Total Average Response Time", "Total Min Response Time", "Total Max Response Time",
		"Total Average Content Size",
	}
)

// ms formats a duration in milliseconds as Locust does for integer columns.
func msInt(d time.Duration) string { return strconv.FormatInt(int64(d/time.Millisecond), 10) }

// msFloat formats a duration in (fractional) milliseconds.
func msFloat(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', -1, 64)
}

func ffloat(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// PrepareOutput makes sure files can be written at each path before a
// run starts, so that a long run does not end in "no such file or
// directory": it creates the missing parent folders and writes and removes
// a probe file in each. Each path names a file to be written.
func PrepareOutput(paths ...string) error {
	for _, p := range paths {
		if p == "" {
			continue
		}
		if fi, err := os.Stat(p); err == nil && fi.IsDir() {
			return fmt.Errorf("output %s is a folder: give a file name", p)
		}
		dir := filepath.Dir(p)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("output %s: create folder: %w", p, err)
		}
		probe, err := os.CreateTemp(dir, ".lode-write-check-*")
		if err != nil {
			return fmt.Errorf("output %s: folder %s is not writable: %w", p, dir, err)
		}
		probe.Close()
		os.Remove(probe.Name())
	}
	return nil
}

// WriteCSV writes PREFIX_stats.csv, PREFIX_failures.csv,
// PREFIX_stats_history.csv and PREFIX_exceptions.csv (always empty) with
// Locust 2.x's columns. Times are milliseconds as in Locust; the
// percentile columns of stats_history.csv are those of each interval.
func WriteCSV(prefix string, res *Result) error {
	files := []struct {
		suffix string
		write  func(*csv.Writer) error
	}{
		{"_stats.csv", func(w *csv.Writer) error { return writeStatsCSV(w, res) }},
		{"_failures.csv", func(w *csv.Writer) error { return writeFailuresCSV(w, res) }},
		{"_stats_history.csv", func(w *csv.Writer) error { return writeHistoryCSV(w, res) }},
		{"_exceptions.csv", func(w *csv.Writer) error { return w.Write(LocustExceptionsColumns) }},
	}
	for _, f := range files {
		path := prefix + f.suffix
		fh, err := os.Create(path)
		if err != nil {
			return fmt.Errorf("write csv: %w", err)
		}
		w := csv.NewWriter(fh)
		w.UseCRLF = true // Python's csv module writes \r\n
		err = f.write(w)
		w.Flush()
		if err == nil {
			err = w.Error()
		}
		if cerr := fh.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
	}
	return nil
}

func statsRow(s *Stats) []string {
	row := []string{
		s.Method, s.Name, strconv.FormatInt(s.Count, 10), strconv.FormatInt(s.Failures, 10),
		msInt(s.P50), msFloat(s.Mean), msFloat(s.Min), msFloat(s.Max),
		ffloat(safeDiv(float64(s.Bytes), float64(s.Count))), ffloat(s.RPS), ffloat(s.FailuresPerSec),
	}
	for _, p := range HistoryPercentiles {
		if s.Count == 0 {
			row = append(row, "N/A")
		} else {
			row = append(row, msInt(s.Latency.Percentile(p)))
		}
	}
	return row
}

func writeStatsCSV(w *csv.Writer, res *Result) error {
	if err := w.Write(LocustStatsColumns); err != nil {
		return err
	}
	for _, s := range res.Requests {
		if err := w.Write(statsRow(s)); err != nil {
			return err
		}
	}
	return w.Write(statsRow(res.Total))
}

func writeFailuresCSV(w *csv.Writer, res *Result) error {
	if err := w.Write(LocustFailuresColumns); err != nil {
		return err
	}
	for _, s := range res.Requests {
		for _, e := range s.Errors {
			if err := w.Write([]string{e.Method, e.Name, e.Message, strconv.FormatInt(e.Count, 10)}); err != nil {
				return err
			}
		}
	}
	return nil
}

func writeHistoryCSV(w *csv.Writer, res *Result) error {
	if err := w.Write(LocustHistoryColumns); err != nil {
		return err
	}
	for _, h := range res.History {
		row := []string{
			strconv.FormatInt(h.Time.Unix(), 10), strconv.FormatInt(h.Users, 10), "", "Aggregated",
			strconv.FormatFloat(h.RPS, 'f', 6, 64), strconv.FormatFloat(h.FailuresPS, 'f', 6, 64),
		}
		for _, p := range h.Percentiles {
			row = append(row, msInt(p))
		}
		row = append(row,
			strconv.FormatInt(h.TotalCount, 10), strconv.FormatInt(h.TotalFail, 10),
			msInt(h.TotalP50), msFloat(h.TotalMean), msFloat(h.TotalMin), msFloat(h.TotalMax),
			ffloat(safeDiv(float64(h.TotalBytes), float64(h.TotalCount))))
		if err := w.Write(row); err != nil {
			return err
		}
	}
	return nil
}

// WriteJSON writes the result, histograms included, to path.
func WriteJSON(path string, res *Result) error {
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return fmt.Errorf("encode result: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write result: %w", err)
	}
	return nil
}

// ReadJSON reads a result written by WriteJSON.
func ReadJSON(path string) (*Result, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read result: %w", err)
	}
	var res Result
	if err := json.Unmarshal(b, &res); err != nil {
		return nil, fmt.Errorf("%s: not a lode load --json result: %w", path, err)
	}
	if res.Version != ResultVersion {
		return nil, fmt.Errorf("%s: version %d: %w (want %d)", path, res.Version, ErrResultVersion, ResultVersion)
	}
	if res.Total == nil || res.Total.Latency == nil {
		return nil, fmt.Errorf("%s: not a lode load --json result: no total histogram", path)
	}
	for _, s := range res.Requests {
		if s.Latency == nil {
			return nil, fmt.Errorf("%s: request %q has no histogram", path, s.Name)
		}
		for _, e := range s.Errors {
			if e.Latency == nil {
				e.Latency = newErrorHistogram()
			}
		}
	}
	for _, e := range res.Total.Errors {
		if e.Latency == nil {
			e.Latency = newErrorHistogram()
		}
	}
	if res.Open != nil {
		for _, st := range res.Open.Steps {
			if st.Latency == nil {
				st.Latency = newErrorHistogram()
			}
		}
	}
	return &res, nil
}

// Merge combines results of runs that ran at the same time on several
// machines against one target. Counts and histograms add exactly, so the
// merged percentiles are those of one histogram fed every sample. The
// merged duration is the longest of the runs (they ran concurrently), so
// the merged req/s is the sum of the machines' rates; history is dropped.
func Merge(results ...*Result) (*Result, error) {
	if len(results) == 0 {
		return nil, errors.New("nothing to merge")
	}
	out := &Result{Version: ResultVersion, Model: results[0].Model, Target: results[0].Target}
	out.Total = newStats("Aggregated", "")
	byKey := map[string]*Stats{}
	for i, r := range results {
		if r.Model != out.Model {
			return nil, fmt.Errorf("result %d is a %s-model run, result 1 is %s: merge runs of one kind", i+1, r.Model, out.Model)
		}
		if out.Start.IsZero() || r.Start.Before(out.Start) {
			out.Start = r.Start
		}
		if r.End.After(out.End) {
			out.End = r.End
		}
		if r.Duration > out.Duration {
			out.Duration = r.Duration
		}
		out.Users += r.Users
		out.Unfinished += r.Unfinished
		out.Interrupted = out.Interrupted || r.Interrupted
		out.Machines += max(r.Machines, 1)
		for _, s := range r.Requests {
			key := s.Method + " " + s.Name
			d := byKey[key]
			if d == nil {
				d = newStats(s.Name, s.Method)
				byKey[key] = d
				out.Requests = append(out.Requests, d)
			}
			d.merge(s)
		}
		out.Total.Count += r.Total.Count
		out.Total.Failures += r.Total.Failures
		out.Total.Bytes += r.Total.Bytes
		out.Total.Latency.Merge(r.Total.Latency)
		out.Total.Errors = mergeErrors(out.Total.Errors, r.Total.Errors, true)
		if r.Open != nil {
			if out.Open == nil {
				out.Open = &OpenStats{Schedule: r.Open.Schedule, Achieved: true, Tolerance: r.Open.Tolerance}
			} else if out.Open.Schedule != r.Open.Schedule {
				out.Open.Schedule += " + " + r.Open.Schedule
			}
			o := out.Open
			o.Scheduled += r.Open.Scheduled
			o.Sent += r.Open.Sent
			o.Dropped += r.Open.Dropped
			o.Missed += r.Open.Missed
			o.TargetRate += r.Open.TargetRate
			o.AchievedRate += r.Open.AchievedRate
			o.MaxInFlight += r.Open.MaxInFlight
			o.PeakFlight += r.Open.PeakFlight
			o.MaxBehind = max(o.MaxBehind, r.Open.MaxBehind)
			o.Achieved = o.Achieved && r.Open.Achieved
			// Steps merge by position when every run had the same steps.
			switch {
			case i == 0:
				for _, st := range r.Open.Steps {
					c := *st
					c.Latency = st.Latency.Clone()
					o.Steps = append(o.Steps, &c)
				}
			case len(o.Steps) == len(r.Open.Steps):
				for j, st := range r.Open.Steps {
					d := o.Steps[j]
					d.Rate += st.Rate
					d.Duration = max(d.Duration, st.Duration)
					d.Scheduled += st.Scheduled
					d.Sent += st.Sent
					d.Dropped += st.Dropped
					d.Missed += st.Missed
					d.Completed += st.Completed
					d.Failures += st.Failures
					d.Latency.Merge(st.Latency)
				}
			default:
				o.Steps = nil
			}
		}
		// CPU: report the busiest machine.
		if r.CPU.Utilization >= out.CPU.Utilization {
			out.CPU = r.CPU
		}
	}
	for _, s := range out.Requests {
		s.Derive(out.Duration)
	}
	out.Total.Derive(out.Duration)
	if out.Open != nil {
		for _, st := range out.Open.Steps {
			st.derive(out.Open.Tolerance)
		}
	}
	out.addWarnings()
	return out, nil
}

// WriteTable prints the final table: one row per request name and the
// aggregate, the error groups, the open-model verdict, the generator's CPU.
func WriteTable(w io.Writer, res *Result) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "Type\tName\t# reqs\t# fails\treq/s\tp50\tp90\tp95\tp99\tp99.9\tmax\tavg size\t")
	rows := append(append([]*Stats{}, res.Requests...), res.Total)
	for _, s := range rows {
		fails := fmt.Sprintf("%d (%.2f%%)", s.Failures, 100*s.ErrorRate)
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%.1f\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n",
			s.Method, s.Name, s.Count, fails, s.RPS,
			fmtDur(s.P50), fmtDur(s.P90), fmtDur(s.P95), fmtDur(s.P99), fmtDur(s.P999), fmtDur(s.Max),
			fmtBytes(safeDiv(float64(s.Bytes), float64(s.Count))))
	}
	tw.Flush()
	if len(res.Total.Errors) > 0 {
		fmt.Fprintln(w, "\nErrors (by message; time-to-error p50 / max):")
		for _, e := range res.Total.Errors {
			fmt.Fprintf(w, "  %8d  %s  (%s / %s)\n", e.Count, e.Message, fmtDur(e.Latency.Percentile(50)), fmtDur(e.Latency.Max()))
		}
	}
	fmt.Fprintln(w)
	what := fmt.Sprintf("%d users", res.Users)
	if res.Open != nil {
		what = "open model " + res.Open.Schedule
	}
	fmt.Fprintf(w, "%s, %s measured, %d requests, %.1f req/s, %s received", what,
		res.Duration.Round(time.Millisecond), res.Total.Count, res.Total.RPS, fmtBytes(float64(res.Total.Bytes)))
	if res.Machines > 1 {
		fmt.Fprintf(w, ", merged from %d runs", res.Machines)
	}
	fmt.Fprintln(w)
	if o := res.Open; o != nil {
		verdict := "target rate ACHIEVED"
		if !o.Achieved {
			verdict = "target rate NOT ACHIEVED"
		}
		dropped := "dropped 0"
		if o.Dropped > 0 {
			dropped = fmt.Sprintf("dropped %d (they found all %d in-flight slots busy)", o.Dropped, o.MaxInFlight)
		}
		fmt.Fprintf(w, "%s: target %.1f/s, sent %.1f/s (%d of %d arrivals), %s, missed %d, behind schedule mean %s max %s, peak in flight %d of %d\n",
			verdict, o.TargetRate, o.AchievedRate, o.Sent, o.Scheduled, dropped, o.Missed, fmtDur(o.MeanBehind), fmtDur(o.MaxBehind), o.PeakFlight, o.MaxInFlight)
		for i, st := range o.Steps {
			v := "achieved"
			if !st.Achieved {
				v = "NOT achieved"
			}
			fmt.Fprintf(w, "  step %d: %s/s for %s: %s, sent %.1f/s (%d of %d), dropped %d, missed %d; p50 %s, p99 %s, %d of %d failed\n",
				i+1, trimZeros(strconv.FormatFloat(st.Rate, 'f', 2, 64)), st.Duration.Round(time.Millisecond), v, st.AchievedRate,
				st.Sent, st.Scheduled, st.Dropped, st.Missed, fmtDur(st.P50), fmtDur(st.P99), st.Failures, st.Completed)
		}
	}
	fmt.Fprintf(w, "generator CPU: %.0f%% of %d cores (user %s, system %s)\n",
		100*res.CPU.Utilization, res.CPU.Cores, res.CPU.User.Round(time.Millisecond), res.CPU.System.Round(time.Millisecond))
	for _, warn := range res.Warnings {
		fmt.Fprintf(w, "WARNING: %s\n", warn)
	}
}

// ProgressLine formats one live progress line.
func ProgressLine(h HistoryPoint, open bool) string {
	who := "users"
	if open {
		who = "in flight"
	}
	line := fmt.Sprintf("%6.1fs  %9d reqs  %8.1f req/s  %6.2f%% errors  p50 %-8s p99 %-8s %d %s",
		h.Elapsed.Seconds(), h.TotalCount, h.RPS, 100*safeDiv(h.FailuresPS, h.RPS),
		fmtDur(h.Percentiles[0]), fmtDur(h.Percentiles[7]), h.Users, who)
	if h.DroppedPS > 0 {
		line += fmt.Sprintf("  DROPPING %.0f/s", h.DroppedPS)
	}
	return line
}

func fmtDur(d time.Duration) string {
	switch {
	case d == 0:
		return "0"
	case d < time.Millisecond:
		return strconv.FormatInt(int64(d/time.Microsecond), 10) + "µs"
	case d < time.Second:
		return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 2, 64) + "ms"
	default:
		return strconv.FormatFloat(d.Seconds(), 'f', 2, 64) + "s"
	}
}

func fmtBytes(b float64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	i := 0
	for b >= 1024 && i < len(units)-1 {
		b /= 1024
		i++
	}
	if i == 0 {
		return strconv.FormatFloat(b, 'f', 0, 64) + " B"
	}
	return strconv.FormatFloat(b, 'f', 1, 64) + " " + units[i]
}

// trimZeros is used by threshold messages.
func trimZeros(s string) string {
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}
