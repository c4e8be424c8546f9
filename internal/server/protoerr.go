package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
)

// ServeListener wraps a serving process's listener: at most maxConns
// connections at once (LimitListener), and the errors net/http answers
// by itself, before a request exists, are JSON like every other error
// (protocolErrorConn).
func ServeListener(ln net.Listener, maxConns int, log *slog.Logger) net.Listener {
	return protocolErrorListener{LimitListener(ln, maxConns, log)}
}

type protocolErrorListener struct{ net.Listener }

func (l protocolErrorListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &protocolErrorConn{Conn: c}, nil
}

// protocolErrorConn rewrites the answers net/http writes itself when it
// cannot read a request: a request line and headers over
// MaxHeaderBytes (431), malformed HTTP (400), a missing Host header
// (400), an unsupported version (505) or transfer encoding (501). Go
// writes each in a single Write on the raw connection: a status line,
// exactly goErrorHeaders, and a text body. A response that went through
// a handler never matches: its headers are sorted (Connection before
// Content-Type) and always hold a Date.
type protocolErrorConn struct {
	net.Conn
}

// goErrorHeaders is net/http's errorHeaders (server.go).
const goErrorHeaders = "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"

func (c *protocolErrorConn) Write(p []byte) (int, error) {
	if len(p) < 13 || p[9] < '4' || !bytes.HasPrefix(p, []byte("HTTP/1.1 ")) {
		return c.Conn.Write(p)
	}
	j, ok := protocolErrorJSON(p)
	if !ok {
		return c.Conn.Write(p)
	}
	if _, err := c.Conn.Write(j); err != nil {
		return 0, err
	}
	return len(p), nil
}

// CloseWrite keeps net/http's half-close of a connection it is done with.
func (c *protocolErrorConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// protocolErrorJSON turns one of net/http's own error answers into the
// JSON error Lode's handlers write; false if p is not one.
func protocolErrorJSON(p []byte) ([]byte, bool) {
	head, body, ok := bytes.Cut(p, []byte(goErrorHeaders))
	if !ok || len(head) < 14 || head[12] != ' ' || bytes.ContainsAny(head, "\r\n") {
		return nil, false
	}
	status, err := strconv.Atoi(string(head[9:12]))
	if err != nil || status < 400 || status > 599 {
		return nil, false
	}
	// The body is "431 Request Header Fields Too Large" or
	// "400 Bad Request: missing required Host header".
	msg := strings.TrimPrefix(string(body), strconv.Itoa(status)+" ")
	if status == 431 {
		msg = fmt.Sprintf("Request header fields too large: the request line and headers may hold at most %d KiB. "+
			"Shorten the URL (for a long query, save it as a canned query in lode.yaml and pass its parameters)", MaxHeaderBytes>>10)
	}
	m, err := json.Marshal(msg)
	if err != nil {
		return nil, false
	}
	b := fmt.Appendf(nil, `{"ok": false, "error": %s, "status": %d, "title": null}`, m, status)
	reason := string(head[13:])
	if i := strings.IndexByte(reason, ':'); i >= 0 {
		reason = reason[:i] // "Bad Request: malformed Host header" is a reason plus detail
	}
	return fmt.Appendf(nil, "HTTP/1.1 %d %s\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
		status, reason, len(b), b), true
}
