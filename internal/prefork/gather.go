package prefork

import (
	"encoding/json"
	"slices"
	"time"
)

// Gathering every worker's metrics for one scrape (the master's side).
//
// A scrape of /-/metrics reaches one worker. That worker sends the master
// "gatherall"; the master sends "gather" to every serving worker (ready and
// not draining: one process per slot), each answers "gathered" with its
// metrics, and when all have answered, or gatherTimeout passed, the master
// answers the asking worker with every payload and its Status. Payloads are
// opaque to the master (metrics.go encodes and decodes them).

// gatherTimeout bounds how long the master waits for the workers' metrics;
// a worker that has not answered by then is reported as not scraped.
const gatherTimeout = 2 * time.Second

// Gathered is one worker's answer to a gather: its metrics, or why there
// are none.
type Gathered struct {
	ID      int    `json:"id"`
	PID     int    `json:"pid"`
	Metrics []byte `json:"metrics,omitempty"`
	Error   string `json:"error,omitempty"`
}

// gathering is one scrape in progress at the master.
type gathering struct {
	asker    *proc
	askID    uint64
	pending  map[*proc]bool
	got      []Gathered
	deadline time.Time
}

// startGather asks every serving worker for its metrics on behalf of
// asker's request id.
func (m *Master) startGather(asker *proc, id uint64, now time.Time) {
	if m.gathers == nil {
		m.gathers = map[uint64]*gathering{}
	}
	m.gatherSeq++
	g := &gathering{asker: asker, askID: id, pending: map[*proc]bool{}, deadline: now.Add(gatherTimeout)}
	m.gathers[m.gatherSeq] = g
	b, _ := json.Marshal(message{Type: msgGather, ID: m.gatherSeq})
	for _, p := range m.procs {
		if p.readyAt.IsZero() || p.stopping {
			continue
		}
		_ = p.ctrl.SetWriteDeadline(now.Add(time.Second))
		if _, err := p.ctrl.Write(append(b, '\n')); err != nil {
			g.got = append(g.got, Gathered{ID: p.slot, PID: p.pid, Error: "cannot ask the worker: " + err.Error()})
			continue
		}
		g.pending[p] = true
	}
	m.maybeFinish(m.gatherSeq, g, now)
}

// gathered records a worker's answer.
func (m *Master) gathered(p *proc, msg message, now time.Time) {
	g := m.gathers[msg.ID]
	if g == nil || !g.pending[p] {
		return // too late: already answered without it
	}
	delete(g.pending, p)
	r := Gathered{ID: p.slot, PID: p.pid, Metrics: msg.Metrics, Error: msg.Error}
	g.got = append(g.got, r)
	m.maybeFinish(msg.ID, g, now)
}

// expireGathers answers scrapes whose workers did not all answer in time,
// and drops workers that exited from the scrapes they were part of.
func (m *Master) expireGathers(now time.Time, exited *proc) {
	for id, g := range m.gathers {
		for p := range g.pending {
			switch {
			case p == exited:
				g.got = append(g.got, Gathered{ID: p.slot, PID: p.pid, Error: "the worker exited"})
			case !now.Before(g.deadline):
				g.got = append(g.got, Gathered{ID: p.slot, PID: p.pid, Error: "no answer within " + gatherTimeout.String()})
			default:
				continue
			}
			delete(g.pending, p)
		}
		if g.asker == exited {
			delete(m.gathers, id)
			continue
		}
		m.maybeFinish(id, g, now)
	}
}

// maybeFinish answers the asking worker once nothing is pending.
func (m *Master) maybeFinish(id uint64, g *gathering, now time.Time) {
	if len(g.pending) > 0 {
		return
	}
	delete(m.gathers, id)
	slices.SortFunc(g.got, func(a, b Gathered) int { return a.ID - b.ID })
	st := m.status()
	b, err := json.Marshal(message{Type: msgGatherAll, ID: g.askID, Status: &st, Workers: g.got})
	if err != nil {
		return
	}
	// A worker that does not read its replies must not stall the loop.
	_ = g.asker.ctrl.SetWriteDeadline(now.Add(time.Second))
	if _, err := g.asker.ctrl.Write(append(b, '\n')); err != nil {
		m.log.Debug("cannot answer metrics request", "worker", g.asker.slot, "err", err)
	}
}
