package bench

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// A throwaway PostgreSQL server for the targets that need one (services:
// [postgres]). It is started once per study, on first use, from Debian's
// postgresql binaries: initdb makes a cluster in the study's work directory
// (the same disk as the SQLite copies, so both engines pay the same fsync),
// postgres listens on a free loopback port with Unix sockets off and trust
// authentication (only loopback can connect, and the cluster lives for one
// study), and every run gets a fresh database (createdb), as every SQLite
// run gets a fresh file. The server is stopped and its files removed when
// the study ends, also when it is interrupted.
//
// PostgreSQL refuses to run as root. When lode runs as root (as CI does),
// initdb and postgres run as an unprivileged system user — the "postgres"
// user Debian's package creates, else "nobody" — by setting the child's
// credentials (no sudo, su or runuser needed), and the data directory is
// handed to that user. The work directory must then be reachable by it;
// lode opens its own work directory for traversal (o+x) and reports which
// directory is not reachable otherwise.

// PostgresInstall is the install hint for the postgres service.
const PostgresInstall = "apt-get install postgresql"

// PostgresUser is the superuser name of the throwaway cluster.
const PostgresUser = "lode"

// Time limits of the postgres service.
const (
	pgCommandTimeout = 60 * time.Second // initdb, createdb, dropdb
	pgReadyTimeout   = 30 * time.Second
	pgStopTimeout    = 10 * time.Second // fast shutdown, then immediate, then SIGKILL
)

// pgBinaries are the programs the service needs from one PostgreSQL bin
// directory.
var pgBinaries = []string{"initdb", "postgres", "pg_isready", "createdb", "dropdb"}

// findPostgres returns the directory holding PostgreSQL's server programs:
// the one of initdb in PATH, else the newest /usr/lib/postgresql/N/bin
// (Debian keeps them off PATH).
func findPostgres() (string, error) {
	var dirs []string
	if p, err := exec.LookPath("initdb"); err == nil {
		dirs = append(dirs, filepath.Dir(p))
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(matches, func(a, b string) int { return pgMajor(b) - pgMajor(a) })
	dirs = append(dirs, matches...)
	for _, d := range dirs {
		ok := true
		for _, b := range pgBinaries {
			if st, err := os.Stat(filepath.Join(d, b)); err != nil || st.IsDir() {
				ok = false
				break
			}
		}
		if ok {
			return d, nil
		}
	}
	return "", fmt.Errorf("PostgreSQL's server programs (initdb, postgres) were not found in PATH or /usr/lib/postgresql/*/bin; install them: %s", PostgresInstall)
}

func pgMajor(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

// pgService is a running throwaway PostgreSQL server.
type pgService struct {
	bin     string
	dataDir string
	logPath string
	port    int
	cred    *syscall.Credential // nil: run as this process's user
	pid     int
	done    chan struct{} // closed when postgres has exited
	waitErr error
	stopReq chan struct{}
}

// pgCredential picks the user PostgreSQL runs as: this process's user,
// or when that is root, the "postgres" system user, else "nobody".
func pgCredential() (*syscall.Credential, string, error) {
	if os.Geteuid() != 0 {
		return nil, "", nil
	}
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
		gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
		if err1 != nil || err2 != nil || uid == 0 {
			continue
		}
		return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}, name, nil
	}
	return nil, "", errors.New("postgres cannot run as root and there is neither a postgres nor a nobody user to run it as: run lode as an ordinary user")
}

