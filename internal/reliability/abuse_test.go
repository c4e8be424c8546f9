package reliability_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// abusiveQueries are ?sql= statements built to exhaust memory or time
// with one request; each must be refused (4xx) or shed (503), quickly,
// never answered with a giant body or a 500.
var abusiveQueries = []string{
	// One function call that builds a huge value inside one VM step,
	// where the time limit cannot interrupt it.
	"select length(upper(printf('%.*c', 900000000, 'x')))",
	"select randomblob(1000000000)",
	"select zeroblob(300000000)",
	"select length(replace(printf('%.*c', 30000000, 'x'), 'x', 'xxxxxxxx'))",
	// Doubling a string in a recursive CTE.
	"with recursive c(s) as (select 'x' union all select s || s from c where length(s) < 2000000000) select length(s) from c",
	// A value just under the value limit: too big for one response.
	"select zeroblob(30000000)",
	// Six 30 MB values alive in one row: past SQLite's heap limit.
	"select zeroblob(30000000)||x'01', zeroblob(30000000)||x'02', zeroblob(30000000)||x'03', zeroblob(30000000)||x'04', zeroblob(30000000)||x'05', zeroblob(30000000)||x'06'",
	// Many rows of big values: past max_response_mb.
	"with recursive c(x) as (select 1 union all select x + 1 from c where x < 1000) select zeroblob(1000000) from c",
	"with recursive c(x) as (select 1 union all select x + 1 from c where x < 400) select randomblob(1000000) as b from c order by b",
	"with recursive c(x) as (select 1 union all select x + 1 from c where x < 100000) select group_concat(printf('%.*c', 1000, 'x')) from c",
	// An endless statement: the time limit.
	"with recursive c(x) as (select 1 union all select x + 1 from c) select count(*) from c",
}

// vmHWM reads a process's peak resident set size (VmHWM) in bytes.
func vmHWM(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("read /proc/%d/status: %v", pid, err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatalf("VmHWM %q: %v", v, err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no VmHWM in /proc/%d/status", pid)
	return 0
}

// TestAbusiveQueriesBoundedMemory runs every abusive query from 8 clients
// at once against one worker with the default --memory-limit (512 MiB),
// while another client reads normally. Every abusive request must be a
// JSON 4xx or a 503 with Retry-After; the bystander's reads must be 200 or
// 503 (shed while the connections were busy), never a 400 blaming its
// query; the worker's peak RSS must stay under the memory limit.
func TestAbusiveQueriesBoundedMemory(t *testing.T) {
	dir := t.TempDir()
	path := newDB(t, dir, "app.db", "wal",
		"CREATE TABLE items (id INTEGER PRIMARY KEY, k TEXT)",
		"INSERT INTO items (k) VALUES ('a'), ('b')")
	p := startLode(t, path, "--workers", "1")
	st := p.waitStatus("1 ready worker", 60*time.Second, (*workersStatus).ready)
	worker := st.Workers[0].PID
	const limit = 512 << 20
	base := vmHWM(t, worker)

	const clients = 8
	var (
		mu       sync.Mutex
		statuses = map[string]map[int]int{} // query -> status -> count
		worst    = map[string]time.Duration{}
		wg       sync.WaitGroup
	)
	record := func(q string, status int, d time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		if statuses[q] == nil {
			statuses[q] = map[int]int{}
		}
		statuses[q][status]++
		worst[q] = max(worst[q], d)
	}
	start := time.Now()
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := newClient()
			for j := range abuseRounds * len(abusiveQueries) {
				q := abusiveQueries[(i+j)%len(abusiveQueries)] // clients start at different queries
				t0 := time.Now()
				st, b, h := do(t, c, "GET", p.Base+"app/-/query.json?sql="+url.QueryEscape(q), "", nil)
				record(q, st, time.Since(t0))
				var e apiError
				switch {
				case json.Unmarshal(b, &e) != nil || e.OK == nil || *e.OK || e.Status != 0 && e.Status != st: // query errors carry rows, not a status key, as Datasette
					t.Errorf("%.60s: status %d without a JSON error: %.200s", q, st, b)
				case st == 503 && h.Get("Retry-After") == "":
					t.Errorf("%.60s: 503 without Retry-After: %s", q, e.Error)
				case st != 503 && (st < 400 || st >= 500):
					t.Errorf("%.60s: status %d: %.200s", q, st, b)
				}
			}
		}()
	}
	stop := make(chan struct{})
	bystander := map[int]int{}
	var bwg sync.WaitGroup
	bwg.Add(1)
	go func() {
		defer bwg.Done()
		c := newClient()
		for {
			select {
			case <-stop:
				return
			default:
			}
			st, b, h := do(t, c, "GET", p.Base+"app/items.json?_size=1", "", nil)
			bystander[st]++
			if st != 200 && !(st == 503 && h.Get("Retry-After") != "") {
				t.Errorf("bystander read during the abuse: %d %.200s", st, b)
			}
			time.Sleep(20 * time.Millisecond) // the bystander's pace
		}
	}()
	wg.Wait()
	close(stop)
	bwg.Wait()
	took := time.Since(start)
	peak := vmHWM(t, worker)
	for _, q := range abusiveQueries {
		t.Logf("%-70.70s statuses %v, slowest %v", q, statuses[q], worst[q].Round(time.Millisecond))
	}
	t.Logf("%d clients x %d queries in %v; bystander statuses %v; worker peak RSS %.0f MiB (%.0f MiB before), limit %d MiB",
		clients, abuseRounds*len(abusiveQueries), took.Round(time.Millisecond), bystander, float64(peak)/(1<<20), float64(base)/(1<<20), limit>>20)
	if peak > limit {
		t.Errorf("worker peak RSS %.0f MiB is over --memory-limit %d MiB", float64(peak)/(1<<20), limit>>20)
	}
	if st, b, _ := do(t, newClient(), "GET", p.Base+"app/items.json", "", nil); st != http.StatusOK {
		t.Fatalf("after the abuse: %d %.200s", st, b)
	}
	if after := p.waitStatus("the same worker", 10*time.Second, (*workersStatus).ready); after.Workers[0].PID != worker {
		t.Errorf("the worker was replaced during the abuse:\n%s", p.output())
	}
}

