package prefork

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Defaults used by Master for zero fields. GracefulTimeout and WorkerTimeout
// follow Gunicorn's 30 s.
const (
	DefaultGracefulTimeout = 30 * time.Second
	DefaultWorkerTimeout   = 30 * time.Second
	DefaultMaxCrashes      = 5
	DefaultMinUptime       = 1 * time.Second
	DefaultBackoff         = 100 * time.Millisecond
	DefaultMaxBackoff      = 10 * time.Second
)

// tickInterval is how often the master checks heartbeats, stop deadlines and
// pending restarts.
const tickInterval = 50 * time.Millisecond

// killGrace is how long past GracefulTimeout the master waits for a stopping
// worker before it sends SIGKILL.
const killGrace = 2 * time.Second

// Master supervises worker processes. Fill its fields, optionally call
// Listen to open the socket early (to learn the address), then call Run.
// A Master runs once; it is not safe for concurrent use except that BoundAddr may
// be called after Listen returned.
type Master struct {
	// Workers is the number of worker processes; values below 1 mean 1.
	Workers int
	// Addr is the TCP address to listen on, e.g. "127.0.0.1:8001". Ignored
	// when Listener is set.
	Addr string
	// Listener, if set, is the shared listening socket (a *net.TCPListener).
	// Run closes it when it returns.
	Listener net.Listener
	// ReusePort makes every worker open its own SO_REUSEPORT socket instead
	// of sharing the master's. The kernel then balances connections across
	// workers, but connections still queued on a worker's socket when that
	// worker stops are reset, so reloads and recycling can fail requests.
	ReusePort bool

	// Path is the binary to execute for each worker, resolved on every start
	// so a binary rebuilt at the same path is picked up by a reload. Default:
	// the running executable.
	Path string
	// Name is argv[0] prefix of workers, shown by ps as "NAME worker ID ...".
	// Default: the base name of Path.
	Name string
	// Args are the worker's arguments after argv[0] (usually os.Args[1:]).
	Args []string
	// Env is the workers' environment; nil means os.Environ().
	Env []string

	// GracefulTimeout bounds how long a stopping worker may take to finish
	// its requests. Default DefaultGracefulTimeout.
	GracefulTimeout time.Duration
	// WorkerTimeout is how long a worker may go without a heartbeat (or,
	// while starting, without reporting ready) before it is killed and
	// replaced. Default DefaultWorkerTimeout.
	WorkerTimeout time.Duration
	// MaxRequests, if positive, replaces a worker (rolling, one at a time)
	// after it served this many requests plus a random 0..MaxRequestsJitter.
	MaxRequests       int
	MaxRequestsJitter int

	// MaxCrashes is how many consecutive failed starts (a worker that exits
	// before it is ready, or within MinUptime after) the master tolerates;
	// one more and Run returns an error naming the worker's last output.
	// Default DefaultMaxCrashes.
	MaxCrashes int
	// MinUptime is how long a worker must stay up after reporting ready to
	// count as a successful start. Default DefaultMinUptime.
	MinUptime time.Duration
	// Backoff is the delay before restarting after the first failed start;
	// it doubles with every further one up to MaxBackoff.
	Backoff    time.Duration
	MaxBackoff time.Duration

	// Logger receives the master's logs; nil discards them.
	Logger *slog.Logger
	// Stdout and Stderr receive the workers' output, each line prefixed with
	// "[worker ID] ". Defaults: os.Stdout and os.Stderr.
	Stdout, Stderr io.Writer
	// RawStdout hands Stdout (when it is a file, as os.Stdout is) to the
	// workers as their standard output, without the prefix: for output
	// that must stay machine-readable, such as an access log.
	RawStdout bool

	// Set by Listen.
	ln       net.Listener
	lnFile   *os.File // dup of the listening socket handed to workers
	reserved *os.File // ReusePort: bound, non-listening socket holding the port
	addr     net.Addr

	// Loop state, touched only by Run's goroutine.
	log        *slog.Logger
	out, errw  *syncWriter
	heartbeat  time.Duration
	procs      []*proc
	target     int
	seq        int
	started    time.Time
	events     chan event
	done       chan struct{}
	failures   int // consecutive failed starts
	lastFail   time.Time
	nextSpawn  time.Time
	restarts   int
	slotRest   map[int]int
	reloads    int
	queue      []*proc // workers waiting for a rolling replacement
	replacing  *proc   // the new worker of the replacement in progress
	holdRepl   time.Time
	replFails  int
	stopping   bool
	shutdownAt time.Time
	restartsBy map[int]map[string]int // replacements by slot and cause (Status.RestartsByCause)
	missedBy   map[int]int            // heartbeats missed by slot
	gathers    map[uint64]*gathering  // metrics scrapes in progress (gather.go)
	gatherSeq  uint64

	// The master's own progress: time that passed while its loop ran,
	// advanced on every tick by at most maxStep. Heartbeat silences are
	// measured on this clock, so a master that was itself stopped
	// (SIGSTOP, a swapped-out or paused machine) does not blame its
	// workers for the heartbeats it did not read.
	progress time.Duration
	lastTick time.Time
	// The last kill for a missed heartbeat: the next one waits until that
	// slot's replacement is ready or 2×WorkerTimeout of progress passed,
	// so workers are never all killed in one step.
	hbKillPending bool
	hbKillSlot    int
	hbKillAt      time.Duration
}

