package prefork

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// DefaultIdleGrace is how long a draining worker leaves an idle keep-alive
// connection open for the client's next request (which is then answered with
// "Connection: close") before closing it.
const DefaultIdleGrace = 500 * time.Millisecond

// IsWorker reports whether this process was started by a Master.
func IsWorker() bool { return os.Getenv(envWorker) != "" }

// Worker is the worker-process side: the inherited listener, the control
// channel to the master and the request counters. Create it with NewWorker;
// its methods are safe for concurrent use.
type Worker struct {
	// ID is the worker's slot number (1..N), stable across its replacements.
	ID int
	// Listener is the shared listening socket (or, with ReusePort, this
	// worker's own socket).
	Listener net.Listener
	// GracefulTimeout bounds the drain on SIGTERM; set from the master.
	GracefulTimeout time.Duration
	// IdleGrace is how long a draining worker keeps idle keep-alive
	// connections open; default DefaultIdleGrace.
	IdleGrace time.Duration
	// Logger receives the worker's few logs; nil discards them.
	Logger *slog.Logger
	// Metrics, if set, are this worker's metrics (the server's registry):
	// the master gathers them from every worker for one scrape
	// (MetricsGatherer). Set it before Serve.
	Metrics prometheus.Gatherer

	ctrl        net.Conn
	heartbeat   time.Duration
	maxRequests uint64
	pid         string

	served   atomic.Uint64
	inflight atomic.Int64
	busy     busyClock            // metrics.go
	reg      *prometheus.Registry // the worker's own metrics (busy time)
	draining atomic.Bool
	nudge    chan struct{}

	writeMu sync.Mutex // serialises lines on ctrl

	mu      sync.Mutex
	pending map[uint64]chan message // replies to status and gatherall requests
	nextID  uint64
	conns   map[net.Conn]connInfo

	masterGone chan struct{}
	goneOnce   sync.Once
}

type connInfo struct {
	state http.ConnState
	since time.Time
}

// NewWorker builds the Worker from what the master passed down: the control
// socket (fd 3), the shared listener (fd 4) or the SO_REUSEPORT address, and
// the settings in LODE_PREFORK_* variables, which it then removes from the
// environment. It fails if the process was not started by a Master.
func NewWorker(ctx context.Context) (*Worker, error) {
	id, err := strconv.Atoi(os.Getenv(envWorker))
	if err != nil {
		return nil, fmt.Errorf("prefork: not a worker process (%s=%q)", envWorker, os.Getenv(envWorker))
	}
	w := &Worker{
		ID:         id,
		IdleGrace:  DefaultIdleGrace,
		pid:        strconv.Itoa(os.Getpid()),
		nudge:      make(chan struct{}, 1),
		pending:    map[uint64]chan message{},
		conns:      map[net.Conn]connInfo{},
		masterGone: make(chan struct{}),
		heartbeat:  500 * time.Millisecond,
	}
	if d, err := time.ParseDuration(os.Getenv(envHeartbeat)); err == nil && d > 0 {
		w.heartbeat = d
	}
	w.reg = w.workerRegistry()
	w.GracefulTimeout = DefaultGracefulTimeout
	if d, err := time.ParseDuration(os.Getenv(envGraceful)); err == nil && d > 0 {
		w.GracefulTimeout = d
	}
	w.maxRequests, _ = strconv.ParseUint(os.Getenv(envMaxRequests), 10, 64)

	cf := os.NewFile(fdControl, "prefork-control")
	w.ctrl, err = net.FileConn(cf)
	cf.Close()
	if err != nil {
		return nil, fmt.Errorf("prefork: control channel on fd %d: %w", fdControl, err)
	}
	if addr := os.Getenv(envReuseAddr); addr != "" {
		w.Listener, err = listenReusePort(ctx, addr)
	} else {
		lf := os.NewFile(fdListener, "prefork-listener")
		w.Listener, err = net.FileListener(lf)
		lf.Close()
		if err != nil {
			err = fmt.Errorf("prefork: inherited listener on fd %d: %w", fdListener, err)
		}
	}
	if err != nil {
		w.ctrl.Close()
		return nil, err
	}
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, envPrefix) {
			os.Unsetenv(k)
		}
	}
	return w, nil
}

func (w *Worker) logger() *slog.Logger {
	if w.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return w.Logger
}

