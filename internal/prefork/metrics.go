package prefork

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// Metrics across worker processes (the worker's side; the master's is
// gather.go). A scrape reaches one worker; its MetricsGatherer asks the
// master for every serving worker's metrics, labels each worker's series
// with worker="ID" (the slot, stable across restarts), and adds the
// master's own: workers by state, restarts by cause, missed heartbeats,
// reloads. Each worker contributes what its Metrics gatherer (the
// server's registry) holds plus its busy time, which the worker measures
// itself (busyClock).

// MetricsPath is the URL path of the metrics. Requests to it do not count
// as the worker being busy.
const MetricsPath = "/-/metrics"

// busyClock measures how long a worker had requests in flight.
type busyClock struct {
	mu    sync.Mutex
	n     int           // requests in flight (scrapes excluded)
	since time.Time     // when n last became non-zero
	total time.Duration // busy time before since
}

func (b *busyClock) start(now time.Time) {
	b.mu.Lock()
	if b.n == 0 {
		b.since = now
	}
	b.n++
	b.mu.Unlock()
}

func (b *busyClock) end(now time.Time) {
	b.mu.Lock()
	b.n--
	if b.n == 0 {
		b.total += now.Sub(b.since)
	}
	b.mu.Unlock()
}

// read returns the busy time up to now and whether requests are in flight.
func (b *busyClock) read(now time.Time) (time.Duration, int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	t := b.total
	if b.n > 0 {
		t += now.Sub(b.since)
	}
	return t, b.n
}

// workerRegistry holds the worker's own metrics.
func (w *Worker) workerRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "lode_worker_busy_seconds_total",
			Help: "Time the worker had at least one request in flight (metrics scrapes excluded); its rate is the worker's utilisation."},
			func() float64 { t, _ := w.busy.read(time.Now()); return t.Seconds() }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: metricBusy,
			Help: "1 if the worker is serving requests (other than metrics scrapes), 0 if it is idle."},
			func() float64 {
				if _, n := w.busy.read(time.Now()); n > 0 {
					return 1
				}
				return 0
			}),
	)
	return reg
}

const metricBusy = "lode_worker_busy"

// encodeMetrics gathers this worker's metrics in the protobuf exposition
// format, the payload of a "gathered" message.
func (w *Worker) encodeMetrics() ([]byte, error) {
	g := prometheus.Gatherers{w.reg}
	if w.Metrics != nil {
		g = append(g, w.Metrics)
	}
	mfs, err := g.Gather()
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeProtoDelim))
	for _, mf := range mfs {
		if e := enc.Encode(mf); e != nil {
			return nil, e
		}
	}
	return buf.Bytes(), err
}

// answerGather answers the master's request id with this worker's metrics.
func (w *Worker) answerGather(id uint64) {
	data, err := w.encodeMetrics()
	msg := message{Type: msgGathered, ID: id, Metrics: data}
	if err != nil {
		msg.Error = err.Error()
	}
	if err := w.send(msg); err != nil {
		w.logger().Debug("cannot send metrics to the master", "err", err)
	}
}

// GatherAll asks the master for every serving worker's metrics (in the
// protobuf exposition format, decoded by MetricsGatherer) and the master's
// Status.
func (w *Worker) GatherAll(ctx context.Context) (*Status, []Gathered, error) {
	reply, err := w.ask(ctx, message{Type: msgGatherAll})
	if err != nil {
		return nil, nil, err
	}
	return reply.Status, reply.Workers, nil
}

// MetricsGatherer returns the gatherer /-/metrics serves in a worker: every
// serving worker's metrics, each series labelled worker="ID", and the
// master's. When the master cannot be asked, it returns this worker's own
// metrics (labelled) with the error, so a scrape still shows something.
func (w *Worker) MetricsGatherer() prometheus.Gatherer {
	return prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		ctx, cancel := context.WithTimeout(context.Background(), gatherTimeout+3*time.Second)
		defer cancel()
		st, parts, err := w.GatherAll(ctx)
		if err != nil {
			data, gerr := w.encodeMetrics()
			own := decodeLabelled(Gathered{ID: w.ID, Metrics: data})
			return own, errors.Join(fmt.Errorf("metrics of the other workers: %w", err), gerr)
		}
		gs := prometheus.Gatherers{}
		busy := map[int]bool{}
		var errs []error
		for _, p := range parts {
			if p.Error != "" {
				errs = append(errs, fmt.Errorf("worker %d (pid %d): %s", p.ID, p.PID, p.Error))
			}
			mfs := decodeLabelled(p)
			for _, mf := range mfs {
				if mf.GetName() == metricBusy && len(mf.Metric) == 1 && mf.Metric[0].GetGauge().GetValue() > 0 {
					busy[p.ID] = true
				}
			}
			gs = append(gs, prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) { return mfs, nil }))
		}
		master := masterFamilies(st, parts, busy)
		gs = append(gs, prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) { return master, nil }))
		mfs, err := gs.Gather()
		return mfs, errors.Join(append(errs, err)...)
	})
}