// startPostgres makes a cluster under base/postgres and starts it on a free
// loopback port. base must exist; when lode runs as root it is made
// traversable for the unprivileged user (only base itself is changed).
func startPostgres(ctx context.Context, base string) (*pgService, error) {
	bin, err := findPostgres()
	if err != nil {
		return nil, err
	}
	cred, userName, err := pgCredential()
	if err != nil {
		return nil, err
	}
	root := filepath.Join(base, "postgres")
	if err := os.Mkdir(root, 0o700); err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	p := &pgService{bin: bin, dataDir: filepath.Join(root, "data"), logPath: filepath.Join(root, "postgres.log"), cred: cred}
	if cred != nil {
		if err := os.Chown(root, int(cred.Uid), int(cred.Gid)); err != nil {
			return nil, fmt.Errorf("postgres: hand %s to user %s: %w", root, userName, err)
		}
		if st, err := os.Stat(base); err == nil && st.Mode().Perm()&0o011 != 0o011 {
			if err := os.Chmod(base, st.Mode().Perm()|0o011); err != nil {
				return nil, fmt.Errorf("postgres: open %s for traversal by user %s: %w", base, userName, err)
			}
		}
		if dir, err := unreachable(base, cred); err != nil {
			return nil, fmt.Errorf("postgres runs as user %s (lode runs as root), which cannot reach %s (%v): give --workdir a directory that user can reach, e.g. /var/tmp/lode-bench", userName, dir, err)
		}
	}
	if err := p.run(ctx, "initdb", "-D", p.dataDir, "-U", PostgresUser, "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync"); err != nil {
		return nil, err
	}
	// The port may be taken between freePort and postgres binding it:
	// try a few.
	for attempt := 1; ; attempt++ {
		if p.port, err = freePort(); err != nil {
			return nil, fmt.Errorf("postgres: find a free port: %w", err)
		}
		err = p.start(ctx)
		if err == nil || attempt == 3 || ctx.Err() != nil {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	return p, nil
}

// unreachable returns the first directory on the way to dir (dir included)
// that the user cannot search, judged by its mode bits.
func unreachable(dir string, cred *syscall.Credential) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return dir, err
	}
	var chain []string
	for d := abs; ; d = filepath.Dir(d) {
		chain = append(chain, d)
		if d == filepath.Dir(d) {
			break
		}
	}
	slices.Reverse(chain)
	for _, d := range chain {
		st, err := os.Stat(d)
		if err != nil {
			return d, err
		}
		sys, ok := st.Sys().(*syscall.Stat_t)
		if !ok {
			continue
		}
		perm := st.Mode().Perm()
		var x fs.FileMode
		switch {
		case sys.Uid == cred.Uid:
			x = 0o100
		case sys.Gid == cred.Gid:
			x = 0o010
		default:
			x = 0o001
		}
		if perm&x == 0 {
			return d, fmt.Errorf("mode %04o", perm)
		}
	}
	return "", nil
}

// command builds a PostgreSQL program's command line, run as the service's
// user, with output appended to the service log.
func (p *pgService) command(ctx context.Context, prog string, args ...string) (*exec.Cmd, *os.File, error) {
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, nil, fmt.Errorf("postgres: %w", err)
	}
	cmd := exec.CommandContext(ctx, filepath.Join(p.bin, prog), args...)
	cmd.Dir = filepath.Dir(p.dataDir)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), "LC_ALL=C", "PGCONNECT_TIMEOUT=5")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: p.cred}
	return cmd, logf, nil
}

// run runs a short PostgreSQL program to completion, bounded by
// pgCommandTimeout, and returns its output in the error when it fails.
func (p *pgService) run(ctx context.Context, prog string, args ...string) error {
	ctx, cancel := context.WithTimeout(ctx, pgCommandTimeout)
	defer cancel()
	before := p.logSize()
	cmd, logf, err := p.command(ctx, prog, args...)
	if err != nil {
		return err
	}
	defer logf.Close()
	// Kill the whole group if the context ends (WaitDelay bounds the
	// wait for output pipes; there are none, the log is a file).
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return fmt.Errorf("postgres: %s did not finish within %s: %s", prog, pgCommandTimeout, p.logSince(before))
		}
		return fmt.Errorf("postgres: %s: %w: %s", prog, err, p.logSince(before))
	}
	return nil
}

