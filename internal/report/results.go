// Package report turns a benchmark study's results into files: results.json
// (the raw data, readable back for --baseline), results.csv (one row per
// cell) and a self-contained index.html with the findings, charts (gonum/plot
// rendered to inline SVG), the machine description and the matrix.
package report

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Verdicts a finding can get.
const (
	Reproduced    = "reproduced"
	NotReproduced = "not reproduced"
	Inconclusive  = "inconclusive"
	// Partly is a finding reproduced in some groups of cells and not in
	// others (for example for one server and not another).
	Partly = "partly reproduced"
)

// Cell statuses.
const (
	StatusOK      = "ok"
	StatusFailed  = "failed"
	StatusSkipped = "skipped"
)

// Results is one study run: everything the report shows, and what a later
// run compares itself with (--baseline).
type Results struct {
	// Version is the results file format version.
	Version int `json:"version"`
	// Name is the study's name (the matrix's name).
	Name string `json:"name"`
	// Command re-runs the study.
	Command string `json:"command"`
	// Started is when the run began; WallSeconds how long it took.
	Started     time.Time `json:"started"`
	WallSeconds float64   `json:"wall_seconds"`
	// Duration, Warmup and Repeat are the per-cell run parameters.
	Duration string  `json:"duration"`
	Warmup   string  `json:"warmup"`
	Repeat   int     `json:"repeat"`
	Machine  Machine `json:"machine"`
	// Matrix is the matrix file's text.
	Matrix   string    `json:"matrix"`
	Cells    []Cell    `json:"cells"`
	Findings []Finding `json:"findings"`
	// Notes are run-level messages (skipped targets, warnings).
	Notes []string `json:"notes,omitempty"`
	// Smoke marks a smoke run (lode bench --quick: one short repeat per
	// cell): it shows that every cell runs, and its verdicts are printed
	// as indicative, since one 1-second run shows no spread.
	Smoke bool `json:"smoke,omitempty"`
}

// SmokeNote is what a smoke run's findings say about their verdicts.
const SmokeNote = "SMOKE RUN (--quick: 1 repeat of 1 s per cell): the verdicts below are indicative, not measurements; run without --quick for the study"

// Machine describes where the study ran.
type Machine struct {
	CPU           string  `json:"cpu"`
	Cores         int     `json:"cores"`
	OS            string  `json:"os"`
	Kernel        string  `json:"kernel,omitempty"`
	GoVersion     string  `json:"go_version"`
	SQLiteVersion string  `json:"sqlite_version"`
	FsyncMicros   float64 `json:"fsync_us"`
	// FsyncNote says how FsyncMicros was measured.
	FsyncNote string `json:"fsync_note,omitempty"`
}