// Serve serves srv on the worker's listener until ctx is cancelled (the
// worker got SIGTERM or SIGINT) or the master goes away, then drains: it
// stops accepting, answers each further request on an open connection with
// "Connection: close", closes connections idle for IdleGrace, and waits for
// in-flight requests up to GracefulTimeout. It wraps srv.Handler with
// Middleware and chains srv.ConnState. It returns nil after a clean drain.
func (w *Worker) Serve(ctx context.Context, srv *http.Server) error {
	if srv.Handler == nil {
		return errors.New("prefork: Serve needs srv.Handler")
	}
	srv.Handler = w.Middleware(srv.Handler)
	prev := srv.ConnState
	srv.ConnState = func(c net.Conn, st http.ConnState) {
		w.track(c, st)
		if prev != nil {
			prev(c, st)
		}
	}
	var serveErr error
	serveDone := make(chan struct{})
	go func() {
		defer close(serveDone)
		serveErr = srv.Serve(w.Listener)
	}()
	go w.readControl()
	hbDone := make(chan struct{})
	hbStopped := make(chan struct{})
	go w.beat(hbDone, hbStopped)
	if err := w.send(message{Type: msgReady}); err != nil {
		w.logger().Warn("cannot report ready to the master", "err", err)
	}

	var err error
	select {
	case <-ctx.Done():
	case <-w.masterGone:
		w.logger().Warn("master went away; draining")
	case <-serveDone:
		err = fmt.Errorf("serve: %w", serveErr)
	}
	w.drain(srv, serveDone)
	close(hbDone)
	<-hbStopped
	_ = w.sendBeat() // final counters, best effort
	w.ctrl.Close()
	return err
}

// drain implements the graceful stop described at Serve.
func (w *Worker) drain(srv *http.Server, serveDone <-chan struct{}) {
	deadline := time.Now().Add(w.GracefulTimeout)
	w.draining.Store(true)
	_ = w.Listener.Close() // only this process's descriptor: the queue stays with the others
	// Wait for Serve to return: a connection Accept returned just before the
	// close is registered (ConnState StateNew) only before Serve loops back,
	// and http.Server.Shutdown alone would not wait for it.
	<-serveDone
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for w.closeIdle() > 0 && time.Now().Before(deadline) {
		<-tick.C
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		w.logger().Warn("graceful timeout: closing remaining connections", "err", err)
		_ = srv.Close()
	}
}

func (w *Worker) track(c net.Conn, st http.ConnState) {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch st {
	case http.StateClosed, http.StateHijacked:
		delete(w.conns, c)
	default:
		w.conns[c] = connInfo{state: st, since: time.Now()}
	}
}

// closeIdle closes connections that have been idle (or new without a
// request) for IdleGrace and returns how many connections remain open.
// A client that keeps sending finds its connection active, gets "Connection:
// close" with the response and reconnects to another worker, so no request
// meets a connection the server is closing.
func (w *Worker) closeIdle() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := time.Now()
	for c, ci := range w.conns {
		if (ci.state == http.StateIdle || ci.state == http.StateNew) && now.Sub(ci.since) >= w.IdleGrace {
			_ = c.Close() // the server's conn goroutine sees the error and reports StateClosed
		}
	}
	return len(w.conns)
}

// Middleware counts requests for heartbeats and MaxRequests, stamps
// X-Lode-Pid and marks responses "Connection: close" while draining. It
// answers no path itself: the handler serves StatusPath with
// StatusHandler, behind its own permission check.
func (w *Worker) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		w.inflight.Add(1)
		scrape := r.URL.Path == MetricsPath
		if !scrape {
			w.busy.start(time.Now())
		}
		defer func() {
			if !scrape {
				w.busy.end(time.Now())
			}
			w.inflight.Add(-1)
			if n := w.served.Add(1); n == w.maxRequests {
				w.nudgeBeat()
			}
		}()
		rw.Header().Set(PidHeader, w.pid)
		next.ServeHTTP(&drainWriter{ResponseWriter: rw, w: w}, r)
	})
}

// drainWriter adds "Connection: close" to responses whose headers are
// written after the drain began, so keep-alive clients move elsewhere.
type drainWriter struct {
	http.ResponseWriter
	w     *Worker
	wrote bool
}

