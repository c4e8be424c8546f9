package loadgen

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"
)

// maxErrorGroups bounds the distinct error messages kept per request name,
// so a server that puts ids in its messages cannot grow memory without
// bound; the rest are counted under otherErrors.
const (
	maxErrorGroups = 100
	maxMessageLen  = 200
	otherErrors    = "other errors (more than 100 distinct messages)"
)

// recorder collects statistics from many goroutines. It is sharded: each
// worker records into one shard (by worker number), so the lock a
// request takes is almost never contended; snapshots merge the shards.
// Memory is fixed by the number of request names and error messages,
// never by the number of requests.
type recorder struct {
	shards []*shard
	names  []*Request
}

type shard struct {
	mu    sync.Mutex
	stats []*Stats // by request index
	// Interval (history) counters for the aggregate; reset on each tick.
	ivCount, ivFail, ivDropped int64
	ivLatency                  *Histogram
	errIdx                     []map[string]*ErrorStats
	// Open-model schedule steps (only for stepped rates).
	stepLat               []*Histogram
	stepCount, stepFailed []int64
}

func newRecorder(reqs []*Request, nsteps, nshards int) *recorder {
	r := &recorder{names: reqs}
	if nsteps < 2 {
		nsteps = 0
	}
	for i := 0; i < nshards; i++ {
		sh := &shard{ivLatency: NewHistogram(), stepCount: make([]int64, nsteps), stepFailed: make([]int64, nsteps)}
		for j := 0; j < nsteps; j++ {
			sh.stepLat = append(sh.stepLat, newErrorHistogram())
		}
		for _, q := range reqs {
			sh.stats = append(sh.stats, newStats(q.Name, q.method))
			sh.errIdx = append(sh.errIdx, map[string]*ErrorStats{})
		}
		r.shards = append(r.shards, sh)
	}
	return r
}

// record adds one completed request. msg is empty for a success.
func (r *recorder) record(worker, req int, lat time.Duration, bytes int64, msg string) {
	sh := r.shards[worker%len(r.shards)]
	sh.mu.Lock()
	st := sh.stats[req]
	st.Count++
	st.Bytes += bytes
	st.Latency.Record(lat)
	sh.ivCount++
	sh.ivLatency.Record(lat)
	if msg != "" {
		st.Failures++
		sh.ivFail++
		idx := sh.errIdx[req]
		e := idx[msg]
		if e == nil {
			if len(idx) >= maxErrorGroups {
				msg = otherErrors
				e = idx[msg]
			}
			if e == nil {
				e = &ErrorStats{Message: msg, Method: st.Method, Name: st.Name, Latency: newErrorHistogram()}
				idx[msg] = e
				st.Errors = append(st.Errors, e)
			}
		}
		e.Count++
		e.Latency.Record(lat)
	}
	sh.mu.Unlock()
}

// recordStep adds one completed request to its schedule step.
func (r *recorder) recordStep(worker, step int, lat time.Duration, failed bool) {
	sh := r.shards[worker%len(r.shards)]
	if step >= len(sh.stepLat) {
		return
	}
	sh.mu.Lock()
	sh.stepLat[step].Record(lat)
	sh.stepCount[step]++
	if failed {
		sh.stepFailed[step]++
	}
	sh.mu.Unlock()
}

// steps merges the per-step statistics of all shards.
func (r *recorder) steps() (lat []*Histogram, count, failed []int64) {
	n := len(r.shards[0].stepLat)
	count, failed = make([]int64, n), make([]int64, n)
	for i := 0; i < n; i++ {
		lat = append(lat, newErrorHistogram())
	}
	for _, sh := range r.shards {
		sh.mu.Lock()
		for i := 0; i < n; i++ {
			lat[i].Merge(sh.stepLat[i])
			count[i] += sh.stepCount[i]
			failed[i] += sh.stepFailed[i]
		}
		sh.mu.Unlock()
	}
	return lat, count, failed
}

func (r *recorder) dropped(worker int) {
	sh := r.shards[worker%len(r.shards)]
	sh.mu.Lock()
	sh.ivDropped++
	sh.mu.Unlock()
}

