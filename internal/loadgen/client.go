package loadgen

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// The load generator speaks HTTP/1.1 itself instead of using net/http's
// client: each virtual user owns one keep-alive connection, writes a
// pre-serialised request with one write and parses the response in place.
// net/http's client costs two goroutine hand-offs, a Request, a Response
// and a header map per request, which on a 2-core machine makes it the
// bottleneck (hey, built on it, reaches about half of wrk). This client
// covers what a load test needs: Content-Length and chunked bodies,
// bodies delimited by close, HEAD/1xx/204/304, keep-alive and
// Connection: close, TLS, and one retry when a reused keep-alive
// connection turns out to be closed by the server.

const (
	readBufSize = 16 << 10
	maxBodyKeep = 8 << 20 // bodies kept for checks and error messages
)

// client dials and tracks connections so that a hard stop can close them.
type client struct {
	dialer  net.Dialer
	tls     *tls.Config
	timeout time.Duration

	mu     sync.Mutex
	conns  map[*conn]struct{}
	closed bool
}

func newClient(timeout time.Duration, insecure bool) *client {
	return &client{
		dialer:  net.Dialer{Timeout: timeout, KeepAlive: -1},
		tls:     &tls.Config{InsecureSkipVerify: insecure}, //nolint:gosec // opt-in via --insecure
		timeout: timeout,
		conns:   map[*conn]struct{}{},
	}
}

// closeAll closes every connection, unblocking requests in flight, and
// makes later dials fail.
func (c *client) closeAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	for cn := range c.conns {
		cn.nc.Close()
	}
}

// conn is one HTTP/1.1 connection. Not safe for concurrent use.
type conn struct {
	c      *client
	addr   string
	nc     net.Conn
	buf    []byte // read buffer: buf[r:w] is received and not yet parsed
	r, w   int
	p      respParser
	served int // responses read on this connection
	dead   bool
}

var errClientClosed = errors.New("loadgen: run stopped")

func (c *client) dial(ctx context.Context, tg *target) (*conn, error) {
	nc, err := c.dialer.DialContext(ctx, "tcp", tg.addr)
	if err != nil {
		return nil, err
	}
	if tg.scheme == "https" {
		conf := c.tls.Clone()
		conf.ServerName = tg.host
		tc := tls.Client(nc, conf)
		_ = tc.SetDeadline(time.Now().Add(c.timeout))
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, fmt.Errorf("tls handshake: %w", err)
		}
		nc = tc
	}
	cn := &conn{c: c, addr: tg.addr, nc: nc, buf: make([]byte, readBufSize)}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		nc.Close()
		return nil, errClientClosed
	}
	c.conns[cn] = struct{}{}
	c.mu.Unlock()
	return cn, nil
}

func (cn *conn) close() {
	if cn == nil || cn.dead {
		return
	}
	cn.dead = true
	cn.nc.Close()
	cn.c.mu.Lock()
	delete(cn.c.conns, cn)
	cn.c.mu.Unlock()
}

// response is what a request produced. body is only set when asked for
// (or for error statuses) and is valid until the next request on the
// connection.
type response struct {
	status int
	bytes  int64
	body   []byte
}

// do sends tg on *cnp (dialing if needed) and reads the response. A failed
// connection is closed and *cnp set to nil.
func (c *client) do(ctx context.Context, cnp **conn, tg *target, keepBody bool) (response, error) {
	for attempt := 0; ; attempt++ {
		cn := *cnp
		if cn != nil && (cn.dead || cn.addr != tg.addr) {
			cn.close() // no-op when the server already closed it
			cn = nil
		}
		fresh := cn == nil
		if fresh {
			var err error
			if cn, err = c.dial(ctx, tg); err != nil {
				return response{}, err
			}
			*cnp = cn
		}
		resp, started, err := cn.roundTrip(tg, keepBody)
		if err == nil {
			return resp, nil
		}
		cn.close()
		*cnp = nil
		// A reused connection that the server closed while idle fails
		// before any response byte: retry once on a new connection, as
		// net/http does.
		if !fresh && !started && attempt == 0 && isStale(err) {
			continue
		}
		return resp, err
	}
}

func isStale(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// roundTrip writes the request and reads one response. started reports
// whether any byte of the response arrived.
func (cn *conn) roundTrip(tg *target, keepBody bool) (resp response, started bool, err error) {
	if cn.c.timeout > 0 {
		_ = cn.nc.SetDeadline(time.Now().Add(cn.c.timeout))
	}
	if _, err = cn.nc.Write(tg.wire); err != nil {
		return resp, false, err
	}
	p := &cn.p
	p.reset(tg.head, keepBody)
	for {
		if cn.r < cn.w {
			n, done, err := p.feed(cn.buf[cn.r:cn.w])
			cn.r += n
			if err != nil {
				return resp, true, err
			}
			if done {
				cn.served++
				// Bytes beyond the response were not asked for: the
				// connection's framing cannot be trusted any more.
				if p.mustClose() || cn.r < cn.w {
					cn.close()
				}
				return p.response(), true, nil
			}
		}
		cn.r, cn.w = 0, 0
		n, err := cn.nc.Read(cn.buf)
		cn.w = n
		if n > 0 {
			continue // an error comes again with the next read
		}
		if errors.Is(err, io.EOF) {
			done, eofErr := p.eof()
			if done {
				cn.served++
				cn.close()
				return p.response(), true, nil
			}
			err = eofErr
		} else if err == nil {
			err = io.ErrNoProgress
		}
		return resp, p.started, err
	}
}

// transportMessage turns a transport error into a stable group message:
// no addresses or ports, so one failure mode is one line.
func transportMessage(err error, timeout time.Duration) string {
	var ne net.Error
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()):
		return fmt.Sprintf("timeout after %s", timeout)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return "connection closed by server before the response was complete"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset by peer"
	case errors.Is(err, syscall.EPIPE):
		return "broken pipe"
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		msg := oe.Err.Error()
		var se *os.SyscallError
		if errors.As(oe.Err, &se) {
			msg = se.Err.Error()
		}
		return oe.Op + ": " + msg
	}
	return err.Error()
}
