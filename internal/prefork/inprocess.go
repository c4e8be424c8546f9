package prefork

import (
	"encoding/json"
	"net/http"
	"os"
	"strconv"
	"sync/atomic"
	"time"
)

// InProcess stands in for the master of a server running without one
// (lode serve --workers 0): Wrap counts requests and stamps X-Lode-Pid, and
// StatusHandler answers StatusPath with a Status whose only worker (ID 0)
// is this process. It is safe for concurrent use.
type InProcess struct {
	started   time.Time
	pid       int
	pidHeader []string // net/http only reads header values
	served    atomic.Uint64
	inflight  atomic.Int64
}

// NewInProcess returns the in-process stand-in for this process.
func NewInProcess() *InProcess {
	pid := os.Getpid()
	return &InProcess{started: time.Now(), pid: pid, pidHeader: []string{strconv.Itoa(pid)}}
}

// Wrap counts next's requests and stamps X-Lode-Pid on its responses.
func (p *InProcess) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		p.inflight.Add(1)
		defer func() {
			p.inflight.Add(-1)
			p.served.Add(1)
		}()
		rw.Header()[PidHeader] = p.pidHeader
		next.ServeHTTP(rw, r)
	})
}

// StatusHandler answers with this process's Status (mount it at
// StatusPath).
func (p *InProcess) StatusHandler() http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		n := p.inflight.Load()
		state := "idle"
		if n > 1 { // this request is always in flight
			state = "busy"
		}
		st := Status{
			MasterPID: p.pid, Started: p.started,
			Workers: []WorkerStatus{{
				PID: p.pid, Started: p.started, State: state, Requests: p.served.Load(), InFlight: n,
				LastHeartbeat: time.Now(),
			}},
		}
		rw.Header().Set("Content-Type", "application/json; charset=utf-8")
		_ = json.NewEncoder(rw).Encode(st)
	})
}
