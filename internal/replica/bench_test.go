package replica_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"lode/internal/loadgen"
	"lode/internal/replica"
)

// BenchmarkReplication measures, in one run on this machine (real
// processes on loopback, a file destination):
//
//   - replication lag — from the primary's 2xx for an insert to the row
//     being readable through a replica's JSON API — p50/p99 at 100 and 1,000
//     inserts/s, with the default intervals (--sync-interval 1s,
//     --follow-interval 500ms) and the shortest accepted (50 ms each);
//   - read requests/s of a replica and of the primary on the same URL;
//   - the primary's insert rate with replication on and off.
//
// Run: go test -tags sqlite_fts5 -run '^$' -bench Replication -benchtime 1x ./internal/replica/
// It takes about three minutes; README "Read replicas" has a run's numbers.
// -bench 'Replication/inserts' (or /reads, /lag/50ms/1000) runs one part.
func BenchmarkReplication(b *testing.B) {
	for _, iv := range []struct{ name, sync, follow string }{
		{"default", replica.DefaultSyncInterval.String(), replica.DefaultFollowInterval.String()},
		{"50ms", "50ms", "50ms"},
	} {
		for _, rate := range []float64{100, 1000} {
			b.Run(fmt.Sprintf("lag/%s/%.0f", iv.name, rate), func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					p50, p99, n, achieved := measureLag(b, iv.sync, iv.follow, rate)
					b.Logf("lag, --sync-interval %s --follow-interval %s, %4.0f inserts/s (achieved %.0f/s): p50 %s, p99 %s (%d rows)", iv.sync, iv.follow, rate, achieved, p50, p99, n)
					b.ReportMetric(float64(p50.Milliseconds()), "p50-ms")
					b.ReportMetric(float64(p99.Milliseconds()), "p99-ms")
					b.ReportMetric(achieved, "inserts/s")
				}
			})
		}
	}
	b.Run("reads", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			prim, rep := measureReads(b)
			b.Logf("reads of /data/t/1.json, 16 users, medians of %d interleaved rounds of 3 s: primary %.0f req/s, replica %.0f req/s (replica/primary %.2f)", benchRounds, prim, rep, rep/prim)
			b.ReportMetric(rep/prim, "replica/primary")
		}
	})
	b.Run("inserts", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			on, off := measureInserts(b)
			b.Logf("inserts, 16 users, medians of %d interleaved rounds of 3 s: replication on %.0f/s, off %.0f/s (on/off %.2f)", benchRounds, on, off, on/off)
			b.ReportMetric(on/off, "on/off")
		}
	})
}

// benchRounds is how many interleaved rounds the throughput comparisons
// run: the machine is shared, so single rounds swing by 2x or more.
const benchRounds = 5

// benchCluster starts a primary (1 worker) replicating every sync and one
// replica (1 worker) polling every follow.
func benchCluster(b *testing.B, syncIv, follow string) (dir string, primary, rep *node, token string) {
	dir = b.TempDir()
	newDB(b, dir)
	url := replica.FileURL(filepath.Join(dir, "dest"))
	primary = startNode(b, "primary", dir, "data.db", "--replicate", url, "--sync-interval", syncIv, "--root")
	rep = startNode(b, "replica", dir, "--follow", url, "--as", "data", "--follow-dir", mkdir(b, filepath.Join(dir, "r")),
		"--follow-interval", follow, "--primary", primary.Base)
	return dir, primary, rep, rootToken(b)
}

