package prefork_test

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"lode/internal/prefork"
)

func (m *master) scrape() (string, map[string]*dto.MetricFamily, error) {
	resp, err := statusClient.Get(m.base + prefork.MetricsPath)
	if err != nil {
		return "", nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return "", nil, fmt.Errorf("status %d: %s", resp.StatusCode, b)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(string(b)))
	return string(b), mfs, err
}

// waitMetrics scrapes until cond holds or the limit passes.
func (m *master) waitMetrics(limit time.Duration, what string, cond func(map[string]*dto.MetricFamily) bool) (string, map[string]*dto.MetricFamily) {
	m.t.Helper()
	deadline := time.Now().Add(limit)
	var last string
	var lastErr error
	for time.Now().Before(deadline) {
		text, mfs, err := m.scrape()
		if err == nil && cond(mfs) {
			return text, mfs
		}
		last, lastErr = text, err
		time.Sleep(50 * time.Millisecond) // poll interval, not synchronisation
	}
	m.t.Fatalf("timed out after %v waiting for %s; last scrape (err %v):\n%s\nmaster stderr:\n%s", limit, what, lastErr, last, m.output(true))
	return "", nil
}

// value is the value of name's series with exactly the labels want
// ("k=v"; none for an unlabelled series), and whether it exists.
func value(mfs map[string]*dto.MetricFamily, name string, want ...string) (float64, bool) {
	mf := mfs[name]
	if mf == nil {
		return 0, false
	}
	for _, m := range mf.Metric {
		if len(m.Label) != len(want) {
			continue
		}
		ok := true
		for _, kv := range want {
			k, v, _ := strings.Cut(kv, "=")
			found := false
			for _, l := range m.Label {
				found = found || l.GetName() == k && l.GetValue() == v
			}
			ok = ok && found
		}
		if !ok {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		}
	}
	return 0, false
}

func is(mfs map[string]*dto.MetricFamily, want float64, name string, labels ...string) bool {
	v, ok := value(mfs, name, labels...)
	return ok && v == want
}

// One scrape of the shared port shows every worker's own series, labelled
// with its id, and the master's: workers by state, busy time, a worker
// that stops answering (not up, heartbeats missed, then killed and
// restarted for its heartbeat), and a rolling reload's replacements.
func TestMetricsAcrossWorkers(t *testing.T) {
	t.Parallel()
	m := startMaster(t, "PREFORK_TEST_WORKERS=2", "PREFORK_TEST_WORKER_TIMEOUT=3s")
	st := m.waitStatus(30*time.Second, "2 ready workers", func(st *prefork.Status) bool { return serving(st, 2, nil) })
	distinctPids(t, m.base, 2) // requests to / until both answered
	text, mfs := m.waitMetrics(20*time.Second, "both workers' series", func(mfs map[string]*dto.MetricFamily) bool {
		return is(mfs, 1, "lode_worker_up", "worker=1") && is(mfs, 1, "lode_worker_up", "worker=2") &&
			is(mfs, 2, "lode_workers", "state=idle") && is(mfs, 2, "lode_workers_target")
	})
	for _, id := range []string{"1", "2"} {
		v, ok := value(mfs, "test_requests_total", "worker="+id)
		if !ok || v == 0 {
			t.Errorf("worker %s's test_requests_total = %v, %v; want its requests", id, v, ok)
		}
		if b, ok := value(mfs, "lode_worker_busy_seconds_total", "worker="+id); !ok || b <= 0 {
			t.Errorf("worker %s busy seconds = %v, %v; want > 0", id, b, ok)
		}
		if !is(mfs, 0, "lode_worker_busy", "worker="+id) {
			t.Errorf("worker %s is busy during an idle scrape (the scrape itself must not count)", id)
		}
	}
	if promtool, err := exec.LookPath("promtool"); err == nil {
		cmd := exec.Command(promtool, "check", "metrics")
		cmd.Stdin = strings.NewReader(text)
		if out, err := cmd.CombinedOutput(); err != nil || len(strings.TrimSpace(string(out))) > 0 {
			t.Errorf("promtool check metrics: %v\n%s", err, out)
		}
	} else if os.Getenv("LODE_REQUIRE_PROMTOOL") != "" {
		t.Error("promtool not found (apt-get install prometheus)")
	}

	// A worker that stops (SIGSTOP) misses heartbeats, does not answer the
	// scrape within the gather timeout, and is killed after the worker
	// timeout (3 s) and replaced.
	victim := st.Workers[0]
	vid := strconv.Itoa(victim.ID)
	if err := syscall.Kill(victim.PID, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	// On a loaded machine the scrapes may miss the seconds in which it is
	// down: its missed heartbeats and its restart are what must show.
	m.waitMetrics(20*time.Second, "the stopped worker missing", func(mfs map[string]*dto.MetricFamily) bool {
		v, _ := value(mfs, "lode_worker_heartbeats_missed_total", "worker="+vid)
		restarted := is(mfs, 1, "lode_worker_restarts_total", "worker="+vid, "cause=heartbeat")
		return v >= 1 && (is(mfs, 0, "lode_worker_up", "worker="+vid) || restarted)
	})
	m.waitMetrics(30*time.Second, "the heartbeat restart", func(mfs map[string]*dto.MetricFamily) bool {
		return is(mfs, 1, "lode_worker_restarts_total", "worker="+vid, "cause=heartbeat") &&
			is(mfs, 1, "lode_worker_up", "worker=1") && is(mfs, 1, "lode_worker_up", "worker=2")
	})

	// A rolling reload replaces both workers.
	m.signal(syscall.SIGHUP)
	_, mfs = m.waitMetrics(30*time.Second, "the reload", func(mfs map[string]*dto.MetricFamily) bool {
		return is(mfs, 1, "lode_worker_reloads_total") &&
			is(mfs, 1, "lode_worker_restarts_total", "worker=1", "cause=reload") &&
			is(mfs, 1, "lode_worker_restarts_total", "worker=2", "cause=reload") &&
			is(mfs, 2, "lode_workers", "state=idle")
	})
	if _, ok := value(mfs, "lode_worker_restarts_total", "worker="+vid, "cause=exit"); ok {
		t.Errorf("the heartbeat kill was also counted as an exit")
	}
	m.signal(syscall.SIGTERM)
	if code := m.wait(30 * time.Second); code != 0 {
		t.Errorf("master exit code = %d; want 0", code)
	}
}
