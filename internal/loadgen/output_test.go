package loadgen_test

import (
	"context"
	"encoding/csv"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"lode/internal/loadgen"
)

// The header lines of Locust 2.x's --csv files, as its stats.py writes them
// (StatsCSV.requests_csv_columns, failures_columns, exceptions_columns and
// StatsCSVFileWriter.stats_history_csv_columns with the default
// PERCENTILES_TO_REPORT).
const (
	locustStatsHeader      = "Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,Min Response Time,Max Response Time,Average Content Size,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%"
	locustFailuresHeader   = "Method,Name,Error,Occurrences"
	locustExceptionsHeader = "Count,Message,Traceback,Nodes"
	locustHistoryHeader    = "Timestamp,User Count,Type,Name,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%,Total Request Count,Total Failure Count,Total Median Response Time,Total Average Response Time,Total Min Response Time,Total Max Response Time,Total Average Content Size"
)

func TestCSVHeadersIdenticalToLocust(t *testing.T) {
	srv := newRecordingServer(t, nil)
	res, err := loadgen.Run(context.Background(), loadgen.Config{
		Scenario: loadgen.URLScenario(srv.URL + "/t"), Users: 2, Duration: 300 * time.Millisecond,
		ProgressInterval: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	prefix := filepath.Join(t.TempDir(), "run")
	if err := loadgen.WriteCSV(prefix, res); err != nil {
		t.Fatal(err)
	}
	for suffix, want := range map[string]string{
		"_stats.csv":         locustStatsHeader,
		"_failures.csv":      locustFailuresHeader,
		"_exceptions.csv":    locustExceptionsHeader,
		"_stats_history.csv": locustHistoryHeader,
	} {
		b, err := os.ReadFile(prefix + suffix)
		if err != nil {
			t.Fatal(err)
		}
		first, _, _ := strings.Cut(string(b), "\r\n")
		if first != want {
			t.Errorf("%s header:\n got %s\nwant %s", suffix, first, want)
		}
		rows, err := csv.NewReader(strings.NewReader(string(b))).ReadAll()
		if err != nil {
			t.Fatalf("%s: %v", suffix, err)
		}
		for i, r := range rows {
			if len(r) != len(rows[0]) {
				t.Errorf("%s row %d has %d fields; want %d", suffix, i, len(r), len(rows[0]))
			}
		}
		if suffix == "_stats.csv" {
			last := rows[len(rows)-1]
			if len(rows) != 3 || last[0] != "" || last[1] != "Aggregated" || rows[1][0] != "GET" || rows[1][1] != "/t" {
				t.Errorf("stats rows = %v; want GET /t then the Aggregated row", rows)
			}
		}
	}
}

func TestHistogramMergeExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	all := loadgen.NewHistogram()
	parts := []*loadgen.Histogram{loadgen.NewHistogram(), loadgen.NewHistogram(), loadgen.NewHistogram()}
	for i := 0; i < 30000; i++ {
		// Log-uniform from 10 µs to 10 s, so every bucket range is used.
		d := time.Duration(10e3 * math.Pow(10, rng.Float64()*6))
		all.Record(d)
		parts[i%3].Record(d)
	}
	// Through JSON too: the encoding must be lossless.
	merged := loadgen.NewHistogram()
	for _, p := range parts {
		b, err := p.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		var q loadgen.Histogram
		if err := q.UnmarshalJSON(b); err != nil {
			t.Fatal(err)
		}
		merged.Merge(&q)
	}
	if !merged.Equal(all) {
		t.Fatal("merged histogram differs from the one fed every sample")
	}
	for _, p := range []float64{50, 90, 99, 99.9, 99.99, 100} {
		if a, b := merged.Percentile(p), all.Percentile(p); a != b {
			t.Errorf("p%v: merged %v, single %v", p, a, b)
		}
	}
}

func TestMergeResultsFromFiles(t *testing.T) {
	srv := newRecordingServer(t, nil)
	dir := t.TempDir()
	var paths []string
	var results []*loadgen.Result
	for i := 0; i < 2; i++ {
		res, err := loadgen.Run(context.Background(), loadgen.Config{
			Scenario: loadgen.URLScenario(srv.URL + "/m"), Users: 2, MaxRequests: 300,
		})
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, "r"+string(rune('a'+i))+".json")
		if err := loadgen.WriteJSON(p, res); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
		results = append(results, res)
	}
	var read []*loadgen.Result
	for _, p := range paths {
		r, err := loadgen.ReadJSON(p)
		if err != nil {
			t.Fatal(err)
		}
		read = append(read, r)
	}
	merged, err := loadgen.Merge(read...)
	if err != nil {
		t.Fatal(err)
	}
	want := loadgen.NewHistogram()
	want.Merge(results[0].Total.Latency)
	want.Merge(results[1].Total.Latency)
	if merged.Total.Count != 600 || merged.Machines != 2 || !merged.Total.Latency.Equal(want) || !merged.Requests[0].Latency.Equal(want) {
		t.Fatalf("merged count %d machines %d; histograms equal: %v", merged.Total.Count, merged.Machines, merged.Total.Latency.Equal(want))
	}
	if merged.Total.P99 != want.Percentile(99) {
		t.Fatalf("merged p99 %v; want %v", merged.Total.P99, want.Percentile(99))
	}
}

func TestThresholds(t *testing.T) {
	res := &loadgen.Result{Total: &loadgen.Stats{Name: "Aggregated", Latency: loadgen.NewHistogram()}}
	for i := 1; i <= 100; i++ {
		res.Total.Latency.Record(time.Duration(i) * time.Millisecond)
	}
	res.Total.Count, res.Total.Failures = 1000, 2
	res.Total.Derive(10 * time.Second) // 100 req/s, 0.2% errors
	res.Requests = []*loadgen.Stats{res.Total}
	tests := []struct {
		expr string
		pass bool
	}{
		{"p99<250ms", true},
		{"p99<50ms", false},
		{"p(95)<1s", true},
		{"p95<=96ms", true}, // HDR reports the top of 95 ms's bucket
		{"p50<40", false},   // bare number = ms, like k6
		{"avg<60ms", true},
		{"max<100ms", false},
		{"errors<0.1%", false},
		{"errors<1%", true},
		{"errors<0.01", true},
		{"rps>100", false},
		{"rps>=100", true},
		{"count>999", true},
		{"Aggregated:p99<200ms", true},
		{"nosuch:p99<200ms", false},
	}
	for _, tt := range tests {
		th, err := loadgen.ParseThreshold(tt.expr)
		if err != nil {
			t.Fatalf("ParseThreshold(%q): %v", tt.expr, err)
		}
		if got := th.Evaluate(res); got.Pass != tt.pass {
			t.Errorf("Evaluate(%q) = %v (actual %s); want %v", tt.expr, got.Pass, got.Actual, tt.pass)
		}
	}
	for _, bad := range []string{"p99", "p99<fast", "latency<1s", "errors<5", "p0<1s", "rps>x"} {
		if _, err := loadgen.ParseThreshold(bad); err == nil {
			t.Errorf("ParseThreshold(%q) accepted; want an error", bad)
		}
	}
}