// proc is one worker process as the master sees it.
type proc struct {
	slot     int
	pid      int
	cmd      *exec.Cmd
	ctrl     net.Conn
	started  time.Time
	readyAt  time.Time
	lastBeat time.Time
	beatAt   time.Duration // master progress at the last heartbeat (or start)
	served   uint64
	inflight int64
	maxReq   uint64
	stopping bool
	stopAt   time.Time
	killed   bool
	queued   bool
	cause    string // why it is queued for replacement: "reload" or "max_requests"
	missed   int    // heartbeat intervals missed since its last heartbeat
	replaces *proc
	out      *tail
	stdout   *lineWriter
	stderr   *lineWriter
}

// event is something a worker's goroutines report to the master loop.
type event struct {
	p    *proc
	msg  message
	exit bool
	err  error
}

// Listen opens the listening socket (or, with ReusePort, reserves the port)
// if Run has not done so yet. Call it before Run to learn Addr.
func (m *Master) Listen() error {
	if m.addr != nil {
		return nil
	}
	if m.ReusePort {
		if m.Listener != nil {
			return errors.New("prefork: ReusePort needs Addr, not Listener")
		}
		addr, f, err := reservePort(m.Addr)
		if err != nil {
			return err
		}
		m.reserved, m.addr = f, addr
		return nil
	}
	ln := m.Listener
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", m.Addr); err != nil {
			return fmt.Errorf("listen on %s: %w", m.Addr, err)
		}
	}
	tl, ok := ln.(*net.TCPListener)
	if !ok {
		return fmt.Errorf("prefork: listener is %T, want *net.TCPListener", ln)
	}
	f, err := inheritable(tl)
	if err != nil {
		ln.Close()
		return fmt.Errorf("listener file descriptor: %w", err)
	}
	m.ln, m.lnFile, m.addr = ln, f, ln.Addr()
	return nil
}

