package main

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"lode/internal/loadgen"
)

// loadFlags are the raw flag values of lode load.
type loadFlags struct {
	file          string
	baseURL       []string
	users, conc   int
	spawnRate     string
	rate          string
	maxInFlight   int
	duration      time.Duration
	requests      int64
	warmup        time.Duration
	timeout       time.Duration
	graceful      time.Duration
	method, body  string
	headers       []string
	csvPrefix     string
	jsonPath      string
	thresholds    []string
	requireRate   bool
	rateTolerance float64
	allowHosts    []string
	insecure      bool
	quiet         bool
}

func newLoadCmd() *cobra.Command {
	var f loadFlags
	cmd := &cobra.Command{
		Use:   "load [URL]",
		Short: "Generate HTTP load (closed or open model) and report honest latency percentiles",
		Long: `lode load sends HTTP requests to one URL or a YAML scenario of weighted requests and
reports per-request-name counts, req/s, bytes, HDR latency percentiles and errors grouped
by message.

Closed model (-c/--users): N virtual users, each sends its next request when the previous
one finished (like wrk, hey, Locust). Open model (--rate): arrivals on a schedule whatever
the server does; latency counts from each arrival's intended time (coordinated omission
corrected), and arrivals that find all --max-in-flight slots busy are dropped and counted.
--rate takes 2000/s (also /m, /h) or steps: 100/s:10s,500/s:20s.

A URL without a scheme (127.0.0.1:8001/fixtures) is http://. Only loopback targets unless
--allow-host names the host. Every run is bounded by -d or -n (default -d 10s); a run whose
every connection is refused for its first 2 s stops there. Output folders (--csv, --json)
are created and checked before the run. Ctrl-C stops at once and prints the partial results.
Exit status: 0 ok, 1 usage or run error or no request succeeded, 99 a threshold failed or
--require-rate missed, 130 interrupted.`,
		Example: `  lode load http://127.0.0.1:8001/fixtures/facetable.json -c 32 -d 30s
  lode load http://127.0.0.1:8001/ --rate 2000/s -d 1m
  lode load http://127.0.0.1:8001/ --rate 100/s:10s,500/s:10s --require-rate
  lode load -f scenario.yaml --users 50 --spawn-rate 10/s -d 2m --csv out/run --json out/run.json
  lode load -f scenario.yaml --threshold 'p99<250ms' --threshold 'errors<0.1%'`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runLoad(cmd, args, &f)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.file, "file", "f", "", "YAML scenario file (instead of a URL)")
	fl.StringArrayVar(&f.baseURL, "base-url", nil, "with -f: override the scenario's base_url, e.g. http://127.0.0.1:8002;\n"+
		"repeat it to spread virtual users over several servers, URL=WEIGHT to weight one (http://127.0.0.1:8002=3)")
	fl.IntVarP(&f.conc, "concurrency", "c", 0, "closed model: number of concurrent users/connections (default 10)")
	fl.IntVar(&f.users, "users", 0, "same as -c")
	fl.StringVar(&f.spawnRate, "spawn-rate", "", "closed model: start users gradually, e.g. 10/s (default: all at once)")
	fl.StringVar(&f.rate, "rate", "", "open model: arrival rate, e.g. 2000/s, or steps 100/s:10s,500/s:10s")
	fl.IntVar(&f.maxInFlight, "max-in-flight", 0, fmt.Sprintf("open model: concurrent request slots; arrivals beyond are dropped (default %d)", loadgen.DefaultMaxInFlight))
	fl.DurationVarP(&f.duration, "duration", "d", 0, "measured duration, e.g. 30s (default 10s, or the sum of --rate steps)")
	fl.Int64VarP(&f.requests, "requests", "n", 0, "stop after this many requests")
	fl.DurationVar(&f.warmup, "warmup", 0, "send load for this long before measuring")
	fl.DurationVar(&f.timeout, "timeout", loadgen.DefaultTimeout, "per-request timeout")
	fl.DurationVar(&f.graceful, "graceful-stop", loadgen.DefaultGracefulStop, "at the end, wait this long for requests in flight")
	fl.StringVarP(&f.method, "method", "m", "GET", "HTTP method (URL mode)")
	fl.StringVar(&f.body, "body", "", "request body (URL mode)")
	fl.StringArrayVarP(&f.headers, "header", "H", nil, `request header "Name: value" (repeatable)`)
	fl.StringVar(&f.csvPrefix, "csv", "", "write PREFIX_stats.csv, PREFIX_failures.csv, PREFIX_stats_history.csv (Locust columns)")
	fl.StringVar(&f.jsonPath, "json", "", "write the full result with mergeable HDR histograms to FILE")
	fl.StringArrayVar(&f.thresholds, "threshold", nil, "pass/fail criterion, e.g. 'p99<250ms', 'errors<0.1%', 'rps>100' (repeatable; failure exits 99)")
	fl.BoolVar(&f.requireRate, "require-rate", false, "open model: exit 99 if the target rate was not achieved")
	fl.Float64Var(&f.rateTolerance, "rate-tolerance", loadgen.DefaultRateTolerance, "open model: fraction of arrivals that may be dropped with the rate still achieved")
	fl.StringArrayVar(&f.allowHosts, "allow-host", nil, "allow a non-loopback target host (repeatable); only hosts you may test")
	fl.BoolVar(&f.insecure, "insecure", false, "skip TLS certificate verification")
	fl.BoolVarP(&f.quiet, "quiet", "q", false, "no live progress line")
	return cmd
}

