package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Timeouts of a target's life cycle.
const (
	// readyTimeout bounds the wait for a started target to answer.
	readyTimeout = 20 * time.Second
	// stopTimeout is how long a target may take to exit after SIGTERM
	// before it (and its process group) is killed. Short: the run's data
	// is already collected and the database copy is thrown away, and a
	// server draining requests stuck behind a 20 s busy timeout must not
	// stretch the study.
	stopTimeout = time.Second
	// logTail is how much of a target's output a failure message quotes.
	logTail = 600
)

// server is a started target process.
type server struct {
	cmd     *exec.Cmd
	pid     int
	baseURL string
	logPath string
	done    chan struct{} // closed when the process has exited
	waitErr error
}

// errExited is returned (wrapped) when a target exits before it is ready.
var errExited = errors.New("exited before it was ready")

// ErrCommandNotFound is returned (wrapped) when a target's program is not
// installed; its cells are skipped rather than failed.
var ErrCommandNotFound = errors.New("bench: command not found")

// lodeArgs returns the `lode serve` arguments for a cell: only the settings
// the cell sets are passed, so unset dimensions keep the server's defaults.
func lodeArgs(c Cell, db, config string, port int) []string {
	args := []string{"serve", db, "--host", "127.0.0.1", "--port", strconv.Itoa(port)}
	if config != "" {
		args = append(args, "--config", config)
	}
	add := func(flag, v string) {
		if v != "" {
			args = append(args, flag, v)
		}
	}
	add("--journal-mode", c.JournalMode)
	add("--synchronous", c.Synchronous)
	add("--busy-timeout", c.BusyTimeout)
	add("--txlock", c.TxLock)
	add("--writer", c.Writer)
	add("--workers", c.Workers)
	return args
}

// cellValues are the per-run placeholder values of a cell: the database
// file, the run's folder, the port and the cell's settings ("" when unset).
func cellValues(c Cell, db, dir string, port int) map[string]string {
	ms := ""
	if bt := c.BusyTimeoutDuration(); bt >= 0 {
		ms = strconv.FormatInt(bt.Milliseconds(), 10)
	}
	return map[string]string{"db": db, "dir": dir, "port": strconv.Itoa(port), "host": "127.0.0.1",
		"workers": c.Workers, "journal_mode": c.JournalMode, "synchronous": c.Synchronous,
		"busy_timeout": c.BusyTimeout, "busy_timeout_ms": ms, "txlock": c.TxLock, "writer": c.Writer}
}

// targetEnv is lode's environment plus the target's variables, expanded.
func targetEnv(t *Target, vals map[string]string) []string {
	env := os.Environ()
	keys := make([]string, 0, len(t.Env))
	for k := range t.Env {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		env = append(env, k+"="+expand(t.Env[k], vals))
	}
	return env
}

// mentions reports whether any of the target's templates uses {name}.
func (t *Target) mentions(name string) bool {
	if t.uses(name) || strings.Contains(t.Check, "{"+name) || strings.Contains(t.Dir, "{"+name) {
		return true
	}
	return false
}

// lookTarget checks that an external target's program exists. A program
// given by a placeholder path (e.g. {examples}/run.sh) is looked up after
// the study's placeholders are filled in.
func lookTarget(t *Target, study map[string]string) error {
	if len(t.Argv) == 0 {
		return fmt.Errorf("target %q: %w", t.Name, errEmptyCommand)
	}
	prog := expand(t.Argv[0], study)
	if _, err := exec.LookPath(prog); err != nil {
		hint := fmt.Sprintf(" (install it, or fix the command %q)", t.Command)
		if t.Install != "" {
			hint = " (install: " + t.Install + ")"
		}
		return fmt.Errorf("%w: target %q needs %q, which is not installed or not in PATH%s", ErrCommandNotFound, t.Name, prog, hint)
	}
	return nil
}

