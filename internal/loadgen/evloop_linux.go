package loadgen

import (
	"errors"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The closed model's users run on event loops, like wrk's threads: a
// goroutine owns an epoll instance and drives many keep-alive
// connections, each a small state machine (dial, send, receive, think).
// A goroutine per user, blocked in net.Conn reads, costs per request a
// read that fails with EAGAIN before the response is there, a park and a
// wake-up in Go's scheduler, and a deadline reset; the loop costs one
// write and one read per request and one epoll_wait per batch of ready
// connections. The loop still waits through Go's netpoller — its epoll
// descriptor is itself pollable — so an idle loop holds no thread and a
// busy one is scheduled like any goroutine.
//
// Loops serve plain http:// targets on Linux; https (crypto/tls needs a
// net.Conn), other systems and the open model use the blocking client.
//
// Sockets are read and written by sockRead and sockWrite, and the loop's
// epoll instance is polled by epollNow (sockio_*.go): raw system calls.
// They never block, and skipping entersyscall keeps the runtime's sysmon
// thread asleep: futex and nanosleep calls fell from 0.13 per request to
// 0.002, and CPU per request by about 12%. Race-detector builds use
// package syscall's, whose annotations are the ones net uses (x/sys/unix
// has its own), so that a test's server and the loop synchronise through
// the socket as with net.Conn.

// loopsSupported reports whether the closed model may run on event loops.
const loopsSupported = true

// evLoop is one event loop and the users it drives. Only its own
// goroutine touches the slots; other goroutines reach it through post
// and wake.
type evLoop struct {
	e      *engine
	ep     int      // the loop's epoll instance
	epf    *os.File // ep, registered with Go's netpoller
	rc     syscall.RawConn
	evfd   int // eventfd: wakes the loop for new users, dial results, stop
	events []unix.EpollEvent
	dialer net.Dialer

	mu       sync.Mutex // guards inbox, closed and released
	inbox    []loopMsg
	closed   bool // takes no new users
	released bool // descriptors closed: wake must not write

	slots        []*slot
	ready        []*slot     // slots to start a request on, in order
	spare        []*slot     // the other ready buffer
	live         int         // slots not retired
	dialing      int         // dial goroutines not yet reported back
	nextDeadline time.Time   // no request times out before; zero: none in flight
	wakes        []wakeEntry // ends of think times, a min-heap
	deadline     time.Time   // the read deadline last set on epf
	starting     bool        // inside next: a request that fails at once is queued, not restarted

	pollFn  func(uintptr) bool // l.poll, allocated once
	polled  int
	pollErr error
}

// loopMsg is a new user (fd < 0, err nil, gen 0) or a dial's outcome.
type loopMsg struct {
	user int
	slot int
	gen  uint64
	fd   int
	err  error
}

type slotState uint8

const (
	slotReady slotState = iota
	slotThinking
	slotDialing
	slotSending
	slotReceiving
	slotRetired
)

// slot is one virtual user of the closed model and its connection.
type slot struct {
	idx   int
	user  int
	rng   *rand.Rand
	iter  int64
	state slotState

	fd     int    // -1: no connection
	addr   string // what fd is connected to
	served int    // responses read on fd
	gen    uint64 // bumped when fd changes, so a late dial result is dropped
	out    bool   // EPOLLOUT is registered

	// The request in flight.
	r        *Request
	tg       *target
	ri       int
	measured bool
	retried  bool
	fresh    bool // fd was dialled for this request
	wrote    int
	start    time.Time
	deadline time.Time
	p        respParser
	buf      []byte
	tgt      target // the user's rendered requests (buffers reused)
}

// newLoops starts the event loops, each added to wg and ending when the
// run stops; nil when the system refuses an epoll instance (the caller
// falls back to goroutines). There is one loop per two cores (at least
// one, at most one per user): the generator usually shares the machine
// with the server it measures (lode bench always does), and fewer loops
// mean more connections ready per wake-up, so fewer wake-ups per request
// — on 2 cores one loop for 32 users cost 0.85x the CPU per request of
// two loops and served more req/s (medians of 6 interleaved rounds). A
// loop drives on the order of 100k requests/s. cores is GOMAXPROCS; the
// run then lowers it to the number of loops (procs.go).
func (e *engine) newLoops(wg *sync.WaitGroup, cores int) []*evLoop {
	n := min(e.cfg.Users, max(1, cores/2))
	if e.cfg.loops > 0 {
		n = min(e.cfg.Users, e.cfg.loops)
	}
	var loops []*evLoop
	for i := 0; i < n; i++ {
		l, err := newLoop(e)
		if err != nil {
			for _, l := range loops {
				l.release()
			}
			return nil
		}
		loops = append(loops, l)
	}
	e.loops = loops
	for _, l := range loops {
		wg.Add(1)
		go func() { defer wg.Done(); l.run() }()
	}
	return loops
}

func newLoop(e *engine) (*evLoop, error) {
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	evfd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(ep)
		return nil, os.NewSyscallError("eventfd", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: -1}
	if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, evfd, &ev); err != nil {
		unix.Close(ep)
		unix.Close(evfd)
		return nil, os.NewSyscallError("epoll_ctl", err)
	}
	// A non-blocking descriptor passed to os.NewFile joins Go's poller.
	if err := unix.SetNonblock(ep, true); err != nil {
		unix.Close(ep)
		unix.Close(evfd)
		return nil, os.NewSyscallError("fcntl", err)
	}
	epf := os.NewFile(uintptr(ep), "epoll")
	rc, err := epf.SyscallConn()
	if err != nil {
		epf.Close()
		unix.Close(evfd)
		return nil, err
	}
	return &evLoop{
		e: e, ep: ep, epf: epf, rc: rc, evfd: evfd,
		events: make([]unix.EpollEvent, 128),
		dialer: net.Dialer{Timeout: e.cfg.Timeout, KeepAlive: -1},
	}, nil
}