func runLoad(cmd *cobra.Command, args []string, f *loadFlags) error {
	cfg, thresholds, err := f.config(args)
	if err != nil {
		return err
	}
	stderr := cmd.ErrOrStderr()
	var mu sync.Mutex
	progress := !f.quiet && isTerminal(os.Stderr)
	if progress {
		open := len(cfg.Rate) > 0
		cfg.Progress = func(h loadgen.HistoryPoint) {
			mu.Lock()
			defer mu.Unlock()
			fmt.Fprintf(stderr, "\r\033[K%s", loadgen.ProgressLine(h, open))
		}
	}
	var csvStats string
	if f.csvPrefix != "" {
		csvStats = f.csvPrefix + "_stats.csv"
	}
	if err := loadgen.PrepareOutput(csvStats, f.jsonPath); err != nil {
		return err
	}
	cfg.StopIfRefused = refusedStop
	res, err := loadgen.Run(cmd.Context(), cfg)
	if err != nil {
		return err
	}
	if progress {
		mu.Lock()
		fmt.Fprint(stderr, "\r\033[K")
		mu.Unlock()
	}
	results, pass := loadgen.EvaluateThresholds(res, thresholds)
	res.Thresholds = results
	out := cmd.OutOrStdout()
	loadgen.WriteTable(out, res)
	if f.csvPrefix != "" {
		if err := loadgen.WriteCSV(f.csvPrefix, res); err != nil {
			return err
		}
	}
	if f.jsonPath != "" {
		if err := loadgen.WriteJSON(f.jsonPath, res); err != nil {
			return err
		}
	}
	var failed []string
	for _, t := range results {
		mark := "ok  "
		if !t.Pass {
			mark = "FAIL"
			failed = append(failed, fmt.Sprintf("%s (actual %s)", t.Expr, t.Actual))
		}
		fmt.Fprintf(out, "threshold %s %s (actual %s)\n", mark, t.Expr, t.Actual)
	}
	if res.Interrupted {
		return &exitError{code: 130, msg: "interrupted: the results above are partial"}
	}
	if msg := noSuccess(res); msg != "" {
		return &exitError{code: 1, msg: msg}
	}
	if !pass {
		return &exitError{code: 99, msg: "threshold failed: " + strings.Join(failed, "; ")}
	}
	if f.requireRate && res.Open != nil && !res.Open.Achieved {
		o := res.Open
		return &exitError{code: 99, msg: fmt.Sprintf("--require-rate: target rate %.1f/s not achieved: sent %.1f/s, %d dropped, %d missed of %d arrivals (raise --max-in-flight, lower --rate, or use a faster server)",
			o.TargetRate, o.AchievedRate, o.Dropped, o.Missed, o.Scheduled)}
	}
	return nil
}