// inheritable returns a duplicate of the listening socket for ExtraFiles
// that os/exec will not switch to blocking mode. O_NONBLOCK belongs to the
// open file description, which the master and every worker share; os.File.Fd
// (called by os/exec for ExtraFiles) makes a File created non-blocking
// blocking again, which would leave the workers' accept calls blocked in
// the kernel, where closing the listener cannot interrupt them (a draining
// worker would hang until a new connection arrived). A File created while
// the descriptor is blocking is never switched, so create it in that state
// and then restore non-blocking mode, before any worker exists.
func inheritable(tl *net.TCPListener) (*os.File, error) {
	sc, err := tl.SyscallConn()
	if err != nil {
		return nil, err
	}
	dup := -1
	var derr error
	if err := sc.Control(func(fd uintptr) { dup, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		return nil, err
	}
	if derr != nil {
		return nil, fmt.Errorf("dup: %w", derr)
	}
	if err := syscall.SetNonblock(dup, false); err != nil {
		syscall.Close(dup)
		return nil, err
	}
	f := os.NewFile(uintptr(dup), "prefork-listener")
	if err := syscall.SetNonblock(dup, true); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// BoundAddr returns the address workers serve on; nil before Listen.
func (m *Master) BoundAddr() net.Addr { return m.addr }

func (m *Master) setDefaults() error {
	if m.Workers < 1 {
		m.Workers = 1
	}
	if m.GracefulTimeout <= 0 {
		m.GracefulTimeout = DefaultGracefulTimeout
	}
	if m.WorkerTimeout <= 0 {
		m.WorkerTimeout = DefaultWorkerTimeout
	}
	if m.MaxCrashes <= 0 {
		m.MaxCrashes = DefaultMaxCrashes
	}
	if m.MinUptime <= 0 {
		m.MinUptime = DefaultMinUptime
	}
	if m.Backoff <= 0 {
		m.Backoff = DefaultBackoff
	}
	if m.MaxBackoff <= 0 {
		m.MaxBackoff = DefaultMaxBackoff
	}
	if m.Path == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("find own executable to start workers: %w", err)
		}
		m.Path = exe
	}
	if m.Name == "" {
		m.Name = filepath.Base(m.Path)
	}
	if m.Stdout == nil {
		m.Stdout = os.Stdout
	}
	if m.Stderr == nil {
		m.Stderr = os.Stderr
	}
	m.log = m.Logger
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	// Heartbeats every tenth of the timeout, between 50 ms and 500 ms: often
	// enough for fresh /-/workers.json counters, rare enough to cost nothing.
	m.heartbeat = min(max(m.WorkerTimeout/10, 50*time.Millisecond), 500*time.Millisecond)
	return nil
}

// Run starts the workers and supervises them until ctx is cancelled (a
// graceful stop: workers finish their requests within GracefulTimeout; Run
// then returns nil) or until a crash loop exceeds MaxCrashes (Run stops the
// other workers and returns an error that quotes the worker's last output).
// Run handles SIGHUP (rolling reload), SIGTTIN and SIGTTOU (one worker more
// or fewer) itself; the caller maps SIGTERM/SIGINT to ctx.
func (m *Master) Run(ctx context.Context) error {
	if err := m.setDefaults(); err != nil {
		return err
	}
	if err := m.Listen(); err != nil {
		return err
	}
	defer m.closeListener()
	m.out = &syncWriter{w: m.Stdout}
	m.errw = &syncWriter{w: m.Stderr}
	m.target = m.Workers
	m.started = time.Now()
	m.events = make(chan event, 64)
	m.done = make(chan struct{})
	m.slotRest = map[int]int{}
	m.restartsBy = map[int]map[string]int{}
	m.missedBy = map[int]int{}
	defer close(m.done)

	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTTIN, syscall.SIGTTOU)
	defer signal.Stop(sigs)
	tick := time.NewTicker(tickInterval)
	defer tick.Stop()

	m.log.Info("master started", "pid", os.Getpid(), "addr", m.addr.String(), "workers", m.target,
		"reuse_port", m.ReusePort, "binary", m.Path)
	var runErr error
	ctxDone := ctx.Done()
	for {
		if !m.stopping {
			m.reconcile()
		} else if len(m.procs) == 0 {
			break
		}
		select {
		case <-ctxDone:
			ctxDone = nil
			m.log.Info("stopping gracefully", "workers", len(m.procs), "graceful_timeout", m.GracefulTimeout)
			m.shutdown()
		case s := <-sigs:
			m.handleSignal(s)
		case ev := <-m.events:
			if err := m.handleEvent(ev); err != nil && runErr == nil {
				runErr = err
				m.shutdown()
			}
		case <-tick.C:
			m.checkTimers()
		}
	}
	if runErr == nil {
		m.log.Info("master stopped")
	}
	return runErr
}

func (m *Master) closeListener() {
	// Closing twice only reports "already closed", which is ignored.
	if m.ln != nil {
		_ = m.ln.Close()
	}
	if m.lnFile != nil {
		_ = m.lnFile.Close()
	}
	if m.reserved != nil {
		_ = m.reserved.Close()
	}
}

