package server

import (
	"log/slog"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"lode/internal/sqlitedb"
)

// Metrics and the access log. Every request passes the front door once;
// when the metrics setting is on (the default) or an access log is
// configured, ServeHTTP hands it to observe, which times it, counts its
// status and bytes through a pooled response recorder, and then labels it
// by the route the door parsed (routeLabel: never the path, so labels stay
// a small fixed set and never carry names or values from the data).
//
// Each Server has its own prometheus.Registry (no global registry: two
// servers in one process keep their own counters). /-/metrics is an
// instance route like /-/versions.json, so the gate (view-instance) applies
// to it. It serves the registry, or, in a prefork worker, a gatherer that
// asks the master for every worker's metrics (SetMetricsGatherer).

// Route labels: the kind of request, from the parsed route.
const (
	labelNone = iota // no route (404, redirects of unclean paths)
	labelIndex
	labelStatic
	labelInstance
	labelMetrics
	labelDatabase
	labelQuery
	labelCreate
	labelTable
	labelCanned
	labelRow
	labelInsert
	labelUpsert
	labelDrop
	labelUpdate
	labelDelete
	labelAction // an unknown write action
	nRouteLabels
)

var routeLabels = [nRouteLabels]string{"none", "index", "static", "instance", "metrics", "database", "query",
	"create", "table", "canned", "row", "insert", "upsert", "drop", "update", "delete", "action"}

// routeLabel names the kind of a served route: what the door parsed and
// resolved, never the path itself.
func routeLabel(rt *route) int {
	switch rt.kind {
	case routeIndex:
		return labelIndex
	case routeStatic:
		return labelStatic
	case routeInstance:
		if rt.action == "metrics" {
			return labelMetrics
		}
		return labelInstance
	case routeDatabase:
		if rt.params.Has("sql") {
			return labelQuery
		}
		return labelDatabase
	case routeDatabaseAction:
		switch rt.action {
		case "query":
			return labelQuery
		case "create":
			return labelCreate
		}
		return labelAction
	case routeTable:
		if rt.canned != nil {
			return labelCanned
		}
		return labelTable
	case routeRow:
		return labelRow
	case routeTableAction, routeRowAction:
		switch rt.action {
		case "insert":
			return labelInsert
		case "upsert":
			return labelUpsert
		case "drop":
			return labelDrop
		case "update":
			return labelUpdate
		case "delete":
			return labelDelete
		}
		return labelAction
	}
	return labelNone
}

// Method and status class labels.
const (
	methodGet = iota
	methodHead
	methodPost
	methodOther
	nMethods
)

var methodLabels = [nMethods]string{"GET", "HEAD", "POST", "other"}

func methodIndex(m string) int {
	switch m {
	case http.MethodGet:
		return methodGet
	case http.MethodHead:
		return methodHead
	case http.MethodPost:
		return methodPost
	}
	return methodOther
}

const nClasses = 5

var classLabels = [nClasses]string{"1xx", "2xx", "3xx", "4xx", "5xx"}

func classIndex(status int) int {
	c := status/100 - 1
	if c < 0 || c >= nClasses {
		return nClasses - 1 // an impossible status counts as a server error
	}
	return c
}

// latencyBuckets are the request duration histogram's bounds in seconds:
// from a cached row lookup (about 50 µs) to a CSV stream or a request
// that waited out a busy timeout (seconds).
var latencyBuckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
	0.25, 0.5, 1, 2.5, 5, 10}

// httpMetrics are the request metrics of one server process.
type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	bytes    *prometheus.CounterVec
	inflight atomic.Int64 // read by a GaugeFunc at scrape time

	// The children of each label combination, created on first use so
	// that only combinations that occurred are exported, and then found
	// without hashing label values or allocating.
	cells   [nRouteLabels][nMethods][nClasses]atomic.Pointer[httpCell]
	byRoute [nRouteLabels]atomic.Pointer[prometheus.Counter]
}