// start starts the server and waits until it accepts connections.
func (p *pgService) start(ctx context.Context) error {
	before := p.logSize()
	p.done, p.stopReq, p.waitErr = make(chan struct{}), make(chan struct{}), nil
	started := make(chan error, 1)
	// The server must not outlive lode even when lode is killed (SIGKILL
	// runs no cleanup): it gets SIGKILL when its parent dies. Linux ties
	// that signal to the thread that forked the child, so the goroutine
	// that starts it keeps its OS thread locked until the server exits.
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		// Not bound to ctx: the server lives until stop.
		cmd, logf, err := p.command(context.Background(), "postgres", "-D", p.dataDir, "-p", strconv.Itoa(p.port),
			"-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=", "-c", "max_connections=200")
		if err != nil {
			started <- err
			close(p.done)
			return
		}
		cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
		err = cmd.Start()
		logf.Close()
		if err != nil {
			started <- fmt.Errorf("postgres: start: %w", err)
			close(p.done)
			return
		}
		p.pid = cmd.Process.Pid
		started <- nil
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	if err := <-started; err != nil {
		return err
	}
	deadline := time.NewTimer(pgReadyTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		isready := exec.CommandContext(ctx, filepath.Join(p.bin, "pg_isready"), "-q", "-h", "127.0.0.1", "-p", strconv.Itoa(p.port), "-U", PostgresUser, "-d", "postgres", "-t", "2")
		isready.WaitDelay = time.Second
		if isready.Run() == nil {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("postgres exited before it was ready (%v): %s", p.waitErr, p.logSince(before))
		case <-ctx.Done():
			p.stop()
			return ctx.Err()
		case <-deadline.C:
			p.stop()
			return fmt.Errorf("postgres not ready after %s: %s", pgReadyTimeout, p.logSince(before))
		case <-tick.C:
		}
	}
}

// hostArgs are the connection arguments of the client programs.
func (p *pgService) hostArgs() []string {
	return []string{"-h", "127.0.0.1", "-p", strconv.Itoa(p.port), "-U", PostgresUser}
}

// createDB creates an empty database for one run.
func (p *pgService) createDB(ctx context.Context, name string) error {
	return p.run(ctx, "createdb", append(p.hostArgs(), name)...)
}

// dropDB drops a run's database (its server has stopped); failures only
// cost disk space until the study ends.
func (p *pgService) dropDB(ctx context.Context, name string) error {
	return p.run(ctx, "dropdb", append(p.hostArgs(), "--if-exists", name)...)
}

// url is the connection URL of database name.
func (p *pgService) url(name string) string {
	u := url.URL{Scheme: "postgresql", User: url.User(PostgresUser), Host: "127.0.0.1:" + strconv.Itoa(p.port), Path: "/" + name}
	return u.String()
}

// placeholders are the {pg_*} values for a run's database.
func (p *pgService) placeholders(db string) map[string]string {
	return map[string]string{"pg_host": "127.0.0.1", "pg_port": strconv.Itoa(p.port), "pg_user": PostgresUser,
		"pg_db": db, "pg_url": p.url(db)}
}

// stop shuts the server down: a fast shutdown (SIGINT: connections are
// cut, the server checkpoints and exits), after pgStopTimeout an immediate
// one (SIGQUIT), then SIGKILL to the process group. It returns when the
// postmaster has exited; backends die with it (same process group). Safe
// to call twice and on a nil service.
func (p *pgService) stop() {
	if p == nil || p.pid == 0 {
		return
	}
	select {
	case <-p.done:
	default:
		_ = syscall.Kill(p.pid, syscall.SIGINT)
		t := time.NewTimer(pgStopTimeout)
		select {
		case <-p.done:
		case <-t.C:
			_ = syscall.Kill(p.pid, syscall.SIGQUIT)
			select {
			case <-p.done:
			case <-time.After(3 * time.Second):
				_ = syscall.Kill(-p.pid, syscall.SIGKILL)
				<-p.done
			}
		}
		t.Stop()
	}
	// Backends that outlived the postmaster (they exit on their own when
	// they notice, but not instantly).
	_ = syscall.Kill(-p.pid, syscall.SIGKILL)
}

// cpu is the CPU time used so far by the server's processes.
func (p *pgService) cpu() map[int]time.Duration {
	if p == nil || p.pid == 0 {
		return nil
	}
	return treeCPU(p.pid)
}

func (p *pgService) logSize() int64 {
	st, err := os.Stat(p.logPath)
	if err != nil {
		return 0
	}
	return st.Size()
}

// logSince returns the service log written after offset, on one line.
func (p *pgService) logSince(offset int64) string {
	b, err := os.ReadFile(p.logPath)
	if err != nil || int64(len(b)) < offset {
		return "(no output)"
	}
	t := strings.Join(strings.Fields(string(b[offset:])), " ")
	if len(t) > logTail {
		t = "…" + t[len(t)-logTail:]
	}
	if t == "" {
		return "(no output)"
	}
	return t
}
