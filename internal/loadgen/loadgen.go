// Package loadgen is Lode's HTTP load generator: scenarios of weighted
// requests, a closed model (a fixed number of virtual users, each sending
// its next request when the previous one finished) and an open model
// (arrivals on a schedule, independent of responses), HDR latency
// histograms per request name, errors grouped by message, and outputs
// (table, Locust-compatible CSV, mergeable JSON).
//
// The open model measures each request's latency from its intended start
// on the schedule, not from when it was actually sent. A closed-loop tool
// (wrk, hey, Locust's users) stops sending while the server stalls, so the
// stall hits one request per user and the percentiles barely move — the
// "coordinated omission" Gil Tene described. Measuring from the intended
// time charges every request that should have been sent during a stall
// with the time it waited. Arrivals that find all in-flight slots busy are
// dropped and counted, never silently delayed.
//
// Use [Run] with a [Config]; it is safe to call Run from several
// goroutines at once with different Configs.
package loadgen

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Defaults used when the Config field is zero.
const (
	DefaultUsers            = 10
	DefaultDuration         = 10 * time.Second
	DefaultTimeout          = 30 * time.Second
	DefaultMaxInFlight      = 1000
	DefaultGracefulStop     = 5 * time.Second
	DefaultProgressInterval = time.Second
	// DefaultRateTolerance is the fraction of scheduled arrivals that may
	// be dropped or missed while the open-model verdict still says the
	// target rate was achieved.
	DefaultRateTolerance = 0.001
	// CPUBoundThreshold is the share of the generator's cores above which
	// the result warns that the generator, not the server, was the limit.
	CPUBoundThreshold = 0.90
)

// Config describes one load run. The zero value of each field means its
// default; Scenario is required.
type Config struct {
	// Scenario is what to send (see URLScenario, ParseScenarioFile).
	Scenario *Scenario
	// Users is the number of closed-model virtual users, each with one
	// connection (-c). Ignored when Rate is set.
	Users int
	// SpawnRate starts users gradually, this many per second (ramp-up);
	// 0 starts them all at once.
	SpawnRate float64
	// Rate selects the open model: arrivals on this schedule.
	Rate Schedule
	// MaxInFlight bounds concurrent requests in the open model; an arrival
	// that finds all slots busy is dropped and counted.
	MaxInFlight int
	// Duration of the measured part of the run (after Warmup). With
	// neither Duration nor MaxRequests, DefaultDuration. With a stepped
	// Rate and no Duration, the schedule's total.
	Duration time.Duration
	// MaxRequests stops the run after this many requests (or arrivals).
	MaxRequests int64
	// Warmup runs load for this long before measuring; its requests are
	// not counted.
	Warmup time.Duration
	// Timeout bounds each request (dial, send and full response).
	Timeout time.Duration
	// GracefulStop is how long requests in flight at the end may finish
	// before they are abandoned (and counted in Result.Unfinished).
	GracefulStop time.Duration
	// AllowHosts lists non-loopback host names or addresses that may be
	// targeted. Loopback (127.0.0.0/8, ::1, localhost) is always allowed.
	AllowHosts []string
	// Insecure skips TLS certificate verification.
	Insecure bool
	// RateTolerance: see DefaultRateTolerance.
	RateTolerance float64
	// ProgressInterval is the history (and Progress) interval.
	ProgressInterval time.Duration
	// Progress, if set, is called once per ProgressInterval from one
	// goroutine with the latest interval.
	Progress func(HistoryPoint)
	// NoHistory turns off per-interval history in the Result.
	NoHistory bool
	// StopIfRefused ends the run this long after its start (warm-up
	// included) when every request so far failed with "connection
	// refused" — nothing listens at the target — instead of reporting a
	// full run of refusals; Result.Refused then says so. 0 never stops.
	StopIfRefused time.Duration

	// noLoops runs every closed-model user as a goroutine on the
	// blocking client, as on systems without event loops (for tests).
	noLoops bool
	// loops overrides the number of event loops (for tests).
	loops int
}

