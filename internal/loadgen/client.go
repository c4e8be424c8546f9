package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
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
	br     *bufio.Reader
	body   []byte // last kept body; reused
	served int    // responses read on this connection
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
	cn := &conn{c: c, addr: tg.addr, nc: nc, br: bufio.NewReaderSize(nc, readBufSize)}
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
	for {
		var line []byte
		line, err = cn.br.ReadSlice('\n')
		if err != nil {
			if errors.Is(err, bufio.ErrBufferFull) {
				err = errors.New("malformed response: status line too long")
			}
			return resp, len(line) > 0, err
		}
		started = true
		resp.status, err = parseStatusLine(line)
		if err != nil {
			return resp, true, err
		}
		h, err := cn.readHeaders()
		if err != nil {
			return resp, true, err
		}
		if line[7] == '0' && !h.keepAlive {
			h.close = true // HTTP/1.0 closes unless it says keep-alive
		}
		if resp.status >= 100 && resp.status < 200 && resp.status != 101 {
			continue // 100 Continue, 103 Early Hints: the real response follows
		}
		keep := keepBody || resp.status >= 400
		if err := cn.readBody(&resp, h, tg.head, keep); err != nil {
			return resp, true, err
		}
		cn.served++
		if h.close {
			cn.close()
		}
		return resp, true, nil
	}
}

type respHeader struct {
	contentLength int64 // -1 when absent
	chunked       bool
	close         bool
	keepAlive     bool
}

func parseStatusLine(line []byte) (int, error) {
	// "HTTP/1.1 200 OK\r\n"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
		return 0, fmt.Errorf("malformed response: status line %q", trimLine(line))
	}
	s := line[9:12]
	if s[0] < '1' || s[0] > '5' || s[1] < '0' || s[1] > '9' || s[2] < '0' || s[2] > '9' {
		return 0, fmt.Errorf("malformed response: status line %q", trimLine(line))
	}
	return int(s[0]-'0')*100 + int(s[1]-'0')*10 + int(s[2]-'0'), nil
}

func trimLine(b []byte) string {
	if len(b) > 60 {
		b = b[:60]
	}
	return string(bytes.TrimRight(b, "\r\n"))
}

func (cn *conn) readHeaders() (respHeader, error) {
	h := respHeader{contentLength: -1}
	for {
		line, err := cn.br.ReadSlice('\n')
		if err != nil {
			if errors.Is(err, bufio.ErrBufferFull) {
				err = errors.New("malformed response: header line too long")
			} else if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return h, err
		}
		if len(line) <= 2 && (len(line) == 1 || line[0] == '\r') {
			return h, nil
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			continue
		}
		name := line[:colon]
		val := bytes.TrimSpace(line[colon+1:])
		switch {
		case asciiEqualFold(name, "content-length"):
			var n int64
			if len(val) == 0 {
				return h, errors.New("malformed response: empty Content-Length")
			}
			for _, c := range val {
				if c < '0' || c > '9' {
					return h, fmt.Errorf("malformed response: Content-Length %q", val)
				}
				n = n*10 + int64(c-'0')
			}
			h.contentLength = n
		case asciiEqualFold(name, "transfer-encoding"):
			h.chunked = bytes.Contains(bytes.ToLower(val), []byte("chunked"))
		case asciiEqualFold(name, "connection"):
			v := bytes.ToLower(val)
			h.close = bytes.Contains(v, []byte("close"))
			h.keepAlive = bytes.Contains(v, []byte("keep-alive"))
		}
	}
}

func asciiEqualFold(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

func (cn *conn) readBody(resp *response, h respHeader, head, keep bool) error {
	cn.body = cn.body[:0]
	if head || resp.status == 204 || resp.status == 304 || (resp.status >= 100 && resp.status < 200) {
		return nil
	}
	switch {
	case h.chunked:
		if err := cn.readChunked(resp, keep); err != nil {
			return err
		}
	case h.contentLength >= 0:
		if err := cn.readN(resp, h.contentLength, keep); err != nil {
			return err
		}
	default:
		// Body delimited by the server closing the connection.
		if err := cn.readN(resp, -1, keep); err != nil {
			return err
		}
		cn.close()
	}
	if keep {
		resp.body = cn.body
	}
	return nil
}

// readN reads n body bytes (n < 0: until EOF), keeping up to maxBodyKeep.
func (cn *conn) readN(resp *response, n int64, keep bool) error {
	for n != 0 {
		if !keep || len(cn.body) >= maxBodyKeep {
			if n < 0 {
				m, err := io.Copy(io.Discard, cn.br)
				resp.bytes += m
				return err
			}
			m, err := cn.br.Discard(int(min(n, 1<<30)))
			resp.bytes += int64(m)
			n -= int64(m)
			if err != nil {
				return unexpectedEOF(err)
			}
			continue
		}
		want := int64(maxBodyKeep - len(cn.body))
		if n >= 0 && n < want {
			want = n
		}
		if want > readBufSize {
			want = readBufSize
		}
		start := len(cn.body)
		cn.body = slices.Grow(cn.body, int(want))[:start+int(want)]
		m, err := cn.br.Read(cn.body[start:])
		cn.body = cn.body[:start+m]
		resp.bytes += int64(m)
		if n > 0 {
			n -= int64(m)
		}
		if err != nil {
			if n < 0 && errors.Is(err, io.EOF) {
				return nil
			}
			return unexpectedEOF(err)
		}
	}
	return nil
}

func unexpectedEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

func (cn *conn) readChunked(resp *response, keep bool) error {
	for {
		line, err := cn.br.ReadSlice('\n')
		if err != nil {
			return unexpectedEOF(err)
		}
		var size int64
		digits := 0
		for _, c := range line {
			var v byte
			switch {
			case '0' <= c && c <= '9':
				v = c - '0'
			case 'a' <= c && c <= 'f':
				v = c - 'a' + 10
			case 'A' <= c && c <= 'F':
				v = c - 'A' + 10
			default:
				goto done
			}
			size = size<<4 | int64(v)
			digits++
			if digits > 15 {
				return errors.New("malformed response: chunk size too large")
			}
		}
	done:
		if digits == 0 {
			return fmt.Errorf("malformed response: chunk size line %q", trimLine(line))
		}
		if size == 0 {
			// Trailers, then the blank line.
			for {
				t, err := cn.br.ReadSlice('\n')
				if err != nil {
					return unexpectedEOF(err)
				}
				if len(t) <= 2 && (len(t) == 1 || t[0] == '\r') {
					return nil
				}
			}
		}
		if err := cn.readN(resp, size, keep); err != nil {
			return err
		}
		if _, err := cn.br.Discard(2); err != nil { // CRLF after the chunk
			return unexpectedEOF(err)
		}
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