type httpCell struct {
	requests prometheus.Counter
	duration prometheus.Observer
}

func newHTTPMetrics(reg prometheus.Registerer) *httpMetrics {
	labels := []string{"route", "method", "status"}
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lode_http_requests_total",
			Help: "HTTP requests answered, by route kind (table, row, query, insert, ...), method and status class."}, labels),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "lode_http_request_duration_seconds",
			Help:    "Time from the request reaching the server's handler to the handler's return, by route kind, method and status class.",
			Buckets: latencyBuckets}, labels),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lode_http_response_bytes_total",
			Help: "Response body bytes written, by route kind."}, []string{"route"}),
	}
	inflight := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "lode_http_requests_in_flight",
		Help: "Requests being served now (including this scrape)."}, func() float64 { return float64(m.inflight.Load()) })
	reg.MustRegister(m.requests, m.duration, m.bytes, inflight)
	return m
}

func (m *httpMetrics) observe(route, method, status int, d time.Duration, n int64) {
	c := m.cells[route][method][status].Load()
	if c == nil {
		lv := []string{routeLabels[route], methodLabels[method], classLabels[status]}
		// Racing first uses get the same children from the vectors.
		m.cells[route][method][status].CompareAndSwap(nil,
			&httpCell{requests: m.requests.WithLabelValues(lv...), duration: m.duration.WithLabelValues(lv...)})
		c = m.cells[route][method][status].Load()
	}
	c.requests.Inc()
	c.duration.Observe(d.Seconds())
	if n > 0 {
		b := m.byRoute[route].Load()
		if b == nil {
			ctr := m.bytes.WithLabelValues(routeLabels[route])
			m.byRoute[route].CompareAndSwap(nil, &ctr)
			b = m.byRoute[route].Load()
		}
		(*b).Add(float64(n))
	}
}

// observer times requests for the metrics and writes the access log.
type observer struct {
	http *httpMetrics // nil: metrics off
	log  *accessLog   // nil: no access log
	pool sync.Pool    // *recorder
}

// recorder is the response writer the observer hands to the door: it
// notes the status and counts body bytes. Recorders are pooled, so a
// request costs no allocation for them.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
	rt     route // the request's route, pooled with the recorder (it would escape to the heap)
}

func (rec *recorder) WriteHeader(code int) {
	if rec.status == 0 && code >= 200 {
		rec.status = code
	}
	rec.ResponseWriter.WriteHeader(code)
}

func (rec *recorder) Write(b []byte) (int, error) {
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	n, err := rec.ResponseWriter.Write(b)
	rec.bytes += int64(n)
	return n, err
}

// Flush lets streaming handlers flush through the recorder.
func (rec *recorder) Flush() {
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	_ = http.NewResponseController(rec.ResponseWriter).Flush()
}

// Unwrap exposes the underlying writer to http.ResponseController.
func (rec *recorder) Unwrap() http.ResponseWriter { return rec.ResponseWriter }

// observe serves r through the door, then records it.
func (o *observer) observe(s *Server, w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	if o.http != nil {
		o.http.inflight.Add(1)
		defer o.http.inflight.Add(-1)
	}
	rec, _ := o.pool.Get().(*recorder)
	if rec == nil {
		rec = &recorder{}
	}
	rec.ResponseWriter, rec.status, rec.bytes = w, 0, 0
	rt := &rec.rt
	s.serve(rec, r, rt)
	d := time.Since(start)
	status, n := rec.status, rec.bytes
	if status == 0 {
		status = http.StatusOK // nothing written: net/http sends 200
	}
	if o.http != nil {
		o.http.observe(routeLabel(rt), methodIndex(r.Method), classIndex(status), d, n)
	}
	if o.log != nil {
		var actor string
		if rt.access != nil {
			actor = rt.access.actor.ID()
		}
		o.log.write(start, r, status, n, d, actor, routeLabels[routeLabel(rt)])
	}
	rec.ResponseWriter, rec.rt = nil, route{} // hold nothing of this request in the pool
	o.pool.Put(rec)
}