// reconcile starts a worker for every slot that has none (respecting the
// crash backoff), stops workers above the target count and advances the
// rolling replacement.
func (m *Master) reconcile() {
	now := time.Now()
	for slot := 1; slot <= m.target; slot++ {
		covered := slices.ContainsFunc(m.procs, func(p *proc) bool { return p.slot == slot && !p.stopping })
		if covered || now.Before(m.nextSpawn) {
			continue
		}
		if _, err := m.spawn(slot, nil); err != nil {
			m.failures++
			m.lastFail = now
			m.nextSpawn = now.Add(m.backoff(m.failures))
			m.log.Error("cannot start worker", "worker", slot, "err", err)
		}
	}
	for _, p := range m.procs {
		if p.slot > m.target && !p.stopping {
			m.log.Info("stopping worker above target count", "worker", p.slot, "pid", p.pid)
			m.stop(p)
		}
	}
	for m.replacing == nil && len(m.queue) > 0 && !now.Before(m.holdRepl) {
		old := m.queue[0]
		m.queue = m.queue[1:]
		old.queued = false
		if old.stopping || old.slot > m.target || !slices.Contains(m.procs, old) {
			continue
		}
		p, err := m.spawn(old.slot, old)
		if err != nil {
			m.log.Error("rolling replacement aborted: cannot start worker; old workers keep serving",
				"worker", old.slot, "err", err)
			m.abortReplacement(now)
			return
		}
		m.replacing = p
	}
}

func (m *Master) abortReplacement(now time.Time) {
	for _, q := range m.queue {
		q.queued = false
	}
	m.queue = nil
	m.replacing = nil
	m.replFails++
	m.holdRepl = now.Add(m.backoff(m.replFails))
}

func (m *Master) backoff(n int) time.Duration {
	d := m.Backoff
	for i := 1; i < n && d < m.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, m.MaxBackoff)
}

// spawn starts a worker process for slot; old, if set, is the worker it
// replaces once the new one is ready.
func (m *Master) spawn(slot int, old *proc) (*proc, error) {
	pair, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("control socketpair: %w", err)
	}
	parent := os.NewFile(uintptr(pair[0]), "prefork-control")
	child := os.NewFile(uintptr(pair[1]), "prefork-control-child")
	defer child.Close() // the worker has its copy once started
	ctrl, err := net.FileConn(parent)
	parent.Close()
	if err != nil {
		return nil, fmt.Errorf("control connection: %w", err)
	}

	var maxReq uint64
	if m.MaxRequests > 0 {
		maxReq = uint64(m.MaxRequests)
		if m.MaxRequestsJitter > 0 {
			maxReq += uint64(rand.IntN(m.MaxRequestsJitter + 1))
		}
	}
	env := m.Env
	if env == nil {
		env = os.Environ()
	}
	env = slices.DeleteFunc(slices.Clone(env), func(kv string) bool { return strings.HasPrefix(kv, envPrefix) })
	env = append(env,
		fmt.Sprintf("%s=%d", envWorker, slot),
		fmt.Sprintf("%s=%s", envHeartbeat, m.heartbeat),
		fmt.Sprintf("%s=%s", envGraceful, m.GracefulTimeout),
		fmt.Sprintf("%s=%d", envMaxRequests, maxReq),
	)
	extra := []*os.File{child}
	if m.ReusePort {
		env = append(env, fmt.Sprintf("%s=%s", envReuseAddr, m.addr))
	} else {
		extra = append(extra, m.lnFile)
	}
	p := &proc{slot: slot, maxReq: maxReq, replaces: old, out: &tail{}, ctrl: ctrl}
	prefix := fmt.Sprintf("[worker %d] ", slot)
	p.stdout = &lineWriter{prefix: prefix, dst: m.out, tail: p.out}
	p.stderr = &lineWriter{prefix: prefix, dst: m.errw, tail: p.out}
	cmd := &exec.Cmd{
		Path:       m.Path,
		Args:       append([]string{fmt.Sprintf("%s worker %d", m.Name, slot)}, m.Args...),
		Env:        env,
		ExtraFiles: extra,
		Stdout:     p.stdout,
		Stderr:     p.stderr,
		WaitDelay:  time.Second,
		// Own process group: a terminal's Ctrl-C reaches only the master,
		// which then stops the workers in order. Pdeathsig stops a worker
		// whose master died without doing so.
		SysProcAttr: &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM},
	}
	if f, ok := m.Stdout.(*os.File); ok && m.RawStdout {
		cmd.Stdout = f
	}
	if err := cmd.Start(); err != nil {
		ctrl.Close()
		return nil, fmt.Errorf("start %s: %w", m.Path, err)
	}
	p.cmd, p.pid, p.started, p.beatAt = cmd, cmd.Process.Pid, time.Now(), m.progress
	m.procs = append(m.procs, p)
	m.log.Info("worker started", "worker", slot, "pid", p.pid, "replaces", pidOf(old))
	go m.readControl(p)
	go func() {
		err := cmd.Wait()
		select {
		case m.events <- event{p: p, exit: true, err: err}:
		case <-m.done:
		}
	}()
	return p, nil
}