// release closes the loop's own descriptors.
func (l *evLoop) release() {
	l.mu.Lock()
	l.released = true
	l.mu.Unlock()
	l.epf.Close()
	unix.Close(l.evfd)
}

// addUser hands a new virtual user to the loop; false when the loop has
// already ended (the run stopped).
func (l *evLoop) addUser(user int) bool {
	return l.post(loopMsg{user: user, fd: -1})
}

func (l *evLoop) post(m loopMsg) bool {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return false
	}
	l.inbox = append(l.inbox, m)
	l.mu.Unlock()
	l.wake()
	return true
}

// wake interrupts the loop's wait; safe from any goroutine, and a no-op
// once the loop has ended.
func (l *evLoop) wake() {
	one := [8]byte{1}
	l.mu.Lock()
	if !l.released {
		_, _ = unix.Write(l.evfd, one[:]) // EAGAIN: a wake-up is already pending
	}
	l.mu.Unlock()
}

// run is the loop. It ends when the run has stopped and every user has
// finished its request, or at once when the run is aborted.
func (l *evLoop) run() {
	e := l.e
	defer l.release()
	for {
		if e.aborted.Load() {
			l.abort()
			return
		}
		if l.takeInbox() && l.live == 0 && e.stopped() && l.dialing == 0 {
			l.mu.Lock()
			done := len(l.inbox) == 0
			if done {
				l.closed = true
			}
			l.mu.Unlock()
			if done {
				return
			}
			continue
		}
		now := time.Now()
		for len(l.wakes) > 0 && !now.Before(l.wakes[0].t) {
			if s := l.popWake(); s.state == slotThinking {
				s.state = slotReady
				l.ready = append(l.ready, s)
			}
		}
		if !l.nextDeadline.IsZero() && !now.Before(l.nextDeadline) {
			l.checkDeadlines(now)
		}
		// Start the requests due: new users, ends of think time, and
		// requests that failed before they were sent (those queue for
		// the next round, after a look at the network).
		ready := l.ready
		l.ready = l.spare[:0]
		for _, s := range ready {
			l.next(s)
		}
		l.spare = ready[:0]
		if l.live == 0 && l.dialing == 0 && e.stopped() {
			continue // done, unless a message came in meanwhile
		}
		n, err := l.wait(len(l.ready) > 0)
		if err != nil {
			continue // deadline (a timer is due) or EINTR
		}
		for _, ev := range l.events[:n] {
			if ev.Fd < 0 {
				var buf [8]byte
				_, _ = unix.Read(l.evfd, buf[:])
				continue
			}
			l.onEvent(l.slots[ev.Fd], ev.Events)
		}
	}
}

