package prefork

import (
	"encoding/json"
	"net/http"
	"os"
	"strconv"
	"sync/atomic"
	"time"
)

// InProcess wraps the handler of a server running without a master
// (lode serve --workers 0) so that it answers StatusPath too, with a Status
// whose only worker (ID 0) is this process, and stamps X-Lode-Pid. It is
// safe for concurrent use.
func InProcess(next http.Handler) http.Handler {
	started := time.Now()
	pid := os.Getpid()
	pidStr := strconv.Itoa(pid)
	pidHeader := []string{pidStr} // net/http only reads header values
	var served atomic.Uint64
	var inflight atomic.Int64
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		inflight.Add(1)
		defer func() {
			inflight.Add(-1)
			served.Add(1)
		}()
		rw.Header()[PidHeader] = pidHeader
		if r.URL.Path != StatusPath {
			next.ServeHTTP(rw, r)
			return
		}
		n := inflight.Load()
		state := "idle"
		if n > 1 { // this request is always in flight
			state = "busy"
		}
		st := Status{
			MasterPID: pid, Started: started,
			Workers: []WorkerStatus{{
				PID: pid, Started: started, State: state, Requests: served.Load(), InFlight: n,
				LastHeartbeat: time.Now(),
			}},
		}
		rw.Header().Set("Content-Type", "application/json; charset=utf-8")
		_ = json.NewEncoder(rw).Encode(st)
	})
}