// Result is the outcome of a run: exact counts and HDR histograms (so
// results from several machines merge exactly with [Merge]) plus derived
// rates and percentiles.
type Result struct {
	Version int    `json:"version"`
	Model   string `json:"model"` // "closed" or "open"
	// Target is the first request's URL (for display).
	Target string    `json:"target"`
	Start  time.Time `json:"start"` // start of the measured period
	End    time.Time `json:"end"`
	// Duration is the measured period: from the end of warm-up to the
	// deadline (or Ctrl-C), or, for a run bounded by MaxRequests, to its
	// last response. Requests still in flight at the deadline count if
	// they finish within GracefulStop; the grace time itself does not.
	Duration time.Duration `json:"duration_ns"`
	Users    int           `json:"users,omitempty"`
	// Requests are per request name, in scenario order.
	Requests []*Stats `json:"requests"`
	// Total aggregates all requests; Total.Errors groups by message only.
	Total *Stats `json:"total"`
	// Open is set for open-model runs.
	Open *OpenStats `json:"open,omitempty"`
	CPU  CPUStats   `json:"cpu"`
	// Interrupted is set when the context was cancelled (Ctrl-C): the
	// numbers cover the part that ran.
	Interrupted bool `json:"interrupted,omitempty"`
	// Unfinished counts requests abandoned in flight at the end.
	Unfinished int64 `json:"unfinished"`
	// Refused is set when the run stopped early (Config.StopIfRefused)
	// because every connection was refused.
	Refused  bool           `json:"refused,omitempty"`
	History  []HistoryPoint `json:"history,omitempty"`
	Warnings []string       `json:"warnings,omitempty"`
	// Thresholds holds the judged thresholds, when the caller set any.
	Thresholds []ThresholdResult `json:"thresholds,omitempty"`
	// Machines is 1 for one run, or the number of merged results.
	Machines int `json:"machines"`
}

// OpenStats is the open model's account of its schedule and its verdict.
type OpenStats struct {
	Schedule string `json:"schedule"`
	// TargetRate is Scheduled per second of the measured period.
	TargetRate float64 `json:"target_rate"`
	// Scheduled arrivals fell in the measured period.
	Scheduled int64 `json:"scheduled"`
	// Sent arrivals got an in-flight slot and were sent.
	Sent int64 `json:"sent"`
	// Dropped arrivals found all MaxInFlight slots busy.
	Dropped int64 `json:"dropped"`
	// Missed arrivals were never reached: the sender fell so far behind
	// schedule that the run ended first.
	Missed int64 `json:"missed"`
	// AchievedRate is Sent per second of the measured period.
	AchievedRate float64 `json:"achieved_rate"`
	// MaxBehind is the largest delay between an arrival's intended time
	// and its dispatch (timer slack, or a CPU-starved sender). Latencies
	// include it, since they count from the intended time.
	MaxBehind time.Duration `json:"max_behind_ns"`
	// MeanBehind is the mean of that delay over the sent arrivals.
	MeanBehind  time.Duration `json:"mean_behind_ns"`
	MaxInFlight int           `json:"max_in_flight"`
	PeakFlight  int64         `json:"peak_in_flight"`
	// Achieved: at most RateTolerance of the scheduled arrivals were
	// dropped or missed.
	Achieved  bool    `json:"achieved"`
	Tolerance float64 `json:"tolerance"`
	// Steps has one verdict per step of a stepped schedule (nil for a
	// constant rate), to see at which rate a server stops keeping up.
	Steps []*StepStats `json:"steps,omitempty"`
}

// StepStats is the open model's account of one schedule step: its
// arrivals, their verdict and the latency of the requests sent in it
// (from their intended time).
type StepStats struct {
	Rate float64 `json:"rate"`
	// Start and Duration place the step's measured part in the run (from
	// the end of warm-up).
	Start     time.Duration `json:"start_ns"`
	Duration  time.Duration `json:"duration_ns"`
	Scheduled int64         `json:"scheduled"`
	Sent      int64         `json:"sent"`
	Dropped   int64         `json:"dropped"`
	Missed    int64         `json:"missed"`
	// Completed and Failures count the step's sent requests that finished.
	Completed    int64         `json:"completed"`
	Failures     int64         `json:"failures"`
	AchievedRate float64       `json:"achieved_rate"`
	Achieved     bool          `json:"achieved"`
	Latency      *Histogram    `json:"latency"` // 1% resolution
	P50          time.Duration `json:"p50_ns"`
	P99          time.Duration `json:"p99_ns"`
}