// decodeLabelled decodes a worker's payload and labels every series with
// its worker id.
func decodeLabelled(p Gathered) []*dto.MetricFamily {
	var out []*dto.MetricFamily
	dec := expfmt.NewDecoder(bytes.NewReader(p.Metrics), expfmt.NewFormat(expfmt.TypeProtoDelim))
	name, id := "worker", strconv.Itoa(p.ID)
	for {
		mf := &dto.MetricFamily{}
		if err := dec.Decode(mf); err != nil {
			break // io.EOF, or a truncated payload: keep what decoded
		}
		for _, m := range mf.Metric {
			m.Label = append(m.Label, &dto.LabelPair{Name: &name, Value: &id})
		}
		out = append(out, mf)
	}
	return out
}

// masterFamilies are the master's metrics: from its Status, and from which
// workers answered and were busy.
func masterFamilies(st *Status, parts []Gathered, busy map[int]bool) []*dto.MetricFamily {
	states := map[string]float64{"starting": 0, "idle": 0, "busy": 0, "draining": 0}
	restarts := map[string]map[string]float64{}
	missed := map[string]float64{}
	for _, ws := range st.Workers {
		id := strconv.Itoa(ws.ID)
		state := ws.State
		if state == "idle" || state == "busy" {
			// Fresher than the heartbeat: measured during this scrape,
			// with the scrape itself not counted.
			state = "idle"
			if busy[ws.ID] {
				state = "busy"
			}
		}
		states[state]++
		for cause, n := range ws.RestartsByCause {
			if restarts[id] == nil {
				restarts[id] = map[string]float64{}
			}
			restarts[id][cause] += float64(n)
		}
		missed[id] += float64(ws.HeartbeatsMissed)
	}
	up := map[string]float64{}
	for _, p := range parts {
		v := 0.0
		if p.Error == "" {
			v = 1
		}
		up[strconv.Itoa(p.ID)] = v
	}
	var out []*dto.MetricFamily
	add := func(name, help string, typ dto.MetricType, ms ...*dto.Metric) {
		if len(ms) > 0 {
			out = append(out, &dto.MetricFamily{Name: &name, Help: &help, Type: &typ, Metric: ms})
		}
	}
	gaugeM := func(v float64, lv ...string) *dto.Metric {
		return &dto.Metric{Label: pairs(lv), Gauge: &dto.Gauge{Value: &v}}
	}
	counterM := func(v float64, lv ...string) *dto.Metric {
		return &dto.Metric{Label: pairs(lv), Counter: &dto.Counter{Value: &v}}
	}
	var ms []*dto.Metric
	for _, s := range sortedKeys(states) {
		ms = append(ms, gaugeM(states[s], "state", s))
	}
	add("lode_workers", "Worker processes by state: starting, idle, busy (serving requests other than metrics scrapes), draining.", dto.MetricType_GAUGE, ms...)
	add("lode_workers_target", "Worker processes the master keeps running (--workers, SIGTTIN/SIGTTOU).", dto.MetricType_GAUGE,
		gaugeM(float64(st.TargetWorkers)))
	ms = nil
	for _, id := range sortedKeys(restarts) {
		for _, cause := range sortedKeys(restarts[id]) {
			ms = append(ms, counterM(restarts[id][cause], "worker", id, "cause", cause))
		}
	}
	add("lode_worker_restarts_total", "Worker processes replaced, by cause: exit (died on its own), heartbeat (killed after missing heartbeats), reload (SIGHUP), max_requests.", dto.MetricType_COUNTER, ms...)
	ms = nil
	for _, id := range sortedKeys(missed) {
		ms = append(ms, counterM(missed[id], "worker", id))
	}
	add("lode_worker_heartbeats_missed_total", "Heartbeat intervals that passed without a heartbeat from the worker, beyond the first.", dto.MetricType_COUNTER, ms...)
	add("lode_worker_reloads_total", "Rolling reloads (SIGHUP) the master received.", dto.MetricType_COUNTER, counterM(float64(st.Reloads)))
	ms = nil
	for _, id := range sortedKeys(up) {
		ms = append(ms, gaugeM(up[id], "worker", id))
	}
	add("lode_worker_up", "1 if the worker's metrics are in this scrape, 0 if it did not answer in time.", dto.MetricType_GAUGE, ms...)
	return out
}

func pairs(lv []string) []*dto.LabelPair {
	var out []*dto.LabelPair
	for i := 0; i+1 < len(lv); i += 2 {
		out = append(out, &dto.LabelPair{Name: &lv[i], Value: &lv[i+1]})
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