func (d *drainWriter) WriteHeader(code int) {
	if !d.wrote {
		d.wrote = true
		if d.w.draining.Load() {
			d.Header().Set("Connection", "close")
		}
	}
	d.ResponseWriter.WriteHeader(code)
}

func (d *drainWriter) Write(b []byte) (int, error) {
	if !d.wrote {
		d.WriteHeader(http.StatusOK)
	}
	return d.ResponseWriter.Write(b)
}

// Flush lets streaming handlers flush through the wrapper.
func (d *drainWriter) Flush() {
	if !d.wrote {
		d.WriteHeader(http.StatusOK)
	}
	_ = http.NewResponseController(d.ResponseWriter).Flush()
}

// Unwrap exposes the underlying writer to http.ResponseController.
func (d *drainWriter) Unwrap() http.ResponseWriter { return d.ResponseWriter }

// StatusHandler answers with the master's Status of all workers (mount it
// at StatusPath). Asking the master is bounded by 2 s; a master that does
// not answer gives a 503.
func (w *Worker) StatusHandler() http.Handler { return http.HandlerFunc(w.serveStatus) }

func (w *Worker) serveStatus(rw http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	rw.Header().Set("Content-Type", "application/json; charset=utf-8")
	st, err := w.Status(ctx)
	if err != nil {
		rw.WriteHeader(http.StatusServiceUnavailable)
		_ = json.NewEncoder(rw).Encode(map[string]any{"ok": false, "error": "worker status unavailable: " + err.Error(), "status": http.StatusServiceUnavailable})
		return
	}
	_ = json.NewEncoder(rw).Encode(st)
}

// Status asks the master for the status of all workers.
func (w *Worker) Status(ctx context.Context) (*Status, error) {
	reply, err := w.ask(ctx, message{Type: msgStatus})
	if err != nil {
		return nil, err
	}
	return reply.Status, nil
}

// ask sends the master a request and waits for its reply, matched by ID.
func (w *Worker) ask(ctx context.Context, req message) (message, error) {
	ch := make(chan message, 1)
	w.mu.Lock()
	w.nextID++
	id := w.nextID
	w.pending[id] = ch
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		delete(w.pending, id)
		w.mu.Unlock()
	}()
	// A fresh heartbeat first, so this worker's own counters are current.
	if err := w.sendBeat(); err != nil {
		return message{}, err
	}
	req.ID = id
	if err := w.send(req); err != nil {
		return message{}, err
	}
	select {
	case reply := <-ch:
		return reply, nil
	case <-w.masterGone:
		return message{}, errors.New("prefork: master went away")
	case <-ctx.Done():
		return message{}, fmt.Errorf("prefork: waiting for master: %w", ctx.Err())
	}
}

func (w *Worker) send(msg message) error {
	b, err := json.Marshal(msg)
	if err != nil {
		return err
	}
	w.writeMu.Lock()
	defer w.writeMu.Unlock()
	_ = w.ctrl.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := w.ctrl.Write(append(b, '\n')); err != nil {
		w.lostMaster()
		return fmt.Errorf("prefork: write to master: %w", err)
	}
	return nil
}

func (w *Worker) sendBeat() error {
	return w.send(message{Type: msgBeat, Served: w.served.Load(), InFlight: w.inflight.Load()})
}

func (w *Worker) nudgeBeat() {
	select {
	case w.nudge <- struct{}{}:
	default:
	}
}

// beat sends heartbeats until done is closed.
func (w *Worker) beat(done <-chan struct{}, stopped chan<- struct{}) {
	defer close(stopped)
	t := time.NewTicker(w.heartbeat)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
		case <-w.nudge:
		}
		if err := w.sendBeat(); err != nil {
			return
		}
	}
}

// readControl dispatches the master's replies until EOF, which means the
// master is gone.
func (w *Worker) readControl() {
	defer w.lostMaster()
	sc := bufio.NewScanner(w.ctrl)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		var msg message
		if err := json.Unmarshal(sc.Bytes(), &msg); err != nil {
			continue
		}
		switch msg.Type {
		case msgGather:
			go w.answerGather(msg.ID)
		case msgStatus, msgGatherAll:
			w.mu.Lock()
			ch := w.pending[msg.ID]
			w.mu.Unlock()
			if ch != nil {
				ch <- msg
			}
		}
	}
}

func (w *Worker) lostMaster() { w.goneOnce.Do(func() { close(w.masterGone) }) }