// derive fills the step's rate, verdict and percentiles.
func (s *StepStats) derive(tolerance float64) {
	s.AchievedRate = safeDiv(float64(s.Sent), s.Duration.Seconds())
	s.Achieved = float64(s.Dropped+s.Missed) <= tolerance*float64(s.Scheduled)
	s.P50, s.P99 = s.Latency.Percentile(50), s.Latency.Percentile(99)
}

// stepCount is the pacer's tally for one step.
type stepCount struct{ scheduled, sent, dropped, missed int64 }

// CPUStats is the generator process's own CPU use over the run.
type CPUStats struct {
	User   time.Duration `json:"user_ns"`
	System time.Duration `json:"system_ns"`
	Wall   time.Duration `json:"wall_ns"`
	Cores  int           `json:"cores"`
	// Utilization is (User+System) / (Wall × Cores), 0..1.
	Utilization float64 `json:"utilization"`
	// Bound is set when Utilization ≥ CPUBoundThreshold.
	Bound bool `json:"bound"`
}

// ErrHostNotAllowed is returned for a target that is neither loopback nor
// listed in Config.AllowHosts.
var ErrHostNotAllowed = errors.New("loadgen: host not allowed")

// Validate fills defaults and checks cfg; Run calls it.
func (cfg *Config) Validate() error {
	if cfg.Scenario == nil {
		return errors.New("no scenario: give a URL or a scenario file")
	}
	if err := cfg.Scenario.prepare(); err != nil {
		return err
	}
	if cfg.Users < 0 || cfg.MaxInFlight < 0 || cfg.MaxRequests < 0 || cfg.Duration < 0 || cfg.Warmup < 0 || cfg.SpawnRate < 0 {
		return errors.New("users, max in flight, requests, duration, warm-up and spawn rate must not be negative")
	}
	if cfg.Users == 0 {
		cfg.Users = DefaultUsers
	}
	if cfg.Duration == 0 && cfg.MaxRequests == 0 {
		cfg.Duration = DefaultDuration
		if t := cfg.Rate.Total(); t > 0 {
			cfg.Duration = t
		}
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MaxInFlight == 0 {
		cfg.MaxInFlight = DefaultMaxInFlight
	}
	if cfg.GracefulStop <= 0 {
		cfg.GracefulStop = DefaultGracefulStop
	}
	if cfg.ProgressInterval <= 0 {
		cfg.ProgressInterval = DefaultProgressInterval
	}
	if cfg.RateTolerance <= 0 {
		cfg.RateTolerance = DefaultRateTolerance
	}
	for _, st := range cfg.Rate {
		if st.Rate <= 0 {
			return errors.New("rate must be positive")
		}
	}
	if b := cfg.Scenario.BaseURL; b != "" && !strings.Contains(b, "{{") {
		if tg, err := parseTarget(b); err == nil {
			if err := cfg.hostAllowed(tg.host); err != nil {
				return err
			}
		}
	}
	for _, b := range cfg.Scenario.Bases {
		if tg, err := parseTarget(strings.TrimRight(b.URL, "/") + "/"); err == nil {
			if err := cfg.hostAllowed(tg.host); err != nil {
				return err
			}
		}
	}
	for _, r := range cfg.Scenario.Requests {
		fixed := false
		for _, f := range r.forms {
			if f.hostTg != nil {
				fixed = true
				if err := cfg.hostAllowed(f.hostTg.host); err != nil {
					return err
				}
			}
		}
		if fixed {
			continue
		}
		if tg, err := parseTarget(r.URL[:strings.Index(r.URL+"{{", "{{")]); err == nil && !strings.Contains(tg.hostHeader, "{") {
			if err := cfg.hostAllowed(tg.host); err != nil {
				return err
			}
		}
	}
	return nil
}

func (cfg *Config) hostAllowed(host string) error {
	h := strings.ToLower(strings.TrimSuffix(host, "."))
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return nil
	}
	if ip := net.ParseIP(h); ip != nil && ip.IsLoopback() {
		return nil
	}
	for _, a := range cfg.AllowHosts {
		if strings.EqualFold(strings.TrimSuffix(a, "."), h) {
			return nil
		}
	}
	return fmt.Errorf("%w: %s is not a loopback address; to load-test it, pass --allow-host %s (only hosts you are allowed to test)", ErrHostNotAllowed, host, host)
}

