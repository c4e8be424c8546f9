// Package prefork runs an HTTP service as N supervised worker processes that
// share one listening socket, in the manner of Gunicorn's pre-fork model.
//
// The Master opens the listening socket once and starts each worker by
// re-executing a binary (normally the running one) with the socket's file
// descriptor in ExtraFiles, so every worker accepts from the same kernel
// queue and a worker that exits loses no queued connection. The master also
// passes each worker one end of a Unix socketpair: the control channel. Over
// it the worker reports that it is ready, sends heartbeats with its request
// counters, and asks the master for the status of all workers (which the
// worker's handler serves at /-/workers.json with Worker.StatusHandler). The master restarts workers that exit or
// stop sending heartbeats, backs off on crash loops and gives up with the
// worker's last output, replaces workers one at a time on SIGHUP (rolling
// reload) and when they reach MaxRequests, adds and removes workers on
// SIGTTIN/SIGTTOU, and stops gracefully when its context is cancelled.
//
// The worker side is Worker: a process started by a Master calls NewWorker and
// then Worker.Serve with its *http.Server. Serve counts requests, stamps
// X-Lode-Pid on every response and, on SIGTERM (its context), drains
// without resetting keep-alive connections.
//
// The package knows nothing about SQLite or routes; it is Linux-only (it uses
// socketpair, process groups, Pdeathsig and SO_REUSEPORT).
package prefork

import (
	"time"
)

// Environment variables the master sets for a worker. They are removed from
// the worker's environment by NewWorker so they do not leak into its children.
const (
	envWorker      = "LODE_PREFORK_WORKER"           // worker id (slot number, 1-based)
	envHeartbeat   = "LODE_PREFORK_HEARTBEAT"        // heartbeat interval, a time.Duration string
	envGraceful    = "LODE_PREFORK_GRACEFUL_TIMEOUT" // drain limit, a time.Duration string
	envMaxRequests = "LODE_PREFORK_MAX_REQUESTS"     // requests after which the worker asks to be replaced; 0 = never
	envReuseAddr   = "LODE_PREFORK_REUSEPORT_ADDR"   // set with ReusePort: the address to bind with SO_REUSEPORT
	envPrefix      = "LODE_PREFORK_"
)

// File descriptors a worker inherits (ExtraFiles start at fd 3).
const (
	fdControl  = 3 // the worker's end of the control socketpair
	fdListener = 4 // the shared listening socket (absent with ReusePort)
)

// StatusPath is the URL path every worker answers with the master's Status.
const StatusPath = "/-/workers.json"

// PidHeader is the response header that carries the serving process's pid.
const PidHeader = "X-Lode-Pid"

// Message types on the control channel. Each message is one JSON object per
// line. Worker to master: ready, hb, status and gatherall (requests),
// gathered (the answer to a gather). Master to worker: status and gatherall
// (the replies, with the request's ID), gather (a request for the worker's
// metrics, see gather.go).
const (
	msgReady     = "ready"
	msgBeat      = "hb"
	msgStatus    = "status"
	msgGatherAll = "gatherall"
	msgGather    = "gather"
	msgGathered  = "gathered"
)

// message is one line on the control channel.
type message struct {
	Type     string     `json:"t"`
	Served   uint64     `json:"served,omitempty"`
	InFlight int64      `json:"inflight,omitempty"`
	ID       uint64     `json:"id,omitempty"`
	Status   *Status    `json:"status,omitempty"`
	Metrics  []byte     `json:"metrics,omitempty"` // gathered: the worker's metrics
	Error    string     `json:"error,omitempty"`   // gathered: why there are none
	Workers  []Gathered `json:"workers,omitempty"` // gatherall reply
}

// Status is the master's view of its workers, as served at /-/workers.json.
// Counters come from the workers' heartbeats, so they may lag by up to one
// heartbeat interval, except for the asking worker, which sends a fresh
// heartbeat just before asking (its own request is counted in InFlight).
//
// Restarts counts workers that exited or were killed without being asked
// to stop, and were started again; RestartsByCause counts every
// replacement of a worker process by cause: "exit" (it exited or died on
// its own), "heartbeat" (killed after WorkerTimeout without a heartbeat),
// "reload" (rolling replacement on SIGHUP), "max_requests" (recycled after
// MaxRequests). HeartbeatsMissed counts heartbeat intervals that passed
// without a heartbeat, beyond the first (a late heartbeat is not counted).
type Status struct {
	MasterPID        int            `json:"master_pid"`
	Started          time.Time      `json:"started"`
	TargetWorkers    int            `json:"target_workers"`
	ReusePort        bool           `json:"reuse_port"`
	Restarts         int            `json:"restarts"`
	Reloads          int            `json:"reloads"`
	RestartsByCause  map[string]int `json:"restarts_by_cause"`
	HeartbeatsMissed int            `json:"heartbeats_missed"`
	Workers          []WorkerStatus `json:"workers"`
}

// WorkerStatus describes one worker process. State is "starting" (not yet
// ready), "idle" or "busy" (requests in flight), or "draining" (asked to
// stop, finishing its requests).
type WorkerStatus struct {
	ID            int       `json:"id"`
	PID           int       `json:"pid"`
	Started       time.Time `json:"started"`
	State         string    `json:"state"`
	Requests      uint64    `json:"requests"`
	InFlight      int64     `json:"in_flight"`
	Restarts      int       `json:"restarts"`
	MaxRequests   uint64    `json:"max_requests,omitempty"`
	LastHeartbeat time.Time `json:"last_heartbeat"`
	// RestartsByCause and HeartbeatsMissed are Status's, for this slot.
	RestartsByCause  map[string]int `json:"restarts_by_cause,omitempty"`
	HeartbeatsMissed int            `json:"heartbeats_missed"`
}