// wait returns the ready events: at once if poll is set, else after
// parking on Go's netpoller until there are some, the next timer is due
// or the loop is woken.
func (l *evLoop) wait(poll bool) (int, error) {
	if poll {
		n, err := epollNow(l.ep, l.events)
		if err != nil {
			return 0, err
		}
		return n, nil
	}
	next := l.nextDeadline
	if len(l.wakes) > 0 && (next.IsZero() || l.wakes[0].t.Before(next)) {
		next = l.wakes[0].t
	}
	if !next.Equal(l.deadline) {
		l.deadline = next
		_ = l.epf.SetReadDeadline(next)
	}
	if l.pollFn == nil {
		l.pollFn = l.poll
	}
	if err := l.rc.Read(l.pollFn); err != nil {
		return 0, err
	}
	return l.polled, l.pollErr
}

// poll looks for ready events without waiting; it is the callback of the
// epoll descriptor's RawConn.Read, which parks until the descriptor is
// readable while poll returns false.
func (l *evLoop) poll(uintptr) bool {
	l.polled, l.pollErr = epollNow(l.ep, l.events)
	return l.polled > 0 || (l.pollErr != nil && l.pollErr != unix.EINTR)
}

// takeInbox adds new users and dial results; it reports true when the
// loop may be done (no message arrived).
func (l *evLoop) takeInbox() bool {
	l.mu.Lock()
	msgs := l.inbox
	l.inbox = nil
	l.mu.Unlock()
	for _, m := range msgs {
		if m.gen == 0 {
			l.newSlot(m.user)
		} else {
			l.dialed(m)
		}
	}
	if l.e.stopped() {
		// Thinking users end now, as a blocked user's sleep would.
		for _, s := range l.slots {
			if s.state == slotThinking {
				l.retire(s)
			}
		}
	}
	return len(msgs) == 0
}

func (l *evLoop) newSlot(user int) {
	s := &slot{
		idx: len(l.slots), user: user, fd: -1, buf: make([]byte, readBufSize),
		rng: rand.New(rand.NewPCG(uint64(user), uint64(time.Now().UnixNano()))),
	}
	l.slots = append(l.slots, s)
	l.live++
	l.e.users.Add(1)
	l.ready = append(l.ready, s)
}

func (l *evLoop) retire(s *slot) {
	if s.state == slotRetired {
		return
	}
	l.closeConn(s)
	s.state = slotRetired
	l.live--
	l.e.users.Add(-1)
}

// next starts s's next request, as user() does for a goroutine user.
func (l *evLoop) next(s *slot) {
	e := l.e
	if s.state == slotRetired {
		return
	}
	if e.stopped() {
		l.retire(s)
		return
	}
	sc := e.sc
	measured := !time.Now().Before(e.from)
	if max := e.cfg.MaxRequests; max > 0 && measured && e.claimed.Add(1) > max {
		e.stop()
		l.retire(s)
		return
	}
	ri := 0
	if len(sc.Requests) > 1 {
		ri = sc.index(s.rng.IntN(sc.total))
	}
	e.acquire()
	l.starting = true
	defer func() { l.starting = false }()
	r, tg, err := e.begin(s.user, ri, s.iter, &s.tgt)
	s.iter++
	s.r, s.tg, s.ri, s.measured, s.retried = r, tg, ri, measured, false
	s.start = time.Now()
	s.deadline = s.start.Add(e.cfg.Timeout)
	if l.nextDeadline.IsZero() || s.deadline.Before(l.nextDeadline) {
		l.nextDeadline = s.deadline
	}
	if err != nil {
		l.complete(s, err)
		return
	}
	l.send(s)
}

// send writes the request on s's connection, dialling first if needed.
func (l *evLoop) send(s *slot) {
	if s.fd >= 0 && s.addr != s.tg.addr {
		l.closeConn(s)
	}
	if s.fd < 0 {
		l.dial(s)
		return
	}
	s.fresh = s.served == 0
	s.state, s.wrote = slotSending, 0
	s.p.reset(s.tg.head, s.r.needBody)
	l.write(s)
}

// dial connects in a goroutine with net.Dialer (so resolution, timeouts
// and errors are net's own); the loop adopts a duplicate of the socket.
func (l *evLoop) dial(s *slot) {
	s.state = slotDialing
	s.gen++
	l.dialing++
	gen, idx, addr := s.gen, s.idx, s.tg.addr
	go func() {
		fd := -1
		nc, err := l.dialer.DialContext(l.e.runCtx, "tcp", addr)
		if err == nil {
			fd, err = dupSocket(nc)
			nc.Close()
		}
		l.mu.Lock()
		l.inbox = append(l.inbox, loopMsg{slot: idx, gen: gen, fd: fd, err: err})
		l.mu.Unlock()
		l.wake()
	}()
}