// engine is the state of one run.
type engine struct {
	cfg  Config
	sc   *Scenario
	cl   *client
	rec  *recorder
	from time.Time // start of measurement (end of warm-up)

	runCtx      context.Context
	abort       context.CancelFunc
	stopOnce    sync.Once
	stopCh      chan struct{} // closed: start no new requests
	aborted     atomic.Bool
	interrupted atomic.Bool // ctx cancelled (Ctrl-C)

	claimed  atomic.Int64 // requests started (MaxRequests)
	inFlight atomic.Int64
	peak     atomic.Int64
	users    atomic.Int64

	allowed sync.Map // host → error (nil when allowed), for templated URLs

	// For StopIfRefused: refused counts refused connections; reached is
	// set by any other outcome (a response, or another error).
	refused     atomic.Int64
	reached     atomic.Bool
	refusedStop atomic.Bool

	pool  connPool
	loops []*evLoop // the closed model's event loops; nil: a goroutine per user
}

func (e *engine) stop() {
	e.stopOnce.Do(func() {
		close(e.stopCh)
		e.wakeLoops()
	})
}

// wakeLoops makes every event loop look at the stop and abort flags.
func (e *engine) wakeLoops() {
	for _, l := range e.loops {
		l.wake()
	}
}

// loopable reports whether the closed model can run on event loops: on
// Linux, for plain http:// targets (see evloop_linux.go).
func (e *engine) loopable() bool {
	if !loopsSupported || e.cfg.noLoops {
		return false
	}
	for _, r := range e.sc.Requests {
		for _, f := range r.forms {
			if f.scheme != "http" {
				return false
			}
		}
	}
	return true
}

func (e *engine) stopped() bool {
	select {
	case <-e.stopCh:
		return true
	default:
		return false
	}
}

