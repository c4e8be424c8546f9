package loadgen

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

// parseAll feeds resp to a fresh parser in pieces of the given sizes
// (cycled; 0 means all at once), then reports EOF if closed is set and the
// response is not complete yet.
func parseAll(resp string, head, keep, closed bool, sizes ...int) (response, int, bool, error) {
	var p respParser
	p.reset(head, keep)
	b := []byte(resp)
	used := 0
	for k := 0; used < len(b); k++ {
		n := len(b) - used
		if len(sizes) > 0 && sizes[k%len(sizes)] > 0 {
			n = min(n, sizes[k%len(sizes)])
		}
		m, done, err := p.feed(b[used : used+n])
		used += m
		if err != nil {
			return response{}, used, false, err
		}
		if done {
			return p.response(), used, p.mustClose(), nil
		}
		if m < n {
			return response{}, used, false, fmt.Errorf("feed used %d of %d bytes without finishing", m, n)
		}
	}
	if !closed {
		return response{}, used, false, errors.New("incomplete")
	}
	done, err := p.eof()
	if !done {
		return response{}, used, false, err
	}
	return p.response(), used, true, nil
}

func TestParserFramingsInEverySplit(t *testing.T) {
	long := strings.Repeat("x", 3*readBufSize)
	tests := []struct {
		name       string
		resp       string
		head, keep bool
		closed     bool // the server closes after the response
		status     int
		body       string
		used       int // bytes of resp that belong to the response; 0: all
		mustClose  bool
	}{
		{name: "content-length", resp: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", keep: true, status: 200, body: "hello"},
		{name: "content-length 0", resp: "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", status: 200},
		{name: "chunked", resp: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhel\r\n2;ext=1\r\nlo\r\n0\r\nX-Trailer: 1\r\n\r\n", keep: true, status: 200, body: "hello"},
		{name: "close-delimited", resp: "HTTP/1.1 200 OK\r\n\r\nhello", keep: true, closed: true, status: 200, body: "hello", mustClose: true},
		{name: "connection close", resp: "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", status: 200, mustClose: true},
		{name: "100 continue first", resp: "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok", keep: true, status: 200, body: "ok"},
		{name: "204", resp: "HTTP/1.1 204 No Content\r\n\r\n", status: 204},
		{name: "304 with length", resp: "HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n", status: 304},
		{name: "HEAD with length", resp: "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n", head: true, status: 200},
		{name: "HTTP/1.0 closes", resp: "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", status: 200, mustClose: true},
		{name: "HTTP/1.0 keep-alive", resp: "HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 2\r\n\r\nok", status: 200},
		{name: "LF only", resp: "HTTP/1.1 200 OK\nContent-Length: 2\n\nok", keep: true, status: 200, body: "ok"},
		{name: "error body kept unasked", resp: "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 6\r\n\r\nlocked", status: 503, body: "locked"},
		{name: "body not kept", resp: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", status: 200},
		{name: "bytes after the response", resp: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA", keep: true, status: 200, body: "ok", used: 40},
		{name: "long chunked body", resp: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + fmt.Sprintf("%x", len(long)) + "\r\n" + long + "\r\n0\r\n\r\n", keep: true, status: 200, body: long},
	}
	for _, tt := range tests {
		for _, size := range []int{0, 1, 2, 3, 7, 16, 100} {
			t.Run(fmt.Sprintf("%s/%d", tt.name, size), func(t *testing.T) {
				resp, used, mustClose, err := parseAll(tt.resp, tt.head, tt.keep, tt.closed, size)
				if err != nil {
					t.Fatalf("parse: %v", err)
				}
				wantUsed := tt.used
				if wantUsed == 0 {
					wantUsed = len(tt.resp)
				}
				if resp.status != tt.status || string(resp.body) != tt.body || used != wantUsed || mustClose != tt.mustClose {
					t.Fatalf("status %d body %.20q (%d bytes) used %d mustClose %v; want %d %.20q used %d mustClose %v",
						resp.status, resp.body, resp.bytes, used, mustClose, tt.status, tt.body, wantUsed, tt.mustClose)
				}
			})
		}
	}
}

func TestParserErrors(t *testing.T) {
	tests := []struct {
		name, resp string
		closed     bool
		want       string
	}{
		{"garbage", "SSH-2.0-OpenSSH\r\n\r\n", false, "malformed response: status line"},
		{"bad status", "HTTP/1.1 2x0 OK\r\n\r\n", false, "malformed response: status line"},
		{"status line too long", "HTTP/1.1 200 " + strings.Repeat("a", maxLineLen), false, "status line too long"},
		{"header line too long", "HTTP/1.1 200 OK\r\nX: " + strings.Repeat("a", maxLineLen), false, "header line too long"},
		{"bad content-length", "HTTP/1.1 200 OK\r\nContent-Length: 1e3\r\n\r\n", false, "Content-Length"},
		{"empty content-length", "HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n", false, "empty Content-Length"},
		{"huge content-length", "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n", false, "Content-Length"},
		{"bad chunk size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", false, "chunk size line"},
		{"chunk too large", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1234567890abcdef0\r\n", false, "chunk size too large"},
		{"truncated body", "HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nshort", true, io.ErrUnexpectedEOF.Error()},
		{"truncated head", "HTTP/1.1 200 OK\r\nContent-", true, io.ErrUnexpectedEOF.Error()},
		{"nothing", "", true, io.EOF.Error()},
	}
	for _, tt := range tests {
		for _, size := range []int{0, 1, 5} {
			t.Run(fmt.Sprintf("%s/%d", tt.name, size), func(t *testing.T) {
				_, _, _, err := parseAll(tt.resp, false, false, tt.closed, size)
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("err = %v; want %q", err, tt.want)
				}
			})
		}
	}
}

// FuzzParser: any bytes, split anywhere, parse to the same outcome as the
// same bytes in one piece, and never panic.
func FuzzParser(f *testing.F) {
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"), uint8(3))
	f.Add([]byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhel\r\n0\r\n\r\n"), uint8(1))
	f.Add([]byte("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 404 Not Found\r\n\r\nnope"), uint8(7))
	f.Fuzz(func(t *testing.T, b []byte, split uint8) {
		r1, u1, c1, e1 := parseAll(string(b), false, true, true, 0)
		r2, u2, c2, e2 := parseAll(string(b), false, true, true, int(split)%17+1)
		if (e1 == nil) != (e2 == nil) || (e1 != nil && e1.Error() != e2.Error()) {
			t.Fatalf("whole: %v; split by %d: %v", e1, int(split)%17+1, e2)
		}
		if e1 == nil && (r1.status != r2.status || r1.bytes != r2.bytes || string(r1.body) != string(r2.body) || u1 != u2 || c1 != c2) {
			t.Fatalf("whole: %+v used %d close %v; split: %+v used %d close %v", r1, u1, c1, r2, u2, c2)
		}
	})
}