// dupSocket returns a non-blocking duplicate of nc's socket descriptor,
// which outlives nc.Close.
func dupSocket(nc net.Conn) (int, error) {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return -1, errors.New("loadgen: connection has no descriptor")
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd := -1
	var derr error
	if err := raw.Control(func(f uintptr) { fd, derr = unix.FcntlInt(f, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		return -1, err
	}
	if derr != nil {
		return -1, os.NewSyscallError("fcntl", derr)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return -1, os.NewSyscallError("fcntl", err)
	}
	return fd, nil
}

// dialed adopts a dial's outcome, unless its request already ended.
func (l *evLoop) dialed(m loopMsg) {
	l.dialing--
	s := l.slots[m.slot]
	if m.gen != s.gen || s.state != slotDialing || l.e.aborted.Load() {
		if m.fd >= 0 {
			unix.Close(m.fd)
		}
		return
	}
	if m.err != nil {
		l.complete(s, m.err)
		return
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: int32(s.idx)}
	if err := unix.EpollCtl(l.ep, unix.EPOLL_CTL_ADD, m.fd, &ev); err != nil {
		unix.Close(m.fd)
		l.complete(s, os.NewSyscallError("epoll_ctl", err))
		return
	}
	s.fd, s.addr, s.served, s.out = m.fd, s.tg.addr, 0, false
	s.fresh = true
	s.state, s.wrote = slotSending, 0
	s.p.reset(s.tg.head, s.r.needBody)
	l.write(s)
}

func (l *evLoop) closeConn(s *slot) {
	if s.fd >= 0 {
		unix.Close(s.fd) // also leaves the epoll set
		s.fd = -1
		s.gen++
	}
}

// write sends what is left of the request; a full socket buffer waits
// for EPOLLOUT.
func (l *evLoop) write(s *slot) {
	wire := s.tg.wire
	for s.wrote < len(wire) {
		n, err := sockWrite(s.fd, wire[s.wrote:])
		if err == unix.EINTR {
			continue
		}
		if err == unix.EAGAIN {
			l.setOut(s, true)
			return
		}
		if err != nil {
			l.fail(s, &net.OpError{Op: "write", Net: "tcp", Err: os.NewSyscallError("write", err)})
			return
		}
		s.wrote += n
	}
	l.setOut(s, false)
	s.state = slotReceiving
}

func (l *evLoop) setOut(s *slot, on bool) {
	if s.out == on {
		return
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: int32(s.idx)}
	if on {
		ev.Events |= unix.EPOLLOUT
	}
	if err := unix.EpollCtl(l.ep, unix.EPOLL_CTL_MOD, s.fd, &ev); err != nil {
		l.fail(s, os.NewSyscallError("epoll_ctl", err))
		return
	}
	s.out = on
}

// onEvent handles readiness of s's connection.
func (l *evLoop) onEvent(s *slot, events uint32) {
	if s.fd < 0 {
		return
	}
	switch s.state {
	case slotSending:
		if events&(unix.EPOLLOUT|unix.EPOLLERR|unix.EPOLLHUP) != 0 {
			l.write(s)
		}
		if s.state == slotSending && s.fd >= 0 && events&(unix.EPOLLIN|unix.EPOLLRDHUP) != 0 {
			// The server answered before taking the whole request (a 413
			// for a large body, say): read the answer, or the readable
			// socket would wake the loop again and again until the
			// deadline. The connection is not reused (read closes it).
			l.read(s)
		}
	case slotReceiving:
		l.read(s)
	default:
		// An idle keep-alive connection became readable: the server
		// closed it (or sent bytes nobody asked for). Drop it; the next
		// request dials afresh.
		l.closeConn(s)
	}
}

// read reads what arrived and feeds the parser.
func (l *evLoop) read(s *slot) {
	for {
		n, err := sockRead(s.fd, s.buf)
		if err == unix.EINTR {
			continue
		}
		if err == unix.EAGAIN {
			return
		}
		if err != nil {
			l.fail(s, &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", err)})
			return
		}
		if n == 0 {
			done, err := s.p.eof()
			if !done {
				l.fail(s, err)
				return
			}
			s.served++
			l.closeConn(s)
			l.complete(s, nil)
			return
		}
		used, done, err := s.p.feed(s.buf[:n])
		if err != nil {
			l.fail(s, err)
			return
		}
		if done {
			s.served++
			if s.p.mustClose() || used < n || s.state == slotSending {
				l.closeConn(s)
			}
			l.complete(s, nil)
			return
		}
		if n < len(s.buf) {
			return // the rest is not here yet
		}
	}
}

// fail ends s's request with a transport error; a reused connection the
// server had closed is retried once on a new one, as the blocking client
// does.
func (l *evLoop) fail(s *slot, err error) {
	started := s.p.started
	reused := !s.fresh
	l.closeConn(s)
	if reused && !started && !s.retried && isStale(err) {
		s.retried = true
		l.dial(s)
		return
	}
	l.complete(s, err)
}

// complete records s's request and schedules the next one.
func (l *evLoop) complete(s *slot, err error) {
	e := l.e
	lat := time.Since(s.start)
	if err != nil {
		l.closeConn(s)
	}
	var resp response
	if err == nil {
		resp = s.p.response()
	}
	e.finish(s.user, s.r, s.ri, lat, resp, err, -1, s.measured)
	e.inFlight.Add(-1)
	s.r, s.tg = nil, nil
	sc := e.sc
	if sc.ThinkMax > 0 {
		think := sc.ThinkMin
		if sc.ThinkMax > sc.ThinkMin {
			think += time.Duration(s.rng.Int64N(int64(sc.ThinkMax - sc.ThinkMin)))
		}
		s.state = slotThinking
		l.pushWake(time.Now().Add(think), s)
		return
	}
	s.state = slotReady
	if l.starting {
		// The request failed before it was sent (a template error): the
		// next one waits for the next round, or a user would spin here.
		l.ready = append(l.ready, s)
		return
	}
	// Send the next request at once, as wrk does: the server gets work
	// while the loop handles the other ready connections.
	l.next(s)
}

// checkDeadlines times out the requests past their deadline and finds
// the next deadline. Every request has the same timeout, so the earliest
// deadline moves on by about the time between two scans: with the default
// 30 s timeout a busy loop scans its users about every 30 s.
func (l *evLoop) checkDeadlines(now time.Time) {
	l.nextDeadline = time.Time{}
	for _, s := range l.slots {
		switch s.state {
		case slotDialing, slotSending, slotReceiving:
			if !now.Before(s.deadline) {
				l.closeConn(s)
				l.complete(s, os.ErrDeadlineExceeded)
			} else if l.nextDeadline.IsZero() || s.deadline.Before(l.nextDeadline) {
				l.nextDeadline = s.deadline
			}
		}
	}
}

// wakeEntry is the end of one user's think time.
type wakeEntry struct {
	t time.Time
	s *slot
}

// pushWake adds a think time's end to the heap (a user thinks at most
// once at a time, so the heap holds at most one entry per user).
func (l *evLoop) pushWake(t time.Time, s *slot) {
	h := append(l.wakes, wakeEntry{t, s})
	for i := len(h) - 1; i > 0; {
		p := (i - 1) / 2
		if !h[i].t.Before(h[p].t) {
			break
		}
		h[i], h[p] = h[p], h[i]
		i = p
	}
	l.wakes = h
}

// popWake removes and returns the user whose think time ends first.
func (l *evLoop) popWake() *slot {
	h := l.wakes
	top := h[0].s
	n := len(h) - 1
	h[0] = h[n]
	h[n] = wakeEntry{}
	h = h[:n]
	for i := 0; ; {
		c := 2*i + 1
		if c >= n {
			break
		}
		if c+1 < n && h[c+1].t.Before(h[c].t) {
			c++
		}
		if !h[c].t.Before(h[i].t) {
			break
		}
		h[i], h[c] = h[c], h[i]
		i = c
	}
	l.wakes = h
	return top
}

// abort ends every request at once (the run is over), closes every
// connection and waits for dials still under way, which the run's
// cancelled context ends.
func (l *evLoop) abort() {
	for _, s := range l.slots {
		switch s.state {
		case slotDialing, slotSending, slotReceiving:
			l.e.inFlight.Add(-1)
		}
		l.retire(s)
	}
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	for {
		l.mu.Lock()
		msgs := l.inbox
		l.inbox = nil
		l.mu.Unlock()
		for _, m := range msgs {
			if m.gen != 0 {
				l.dialing--
				if m.fd >= 0 {
					unix.Close(m.fd)
				}
			}
		}
		if l.dialing == 0 {
			return
		}
		l.nextDeadline, l.wakes = time.Now().Add(10*time.Millisecond), nil
		_, _ = l.wait(false)
		var buf [8]byte
		_, _ = unix.Read(l.evfd, buf[:])
	}
}