// Run executes one load run and returns its result. Cancelling ctx stops
// the run at once (Ctrl-C); the partial result is returned with
// Interrupted set and a nil error. The error is non-nil only for an
// invalid Config.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	sc := cfg.Scenario
	runCtx, abort := context.WithCancel(context.Background())
	defer abort()
	cores := runtime.GOMAXPROCS(0) // before event loops lower it (procs.go)
	nshards := 4 * cores
	e := &engine{
		cfg: cfg, sc: sc,
		cl:     newClient(cfg.Timeout, cfg.Insecure),
		rec:    newRecorder(sc.Requests, len(cfg.Rate), nshards),
		runCtx: runCtx, abort: abort,
		stopCh: make(chan struct{}),
	}
	cpu0 := readCPU()
	wall0 := time.Now()
	e.from = wall0.Add(cfg.Warmup)
	runLen := cfg.Warmup + cfg.Duration

	res := &Result{Version: ResultVersion, Machines: 1, Target: sc.Requests[0].URL}
	if sc.BaseURL != "" && strings.HasPrefix(res.Target, "/") {
		res.Target = strings.TrimRight(sc.BaseURL, "/") + res.Target
	}

	// The deadline.
	var deadline <-chan time.Time
	if cfg.Duration > 0 {
		t := time.NewTimer(runLen)
		defer t.Stop()
		deadline = t.C
	}

	var wg sync.WaitGroup
	var open *openRun
	if len(cfg.Rate) > 0 {
		res.Model = "open"
		open = &openRun{e: e, runLen: runLen, start: wall0, steps: make([]stepCount, len(cfg.Rate))}
		wg.Add(1)
		go func() { defer wg.Done(); open.pace(&wg) }()
	} else {
		res.Model = "closed"
		res.Users = cfg.Users
		if e.loopable() {
			if loops := e.newLoops(&wg, cores); len(loops) > 0 {
				defer holdProcs(len(loops))()
			}
		}
		wg.Add(1)
		go func() { defer wg.Done(); e.spawn(&wg) }()
	}

	// Progress and history.
	repDone := make(chan struct{})
	var history []HistoryPoint
	last := wall0 // the reporter's last tick; read after repDone
	go func() {
		defer close(repDone)
		tk := time.NewTicker(cfg.ProgressInterval)
		defer tk.Stop()
		for {
			select {
			case <-e.stopCh:
				return
			case now := <-tk.C:
				if e.stopped() {
					return
				}
				hp := e.historyPoint(now, now.Sub(last), wall0)
				last = now
				if now.Before(e.from) {
					continue
				}
				if !cfg.NoHistory {
					history = append(history, hp)
				}
				if cfg.Progress != nil {
					cfg.Progress(hp)
				}
			}
		}
	}()

	workersDone := make(chan struct{})
	go func() { wg.Wait(); close(workersDone) }()

	if d := cfg.StopIfRefused; d > 0 && (cfg.Duration == 0 || d < runLen) {
		tm := time.NewTimer(d)
		defer tm.Stop()
		go func() {
			select {
			case <-tm.C:
				if e.refused.Load() > 0 && !e.reached.Load() {
					e.refusedStop.Store(true)
					e.stop()
				}
			case <-e.stopCh:
			}
		}()
	}

	// A run ended by its deadline (or Ctrl-C) is measured up to that
	// moment: requests in flight then still count when they finish
	// within the graceful stop (they were sent inside the window), but
	// the grace time does not, so a server that holds requests for a
	// long busy timeout does not deflate req/s. A run bounded by
	// MaxRequests is measured until its last request finished.
	timed := false
	select {
	case <-ctx.Done():
		res.Interrupted = true
		e.interrupted.Store(true)
		timed = true
	case <-deadline:
		timed = true
	case <-e.stopCh: // MaxRequests reached
	case <-workersDone:
	}
	stopAt := time.Now()
	e.stop()
	if !res.Interrupted {
		// Graceful: let requests in flight finish.
		grace := time.NewTimer(cfg.GracefulStop)
		select {
		case <-workersDone:
		case <-grace.C:
		case <-ctx.Done():
			res.Interrupted = true
			e.interrupted.Store(true)
		}
		grace.Stop()
	}
	res.Unfinished = e.inFlight.Load()
	res.Refused = e.refusedStop.Load()
	e.aborted.Store(true)
	abort()
	e.cl.closeAll()
	e.wakeLoops()
	<-workersDone
	<-repDone
	end := time.Now()
	e.pool.closeAll()

	if !timed {
		stopAt = end
	}
	res.Start, res.End = e.from, stopAt
	res.Duration = stopAt.Sub(e.from)
	if res.Duration < 0 {
		res.Duration = 0
	}
	res.Requests, res.Total = e.rec.snapshot()
	for _, s := range res.Requests {
		s.Derive(res.Duration)
	}
	res.Total.Derive(res.Duration)
	// A last history point covers the partial interval up to the end.
	if hp := e.historyPoint(end, end.Sub(last), wall0); !cfg.NoHistory && end.After(e.from) && end.Sub(last) > cfg.ProgressInterval/10 {
		history = append(history, hp)
	}
	res.History = history
	if open != nil {
		res.Open = open.stats(res)
	}
	res.CPU = cpuSince(cpu0, end.Sub(wall0), cores)
	res.addWarnings()
	return res, nil
}

func (res *Result) addWarnings() {
	res.Warnings = nil
	if res.CPU.Bound {
		res.Warnings = append(res.Warnings, fmt.Sprintf(
			"THE LOAD GENERATOR WAS CPU-BOUND (%.0f%% of %d cores): these numbers are a floor, not the server's limit; run lode load on another machine (and merge with lode report merge) or use fewer users",
			100*res.CPU.Utilization, res.CPU.Cores))
	}
	if res.Interrupted {
		res.Warnings = append(res.Warnings, "run interrupted: partial results")
	}
	if res.Refused {
		res.Warnings = append(res.Warnings, "stopped early: every connection was refused (is the server running?)")
	}
	if res.Unfinished > 0 {
		res.Warnings = append(res.Warnings, fmt.Sprintf("%d requests were still in flight at the end and are not counted", res.Unfinished))
	}
	if o := res.Open; o != nil && o.MeanBehind > time.Millisecond {
		res.Warnings = append(res.Warnings, fmt.Sprintf(
			"the sender ran %s behind schedule on average (max %s): this machine is short of CPU; latencies count from the intended time, so they include this delay",
			o.MeanBehind.Round(10*time.Microsecond), o.MaxBehind.Round(10*time.Microsecond)))
	}
	if o := res.Open; o != nil && !o.Achieved {
		res.Warnings = append(res.Warnings, fmt.Sprintf("target rate NOT achieved: %d of %d arrivals dropped or missed", o.Dropped+o.Missed, o.Scheduled))
	}
}