// interval returns and resets the interval counters of all shards.
func (r *recorder) interval() (count, fail, dropped int64, lat *Histogram, totalCount, totalFail, totalBytes int64, total *Histogram) {
	lat = NewHistogram()
	total = NewHistogram()
	for _, sh := range r.shards {
		sh.mu.Lock()
		count += sh.ivCount
		fail += sh.ivFail
		dropped += sh.ivDropped
		lat.Merge(sh.ivLatency)
		sh.ivLatency.h.Reset()
		sh.ivCount, sh.ivFail, sh.ivDropped = 0, 0, 0
		for _, st := range sh.stats {
			totalCount += st.Count
			totalFail += st.Failures
			totalBytes += st.Bytes
			total.Merge(st.Latency)
		}
		sh.mu.Unlock()
	}
	return
}

// snapshot merges the shards into per-name stats (in scenario order,
// merging requests that share a name and method) and a total.
func (r *recorder) snapshot() (per []*Stats, total *Stats) {
	total = newStats("Aggregated", "")
	byKey := map[string]*Stats{}
	for i, q := range r.names {
		key := q.method + " " + q.Name
		s := byKey[key]
		if s == nil {
			s = newStats(q.Name, q.method)
			byKey[key] = s
			per = append(per, s)
		}
		for _, sh := range r.shards {
			sh.mu.Lock()
			s.merge(sh.stats[i])
			sh.mu.Unlock()
		}
	}
	for _, s := range per {
		total.Count += s.Count
		total.Failures += s.Failures
		total.Bytes += s.Bytes
		total.Latency.Merge(s.Latency)
		total.Errors = mergeErrors(total.Errors, s.Errors, true)
	}
	return per, total
}

// judge applies r's checks to a response and returns the error message,
// or "" for a success.
func judge(r *Request, resp response) string {
	statusChecked := false
	for i := range r.Checks {
		c := &r.Checks[i]
		if len(c.Status) == 0 {
			continue
		}
		statusChecked = true
		ok := false
		for _, s := range c.Status {
			if s == resp.status {
				ok = true
				break
			}
		}
		if !ok {
			return statusMessage(resp)
		}
	}
	if !statusChecked && resp.status >= 400 {
		return statusMessage(resp)
	}
	for i := range r.Checks {
		if r.Checks[i].JSONPath != "" {
			return judgeJSON(r, resp)
		}
	}
	return ""
}

// judgeJSON applies r's JSON checks (apart, so that the decoded document
// costs nothing to requests without them).
func judgeJSON(r *Request, resp response) string {
	var doc any
	parsed := false
	for i := range r.Checks {
		c := &r.Checks[i]
		if c.JSONPath == "" {
			continue
		}
		if !parsed {
			parsed = true
			dec := json.NewDecoder(bytes.NewReader(resp.body))
			dec.UseNumber()
			if err := dec.Decode(&doc); err != nil {
				return fmt.Sprintf("check json %s: body is not JSON", c.JSONPath)
			}
		}
		v, ok := jsonPath(doc, c.JSONPath)
		switch {
		case c.Absent && ok:
			return fmt.Sprintf("check json %s: present, want absent", c.JSONPath)
		case c.Absent:
		case !ok:
			return fmt.Sprintf("check json %s: missing", c.JSONPath)
		case c.Equals != nil:
			want := c.Equals
			if _, isNull := want.(jsonNull); isNull {
				want = nil
			}
			got := normaliseNumber(v)
			if !reflect.DeepEqual(got, want) {
				return fmt.Sprintf("check json %s: got %s, want %s", c.JSONPath, short(got), short(want))
			}
		}
	}
	return ""
}

func clip(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > maxMessageLen {
		s = s[:maxMessageLen] + "…"
	}
	return s
}

func short(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	if len(b) > 60 {
		return string(b[:60]) + "…"
	}
	return string(b)
}

// normaliseNumber turns json.Number into float64 (recursively) so values
// compare like Check.Equals, which went through a JSON round trip.
func normaliseNumber(v any) any {
	switch x := v.(type) {
	case json.Number:
		f, err := x.Float64()
		if err != nil {
			return x.String()
		}
		return f
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = normaliseNumber(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = normaliseNumber(e)
		}
		return out
	}
	return v
}

// jsonPath walks a dotted path ("rows.0.id") through decoded JSON.
func jsonPath(doc any, path string) (any, bool) {
	cur := doc
	if path == "" || path == "." {
		return cur, true
	}
	for _, part := range strings.Split(path, ".") {
		switch x := cur.(type) {
		case map[string]any:
			v, ok := x[part]
			if !ok {
				return nil, false
			}
			cur = v
		case []any:
			i, err := strconv.Atoi(part)
			if err != nil || i < 0 || i >= len(x) {
				return nil, false
			}
			cur = x[i]
		default:
			return nil, false
		}
	}
	return cur, true
}