// config turns the flags into a loadgen.Config; every mistake says what to fix.
func (f *loadFlags) config(args []string) (loadgen.Config, []loadgen.Threshold, error) {
	var cfg loadgen.Config
	switch {
	case f.file != "" && len(args) > 0:
		return cfg, nil, errors.New("give a URL or -f scenario.yaml, not both")
	case f.file != "":
		sc, err := loadgen.ParseScenarioFile(f.file)
		if err != nil {
			return cfg, nil, err
		}
		switch len(f.baseURL) {
		case 0:
		case 1:
			b, err := loadgen.ParseBase(withScheme(f.baseURL[0]))
			if err != nil {
				return cfg, nil, fmt.Errorf("--base-url: %w", err)
			}
			sc.BaseURL, sc.Bases = b.URL, nil
		default:
			sc.Bases = nil
			for _, raw := range f.baseURL {
				b, err := loadgen.ParseBase(withScheme(raw))
				if err != nil {
					return cfg, nil, fmt.Errorf("--base-url: %w", err)
				}
				sc.Bases = append(sc.Bases, b)
			}
			sc.BaseURL = sc.Bases[0].URL
		}
		cfg.Scenario = sc
		if f.method != "GET" || f.body != "" || len(f.headers) > 0 {
			return cfg, nil, errors.New("-m, --body and -H apply to a URL; put method, body and headers in the scenario file")
		}
	case len(f.baseURL) > 0:
		return cfg, nil, errors.New("--base-url applies to a scenario (-f); with a URL, give the full URL")
	case len(args) == 1:
		r := &loadgen.Request{URL: withScheme(args[0]), Method: f.method, Body: f.body, Headers: map[string]string{}}
		for _, h := range f.headers {
			name, val, ok := strings.Cut(h, ":")
			if !ok || strings.TrimSpace(name) == "" {
				return cfg, nil, fmt.Errorf(`-H %q: want "Name: value"`, h)
			}
			r.Headers[strings.TrimSpace(name)] = strings.TrimSpace(val)
		}
		if b := strings.TrimSpace(f.body); (strings.HasPrefix(b, "{") || strings.HasPrefix(b, "[")) && !hasHeader(r.Headers, "Content-Type") {
			r.Headers["Content-Type"] = "application/json"
		}
		cfg.Scenario = (&loadgen.Scenario{}).Add(r)
	default:
		return cfg, nil, errors.New("give a URL (lode load http://127.0.0.1:8001/) or a scenario (lode load -f scenario.yaml)")
	}
	if f.users > 0 && f.conc > 0 && f.users != f.conc {
		return cfg, nil, errors.New("-c and --users are the same setting: give one")
	}
	cfg.Users = max(f.users, f.conc)
	if f.rate != "" {
		if cfg.Users > 0 {
			return cfg, nil, errors.New("--rate (open model) and -c/--users (closed model) exclude each other; use --max-in-flight to bound the open model's concurrency")
		}
		sched, err := loadgen.ParseRate(f.rate)
		if err != nil {
			return cfg, nil, fmt.Errorf("--rate: %w", err)
		}
		cfg.Rate = sched
	} else if f.maxInFlight > 0 || f.requireRate {
		return cfg, nil, errors.New("--max-in-flight and --require-rate need --rate (the open model)")
	}
	if f.spawnRate != "" {
		if f.rate != "" {
			return cfg, nil, errors.New("--spawn-rate is for the closed model; with --rate use steps, e.g. --rate 100/s:10s,500/s:10s")
		}
		r, err := loadgen.ParsePerSecond(f.spawnRate)
		if err != nil {
			return cfg, nil, fmt.Errorf("--spawn-rate %q: %w", f.spawnRate, err)
		}
		cfg.SpawnRate = r
	}
	if f.duration < 0 || f.requests < 0 || f.maxInFlight < 0 || f.warmup < 0 {
		return cfg, nil, errors.New("-d, -n, --max-in-flight and --warmup must not be negative")
	}
	cfg.MaxInFlight = f.maxInFlight
	cfg.Duration = f.duration
	cfg.MaxRequests = f.requests
	cfg.Warmup = f.warmup
	cfg.Timeout = f.timeout
	cfg.GracefulStop = f.graceful
	cfg.RateTolerance = f.rateTolerance
	cfg.AllowHosts = f.allowHosts
	cfg.Insecure = f.insecure
	var ts []loadgen.Threshold
	for _, s := range f.thresholds {
		t, err := loadgen.ParseThreshold(s)
		if err != nil {
			return cfg, nil, fmt.Errorf("--threshold: %w", err)
		}
		ts = append(ts, t)
	}
	if err := cfg.Validate(); err != nil {
		return cfg, nil, err
	}
	return cfg, ts, nil
}

// refusedStop is how long lode load keeps trying a target that refuses
// every connection before it stops the run (loadgen.Config.StopIfRefused).
const refusedStop = 2 * time.Second

// withScheme makes "host:port/path" an http:// URL, as lode shot does.
func withScheme(u string) string {
	if u == "" || strings.Contains(u, "://") || strings.HasPrefix(u, "/") {
		return u
	}
	return "http://" + u
}

// noSuccess explains a run in which no request succeeded ("" if one did):
// a load test of nothing is a failure, not a result. The commonest cause,
// a server that is not running, is named with its address.
func noSuccess(res *loadgen.Result) string {
	t := res.Total
	if t.Count > t.Failures {
		return ""
	}
	target := res.Target
	if u, err := url.Parse(target); err == nil && u.Host != "" {
		target = u.Scheme + "://" + u.Host + "/"
	}
	if t.Count == 0 {
		if res.Unfinished > 0 {
			return fmt.Sprintf("no request succeeded: the %d requests sent to %s got no answer before the run ended", res.Unfinished, target)
		}
		return "no request succeeded: no request was completed (is -d or -n too small?)"
	}
	top := t.Errors[0]
	for _, e := range t.Errors {
		if e.Count > top.Count {
			top = e
		}
	}
	if top.Message == "connection refused" {
		msg := fmt.Sprintf("no request succeeded: connection refused — is the server running at %s?", target)
		if res.Refused {
			msg += fmt.Sprintf(" (every connection was refused for %s, so the run stopped)", refusedStop)
		}
		return msg
	}
	if len(t.Errors) == 1 {
		return fmt.Sprintf("no request succeeded: all %d failed with %s", t.Count, top.Message)
	}
	return fmt.Sprintf("no request succeeded: %d requests failed, most with %s (%d); see the errors above", t.Count, top.Message, top.Count)
}

func hasHeader(h map[string]string, name string) bool {
	for k := range h {
		if strings.EqualFold(k, name) {
			return true
		}
	}
	return false
}

// isTerminal reports whether f is a character device (a terminal), so the
// live progress line is drawn only for a person watching.
func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