// metricsState is a server's registry and what /-/metrics serves.
type metricsState struct {
	reg     *prometheus.Registry
	handler atomic.Pointer[http.Handler]
	log     *slog.Logger
}

func newMetricsState(s *Server) *metricsState {
	m := &metricsState{reg: prometheus.NewRegistry(), log: s.log}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&sqliteCollector{s: s},
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "lode_info", Help: "Always 1; labels: the Lode and SQLite versions.",
			ConstLabels: prometheus.Labels{"version": s.version(), "sqlite": sqlitedb.Version()}}, func() float64 { return 1 }),
	)
	m.serve(m.reg)
	return m
}

// serve makes /-/metrics serve g.
func (m *metricsState) serve(g prometheus.Gatherer) {
	h := promhttp.HandlerFor(g, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(m.log.Handler(), slog.LevelWarn),
		ErrorHandling: promhttp.ContinueOnError, // serve what could be gathered
	})
	m.handler.Store(&h)
}

// Gatherer returns the server's own metrics (this process only), nil when
// the metrics setting is off. A prefork worker hands it to the master,
// which gathers every worker's for one scrape.
func (s *Server) Gatherer() prometheus.Gatherer {
	if s.metrics == nil {
		return nil
	}
	return s.metrics.reg
}

// SetMetricsGatherer makes /-/metrics serve g instead of this process's
// own metrics: in a prefork worker, a gatherer of every worker's metrics.
// It does nothing when the metrics setting is off.
func (s *Server) SetMetricsGatherer(g prometheus.Gatherer) {
	if s.metrics != nil && g != nil {
		s.metrics.serve(g)
	}
}

// serveMetrics answers /-/metrics in the Prometheus text format (or
// OpenMetrics, by content negotiation).
func (s *Server) serveMetrics(w http.ResponseWriter, r *http.Request, rt *route) {
	if s.metrics == nil {
		s.fail(w, r, rt, notFound("Not found: metrics are off (setting metrics)"))
		return
	}
	(*s.metrics.handler.Load()).ServeHTTP(w, r)
}

// sqliteCollector turns the databases' and writers' counters into
// metrics at scrape time (the pattern of client_golang's DBStatsCollector
// for database/sql): recording costs the request path nothing beyond the
// counters themselves.
type sqliteCollector struct{ s *Server }

var (
	dbLabel         = []string{"db"}
	descReadWait    = prometheus.NewDesc("lode_sqlite_read_conn_wait_seconds", "Waits of statements that found every read connection in use, by time waited.", dbLabel, nil)
	descReadTimeout = prometheus.NewDesc("lode_sqlite_read_conn_timeouts_total", "Statements that never ran: every read connection stayed in use for the whole time limit (503).", dbLabel, nil)
	descInterrupted = prometheus.NewDesc("lode_sqlite_statements_interrupted_total", "Read statements interrupted: reason time_limit (sql_time_limit_ms and the other limits) or cancelled (the request ended first).", []string{"db", "reason"}, nil)
	descLockErrors  = prometheus.NewDesc("lode_sqlite_lock_errors_total", "Statements that failed on a lock (busy timeout exhausted, refused upgrade, stale snapshot), by SQLite extended code.", []string{"db", "code"}, nil)
	descLockSleeps  = prometheus.NewDesc("lode_sqlite_lock_wait_sleeps_total", "Sleeps of SQLite's busy handler while another connection held a lock (lock waits).", dbLabel, nil)
	descLockWait    = prometheus.NewDesc("lode_sqlite_lock_wait_seconds_total", "Time statements slept in SQLite's busy handler waiting for locks.", dbLabel, nil)
	descFsync       = prometheus.NewDesc("lode_sqlite_fsync_seconds", "Time of each fsync SQLite asked for, by file (db, wal, journal, other).", []string{"db", "file"}, nil)
	descCheckpoint  = prometheus.NewDesc("lode_sqlite_checkpoint_seconds", "WAL checkpoints, by time spent (the checkpoint lock held).", dbLabel, nil)
	descQueue       = prometheus.NewDesc("lode_sqlite_writer_queue_length", "Write requests waiting for the single writer now.", dbLabel, nil)
	descQueueWait   = prometheus.NewDesc("lode_sqlite_writer_queue_wait_seconds", "Time write requests waited for their transaction to start.", dbLabel, nil)
	descBatch       = prometheus.NewDesc("lode_sqlite_commit_batch_size", "Write requests per transaction: the single writer's group-commit batches (1 each with --writer pool).", dbLabel, nil)
	descCommit      = prometheus.NewDesc("lode_sqlite_commit_seconds", "Time of each COMMIT statement (with synchronous=full it includes the fsync).", dbLabel, nil)
	descDBSize      = prometheus.NewDesc("lode_sqlite_file_size_bytes", "Size of the database file and its WAL.", []string{"db", "file"}, nil)
)

