package report

import (
	"bytes"
	"fmt"
	"html/template"
	"strings"
)

// HTML renders the self-contained report page: no scripts, no external
// stylesheets or fonts, charts as inline SVG, so it opens offline and
// survives being mailed around.
func HTML(r *Results) ([]byte, error) {
	charts, err := Charts(r)
	if err != nil {
		return nil, fmt.Errorf("report charts: %w", err)
	}
	type chartView struct {
		Title, Note string
		SVG         template.HTML
	}
	var cv []chartView
	byFinding := map[int]*chartView{}
	for _, c := range charts {
		// The SVG comes from gonum/plot or bars.go, which escape the text
		// they draw.
		v := chartView{Title: c.Title, Note: c.Note, SVG: template.HTML(c.SVG)}
		if c.Finding > 0 {
			byFinding[c.Finding] = &v
			continue
		}
		cv = append(cv, v)
	}
	var buf bytes.Buffer
	err = pageTemplate.Execute(&buf, struct {
		R             *Results
		Charts        []chartView
		FindingCharts map[int]*chartView
	}{r, cv, byFinding})
	if err != nil {
		return nil, fmt.Errorf("report html: %w", err)
	}
	return buf.Bytes(), nil
}

var pageTemplate = template.Must(template.New("page").Funcs(template.FuncMap{
	"cells":     CellList,
	"spread":    Spread,
	"upper":     strings.ToUpper,
	"dash":      dash,
	"smokeNote": func() string { return SmokeNote },
	"verdictClass": func(v string) string {
		switch v {
		case Reproduced:
			return "yes"
		case NotReproduced:
			return "no"
		case Partly:
			return "partly"
		case "":
			return "context"
		}
		return "maybe"
	},
	"evidence": ServerEvidence, // serverstats.go
	"pct":      func(v float64) string { return fmt.Sprintf("%.1f%%", 100*v) },
	"f0":       func(v float64) string { return fmt.Sprintf("%.0f", v) },
	"f1":       func(v float64) string { return fmt.Sprintf("%.1f", v) },
	"load": func(c Cell) string {
		if c.Rate > 0 {
			return fmt.Sprintf("%g/s", c.Rate)
		}
		return fmt.Sprintf("c%d", c.Concurrency)
	},
	"buckets": func(bs []Bucket) string {
		var parts []string
		lo := 0.0
		for _, b := range bs {
			if b.Count == 0 {
				if b.LeMS >= 0 {
					lo = b.LeMS
				}
				continue
			}
			if b.LeMS < 0 {
				parts = append(parts, fmt.Sprintf(">%gms: %d", lo, b.Count))
			} else {
				parts = append(parts, fmt.Sprintf("%g–%gms: %d", lo, b.LeMS, b.Count))
				lo = b.LeMS
			}
		}
		return strings.Join(parts, ", ")
	},
}).Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>lode bench — {{.R.Name}}</title>
<style>
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2430;background:#f6f7f9}
main{max-width:1200px;margin:0 auto;padding:24px}
h1{font-size:26px;margin:0 0 4px}h2{font-size:19px;margin:32px 0 10px;border-bottom:1px solid #dde1e6;padding-bottom:4px}
.sub{color:#5a6473}
.warn{color:#9a6700;margin-top:4px}
.finding{background:#fff;border:1px solid #dde1e6;border-left:6px solid #999;border-radius:6px;padding:10px 14px;margin:10px 0}
.finding.yes{border-left-color:#1a7f37}.finding.no{border-left-color:#cf222e}.finding.maybe{border-left-color:#bf8700}
.verdict{font-weight:700;text-transform:uppercase;font-size:13px;letter-spacing:.04em}
.finding.partly{border-left-color:#0969da}
.yes .verdict,.verdict.yes{color:#1a7f37}.no .verdict,.verdict.no{color:#cf222e}.maybe .verdict,.verdict.maybe{color:#9a6700}.partly .verdict,.verdict.partly{color:#0969da}.verdict.context{color:#5a6473}
.groups{margin:6px 0 4px;padding-left:18px}.groups li{margin:3px 0}
.finding .chart{border:0;padding:0;margin:8px 0 0}
table{border-collapse:collapse;background:#fff;font-size:13px;width:100%}
th,td{border:1px solid #dde1e6;padding:3px 6px;text-align:right;white-space:nowrap}
th{background:#eef1f4}td.l,th.l{text-align:left}tr.bad td{color:#8c959f}
.chart{background:#fff;border:1px solid #dde1e6;border-radius:6px;padding:8px;margin:12px 0;overflow-x:auto}
.chart svg{display:block;max-width:100%;height:auto;margin-top:6px}
.scroll{overflow-x:auto}
pre{background:#fff;border:1px solid #dde1e6;border-radius:6px;padding:10px;overflow-x:auto;font-size:13px}
dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 16px;background:#fff;border:1px solid #dde1e6;border-radius:6px;padding:10px}
dt{color:#5a6473}dd{margin:0}
</style>
</head>
<body><main>
<h1>lode bench — {{.R.Name}}</h1>
<p class="sub">{{.R.Started.Format "2006-01-02 15:04 MST"}} · {{len .R.Cells}} cells × {{.R.Repeat}} repeats of {{.R.Duration}} (warm-up {{.R.Warmup}}) · wall time {{printf "%.0f" .R.WallSeconds}} s · {{.R.Machine.CPU}}, {{.R.Machine.Cores}} cores</p>

<h2>Findings</h2>
{{if .R.Smoke}}<p class="smoke"><strong>{{smokeNote}}</strong></p>{{end}}
{{range .R.Findings}}<div class="finding {{verdictClass .Verdict}}">
<div><span class="verdict">{{.Verdict}}{{if $.R.Smoke}} (smoke run){{end}}</span> — <strong>{{.N}}. {{.Title}}</strong></div>
<div>{{.Summary}}</div>
{{if .Warning}}<div class="warn">⚠ {{.Warning}}</div>{{end}}
{{if gt (len .Groups) 1}}<ul class="groups">{{range .Groups}}<li><strong>{{.Label}}</strong> — <span class="verdict {{verdictClass .Verdict}}">{{if .Verdict}}{{.Verdict}}{{else}}context{{end}}</span>: {{.Summary}} <span class="sub">(cells {{cells .Cells}})</span>{{if .Warning}} <span class="warn">⚠ {{.Warning}}</span>{{end}}</li>{{end}}</ul>{{end}}
<div class="sub">Cells {{cells .Cells}}</div>
{{with index $.FindingCharts .N}}<div class="chart">{{.SVG}}</div>{{end}}
</div>
{{else}}<p>No findings were judged.</p>{{end}}
{{range .R.Notes}}<p class="sub">{{.}}</p>{{end}}

<h2>Cells</h2>
<div class="scroll"><table>
<tr><th>#</th><th class="l">target</th><th class="l">journal</th><th class="l">sync</th><th class="l">busy</th><th class="l">txlock</th><th class="l">writer</th><th>workers</th><th class="l">workload</th><th>load</th><th>req/s</th><th>spread</th><th>ok req/s</th><th>p50 ms</th><th>p99 ms</th><th>max ms</th><th>errors</th><th>lock errors by cause (time to error)</th><th>gen cpu</th><th>srv cpu</th><th>srv rss MB</th></tr>
{{range .R.Cells}}{{if eq .Status "ok"}}<tr>
<td>{{.ID}}</td><td class="l">{{.Target}}</td><td class="l">{{dash .JournalMode}}</td><td class="l">{{dash .Synchronous}}</td><td class="l">{{dash .BusyTimeout}}</td><td class="l">{{dash .TxLock}}</td><td class="l">{{dash .Writer}}</td><td>{{dash .Workers}}</td><td class="l">{{.Workload}}</td><td>{{load .}}</td>
<td>{{f0 .RPS}}</td><td>{{spread .}}</td><td>{{f0 .OKRPS}}</td><td>{{f1 .P50MS}}</td><td>{{f1 .P99MS}}</td><td>{{f1 .MaxMS}}</td><td>{{.Errors}} ({{pct .ErrorRate}}){{if .Unfinished}}<br><span class="sub">+{{.Unfinished}} unfinished</span>{{end}}</td>
<td class="l">{{range .Locks}}{{if .Count}}{{.Cause}}: {{.Count}} <span class="sub">({{buckets .Buckets}})</span><br>{{end}}{{else}}—{{end}}</td>
<td>{{f0 .GenCPU}}%{{if .GenBound}} ⚠{{end}}</td><td>{{f0 .ServerCPU}}%</td><td>{{f0 .ServerRSSMB}}</td></tr>
{{if .Message}}<tr><td></td><td class="l sub" colspan="20">cell {{.ID}}: {{.Message}}</td></tr>{{end}}
{{else}}<tr class="bad"><td>{{.ID}}</td><td class="l">{{.Target}}</td><td class="l">{{dash .JournalMode}}</td><td class="l">{{dash .Synchronous}}</td><td class="l">{{dash .BusyTimeout}}</td><td class="l">{{dash .TxLock}}</td><td class="l">{{dash .Writer}}</td><td>{{dash .Workers}}</td><td class="l">{{.Workload}}</td><td>{{load .}}</td>
<td class="l" colspan="11">{{upper .Status}}: {{.Message}}</td></tr>{{end}}
{{end}}</table></div>
<p class="sub">CPU is a percentage of one core during the measured time (server: all its processes). ⚠ marks cells the load generator limited — it saturated its cores, or it and the server together saturated the machine's with the generator taking at least a fifth — so their throughput is a floor, not the server's limit.
Lock errors by cause: the busy handler gives up only after the whole busy timeout, so a lock error that came sooner never waited — a refused upgrade of a deferred transaction or, under WAL, a stale snapshot; the time to error is measured by the client (it includes queueing in the server).</p>
<details><summary>Errors by message, per cell</summary><table>
<tr><th>#</th><th>count</th><th class="l">message</th></tr>
{{range .R.Cells}}{{$id := .ID}}{{range $m, $n := .ErrorsByMessage}}<tr><td>{{$id}}</td><td>{{$n}}</td><td class="l">{{$m}}</td></tr>
{{end}}{{end}}</table></details>
{{with evidence .R}}
<h2>Inside the server</h2>
<div class="scroll"><table>
<tr><th>#</th><th class="l">cell</th><th>write requests</th><th>transactions</th><th>per txn</th><th class="l">batches by size</th><th>COMMIT mean ms</th><th>99% ≤ ms</th><th>fsyncs</th><th>fsync mean ms</th><th>lock waits</th><th>waited ms</th><th class="l">lock errors</th><th>checkpoints</th></tr>
{{range .}}<tr><td>{{.ID}}</td><td class="l">{{.Label}}{{if .Partial}} <span class="sub">(partial)</span>{{end}}</td><td>{{.Writes}}</td><td>{{.Txns}}</td><td>{{.BatchMean}}</td><td class="l">{{.Batches}}</td><td>{{.CommitMean}}</td><td>{{.Commit}}</td><td>{{.Fsyncs}}</td><td>{{.FsyncMean}}</td><td>{{.LockWaits}}</td><td>{{.LockMS}}</td><td class="l">{{.LockErrors}}</td><td>{{.Checkpoints}}</td></tr>
{{end}}</table></div>
<p class="sub">Read from each lode server's /-/metrics at the start and end of every measured run and summed over the runs (and the server's workers): write requests per transaction, committed or failed (the single writer's group-commit batches; 1 each with --writer pool), the COMMIT statement's time (with synchronous=full it includes the fsync), every fsync SQLite asked for, the sleeps of SQLite's busy handler while another connection held a lock, lock errors by SQLite code, WAL checkpoints.</p>
{{end}}
<h2>Charts</h2>
{{range .Charts}}<div class="chart"><strong>{{.Title}}</strong>{{if .Note}} <span class="sub">{{.Note}}</span>{{end}}
{{.SVG}}</div>
{{end}}

<h2>Machine</h2>
<dl>
<dt>CPU</dt><dd>{{.R.Machine.CPU}} ({{.R.Machine.Cores}} cores)</dd>
<dt>OS</dt><dd>{{.R.Machine.OS}} {{.R.Machine.Kernel}}</dd>
<dt>Go</dt><dd>{{.R.Machine.GoVersion}}</dd>
<dt>SQLite</dt><dd>{{.R.Machine.SQLiteVersion}}</dd>
<dt>fsync</dt><dd>{{printf "%.0f" .R.Machine.FsyncMicros}} µs {{.R.Machine.FsyncNote}}</dd>
</dl>

<h2>Re-run</h2>
<pre>{{.R.Command}}</pre>

<h2>Matrix</h2>
<pre>{{.R.Matrix}}</pre>
</main></body>
</html>
`))
