package loadgen

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
)

// respParser parses one HTTP/1.1 response incrementally: it is fed the
// bytes as they arrive, in any split, and says when the response is
// complete. Both drivers use it: the blocking client (one goroutine per
// connection) and the event loop (many connections per goroutine), so
// there is one parser for every framing a load test meets —
// Content-Length and chunked bodies, bodies delimited by close,
// HEAD/1xx/204/304, keep-alive and Connection: close, HTTP/1.0.
//
// In the common case a whole response arrives in one read and is parsed
// in place; only a line split between two reads is copied.
type respParser struct {
	state   parseState
	head    bool // the request was HEAD: no body follows
	keep    bool // keep the body (up to maxBodyKeep)
	started bool // some byte of the response arrived

	status int
	h      respHeader
	remain int64  // body or chunk bytes still to come
	bytes  int64  // body bytes received
	body   []byte // kept body; reused between responses
	line   []byte // a line split between reads; reused
}

type parseState uint8

const (
	stStatus     parseState = iota // want the status line
	stHeader                       // want a header line or the blank line
	stBody                         // Content-Length body: remain bytes
	stUntilClose                   // body delimited by the server's close
	stChunkSize                    // want a chunk-size line
	stChunkData                    // chunk data: remain bytes
	stChunkCRLF                    // the CRLF after chunk data: remain bytes
	stTrailer                      // want a trailer line or the blank line
	stDone
)

// respHeader is what the parser keeps of the response headers.
type respHeader struct {
	contentLength int64 // -1 when absent
	chunked       bool
	close         bool
	keepAlive     bool
}

// maxLineLen bounds the status line, each header line and each chunk-size
// line (as the read buffer did before the parser was incremental).
const maxLineLen = readBufSize

// reset prepares the parser for the response to a new request.
func (p *respParser) reset(head, keep bool) {
	*p = respParser{head: head, keep: keep, body: p.body[:0], line: p.line[:0]}
}

// response returns the parsed response; body is valid until the next reset.
func (p *respParser) response() response {
	r := response{status: p.status, bytes: p.bytes}
	if p.keep || p.status >= 400 {
		r.body = p.body
	}
	return r
}

// mustClose reports whether the connection cannot carry another request
// after this response.
func (p *respParser) mustClose() bool { return p.h.close || p.state == stUntilClose }

// feed parses b and returns how many bytes it used and whether the
// response is complete. Bytes after a complete response are not used.
func (p *respParser) feed(b []byte) (int, bool, error) {
	if len(b) > 0 {
		p.started = true
	}
	i := 0
	for i < len(b) {
		switch p.state {
		case stStatus, stHeader, stChunkSize, stTrailer:
			line, n, err := p.nextLine(b[i:])
			i += n
			if err != nil {
				return i, false, err
			}
			if line == nil {
				return i, false, nil // the rest of the line is still to come
			}
			if err := p.onLine(line); err != nil {
				return i, false, err
			}
		case stBody, stChunkData:
			n := int(min(p.remain, int64(len(b)-i)))
			p.keepBody(b[i : i+n])
			i += n
			p.remain -= int64(n)
			if p.remain == 0 {
				if p.state == stBody {
					p.state = stDone
				} else {
					p.state, p.remain = stChunkCRLF, 2
				}
			}
		case stChunkCRLF:
			n := int(min(p.remain, int64(len(b)-i)))
			i += n
			p.remain -= int64(n)
			if p.remain == 0 {
				p.state = stChunkSize
			}
		case stUntilClose:
			p.keepBody(b[i:])
			i = len(b)
		}
		if p.state == stDone {
			return i, true, nil
		}
	}
	return i, p.state == stDone, nil
}

// eof tells the parser that the server closed the connection. It returns
// true when that completed the response (a body delimited by close), else
// the error to report: io.EOF when no byte arrived (a stale keep-alive
// connection, worth one retry), io.ErrUnexpectedEOF otherwise.
func (p *respParser) eof() (bool, error) {
	switch {
	case p.state == stUntilClose || p.state == stDone:
		p.state = stDone
		return true, nil
	case !p.started:
		return false, io.EOF
	}
	return false, io.ErrUnexpectedEOF
}

// nextLine returns the next complete line (with its line ending) and the
// bytes of b it consumed. A line split between reads is gathered in p.line
// and returned (nil, len(b)) until its end arrives.
func (p *respParser) nextLine(b []byte) ([]byte, int, error) {
	nl := bytes.IndexByte(b, '\n')
	if nl < 0 {
		if len(p.line)+len(b) > maxLineLen {
			return nil, len(b), p.lineTooLong()
		}
		p.line = append(p.line, b...)
		return nil, len(b), nil
	}
	if len(p.line) == 0 {
		if nl+1 > maxLineLen {
			return nil, nl + 1, p.lineTooLong()
		}
		return b[:nl+1], nl + 1, nil
	}
	if len(p.line)+nl+1 > maxLineLen {
		return nil, nl + 1, p.lineTooLong()
	}
	p.line = append(p.line, b[:nl+1]...)
	line := p.line
	p.line = p.line[:0] // line stays valid: onLine uses it before the next append
	return line, nl + 1, nil
}