func (c *sqliteCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descReadWait, descReadTimeout, descInterrupted, descLockErrors, descLockSleeps,
		descLockWait, descFsync, descCheckpoint, descQueue, descQueueWait, descBatch, descCommit, descDBSize} {
		ch <- d
	}
}

func (c *sqliteCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.s
	for _, name := range s.dbNames {
		db := s.dbs[name]
		st := db.Stats()
		hist(ch, descReadWait, st.ReadWait, name)
		counter(ch, descReadTimeout, float64(st.ReadWaitTimeouts), name)
		counter(ch, descInterrupted, float64(st.TimeLimitInterrupts), name, "time_limit")
		counter(ch, descInterrupted, float64(st.Cancelled), name, "cancelled")
		locks := st.LockErrors
		if !db.Immutable() {
			counter(ch, descLockSleeps, float64(st.File.BusySleeps), name)
			counter(ch, descLockWait, st.File.BusySleepSeconds, name)
			for _, k := range []string{"db", "wal", "journal"} {
				if h, ok := st.File.Sync[k]; ok {
					hist(ch, descFsync, h, name, k)
				}
			}
			if db.EffectiveSettings().JournalMode == "wal" {
				hist(ch, descCheckpoint, st.File.Checkpoints, name)
			}
		}
		var w *sqlitedb.Writer
		if s.api != nil {
			w = s.api.Writer(name)
		}
		if w != nil {
			ws := w.Stats()
			gauge(ch, descQueue, float64(ws.Queued), name)
			hist(ch, descQueueWait, ws.QueueWait, name)
			hist(ch, descBatch, ws.BatchSize, name)
			hist(ch, descCommit, ws.Commit, name)
			for k, n := range ws.LockErrors {
				locks[k] += n
			}
		}
		for k, n := range locks {
			counter(ch, descLockErrors, float64(n), name, k)
		}
		if fi, err := os.Stat(db.Path); err == nil {
			gauge(ch, descDBSize, float64(fi.Size()), name, "db")
		}
		if fi, err := os.Stat(db.Path + "-wal"); err == nil {
			gauge(ch, descDBSize, float64(fi.Size()), name, "wal")
		}
	}
}

func counter(ch chan<- prometheus.Metric, d *prometheus.Desc, v float64, lv ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, lv...)
}

func gauge(ch chan<- prometheus.Metric, d *prometheus.Desc, v float64, lv ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, lv...)
}

func hist(ch chan<- prometheus.Metric, d *prometheus.Desc, h sqlitedb.Histogram, lv ...string) {
	cum := h.Cumulative()
	buckets := make(map[float64]uint64, len(cum))
	for i, b := range h.Bounds {
		buckets[b] = cum[i]
	}
	ch <- prometheus.MustNewConstHistogram(d, h.Count, h.Sum, buckets, lv...)
}