// historyPoint reads and resets the interval counters.
func (e *engine) historyPoint(now time.Time, iv time.Duration, wall0 time.Time) HistoryPoint {
	count, fail, dropped, lat, tc, tf, tb, total := e.rec.interval()
	sec := iv.Seconds()
	hp := HistoryPoint{
		Time: now, Elapsed: now.Sub(e.from),
		RPS: safeDiv(float64(count), sec), FailuresPS: safeDiv(float64(fail), sec),
		DroppedPS:  safeDiv(float64(dropped), sec),
		TotalCount: tc, TotalFail: tf, TotalBytes: tb,
		TotalP50: total.Percentile(50), TotalMean: total.Mean(), TotalMin: total.Min(), TotalMax: total.Max(),
	}
	if len(e.cfg.Rate) > 0 {
		hp.Users = e.inFlight.Load()
	} else {
		hp.Users = e.users.Load()
	}
	for _, p := range HistoryPercentiles {
		hp.Percentiles = append(hp.Percentiles, lat.Percentile(p))
	}
	return hp
}

// allowedHost checks a templated request's rendered host once per host.
func (e *engine) allowedHost(host string) error {
	if v, ok := e.allowed.Load(host); ok {
		if v == nil {
			return nil
		}
		return v.(error)
	}
	err := e.cfg.hostAllowed(host)
	if err == nil {
		e.allowed.Store(host, nil)
	} else {
		e.allowed.Store(host, err)
	}
	return err
}

// acquire counts a request in flight (before its goroutine starts, so the
// open model's slot check cannot be overtaken) and tracks the peak.
func (e *engine) acquire() {
	n := e.inFlight.Add(1)
	for {
		p := e.peak.Load()
		if n <= p || e.peak.CompareAndSwap(p, n) {
			return
		}
	}
}

// execute sends one request and records it if measured (not warm-up).
// In the open model step is the schedule step and start the intended
// time latency counts from; the closed model passes step -1 and latency
// counts from the send.
func (e *engine) execute(worker int, ri int, cn **conn, dst *target, iter int64, start time.Time, step int, measured bool) {
	r, tg, err := e.begin(worker, ri, iter, dst)
	if step < 0 {
		start = time.Now()
	}
	var resp response
	if err == nil {
		resp, err = e.cl.do(e.runCtx, cn, tg, r.needBody)
	}
	e.finish(worker, r, ri, time.Since(start), resp, err, step, measured)
}

// begin renders request ri for one execution into dst (the worker's
// reusable target) and checks its host, unless Validate already did.
func (e *engine) begin(worker, ri int, iter int64, dst *target) (*Request, *target, error) {
	r := e.sc.Requests[ri]
	var row map[string]any
	if e.sc.Data != nil {
		row = e.sc.Data.row()
	}
	base := e.sc.baseFor(worker)
	tg, err := r.render(&tmplData{Row: row, User: worker, Iter: iter}, base, dst)
	if err == nil && r.form(base).hostTg == nil {
		err = e.allowedHost(tg.host)
	}
	return r, tg, err
}

// finish judges and records one completed request, unless it was not
// measured (warm-up) or the run was aborted under it.
func (e *engine) finish(worker int, r *Request, ri int, lat time.Duration, resp response, err error, step int, measured bool) {
	if e.cfg.StopIfRefused > 0 {
		if err != nil && errors.Is(err, syscall.ECONNREFUSED) {
			e.refused.Add(1)
		} else if !e.reached.Load() {
			e.reached.Store(true)
		}
	}
	if e.aborted.Load() || !measured {
		return
	}
	var msg string
	if err != nil {
		msg = clip(transportMessage(err, e.cfg.Timeout))
	} else {
		msg = judge(r, resp)
	}
	e.rec.record(worker, ri, lat, resp.bytes, msg)
	if step >= 0 {
		e.rec.recordStep(worker, step, lat, msg != "")
	}
}

// spawn starts the closed model's users, SpawnRate per second.
func (e *engine) spawn(wg *sync.WaitGroup) {
	t0 := time.Now()
	for u := 0; u < e.cfg.Users; u++ {
		if e.cfg.SpawnRate > 0 && u > 0 {
			at := t0.Add(time.Duration(float64(u) / e.cfg.SpawnRate * float64(time.Second)))
			if !e.sleepUntil(at) {
				return
			}
		}
		if e.stopped() {
			return
		}
		if len(e.loops) > 0 {
			e.loops[u%len(e.loops)].addUser(u)
			continue
		}
		wg.Add(1)
		e.users.Add(1)
		go func(u int) {
			defer wg.Done()
			defer e.users.Add(-1)
			e.user(u)
		}(u)
	}
}

