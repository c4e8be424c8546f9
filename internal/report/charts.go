package report

import (
	"bytes"
	"fmt"
	"image/color"
	"math"
	"slices"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// Chart is one rendered chart: a title and inline SVG markup. Finding is
// the number of the finding the chart belongs to (0: the whole study).
type Chart struct {
	Title   string
	Note    string
	SVG     string
	Finding int
}

// palette is a colour-blind-friendly set (Okabe-Ito).
var palette = []color.RGBA{
	{0, 114, 178, 255}, {230, 159, 0, 255}, {0, 158, 115, 255}, {204, 121, 167, 255},
	{86, 180, 233, 255}, {213, 94, 0, 255}, {240, 228, 66, 255}, {0, 0, 0, 255},
}

// Charts renders the report's charts from r. Cells that did not run are
// drawn as zero-height bars so cell numbers stay aligned with the table.
func Charts(r *Results) ([]Chart, error) {
	if len(r.Cells) == 0 {
		return nil, nil
	}
	var charts []Chart
	add := func(title, note string, p *plot.Plot, w, h vg.Length) error {
		svg, err := renderSVG(p, w, h)
		if err != nil {
			return fmt.Errorf("chart %q: %w", title, err)
		}
		charts = append(charts, Chart{Title: title, Note: note, SVG: svg})
		return nil
	}
	charts = append(charts, Chart{Title: "All cells by workload",
		Note: "Bars are the median of the repeats; each panel uses a log scale when its values span more than 10x. Cells that did not run are marked.",
		SVG:  barChartSVG("All cells by workload", r.Cells)})
	for _, f := range r.Findings {
		if cs := findingCells(r, f); len(cs) > 0 {
			title := fmt.Sprintf("Finding %d — %s", f.N, f.Verdict)
			charts = append(charts, Chart{Title: title, Finding: f.N, SVG: barChartSVG(title, cs),
				Note: "The cells this finding rests on, grouped by workload."})
		}
	}
	for _, g := range percentileGroups(r) {
		p, ok, err := percentileChart(g.cells)
		if err != nil {
			return nil, err
		}
		if ok {
			if err := add(g.title, "Each line is one cell's median run; the x axis spreads the tail (50, 90, 99, 99.9).", p, 560, 280); err != nil {
				return nil, err
			}
		}
	}
	if p, ok, err := concurrencyChart(r); err != nil {
		return nil, err
	} else if ok {
		if err := add("Throughput vs concurrency", "Successful requests per second; one line per group of cells that differ only in concurrency.", p, 640, 320); err != nil {
			return nil, err
		}
	}
	return charts, nil
}

// nines maps a percentile to -log10(1-p), so 90 → 1, 99 → 2, 99.9 → 3.
func nines(p float64) float64 {
	if p >= 100 {
		p = 99.99
	}
	return -math.Log10(1 - p/100)
}

type cellGroup struct {
	title string
	cells []Cell
}

// percentileGroups picks the cells whose latency curves belong together:
// one chart per finding (its cells), else the first eight cells.
func percentileGroups(r *Results) []cellGroup {
	byID := map[int]Cell{}
	for _, c := range r.Cells {
		if c.Status == StatusOK && len(c.Percentiles) > 0 {
			byID[c.ID] = c
		}
	}
	var out []cellGroup
	for _, f := range r.Findings {
		var cs []Cell
		for _, id := range f.Cells {
			if c, ok := byID[id]; ok {
				cs = append(cs, c)
			}
		}
		slices.SortFunc(cs, func(a, b Cell) int { return a.ID - b.ID })
		if len(cs) >= 2 {
			out = append(out, cellGroup{fmt.Sprintf("Latency percentiles — finding %d (cells %s)", f.N, CellList(cellIDs(cs))), cs})
		}
	}
	if len(out) == 0 {
		var cs []Cell
		for _, c := range r.Cells {
			if _, ok := byID[c.ID]; ok && len(cs) < 8 {
				cs = append(cs, c)
			}
		}
		if len(cs) > 0 {
			out = append(out, cellGroup{"Latency percentiles", cs})
		}
	}
	return out
}

// shortLabels names each cell by its number, target and the settings that
// differ within the group (unset ones left out), so legends stay short.
func shortLabels(cells []Cell) []string {
	out := cellLabels(cells)
	differ := false
	for i := range cells {
		differ = differ || cells[i].Workload != cells[0].Workload
	}
	if differ {
		for i := range cells {
			out[i] += " " + cells[i].Workload
		}
	}
	return out
}

func percentileChart(cells []Cell) (*plot.Plot, bool, error) {
	p := plot.New()
	p.Title.Text = "latency by percentile"
	p.X.Label.Text = "percentile"
	p.Y.Label.Text = "ms (log scale)"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	p.X.Tick.Marker = plot.ConstantTicks([]plot.Tick{{Value: nines(50), Label: "50"}, {Value: nines(90), Label: "90"},
		{Value: nines(99), Label: "99"}, {Value: nines(99.9), Label: "99.9"}})
	// Bottom right: latency curves rise to the right, so that corner is
	// the emptiest.
	p.Legend.Top = false
	p.Legend.Left = false
	n := 0
	labels := shortLabels(cells)
	for ci, c := range cells {
		if len(c.Percentiles) == 0 {
			continue
		}
		var pts plotter.XYs
		for _, q := range c.Percentiles {
			if q.MS > 0 && q.P >= 50 {
				pts = append(pts, plotter.XY{X: nines(q.P), Y: q.MS})
			}
		}
		if len(pts) < 2 {
			continue
		}
		l, err := plotter.NewLine(pts)
		if err != nil {
			return nil, false, err
		}
		l.Color = palette[n%len(palette)]
		l.Width = vg.Points(1.2)
		if n >= len(palette) {
			l.Dashes = []vg.Length{vg.Points(4), vg.Points(2)}
		}
		p.Add(l)
		p.Legend.Add(labels[ci], l)
		n++
	}
	return p, n > 0, nil
}

// concurrencyChart draws successful req/s against concurrency for every
// group of cells that differ only in concurrency.
func concurrencyChart(r *Results) (*plot.Plot, bool, error) {
	groups := map[string][]Cell{}
	var order []string
	for _, c := range r.Cells {
		if c.Rate > 0 || c.Status != StatusOK {
			continue
		}
		k := c
		k.Concurrency = 0
		key := k.Label()
		if _, ok := groups[key]; !ok {
			order = append(order, key)
		}
		groups[key] = append(groups[key], c)
	}
	p := plot.New()
	p.Title.Text = "throughput vs concurrency"
	p.X.Label.Text = "concurrent users (log scale)"
	p.Y.Label.Text = "successful req/s"
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Legend.Top = true
	n := 0
	var heads []Cell
	for _, key := range order {
		if len(groups[key]) >= 2 {
			heads = append(heads, groups[key][0])
		}
	}
	labels := shortLabels(heads)
	for _, key := range order {
		cells := groups[key]
		if len(cells) < 2 {
			continue
		}
		slices.SortFunc(cells, func(a, b Cell) int { return a.Concurrency - b.Concurrency })
		var pts plotter.XYs
		for _, c := range cells {
			pts = append(pts, plotter.XY{X: float64(c.Concurrency), Y: c.OKRPS})
		}
		l, s, err := plotter.NewLinePoints(pts)
		if err != nil {
			return nil, false, err
		}
		l.Color = palette[n%len(palette)]
		s.Color = l.Color
		p.Add(l, s)
		lb := labels[n]
		if i := strings.IndexByte(lb, ' '); i > 0 {
			lb = lb[i+1:] // the group, not its first cell's number
		} else {
			lb = key
		}
		p.Legend.Add(lb, l)
		n++
	}
	p.Y.Min = 0
	return p, n > 0, nil
}

func renderSVG(p *plot.Plot, w, h vg.Length) (string, error) {
	wt, err := p.WriterTo(w, h, "svg")
	if err != nil {
		return "", err
	}
	var buf bytes.Buffer
	if _, err := wt.WriteTo(&buf); err != nil {
		return "", err
	}
	s := buf.String()
	// Inline SVG in HTML must not carry the XML declaration.
	if i := strings.Index(s, "<svg"); i > 0 {
		s = s[i:]
	}
	return s, nil
}

func cellIDs(cs []Cell) []int {
	out := make([]int, len(cs))
	for i, c := range cs {
		out[i] = c.ID
	}
	return out
}
