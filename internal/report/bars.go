package report

import (
	"fmt"
	"html"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Horizontal bar charts drawn straight to SVG: one row per cell, labelled
// with its number, target and the settings that tell the chart's cells
// apart, rows grouped under their workload, and three panels side by side
// sharing the rows — successful req/s, p99 latency and failed requests.
// Each panel switches to a log scale when its values span more than 10x,
// so lode's bars at 40x Django's do not flatten Django's to nothing.

// barMetric is one panel of a bar chart.
type barMetric struct {
	title  string
	get    func(*Cell) float64
	format func(float64) string
}

var barMetrics = []barMetric{
	{"successful req/s", func(c *Cell) float64 { return c.OKRPS }, func(v float64) string { return fmtNum(v) }},
	{"p99 latency, ms", func(c *Cell) float64 { return c.P99MS }, func(v float64) string { return fmtNum(v) }},
	{"failed requests, %", func(c *Cell) float64 { return 100 * c.ErrorRate }, func(v float64) string {
		if v > 0 && v < 0.1 {
			return "<0.1"
		}
		return strconv.FormatFloat(v, 'f', 1, 64)
	}},
}

// Layout in pixels. Text widths are estimated from character counts (an
// SVG has no text metrics), generously so labels never overlap bars.
const (
	barRowH    = 18
	barHeadH   = 22
	barPanelW  = 250
	barValueW  = 56 // room for the value printed after the longest bar
	barGap     = 22
	barCharW   = 6.6
	barTopH    = 26
	barBottomH = 26
)

// logSpan is the ratio of largest to smallest positive value above which a
// panel uses a log scale.
const logSpan = 10

type barScale struct {
	log    bool
	lo, hi float64 // domain: [0, hi] linear, [lo, hi] log
}

func newBarScale(vals []float64) barScale {
	minPos, maxV := math.Inf(1), 0.0
	for _, v := range vals {
		if v > 0 {
			minPos = min(minPos, v)
		}
		maxV = max(maxV, v)
	}
	if maxV <= 0 {
		return barScale{hi: 1}
	}
	if maxV/minPos > logSpan {
		return barScale{log: true, lo: math.Pow(10, math.Floor(math.Log10(minPos))), hi: math.Pow(10, math.Ceil(math.Log10(maxV)))}
	}
	step := niceStep(maxV / 4)
	return barScale{hi: step * math.Ceil(maxV/step)}
}

// frac maps v to [0, 1] along the panel; ok is false for values a log
// scale cannot show (zero).
func (s barScale) frac(v float64) (float64, bool) {
	if s.log {
		if v <= 0 {
			return 0, false
		}
		return math.Max(0, (math.Log10(v)-math.Log10(s.lo))/(math.Log10(s.hi)-math.Log10(s.lo))), true
	}
	return math.Max(0, v/s.hi), true
}

func (s barScale) ticks() []float64 {
	var out []float64
	if s.log {
		for v := s.lo; v <= s.hi*1.0001; v *= 10 {
			out = append(out, v)
		}
		return out
	}
	step := niceStep(s.hi / 4)
	for v := 0.0; v <= s.hi*1.0001; v += step {
		out = append(out, v)
	}
	return out
}

// niceStep rounds x up to 1, 2 or 5 times a power of ten.
func niceStep(x float64) float64 {
	if x <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(x)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= x {
			return m * p
		}
	}
	return 10 * p
}

// fmtNum prints a value for a bar or a tick: 3.5k, 420, 12, 3.4, 0.25.
func fmtNum(v float64) string {
	switch a := math.Abs(v); {
	case a >= 10000:
		return strconv.FormatFloat(v/1000, 'f', 0, 64) + "k"
	case a >= 1000:
		return strings.TrimSuffix(strconv.FormatFloat(v/1000, 'f', 1, 64), ".0") + "k"
	case a >= 10 || a == 0:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 1:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'g', 2, 64)
}

// cellLabels names each cell by its number, its target and the settings
// that differ among the chart's cells (the workload is the group header).
func cellLabels(cells []Cell) []string {
	dims := []func(c *Cell) string{
		func(c *Cell) string { return kv("journal", c.JournalMode) },
		func(c *Cell) string { return kv("sync", c.Synchronous) },
		func(c *Cell) string { return kv("busy", c.BusyTimeout) },
		func(c *Cell) string { return kv("txlock", c.TxLock) },
		func(c *Cell) string { return kv("writer", c.Writer) },
		func(c *Cell) string { return kv("workers", c.Workers) },
		func(c *Cell) string {
			if c.Rate > 0 {
				return fmt.Sprintf("%g/s", c.Rate)
			}
			return fmt.Sprintf("c=%d", c.Concurrency)
		},
	}
	out := make([]string, len(cells))
	for i := range cells {
		out[i] = fmt.Sprintf("#%d %s", cells[i].ID, cells[i].Target)
	}
	for _, d := range dims {
		differ := false
		for i := range cells {
			if d(&cells[i]) != d(&cells[0]) {
				differ = true
				break
			}
		}
		if !differ {
			continue
		}
		for i := range cells {
			if v := d(&cells[i]); v != "" {
				out[i] += " " + v
			}
		}
	}
	return out
}

