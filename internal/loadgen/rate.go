package loadgen

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// RateStep is one step of an open-model arrival schedule: Rate arrivals
// per second for Duration. A zero Duration lasts until the end of the run.
type RateStep struct {
	Rate     float64       `json:"rate"`
	Duration time.Duration `json:"duration_ns"`
}

// Schedule is an open-model arrival schedule: steps run one after the
// other; the last step continues if the run is longer than the steps.
type Schedule []RateStep

// ParseRate parses a rate or a stepped schedule:
//
//	2000/s                 constant 2000 arrivals per second
//	2000                   the same
//	120/m                  120 per minute (also /h)
//	100/s:10s,500/s:20s    100/s for 10 s, then 500/s for 20 s
//
// A step without ":DURATION" lasts until the end of the run and may only be
// the last step.
func ParseRate(s string) (Schedule, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("rate is empty: want e.g. 2000/s or 100/s:10s,500/s:10s")
	}
	var out Schedule
	parts := strings.Split(s, ",")
	for i, p := range parts {
		p = strings.TrimSpace(p)
		rs, ds, hasDur := strings.Cut(p, ":")
		var step RateStep
		var err error
		if step.Rate, err = parseOneRate(rs); err != nil {
			return nil, fmt.Errorf("rate %q: %w", p, err)
		}
		if hasDur {
			if step.Duration, err = time.ParseDuration(strings.TrimSpace(ds)); err != nil || step.Duration <= 0 {
				return nil, fmt.Errorf("rate %q: step duration %q: want e.g. 10s", p, ds)
			}
		} else if i != len(parts)-1 {
			return nil, fmt.Errorf("rate %q: every step but the last needs a duration, e.g. %s:10s", p, rs)
		}
		out = append(out, step)
	}
	return out, nil
}

// ParsePerSecond parses one rate such as "10/s", "600/m" or "10" into a
// number per second (used for --spawn-rate).
func ParsePerSecond(s string) (float64, error) { return parseOneRate(s) }

func parseOneRate(s string) (float64, error) {
	s = strings.TrimSpace(s)
	num, unit, _ := strings.Cut(s, "/")
	per := 1.0
	switch strings.TrimSpace(unit) {
	case "", "s", "sec", "1s":
	case "m", "min", "1m":
		per = 60
	case "h", "1h":
		per = 3600
	default:
		return 0, fmt.Errorf("unit %q: want /s, /m or /h", unit)
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	if err != nil || v <= 0 {
		return 0, errors.New("want a positive number of arrivals, e.g. 2000/s")
	}
	return v / per, nil
}

// String formats the schedule in ParseRate's syntax.
func (s Schedule) String() string {
	var b strings.Builder
	for i, st := range s {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatFloat(st.Rate, 'f', -1, 64))
		b.WriteString("/s")
		if st.Duration > 0 {
			b.WriteByte(':')
			b.WriteString(st.Duration.String())
		}
	}
	return b.String()
}

// Total returns the summed duration of the steps that have one.
func (s Schedule) Total() time.Duration {
	var t time.Duration
	for _, st := range s {
		t += st.Duration
	}
	return t
}

// arrivals counts the arrivals the schedule places in [0, d).
func (s Schedule) arrivals(d time.Duration) int64 {
	var n int64
	p := s.pacer()
	for {
		off, ok := p.next()
		if !ok || off >= d {
			return n
		}
		n++
	}
}

// pacer walks a schedule, returning intended arrival offsets.
type schedPacer struct {
	s     Schedule
	step  int
	start time.Duration // offset of the current step
	i     int64         // arrival index within the step
}

func (s Schedule) pacer() *schedPacer { return &schedPacer{s: s} }

// next returns the offset from the run start of the next arrival.
func (p *schedPacer) next() (time.Duration, bool) {
	for p.step < len(p.s) {
		st := p.s[p.step]
		off := time.Duration(float64(p.i) / st.Rate * float64(time.Second))
		last := p.step == len(p.s)-1
		if last || off < st.Duration {
			p.i++
			return p.start + off, true
		}
		p.start += st.Duration
		p.step++
		p.i = 0
	}
	return 0, false
}