// sleepUntil waits until t or the stop; false when stopped.
func (e *engine) sleepUntil(t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return !e.stopped()
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return true
	case <-e.stopCh:
		return false
	}
}

// user is one closed-model virtual user: send, wait for the response,
// think, repeat, on its own connection.
func (e *engine) user(id int) {
	var cn *conn
	var tg target
	defer func() { cn.close() }()
	rng := rand.New(rand.NewPCG(uint64(id), uint64(time.Now().UnixNano())))
	sc := e.sc
	max := e.cfg.MaxRequests
	for iter := int64(0); ; iter++ {
		if e.stopped() {
			return
		}
		// -n counts measured requests: warm-up ones come on top.
		measured := !time.Now().Before(e.from)
		if max > 0 && measured && e.claimed.Add(1) > max {
			e.stop()
			return
		}
		ri := 0
		if len(sc.Requests) > 1 {
			ri = sc.index(rng.IntN(sc.total))
		}
		e.acquire()
		e.execute(id, ri, &cn, &tg, iter, time.Time{}, -1, measured)
		e.inFlight.Add(-1)
		if sc.ThinkMax > 0 {
			think := sc.ThinkMin
			if sc.ThinkMax > sc.ThinkMin {
				think += time.Duration(rng.Int64N(int64(sc.ThinkMax - sc.ThinkMin)))
			}
			if !e.sleepUntil(time.Now().Add(think)) {
				return
			}
		}
	}
}

// connPool holds idle connections for the open model, most recently used
// first, so a low rate reuses a few warm connections instead of cycling
// through MaxInFlight of them.
type connPool struct {
	mu   sync.Mutex
	idle []*conn
}

func (p *connPool) get() *conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	if n := len(p.idle); n > 0 {
		c := p.idle[n-1]
		p.idle = p.idle[:n-1]
		return c
	}
	return nil
}

func (p *connPool) put(c *conn) {
	if c == nil || c.dead {
		return
	}
	p.mu.Lock()
	p.idle = append(p.idle, c)
	p.mu.Unlock()
}

func (p *connPool) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.idle {
		c.close()
	}
	p.idle = nil
}

// openRun is the open model's pacer state.
type openRun struct {
	e      *engine
	runLen time.Duration
	start  time.Time

	scheduled, sent, dropped, missed int64
	steps                            []stepCount // per schedule step
	maxBehind, sumBehind             time.Duration
	pacerEnd                         time.Duration // schedule offset where pacing stopped
}

// pace dispatches arrivals on schedule until the run length, the stop or
// MaxRequests. It runs on a locked OS thread so that its sleeps are
// precise (see sleep_linux.go).
func (o *openRun) pace(wg *sync.WaitGroup) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	e := o.e
	scn := e.sc
	rng := rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	p := e.cfg.Rate.pacer()
	warm := e.cfg.Warmup
	max := e.cfg.MaxRequests
	maxFlight := int64(e.cfg.MaxInFlight)
	// The sender gives up on arrivals more than this late past the end
	// (of a timed run; a run bounded by MaxRequests has no end time).
	hardEnd := o.start.Add(o.runLen + time.Second)
	var n int64
	for {
		off, ok := p.next()
		if !ok || (e.cfg.Duration > 0 && off >= o.runLen) {
			o.pacerEnd = o.runLen
			return
		}
		if max > 0 && o.scheduled >= max {
			o.pacerEnd = off
			e.stop()
			return
		}
		intended := o.start.Add(off)
		if wait := time.Until(intended); wait > 0 {
			// Not e.stopCh: the deadline closes that, and arrivals due
			// before it must still go out (or count as missed). Only an
			// interrupt or the end of the grace period stops the pacer.
			if !preciseSleep(wait, e.runCtx.Done()) {
				o.stopped(off, p)
				return
			}
		} else if e.aborted.Load() {
			o.stopped(off, p)
			return
		}
		if e.cfg.Duration > 0 && time.Now().After(hardEnd) {
			// The rest of the schedule counts as missed, so the whole
			// span was accounted for.
			o.pacerEnd = o.runLen
			o.countMissed(off, p)
			return
		}
		measured := off >= warm
		n++
		sc := &o.steps[p.step]
		if measured {
			o.scheduled++
			sc.scheduled++
			b := time.Since(intended)
			o.sumBehind += b
			if b > o.maxBehind {
				o.maxBehind = b
			}
		}
		if e.inFlight.Load() >= maxFlight {
			if measured {
				o.dropped++
				sc.dropped++
				e.rec.dropped(int(n))
			}
			continue
		}
		if measured {
			o.sent++
			sc.sent++
		}
		ri := 0
		if len(scn.Requests) > 1 {
			ri = scn.index(rng.IntN(scn.total))
		}
		e.acquire()
		wg.Add(1)
		go func(n int64, ri int, intended time.Time, step int, measured bool) {
			defer wg.Done()
			defer e.inFlight.Add(-1)
			cn := e.pool.get()
			e.execute(int(n), ri, &cn, &target{}, n, intended, step, measured)
			e.pool.put(cn)
		}(n, ri, intended, p.step, measured)
	}
}

