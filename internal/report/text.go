package report

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
)

// WriteTable prints the cells as an aligned terminal table.
func WriteTable(w io.Writer, r *Results) error {
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "#\ttarget\tjournal\tsync\tbusy\ttxlock\twriter\twk\tworkload\tload\treq/s\tspread\tp50 ms\tp99 ms\terrors\tlocked\tgen cpu\tsrv cpu\trss MB\t")
	for i := range r.Cells {
		c := &r.Cells[i]
		load := "c" + strconv.Itoa(c.Concurrency)
		if c.Rate > 0 {
			load = fmt.Sprintf("%g/s", c.Rate)
		}
		if c.Status != StatusOK {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\t\t\t\t\t\t\t\t\n", c.ID, c.Target, dash(c.JournalMode), dash(c.Synchronous),
				dash(c.BusyTimeout), dash(c.TxLock), dash(c.Writer), dash(c.Workers), c.Workload, load, c.Status)
			continue
		}
		gen := fmt.Sprintf("%.0f%%", c.GenCPU)
		if c.GenBound {
			gen += "!"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%.0f\t%s\t%.1f\t%.1f\t%s\t%d\t%s\t%.0f%%\t%.0f\t\n", c.ID, c.Target,
			dash(c.JournalMode), dash(c.Synchronous), dash(c.BusyTimeout), dash(c.TxLock), dash(c.Writer), dash(c.Workers),
			c.Workload, load, c.RPS, Spread(c), c.P50MS, c.P99MS, errText(c), c.LockErrors, gen, c.ServerCPU, c.ServerRSSMB)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for i := range r.Cells {
		if r.Cells[i].GenBound {
			fmt.Fprintln(w, "\n! the load generator limited this cell (see gen cpu): its req/s is a floor, not the server's limit")
			break
		}
	}
	var failed []string
	for i := range r.Cells {
		if c := &r.Cells[i]; c.Status != StatusOK {
			failed = append(failed, fmt.Sprintf("  cell %d %s: %s", c.ID, c.Status, c.Message))
		}
	}
	if len(failed) > 0 {
		fmt.Fprintln(w, "\nCells that did not run:")
		fmt.Fprintln(w, strings.Join(failed, "\n"))
	}
	var notes []string
	for i := range r.Cells {
		if c := &r.Cells[i]; c.Status == StatusOK && c.Message != "" {
			notes = append(notes, fmt.Sprintf("  cell %d: %s", c.ID, c.Message))
		}
	}
	if len(notes) > 0 {
		fmt.Fprintln(w, "\nNotes on cells:")
		fmt.Fprintln(w, strings.Join(notes, "\n"))
	}
	WriteServerEvidence(w, r) // serverstats.go
	return nil
}

// WriteFindings prints each finding with its verdict and evidence.
// A smoke run's verdicts are labelled as such.
func WriteFindings(w io.Writer, r *Results) {
	label := ""
	if r.Smoke {
		fmt.Fprintln(w, SmokeNote)
		label = " (smoke run)"
	}
	for _, f := range r.Findings {
		fmt.Fprintf(w, "%d. %s\n   → %s%s. %s (cells %s)\n", f.N, f.Title, strings.ToUpper(f.Verdict), label, f.Summary, CellList(f.Cells))
		if f.Warning != "" {
			fmt.Fprintf(w, "   ! %s\n", f.Warning)
		}
		if len(f.Groups) < 2 {
			continue
		}
		for _, g := range f.Groups {
			v := g.Verdict
			if v == "" {
				v = "context"
			}
			fmt.Fprintf(w, "     - %s: %s%s. %s (cells %s)\n", g.Label, v, label, g.Summary, CellList(g.Cells))
			if g.Warning != "" {
				fmt.Fprintf(w, "       ! %s\n", g.Warning)
			}
		}
	}
}

// Spread is the relative range of req/s across repeats, e.g. "±12%".
func Spread(c *Cell) string {
	if len(c.Runs) < 2 || c.RPS <= 0 {
		return "-"
	}
	return fmt.Sprintf("±%.0f%%", 50*(c.RPSMax-c.RPSMin)/c.RPS)
}

// CellList formats cell IDs as "1-4, 7".
func CellList(ids []int) string {
	if len(ids) == 0 {
		return "none"
	}
	ids = slices.Clone(ids)
	slices.Sort(ids)
	var parts []string
	for i := 0; i < len(ids); {
		j := i
		for j+1 < len(ids) && ids[j+1] == ids[j]+1 {
			j++
		}
		if j > i {
			parts = append(parts, fmt.Sprintf("%d-%d", ids[i], ids[j]))
		} else {
			parts = append(parts, strconv.Itoa(ids[i]))
		}
		i = j + 1
	}
	return strings.Join(parts, ", ")
}

func errText(c *Cell) string {
	if c.Errors == 0 {
		return "0"
	}
	return fmt.Sprintf("%d (%.1f%%)", c.Errors, 100*c.ErrorRate)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// csvHeader is the column list of results.csv.
var csvHeader = []string{"id", "target", "journal_mode", "synchronous", "busy_timeout", "txlock", "writer", "workers",
	"workload", "concurrency", "rate", "status", "message", "runs", "rps", "rps_min", "rps_max", "ok_rps", "p50_ms", "p99_ms",
	"max_ms", "requests", "errors", "error_rate", "lock_errors", "lock_errors_by_cause", "top_error",
	"generator_cpu_pct", "server_cpu_pct", "server_rss_mb", "unfinished", "app", "engine", "generator_bound"}

// CSV renders one row per cell.
func CSV(r *Results) ([]byte, error) {
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	if err := w.Write(csvHeader); err != nil {
		return nil, err
	}
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	for i := range r.Cells {
		c := &r.Cells[i]
		var causes []string
		for _, l := range c.Locks {
			causes = append(causes, fmt.Sprintf("%s=%d", l.Cause, l.Count))
		}
		top, topN := "", int64(0)
		for m, n := range c.ErrorsByMessage {
			if n > topN || (n == topN && m < top) {
				top, topN = m, n
			}
		}
		rate := ""
		if c.Rate > 0 {
			rate = f(c.Rate)
		}
		rec := []string{strconv.Itoa(c.ID), c.Target, c.JournalMode, c.Synchronous, c.BusyTimeout, c.TxLock, c.Writer, c.Workers,
			c.Workload, strconv.Itoa(c.Concurrency), rate, c.Status, c.Message, strconv.Itoa(len(c.Runs)),
			f(round(c.RPS)), f(round(c.RPSMin)), f(round(c.RPSMax)), f(round(c.OKRPS)), f(round(c.P50MS)), f(round(c.P99MS)),
			f(round(c.MaxMS)), strconv.FormatInt(c.Requests, 10), strconv.FormatInt(c.Errors, 10), f(round(c.ErrorRate)),
			strconv.FormatInt(c.LockErrors, 10), strings.Join(causes, ";"), top,
			f(round(c.GenCPU)), f(round(c.ServerCPU)), f(round(c.ServerRSSMB)), strconv.FormatInt(c.Unfinished, 10), c.App, c.Engine,
			strconv.FormatBool(c.GenBound)}
		if err := w.Write(rec); err != nil {
			return nil, err
		}
	}
	w.Flush()
	return buf.Bytes(), w.Error()
}

// round keeps three decimals: enough for ms and rates, short in a CSV.
func round(v float64) float64 {
	s := strconv.FormatFloat(v, 'f', 3, 64)
	r, _ := strconv.ParseFloat(s, 64)
	return r
}