func pidOf(p *proc) int {
	if p == nil {
		return 0
	}
	return p.pid
}

// readControl forwards a worker's control messages to the loop until EOF.
func (m *Master) readControl(p *proc) {
	sc := bufio.NewScanner(p.ctrl)
	sc.Buffer(make([]byte, 64<<10), 16<<20) // a worker's metrics run to tens of KiB
	for sc.Scan() {
		var msg message
		if err := json.Unmarshal(sc.Bytes(), &msg); err != nil {
			continue // a garbled line is dropped; heartbeats will follow
		}
		select {
		case m.events <- event{p: p, msg: msg}:
		case <-m.done:
			return
		}
	}
}

// stop asks a worker to drain and exit (SIGTERM); its exit is expected.
func (m *Master) stop(p *proc) {
	if p.stopping {
		return
	}
	p.stopping, p.stopAt = true, time.Now()
	if m.replacing == p {
		m.replacing = nil
	}
	if err := syscall.Kill(p.pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		m.log.Warn("cannot signal worker", "worker", p.slot, "pid", p.pid, "err", err)
	}
}

func (m *Master) kill(p *proc) {
	p.killed = true
	if err := syscall.Kill(p.pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		m.log.Warn("cannot kill worker", "worker", p.slot, "pid", p.pid, "err", err)
	}
}

// shutdown starts the graceful stop: no more starts or replacements, the
// master's copy of the socket is closed, every worker is asked to drain.
func (m *Master) shutdown() {
	if m.stopping {
		return
	}
	m.stopping = true
	m.shutdownAt = time.Now()
	m.queue, m.replacing = nil, nil
	m.closeListener()
	for _, p := range m.procs {
		m.stop(p)
	}
}

func (m *Master) handleSignal(s os.Signal) {
	if m.stopping {
		return
	}
	switch s {
	case syscall.SIGHUP:
		m.reloads++
		m.holdRepl, m.replFails = time.Time{}, 0
		n := 0
		for _, p := range m.procs {
			if !p.stopping && !p.queued && p != m.replacing {
				p.queued, p.cause = true, causeReload
				m.queue = append(m.queue, p)
				n++
			}
		}
		m.log.Info("reloading: replacing workers one at a time", "workers", n, "binary", m.Path)
	case syscall.SIGTTIN:
		m.target++
		m.log.Info("adding a worker", "workers", m.target)
	case syscall.SIGTTOU:
		if m.target <= 1 {
			m.log.Warn("not removing the last worker", "workers", m.target)
			return
		}
		m.target--
		m.log.Info("removing a worker", "workers", m.target)
	}
}