func (p *respParser) lineTooLong() error {
	switch p.state {
	case stStatus:
		return errors.New("malformed response: status line too long")
	case stChunkSize:
		return errors.New("malformed response: chunk size line too long")
	}
	return errors.New("malformed response: header line too long")
}

func isBlankLine(line []byte) bool {
	return len(line) == 1 || (len(line) == 2 && line[0] == '\r')
}

// onLine handles one complete line in the current state.
func (p *respParser) onLine(line []byte) error {
	switch p.state {
	case stStatus:
		st, err := parseStatusLine(line)
		if err != nil {
			return err
		}
		p.status = st
		p.h = respHeader{contentLength: -1}
		if line[7] == '0' {
			p.h.close = true // HTTP/1.0 closes unless it says keep-alive
		}
		p.state = stHeader
	case stHeader:
		if isBlankLine(line) {
			p.endOfHeaders()
			return nil
		}
		return p.header(line)
	case stChunkSize:
		size, err := parseChunkSize(line)
		if err != nil {
			return err
		}
		if size == 0 {
			p.state = stTrailer
		} else {
			p.state, p.remain = stChunkData, size
		}
	case stTrailer:
		if isBlankLine(line) {
			p.state = stDone
		}
	}
	return nil
}

// header records the headers the framing depends on.
func (p *respParser) header(line []byte) error {
	colon := bytes.IndexByte(line, ':')
	if colon <= 0 {
		return nil
	}
	name := line[:colon]
	val := bytes.TrimSpace(line[colon+1:])
	switch {
	case asciiEqualFold(name, "content-length"):
		if len(val) == 0 {
			return errors.New("malformed response: empty Content-Length")
		}
		var n int64
		for _, c := range val {
			if c < '0' || c > '9' || n > (1<<62)/10 {
				return fmt.Errorf("malformed response: Content-Length %q", val)
			}
			n = n*10 + int64(c-'0')
		}
		p.h.contentLength = n
	case asciiEqualFold(name, "transfer-encoding"):
		p.h.chunked = containsFold(val, "chunked")
	case asciiEqualFold(name, "connection"):
		p.h.keepAlive = containsFold(val, "keep-alive")
		if containsFold(val, "close") {
			p.h.close = true
		} else if p.h.keepAlive {
			p.h.close = false // an HTTP/1.0 response that keeps the connection
		}
	}
	return nil
}

// endOfHeaders picks the body framing.
func (p *respParser) endOfHeaders() {
	st := p.status
	switch {
	case st >= 100 && st < 200 && st != 101:
		// 100 Continue, 103 Early Hints: the real response follows.
		p.state = stStatus
	case p.head || st == 204 || st == 304 || (st >= 100 && st < 200):
		p.state = stDone
	case p.h.chunked:
		p.state = stChunkSize
	case p.h.contentLength == 0:
		p.state = stDone
	case p.h.contentLength > 0:
		p.state, p.remain = stBody, p.h.contentLength
	default:
		p.state = stUntilClose
	}
}

// keepBody counts body bytes and keeps up to maxBodyKeep of them when the
// body is wanted (a check reads it) or may be (an error status's message).
func (p *respParser) keepBody(b []byte) {
	p.bytes += int64(len(b))
	if (p.keep || p.status >= 400) && len(p.body) < maxBodyKeep {
		b = b[:min(len(b), maxBodyKeep-len(p.body))]
		p.body = append(slices.Grow(p.body, len(b)), b...)
	}
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

func parseChunkSize(line []byte) (int64, error) {
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
			if digits == 0 {
				return 0, fmt.Errorf("malformed response: chunk size line %q", trimLine(line))
			}
			return size, nil
		}
		size = size<<4 | int64(v)
		digits++
		if digits > 15 {
			return 0, errors.New("malformed response: chunk size too large")
		}
	}
	return size, nil
}

func trimLine(b []byte) string {
	if len(b) > 60 {
		b = b[:60]
	}
	return string(bytes.TrimRight(b, "\r\n"))
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

// containsFold reports whether b contains the lower-case ASCII word w,
// ignoring case, without allocating.
func containsFold(b []byte, w string) bool {
	for i := 0; i+len(w) <= len(b); i++ {
		if asciiEqualFold(b[i:i+len(w)], w) {
			return true
		}
	}
	return false
}