// probeTarget runs the target's check command once before the study; its
// failure (with its output) means the target cannot run here.
func probeTarget(ctx context.Context, t *Target, study map[string]string, logPath string) error {
	if len(t.CheckArgv) == 0 {
		return nil
	}
	argv := expandArgs(t.CheckArgv, study)
	dir := expand(t.Dir, study)
	if strings.Contains(dir, "{") {
		dir = "" // depends on the run; the check runs where lode runs
	}
	if err := runCommand(ctx, argv, targetEnv(t, study), dir, logPath, checkTimeout); err != nil {
		msg := fmt.Sprintf("target %q: check `%s` failed: %v", t.Name, t.Check, err)
		if t.Install != "" {
			msg += " (install: " + t.Install + ")"
		}
		return errors.New(msg)
	}
	return nil
}

// Time limits of a target's commands.
const (
	checkTimeout = 30 * time.Second
	setupTimeout = 2 * time.Minute
)

// runCommand runs argv to completion in its own process group with output
// to logPath, killing the group when ctx ends or timeout passes; an error
// quotes the end of the output.
func runCommand(ctx context.Context, argv, env []string, dir, logPath string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	logf, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir, cmd.Env = dir, env
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	err = cmd.Run()
	if err == nil {
		return nil
	}
	if errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%w: %s: %v", ErrCommandNotFound, argv[0], err)
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		err = fmt.Errorf("did not finish within %s", timeout)
	}
	return fmt.Errorf("%v: %s", err, tailOf(logPath))
}

// freePort asks the kernel for a free loopback port. Another process could
// take it before the target binds it; the target then fails to start and
// the run reports that, so the race costs a retry, not a wrong number.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// startServer starts argv in its own process group with output to logPath
// and waits until readyPath answers 2xx or 3xx.
func startServer(ctx context.Context, argv, env []string, dir string, port int, readyPath, logPath string) (*server, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("start target: %w", err)
	}
	defer logf.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir, cmd.Env = dir, env
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group, so stopping it also stops workers or a
	// shell's children.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s: %v", ErrCommandNotFound, argv[0], err)
		}
		return nil, fmt.Errorf("start %s: %w", argv[0], err)
	}
	s := &server{cmd: cmd, pid: cmd.Process.Pid, baseURL: "http://127.0.0.1:" + strconv.Itoa(port), logPath: logPath, done: make(chan struct{})}
	go func() {
		s.waitErr = cmd.Wait()
		close(s.done)
	}()
	if err := s.waitReady(ctx, readyPath); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

func (s *server) waitReady(ctx context.Context, path string) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(readyTimeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		req, _ := http.NewRequestWithContext(ctx, "GET", s.baseURL+path, nil)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode < 400 {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.done:
			return fmt.Errorf("%w (%v): %s", errExited, s.waitErr, s.tail())
		case <-tick.C:
		}
		if time.Now().After(deadline) {
			msg := "no answer"
			if err != nil {
				msg = err.Error()
			} else {
				msg = "status " + strconv.Itoa(resp.StatusCode)
			}
			return fmt.Errorf("not ready after %s (GET %s: %s): %s", readyTimeout, path, msg, s.tail())
		}
	}
}

// tail returns the end of the target's output, on one line.
func (s *server) tail() string { return tailOf(s.logPath) }

// tailOf returns the end of a log file, on one line.
func tailOf(path string) string {
	b, _ := os.ReadFile(path)
	t := strings.Join(strings.Fields(string(b)), " ")
	if len(t) > logTail {
		t = "…" + t[len(t)-logTail:]
	}
	if t == "" {
		return "(no output)"
	}
	return t
}

// stop sends SIGTERM to the process group, then SIGKILL after stopTimeout.
func (s *server) stop() {
	select {
	case <-s.done:
		return
	default:
	}
	_ = syscall.Kill(-s.pid, syscall.SIGTERM)
	t := time.NewTimer(stopTimeout)
	defer t.Stop()
	select {
	case <-s.done:
	case <-t.C:
		_ = syscall.Kill(-s.pid, syscall.SIGKILL)
		<-s.done
	}
	// Children that ignored SIGTERM while the leader exited.
	_ = syscall.Kill(-s.pid, syscall.SIGKILL)
}