func (m *Master) handleEvent(ev event) error {
	p, now := ev.p, time.Now()
	if ev.exit {
		return m.handleExit(p, ev.err, now)
	}
	switch ev.msg.Type {
	case msgReady:
		p.readyAt, p.lastBeat, p.beatAt = now, now, m.progress
		if m.hbKillPending && p.slot == m.hbKillSlot {
			m.hbKillPending = false // replaced: the next kill may come
		}
		m.log.Info("worker ready", "worker", p.slot, "pid", p.pid, "startup", now.Sub(p.started).Round(time.Millisecond))
		if old := p.replaces; old != nil {
			p.replaces = nil
			if m.replacing == p {
				m.replacing = nil
				m.replFails = 0
			}
			if slices.Contains(m.procs, old) {
				m.stop(old)
				m.countRestart(old.slot, old.cause)
			}
		}
	case msgBeat:
		p.lastBeat, p.beatAt, p.served, p.inflight = now, m.progress, ev.msg.Served, ev.msg.InFlight
		p.missed = 0
		if p.maxReq > 0 && p.served >= p.maxReq && !p.stopping && !p.queued && p != m.replacing && !m.stopping {
			m.log.Info("worker reached max requests; replacing it", "worker", p.slot, "pid", p.pid, "requests", p.served)
			p.queued, p.cause = true, causeMaxRequests
			m.queue = append(m.queue, p)
		}
	case msgStatus:
		st := m.status()
		b, err := json.Marshal(message{Type: msgStatus, ID: ev.msg.ID, Status: &st})
		if err != nil {
			return nil
		}
		// A worker that does not read its replies must not stall the loop.
		_ = p.ctrl.SetWriteDeadline(now.Add(time.Second))
		if _, err := p.ctrl.Write(append(b, '\n')); err != nil {
			m.log.Debug("cannot answer status request", "worker", p.slot, "err", err)
		}
	case msgGatherAll:
		m.startGather(p, ev.msg.ID, now)
	case msgGathered:
		m.gathered(p, ev.msg, now)
	}
	return nil
}

// Causes of a worker's replacement (Status.RestartsByCause).
const (
	causeExit        = "exit"
	causeHeartbeat   = "heartbeat"
	causeReload      = "reload"
	causeMaxRequests = "max_requests"
)

func (m *Master) countRestart(slot int, cause string) {
	if m.restartsBy[slot] == nil {
		m.restartsBy[slot] = map[string]int{}
	}
	m.restartsBy[slot][cause]++
}

func (m *Master) handleExit(p *proc, err error, now time.Time) error {
	p.stdout.flush()
	p.stderr.flush()
	p.ctrl.Close()
	m.procs = slices.DeleteFunc(m.procs, func(q *proc) bool { return q == p })
	m.queue = slices.DeleteFunc(m.queue, func(q *proc) bool { return q == p })
	m.expireGathers(now, p)
	reason := exitReason(err)
	if p.stopping {
		m.log.Info("worker exited", "worker", p.slot, "pid", p.pid, "status", reason)
		return nil
	}
	if m.replacing == p {
		m.replacing = nil
		if old := p.replaces; old != nil && slices.Contains(m.procs, old) {
			m.log.Error("rolling replacement aborted: new worker failed before it was ready; old workers keep serving",
				"worker", p.slot, "pid", p.pid, "status", reason, "output", p.out.String())
			m.abortReplacement(now)
			return nil
		}
	}
	m.restarts++
	m.slotRest[p.slot]++
	if p.killed {
		m.countRestart(p.slot, causeHeartbeat)
	} else {
		m.countRestart(p.slot, causeExit)
	}
	if p.readyAt.IsZero() || now.Sub(p.readyAt) < m.MinUptime {
		m.failures++
		m.lastFail = now
		if m.failures > m.MaxCrashes {
			return fmt.Errorf("worker %d (pid %d) failed to start %d times in a row (last: %s); giving up. Its last output:\n%s",
				p.slot, p.pid, m.failures, reason, p.out.String())
		}
		delay := m.backoff(m.failures)
		m.nextSpawn = now.Add(delay)
		m.log.Warn("worker failed during start-up; restarting after backoff", "worker", p.slot, "pid", p.pid,
			"status", reason, "failures", m.failures, "backoff", delay)
		return nil
	}
	m.log.Warn("worker died; restarting it", "worker", p.slot, "pid", p.pid, "status", reason,
		"uptime", now.Sub(p.started).Round(time.Millisecond))
	return nil
}

func exitReason(err error) string {
	if err == nil {
		return "exit status 0"
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.Error()
	}
	return err.Error()
}

// maxStep is the most the master's progress clock advances in one tick:
// a longer gap between ticks means the master itself did not run.
func (m *Master) maxStep() time.Duration { return max(4*tickInterval, m.heartbeat) }