// measureLag inserts at rate for a few seconds and watches the replica's
// largest id every 5 ms. Ids are assigned in commit order by the one
// writer and a replica applies whole transactions in order, so the row
// with id N is readable once the largest readable id reaches N.
func measureLag(b *testing.B, syncIv, follow string, rate float64) (p50, p99 time.Duration, n int, achieved float64) {
	_, primary, rep, token := benchCluster(b, syncIv, follow)
	dur := 8 * time.Second
	if rate >= 1000 {
		dur = 5 * time.Second
	}
	var seenMu sync.Mutex
	seen := map[int64]time.Time{} // largest readable id -> when first seen
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var last int64
		for {
			select {
			case <-stop:
				return
			default:
			}
			var p struct {
				Rows [][]any `json:"rows"`
			}
			if err := getJSON(rep.Base, "/data/-/query.json?sql=select+max(id)+from+t&_shape=arrays", &p); err == nil && len(p.Rows) == 1 {
				if f, ok := p.Rows[0][0].(float64); ok && int64(f) > last {
					last = int64(f)
					seenMu.Lock()
					seen[last] = time.Now()
					seenMu.Unlock()
				}
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	start := time.Now()
	acks := insertAt(context.Background(), b, primary.Base, token, int(rate*dur.Seconds()), rate, "lag")
	achieved = float64(len(acks)) / time.Since(start).Seconds()
	var maxID int64
	for _, a := range acks {
		maxID = max(maxID, a.id)
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		seenMu.Lock()
		done := false
		for id := range seen {
			if id >= maxID {
				done = true
			}
		}
		seenMu.Unlock()
		if done {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	type point struct {
		id int64
		at time.Time
	}
	var pts []point
	for id, at := range seen {
		pts = append(pts, point{id, at})
	}
	slices.SortFunc(pts, func(a, b point) int { return int(a.id - b.id) })
	var lags []time.Duration
	for _, a := range acks {
		i, _ := slices.BinarySearchFunc(pts, a.id, func(p point, id int64) int { return int(p.id - id) })
		if i == len(pts) {
			b.Fatalf("row %d never became readable on the replica", a.id)
		}
		lags = append(lags, max(pts[i].at.Sub(a.at), 0))
	}
	slices.Sort(lags)
	q := func(f float64) time.Duration {
		return lags[min(len(lags)-1, int(f*float64(len(lags))))].Round(time.Millisecond)
	}
	primary.stop()
	rep.stop()
	return q(0.50), q(0.99), len(lags), achieved
}

// rounds runs f for each of the named targets in interleaved rounds and
// returns each target's median req/s.
func rounds(b *testing.B, names []string, f func(name string) float64) map[string]float64 {
	got := map[string][]float64{}
	for r := 0; r < benchRounds; r++ {
		for _, n := range names {
			got[n] = append(got[n], f(n))
		}
	}
	out := map[string]float64{}
	for n, v := range got {
		slices.Sort(v)
		out[n] = v[len(v)/2]
		b.Logf("  %s: %.0f req/s per round %v", n, out[n], v)
	}
	return out
}

func rps(b *testing.B, sc *loadgen.Scenario) float64 {
	res, err := loadgen.Run(context.Background(), loadgen.Config{Scenario: sc, Users: 16, Duration: 3 * time.Second, Warmup: 500 * time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	if res.Total.Failures > 0 {
		b.Fatalf("%d of %d requests failed: %s", res.Total.Failures, res.Total.Count, res.Total.Errors[0].Message)
	}
	return res.Total.RPS
}

// measureReads compares a replica with its primary on the same URL (the
// primary replicating, idle; the replica following, idle).
func measureReads(b *testing.B) (primary, rep float64) {
	_, p, r, token := benchCluster(b, replica.DefaultSyncInterval.String(), replica.DefaultFollowInterval.String())
	insertAt(context.Background(), b, p.Base, token, 200, 400, "reads")
	waitApplied(b, r, waitSynced(b, p, time.Now(), 30*time.Second), 30*time.Second)
	base := map[string]string{"primary": p.Base, "replica": r.Base}
	m := rounds(b, []string{"primary", "replica"}, func(n string) float64 {
		return rps(b, loadgen.URLScenario(base[n]+"/data/t/1.json"))
	})
	p.stop()
	r.stop()
	return m["primary"], m["replica"]
}

// measureInserts compares a primary replicating (default interval) with
// one that does not, on the same insert.
func measureInserts(b *testing.B) (on, off float64) {
	dirOn, dirOff := b.TempDir(), b.TempDir()
	newDB(b, dirOn)
	newDB(b, dirOff)
	pOn := startNode(b, "on", dirOn, "data.db", "--replicate", replica.FileURL(filepath.Join(dirOn, "dest")), "--root")
	pOff := startNode(b, "off", dirOff, "data.db", "--root")
	token := rootToken(b)
	base := map[string]string{"on": pOn.Base, "off": pOff.Base}
	m := rounds(b, []string{"on", "off"}, func(n string) float64 {
		sc := &loadgen.Scenario{}
		sc.Add(&loadgen.Request{Name: "insert", Method: "POST", URL: base[n] + "/data/t/-/insert",
			Headers: map[string]string{"Authorization": "Bearer " + token, "Content-Type": "application/json"},
			Body:    `{"row": {"v": "bench", "n": {{.iter}}}}`,
			Checks:  []loadgen.Check{{Status: []int{201}}}})
		return rps(b, sc)
	})
	pOn.stop()
	pOff.stop()
	return m["on"], m["off"]
}