// stopped ends pacing at off. After Ctrl-C the rest of the schedule is
// not counted at all (the run was cut short); when the graceful stop ran
// out while the sender was still behind, the arrivals it never reached
// count as missed.
func (o *openRun) stopped(off time.Duration, p *schedPacer) {
	o.pacerEnd = off
	if !o.e.interrupted.Load() && off < o.runLen {
		o.pacerEnd = o.runLen
		o.countMissed(off, p)
	}
}

// countMissed counts the scheduled arrivals from off to the end that the
// sender never reached.
func (o *openRun) countMissed(off time.Duration, p *schedPacer) {
	for {
		if off >= o.e.cfg.Warmup {
			o.scheduled++
			o.missed++
			o.steps[p.step].scheduled++
			o.steps[p.step].missed++
		}
		var ok bool
		off, ok = p.next()
		if !ok || off >= o.runLen {
			return
		}
	}
}

func (o *openRun) stats(res *Result) *OpenStats {
	e := o.e
	st := &OpenStats{
		Schedule: e.cfg.Rate.String(), Scheduled: o.scheduled, Sent: o.sent,
		Dropped: o.dropped, Missed: o.missed, MaxBehind: o.maxBehind,
		MeanBehind:  time.Duration(safeDiv(float64(o.sumBehind), float64(o.scheduled-o.missed))),
		MaxInFlight: e.cfg.MaxInFlight, PeakFlight: e.peak.Load(),
		Tolerance: e.cfg.RateTolerance,
	}
	// Rates per second of schedule time actually covered.
	span := o.pacerEnd - e.cfg.Warmup
	if span <= 0 {
		span = res.Duration
	}
	st.TargetRate = safeDiv(float64(st.Scheduled), span.Seconds())
	if len(e.cfg.Rate) > 1 {
		lats, counts, fails := e.rec.steps()
		var at time.Duration // step start, as a schedule offset
		for i, rs := range e.cfg.Rate {
			end := at + rs.Duration
			if i == len(e.cfg.Rate)-1 || rs.Duration == 0 {
				end = o.pacerEnd
			}
			// The measured part: after warm-up, before pacing stopped.
			from, to := max(at, e.cfg.Warmup), min(end, o.pacerEnd)
			c := o.steps[i]
			ss := &StepStats{
				Rate: rs.Rate, Start: from - e.cfg.Warmup, Duration: max(to-from, 0),
				Scheduled: c.scheduled, Sent: c.sent, Dropped: c.dropped, Missed: c.missed,
				Completed: counts[i], Failures: fails[i], Latency: lats[i],
			}
			ss.derive(e.cfg.RateTolerance)
			st.Steps = append(st.Steps, ss)
			at = end
		}
	}
	st.AchievedRate = safeDiv(float64(st.Sent), span.Seconds())
	st.Achieved = float64(st.Dropped+st.Missed) <= e.cfg.RateTolerance*float64(st.Scheduled)
	return st
}

// index returns the request index for a uniform random n in [0, total).
func (s *Scenario) index(n int) int {
	lo, hi := 0, len(s.cum)
	for lo < hi {
		m := (lo + hi) / 2
		if s.cum[m] > n {
			hi = m
		} else {
			lo = m + 1
		}
	}
	return lo
}