// advance moves the master's progress clock to now. After a stall (a gap
// longer than maxStep) every worker gets a fresh grace period: their
// heartbeats are waiting unread in the control sockets.
func (m *Master) advance(now time.Time) {
	if m.lastTick.IsZero() {
		m.lastTick = now
		return
	}
	step := now.Sub(m.lastTick)
	m.lastTick = now
	if step <= m.maxStep() {
		m.progress += step
		return
	}
	m.progress += m.maxStep()
	m.log.Warn("the master itself did not run for a while; giving every worker a fresh heartbeat grace period",
		"stalled_for", step.Round(time.Millisecond), "workers", len(m.procs))
	for _, p := range m.procs {
		p.beatAt = m.progress
	}
}

func (m *Master) checkTimers() {
	now := time.Now()
	m.advance(now)
	var silent *proc // the longest-silent worker past WorkerTimeout
	for _, p := range m.procs {
		switch {
		case p.killed:
		case p.stopping:
			if now.Sub(p.stopAt) > m.GracefulTimeout+killGrace {
				m.log.Warn("worker did not stop within the graceful timeout; killing it", "worker", p.slot, "pid", p.pid)
				m.kill(p)
			}
		default:
			silence := m.progress - p.beatAt
			if !p.lastBeat.IsZero() {
				if n := int(silence/m.heartbeat) - 1; n > p.missed {
					m.missedBy[p.slot] += n - p.missed
					p.missed = n
				}
			}
			if silence > m.WorkerTimeout && (silent == nil || p.beatAt < silent.beatAt) {
				silent = p
			}
		}
	}
	// One worker at a time: the next only when the last one killed for
	// silence was replaced (its replacement may itself be killed if it
	// never gets ready), or after two more WorkerTimeouts. If all went
	// silent at once the cause is likelier the machine than the workers.
	if silent != nil && (!m.hbKillPending || silent.slot == m.hbKillSlot || m.progress-m.hbKillAt > 2*m.WorkerTimeout) {
		last := silent.lastBeat
		if last.IsZero() {
			last = silent.started
		}
		m.log.Error("worker missed its heartbeat; killing and replacing it", "worker", silent.slot, "pid", silent.pid,
			"silent_for", (m.progress - silent.beatAt).Round(time.Millisecond), "last_heartbeat", last,
			"worker_timeout", m.WorkerTimeout)
		m.kill(silent)
		m.hbKillPending, m.hbKillSlot, m.hbKillAt = true, silent.slot, m.progress
	}
	m.expireGathers(now, nil)
	if m.failures > 0 && slices.ContainsFunc(m.procs, func(p *proc) bool {
		return !p.readyAt.IsZero() && p.readyAt.After(m.lastFail) && now.Sub(p.readyAt) >= m.MinUptime
	}) {
		m.failures = 0
	}
}

// status builds the Status served at /-/workers.json.
func (m *Master) status() Status {
	st := Status{
		MasterPID:       os.Getpid(),
		Started:         m.started,
		TargetWorkers:   m.target,
		ReusePort:       m.ReusePort,
		Restarts:        m.restarts,
		Reloads:         m.reloads,
		Workers:         make([]WorkerStatus, 0, len(m.procs)),
		RestartsByCause: map[string]int{},
	}
	for _, by := range m.restartsBy {
		for cause, n := range by {
			st.RestartsByCause[cause] += n
		}
	}
	for _, n := range m.missedBy {
		st.HeartbeatsMissed += n
	}
	for _, p := range m.procs {
		state := "idle"
		switch {
		case p.stopping:
			state = "draining"
		case p.readyAt.IsZero():
			state = "starting"
		case p.inflight > 0:
			state = "busy"
		}
		st.Workers = append(st.Workers, WorkerStatus{
			ID: p.slot, PID: p.pid, Started: p.started, State: state,
			Requests: p.served, InFlight: p.inflight, Restarts: m.slotRest[p.slot],
			MaxRequests: p.maxReq, LastHeartbeat: p.lastBeat,
			RestartsByCause: maps.Clone(m.restartsBy[p.slot]), HeartbeatsMissed: m.missedBy[p.slot],
		})
	}
	slices.SortFunc(st.Workers, func(a, b WorkerStatus) int {
		if a.ID != b.ID {
			return a.ID - b.ID
		}
		return a.Started.Compare(b.Started)
	})
	return st
}