// TestFacetBudget asks for a facet on every one of 60 columns of a
// facetRows-row table. Each facet has its own facet_time_limit_ms, and
// all of them together share facet_total_time_limit_ms: with the
// defaults the request ends soon after the 1 s budget (before it, 60
// facets at 200 ms each could take 12 s); with a 1 ms budget every facet
// after the first is reported as timed out without running.
func TestFacetBudget(t *testing.T) {
	dir := t.TempDir()
	var cols, vals, names, facets []string
	for i := range 60 {
		cols = append(cols, fmt.Sprintf("c%d INTEGER", i))
		names = append(names, fmt.Sprintf("c%d", i))
		vals = append(vals, fmt.Sprintf("(x * %d) %% %d", i+1, 5+i))
		facets = append(facets, fmt.Sprintf("_facet=c%d", i))
	}
	t0 := time.Now()
	path := newDB(t, dir, "wide.db", "wal",
		fmt.Sprintf("CREATE TABLE t (id INTEGER PRIMARY KEY, %s)", strings.Join(cols, ", ")),
		fmt.Sprintf("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < %d) INSERT INTO t (%s) SELECT %s FROM c",
			facetRows, strings.Join(names, ", "), strings.Join(vals, ", ")))
	t.Logf("%d x 60 table built in %v", facetRows, time.Since(t0).Round(time.Millisecond))
	for _, tc := range []struct {
		settings []string
		minGone  int
	}{
		{nil, 0},
		{[]string{"--setting", "facet_total_time_limit_ms", "1", "--setting", "facet_time_limit_ms", "60000"}, 59},
	} {
		p := startLode(t, append([]string{path, "--workers", "0"}, tc.settings...)...)
		start := time.Now()
		st, b, _ := do(t, newClient(), "GET", p.Base+"wide/t.json?_size=0&"+strings.Join(facets, "&"), "", nil)
		took := time.Since(start)
		var res struct {
			FacetResults struct {
				Results  map[string]any `json:"results"`
				TimedOut []string       `json:"timed_out"`
			} `json:"facet_results"`
		}
		if err := json.Unmarshal(b, &res); err != nil || st != 200 {
			t.Fatalf("60 facets %v: %d %.300s", tc.settings, st, b)
		}
		gone, ran := len(res.FacetResults.TimedOut), len(res.FacetResults.Results)
		t.Logf("60 facets on %d rows, settings %v: %d ran, %d timed out, request took %v", facetRows, tc.settings, ran, gone, took.Round(time.Millisecond))
		if gone+ran != 60 || gone < tc.minGone {
			t.Errorf("settings %v: %d facets ran and %d timed out; want 60 in all, at least %d timed out", tc.settings, ran, gone, tc.minGone)
		}
		p.kill()
	}
}