// Cell is one matrix cell's settings and its measured results: a summary
// across repeats (median req/s with min and max as the spread) and each run.
type Cell struct {
	ID     int    `json:"id"`
	Key    string `json:"key"`
	Target string `json:"target"`
	// App is the application the target runs and Engine its database
	// (sqlite or postgresql); finding 6 compares engines within an app.
	App         string  `json:"app,omitempty"`
	Engine      string  `json:"engine,omitempty"`
	JournalMode string  `json:"journal_mode"`
	Synchronous string  `json:"synchronous"`
	BusyTimeout string  `json:"busy_timeout"`
	TxLock      string  `json:"txlock"`
	Writer      string  `json:"writer"`
	Workers     string  `json:"workers"`
	Workload    string  `json:"workload"`
	Concurrency int     `json:"concurrency,omitempty"`
	Rate        float64 `json:"rate,omitempty"`

	// Status is ok, failed or skipped; Message says why when not ok.
	Status  string `json:"status"`
	Message string `json:"message,omitempty"`

	// Summary across the runs that completed.
	RPS       float64 `json:"rps"`      // median
	RPSMin    float64 `json:"rps_min"`  // spread across repeats
	RPSMax    float64 `json:"rps_max"`  //
	OKRPS     float64 `json:"ok_rps"`   // successful responses per second (median)
	P50MS     float64 `json:"p50_ms"`   // median across runs
	P99MS     float64 `json:"p99_ms"`   // median across runs
	MaxMS     float64 `json:"max_ms"`   // largest across runs
	Requests  int64   `json:"requests"` // summed across runs
	Errors    int64   `json:"errors"`   // summed across runs
	ErrorRate float64 `json:"error_rate"`
	// LockErrors counts "database is locked"-class failures (summed).
	LockErrors int64 `json:"lock_errors"`
	// Unfinished counts requests still in flight when a run's grace
	// period ended (summed): with a long busy timeout these are the ones
	// still waiting for the lock, so they belong next to the tail latency.
	Unfinished int64 `json:"unfinished,omitempty"`
	// ErrorsByMessage sums error counts by message across runs.
	ErrorsByMessage map[string]int64 `json:"errors_by_message,omitempty"`
	// Locks breaks lock failures down by cause (summed across runs).
	Locks []LockCause `json:"locks,omitempty"`
	// Percentiles is the latency curve of the median run.
	Percentiles []Percentile `json:"percentiles,omitempty"`
	// CPU as a percentage of one core (median across runs); RSS in MiB.
	GenCPU      float64 `json:"generator_cpu_pct"`
	ServerCPU   float64 `json:"server_cpu_pct"`
	ServerRSSMB float64 `json:"server_rss_mb"`
	// GenSaturated is true when the generator used ≥ 90% of its cores in a
	// run: the numbers are then a floor, not the server's limit.
	GenSaturated bool `json:"generator_saturated,omitempty"`
	// GenBound is true when the load generator limited the cell's
	// throughput: it saturated its cores (GenSaturated), or it shares the
	// machine with the server and the two together saturated the
	// machine's cores with a large share taken by the generator, CPU the
	// server could otherwise have used. The throughput is then a floor.
	GenBound bool `json:"generator_bound,omitempty"`
	// Server is what a lode target's /-/metrics showed, summed over the
	// runs (serverstats.go); nil for other targets.
	Server *ServerStats `json:"server,omitempty"`

	Runs []Run `json:"runs,omitempty"`
}

// Run is one repeat of a cell.
type Run struct {
	RPS             float64          `json:"rps"`
	OKRPS           float64          `json:"ok_rps"`
	P50MS           float64          `json:"p50_ms"`
	P90MS           float64          `json:"p90_ms"`
	P99MS           float64          `json:"p99_ms"`
	MaxMS           float64          `json:"max_ms"`
	Requests        int64            `json:"requests"`
	Errors          int64            `json:"errors"`
	Unfinished      int64            `json:"unfinished,omitempty"`
	ErrorsByMessage map[string]int64 `json:"errors_by_message,omitempty"`
	Locks           []LockCause      `json:"locks,omitempty"`
	Percentiles     []Percentile     `json:"percentiles,omitempty"`
	GenCPU          float64          `json:"generator_cpu_pct"`
	GenSaturated    bool             `json:"generator_saturated,omitempty"`
	ServerCPU       float64          `json:"server_cpu_pct"`
	ServerRSSMB     float64          `json:"server_rss_mb"`
	Server          *ServerStats     `json:"server,omitempty"`
}

// Percentile is one point of a latency curve.
type Percentile struct {
	P  float64 `json:"p"` // 0-100
	MS float64 `json:"ms"`
}

// LockCause counts lock failures of one cause with a time-to-error
// histogram, so failures after 0 ms (a refused upgrade) and after the full
// busy timeout are told apart.
type LockCause struct {
	// Cause is one of: upgrade refused (SQLITE_BUSY at once in a deferred
	// transaction), timeout exhausted, snapshot conflict
	// (SQLITE_BUSY_SNAPSHOT), other.
	Cause string `json:"cause"`
	Count int64  `json:"count"`
	// Buckets are counts by time waited before the error.
	Buckets []Bucket `json:"buckets,omitempty"`
}

