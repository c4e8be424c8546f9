package replica

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Sidecar runs one child process (the replicator or the follower) next to
// lode serve and restarts it when it exits, with a backoff of 100 ms
// doubling to 10 s (reset once a child has run for a minute). Stop ends it
// with SIGTERM, then SIGKILL after StopTimeout. The child runs in its own
// process group, so a terminal's Ctrl-C reaches only lode serve, which
// stops the child after its workers have drained (the replicator's last
// sync then includes the last writes); if lode serve dies without stopping
// it, the child gets SIGTERM from the kernel (Linux parent-death signal).
// A Sidecar is not reusable after Stop.
type Sidecar struct {
	// Path is the executable and Args its arguments (argv[1:]).
	Path string
	Args []string
	// Name prefixes the child's output lines ("[replicator] ...").
	Name string
	// Logger receives the supervisor's own lines; nil discards.
	Logger *slog.Logger
	// Output receives the child's stdout and stderr, line by line
	// (os.Stderr when nil).
	Output io.Writer
	// StopTimeout bounds the child's graceful stop (15 s when zero).
	StopTimeout time.Duration

	mu       sync.Mutex
	cmd      *exec.Cmd
	restarts int
	tail     []string
	exits    chan error // the first child's exit, for WaitReady
	stop     chan struct{}
	done     chan struct{}
}

// Start starts the child and its supervisor.
func (s *Sidecar) Start() error {
	if s.Output == nil {
		s.Output = os.Stderr
	}
	if s.StopTimeout <= 0 {
		s.StopTimeout = 15 * time.Second
	}
	s.Logger = logOrDiscard(s.Logger)
	s.exits = make(chan error, 1)
	s.stop = make(chan struct{})
	s.done = make(chan struct{})
	cmd, err := s.spawn()
	if err != nil {
		return err
	}
	go s.supervise(cmd)
	return nil
}

func (s *Sidecar) spawn() (*exec.Cmd, error) {
	s.mu.Lock()
	restarts := s.restarts
	s.mu.Unlock()
	cmd := exec.Command(s.Path, s.Args...)
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d", envRestarts, restarts))
	out := &prefixWriter{s: s, prefix: "[" + s.Name + "] "}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.WaitDelay = time.Second
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", s.Name, err)
	}
	s.mu.Lock()
	s.cmd = cmd
	s.mu.Unlock()
	s.Logger.Info(s.Name+" started", "pid", cmd.Process.Pid, "restarts", restarts)
	return cmd, nil
}

func (s *Sidecar) supervise(cmd *exec.Cmd) {
	defer close(s.done)
	backoff := 100 * time.Millisecond
	first := true
	for {
		started := time.Now()
		err := cmd.Wait()
		if first {
			s.exits <- exitError(err)
			first = false
		}
		select {
		case <-s.stop:
			return
		default:
		}
		if time.Since(started) > time.Minute {
			backoff = 100 * time.Millisecond
		}
		s.Logger.Warn(s.Name+" exited; restarting", "pid", cmd.Process.Pid, "err", exitError(err), "after", backoff)
		select {
		case <-s.stop:
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 10*time.Second)
		s.mu.Lock()
		s.restarts++
		s.mu.Unlock()
		next, err := s.spawn()
		for err != nil {
			s.Logger.Error("cannot restart "+s.Name, "err", err)
			select {
			case <-s.stop:
				return
			case <-time.After(backoff):
			}
			next, err = s.spawn()
		}
		cmd = next
	}
}

func exitError(err error) error {
	if err == nil {
		return errors.New("exited with status 0")
	}
	return err
}

// PID returns the current child's process id.
func (s *Sidecar) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil || s.cmd.Process == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// WaitReady polls ready every 20 ms until it returns true. It fails if the
// first child exits before that (with its last output lines, which say
// why), when timeout passes, or when ctx ends.
func (s *Sidecar) WaitReady(ctx context.Context, timeout time.Duration, ready func() bool) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if ready() {
			return nil
		}
		select {
		case err := <-s.exits:
			return fmt.Errorf("%s %w before it was ready; its last output:\n%s", s.Name, err, s.Tail())
		case <-deadline.C:
			return fmt.Errorf("%s not ready after %s; its last output:\n%s", s.Name, timeout, s.Tail())
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// Stop ends the child (SIGTERM, SIGKILL after StopTimeout) and the
// supervisor, and waits for both.
func (s *Sidecar) Stop() {
	if s.stop == nil {
		return
	}
	select {
	case <-s.stop:
		<-s.done
		return
	default:
	}
	close(s.stop)
	s.mu.Lock()
	cmd := s.cmd
	s.mu.Unlock()
	if cmd != nil && cmd.Process != nil {
		_ = cmd.Process.Signal(syscall.SIGTERM)
	}
	select {
	case <-s.done:
	case <-time.After(s.StopTimeout):
		s.Logger.Warn(s.Name+" did not stop in time; killing it", "timeout", s.StopTimeout)
		if cmd != nil && cmd.Process != nil {
			_ = cmd.Process.Kill()
		}
		<-s.done
	}
}

// Tail returns the child's last output lines, indented.
func (s *Sidecar) Tail() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.tail) == 0 {
		return "    (no output)"
	}
	return "    " + strings.Join(s.tail, "\n    ")
}

// prefixWriter copies a child's output to the sidecar's Output line by
// line with a prefix, keeping the last lines for error messages.
type prefixWriter struct {
	s      *Sidecar
	prefix string
	mu     sync.Mutex
	buf    []byte
}

func (w *prefixWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			if len(w.buf) > 64<<10 {
				i = len(w.buf) - 1
			} else {
				break
			}
		}
		line := string(w.buf[:i])
		w.buf = w.buf[i+1:]
		_, _ = io.WriteString(w.s.Output, w.prefix+line+"\n")
		w.s.mu.Lock()
		w.s.tail = append(w.s.tail, line)
		if len(w.s.tail) > 10 {
			w.s.tail = w.s.tail[len(w.s.tail)-10:]
		}
		w.s.mu.Unlock()
	}
	return len(p), nil
}