func kv(k, v string) string {
	if v == "" {
		return ""
	}
	return k + "=" + v
}

// barChartSVG draws cells grouped by workload (in order of first
// appearance) as labelled horizontal bars in three panels; title is the
// SVG's accessible name (the page prints the chart's title above it).
func barChartSVG(title string, cells []Cell) string {
	if len(cells) == 0 {
		return ""
	}
	var workloads []string
	byWorkload := map[string][]Cell{}
	for _, c := range cells {
		if _, ok := byWorkload[c.Workload]; !ok {
			workloads = append(workloads, c.Workload)
		}
		byWorkload[c.Workload] = append(byWorkload[c.Workload], c)
	}
	var ordered []Cell
	for _, w := range workloads {
		ordered = append(ordered, byWorkload[w]...)
	}
	labels := cellLabels(ordered)
	labelOf := map[int]string{}
	longest := len("workload")
	for i, c := range ordered {
		labelOf[c.ID] = labels[i]
		longest = max(longest, len([]rune(labels[i])))
	}
	labelW := int(float64(longest)*barCharW) + 16
	colour := map[string]string{}
	for _, c := range ordered {
		if _, ok := colour[c.Target]; !ok {
			p := palette[len(colour)%len(palette)]
			colour[c.Target] = fmt.Sprintf("#%02x%02x%02x", p.R, p.G, p.B)
		}
	}
	scales := make([]barScale, len(barMetrics))
	for i, m := range barMetrics {
		var vals []float64
		for j := range ordered {
			if ordered[j].Status == StatusOK {
				vals = append(vals, m.get(&ordered[j]))
			}
		}
		scales[i] = newBarScale(vals)
	}
	width := labelW + len(barMetrics)*(barPanelW+barGap)
	height := barTopH + len(workloads)*barHeadH + len(ordered)*barRowH + barBottomH
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="system-ui,-apple-system,'Segoe UI',Roboto,sans-serif" font-size="12" role="img" aria-label="%s">`,
		width, height, width, height, esc(title))
	panelX := func(i int) int { return labelW + i*(barPanelW+barGap) }
	plotTop, plotBottom := barTopH, height-barBottomH
	for i, m := range barMetrics {
		x0, s := panelX(i), scales[i]
		name := m.title
		if s.log {
			name += " (log scale)"
		}
		fmt.Fprintf(&b, `<text x="%d" y="16" font-weight="600">%s</text>`, x0, esc(name))
		for _, tv := range s.ticks() {
			f, _ := s.frac(tv)
			x := float64(x0) + f*float64(barPanelW-barValueW)
			fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#e3e6ea"/>`, x, plotTop, x, plotBottom)
			fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle" fill="#5a6473" font-size="10">%s</text>`, x, plotBottom+14, esc(fmtNum(tv)))
		}
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#8c959f"/>`, x0, plotTop, x0, plotBottom)
	}
	y := plotTop
	for _, w := range workloads {
		fmt.Fprintf(&b, `<text x="4" y="%d" font-weight="700">%s</text>`, y+15, esc(w))
		fmt.Fprintf(&b, `<line x1="0" y1="%d" x2="%d" y2="%d" stroke="#c9ced6"/>`, y+barHeadH-2, width, y+barHeadH-2)
		y += barHeadH
		for _, c := range byWorkload[w] {
			fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">%s</text>`, labelW-8, y+13, esc(labelOf[c.ID]))
			if c.Status != StatusOK {
				fmt.Fprintf(&b, `<text x="%d" y="%d" fill="#8c959f">%s</text>`, panelX(0)+4, y+13, esc(c.Status))
				y += barRowH
				continue
			}
			for i, m := range barMetrics {
				v := m.get(&c)
				x0 := panelX(i)
				f, ok := scales[i].frac(v)
				length := f * float64(barPanelW-barValueW)
				if ok && length > 0 {
					fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"><title>%s: %s %s</title></rect>`,
						x0, y+3, length, barRowH-6, colour[c.Target], esc(labelOf[c.ID]), esc(m.format(v)), esc(m.title))
				}
				fmt.Fprintf(&b, `<text x="%.1f" y="%d" font-size="11">%s</text>`, float64(x0)+length+4, y+13, esc(m.format(v)))
			}
			y += barRowH
		}
	}
	b.WriteString(`</svg>`)
	return b.String()
}

func esc(s string) string { return html.EscapeString(s) }

// findingCells returns the cells a finding cites, in table order.
func findingCells(r *Results, f Finding) []Cell {
	var out []Cell
	for _, c := range r.Cells {
		if slices.Contains(f.Cells, c.ID) {
			out = append(out, c)
		}
	}
	return out
}