// Bucket is one time-to-error histogram bucket: waits ≤ LeMS (and above
// the previous bucket's bound). The last bucket has LeMS = -1 (infinity).
type Bucket struct {
	LeMS  float64 `json:"le_ms"`
	Count int64   `json:"count"`
}

// Finding is one judged claim of the study.
type Finding struct {
	N       int    `json:"n"`
	Title   string `json:"title"`
	Verdict string `json:"verdict"`
	// Summary gives the numbers behind the verdict.
	Summary string `json:"summary"`
	// Warning, when set, says why the verdict may not hold: some of its
	// cells were generator-bound.
	Warning string `json:"warning,omitempty"`
	// Cells are the cell IDs the verdict rests on.
	Cells []int `json:"cells"`
	// Groups are the verdicts per group of cells that differ only in the
	// finding's dimension (one per target and fixed settings).
	Groups []FindingGroup `json:"groups,omitempty"`
}

// FindingGroup is a finding judged on one group of cells, e.g. "django
// journal=wal" for finding 3. An empty Verdict marks a group shown for
// context that the finding's claim does not apply to.
type FindingGroup struct {
	Label   string `json:"label"`
	Verdict string `json:"verdict,omitempty"`
	Summary string `json:"summary"`
	// Warning, when set, says why the group's verdict may not hold:
	// some of its cells were generator-bound (Finding.Warning says more).
	Warning string `json:"warning,omitempty"`
	Cells   []int  `json:"cells"`
}

// Label is a short human description of the cell's settings.
func (c *Cell) Label() string {
	s := c.Target
	add := func(k, v string) {
		if v != "" {
			s += " " + k + "=" + v
		}
	}
	add("journal", c.JournalMode)
	add("sync", c.Synchronous)
	add("busy", c.BusyTimeout)
	add("txlock", c.TxLock)
	add("writer", c.Writer)
	add("workers", c.Workers)
	s += " " + c.Workload
	if c.Rate > 0 {
		s += fmt.Sprintf(" rate=%g/s", c.Rate)
	} else {
		s += fmt.Sprintf(" c=%d", c.Concurrency)
	}
	return s
}

// ReadJSON reads a results.json file.
func ReadJSON(path string) (*Results, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read results: %w", err)
	}
	var r Results
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("read results %s: not a lode bench results.json: %w", path, err)
	}
	if r.Version == 0 || r.Cells == nil {
		return nil, fmt.Errorf("read results %s: not a lode bench results.json (no version or cells)", path)
	}
	return &r, nil
}

// FormatVersion is the current results.json format version.
const FormatVersion = 1

// PrepareDir creates dir and checks that files can be written there, so
// that lode bench finds out before a run of minutes, not after it.
func PrepareDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("report folder: %w", err)
	}
	f, err := os.CreateTemp(dir, ".lode-write-check-*")
	if err != nil {
		return fmt.Errorf("report folder %s is not writable: %w", dir, err)
	}
	f.Close()
	return os.Remove(f.Name())
}

// WriteAll writes results.json, results.csv and index.html into dir,
// creating it, and returns the index.html path.
func WriteAll(dir string, r *Results) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("write report: %w", err)
	}
	r.Version = FormatVersion
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return "", fmt.Errorf("write report: %w", err)
	}
	if err := writeFile(filepath.Join(dir, "results.json"), b); err != nil {
		return "", err
	}
	csv, err := CSV(r)
	if err != nil {
		return "", err
	}
	if err := writeFile(filepath.Join(dir, "results.csv"), csv); err != nil {
		return "", err
	}
	html, err := HTML(r)
	if err != nil {
		return "", err
	}
	index := filepath.Join(dir, "index.html")
	if err := writeFile(index, html); err != nil {
		return "", err
	}
	return index, nil
}

// writeFile writes via a temporary file and rename, so a reader never sees
// half a report.
func writeFile(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}
