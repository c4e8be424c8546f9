package server

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// Access log formats (Config.AccessLogFormat).
const (
	// AccessLogCombined is Apache's combined format followed by the
	// duration in microseconds and the serving process id (Apache's
	// LogFormat "%h %l %u %t \"%r\" %>s %b \"%{Referer}i\" \"%{User-agent}i\" %D %P"):
	// parsers of the combined format read it, and the two extra fields
	// are at the end.
	AccessLogCombined = "combined"
	// AccessLogJSON is one JSON object per line.
	AccessLogJSON = "json"
)

// redactedParams are query parameters whose values never reach the log:
// the one-time root sign-in token (/-/auth-token?token=...) and any other
// token a client may put in a URL.
var redactedParams = []string{"token", "_token", "csrftoken"}

// accessLog writes one line per request. The actor is named by its id;
// tokens (the Authorization header, sign-in cookies, token parameters) are
// never written. Safe for concurrent use: each line is one Write call
// under a mutex, so lines of concurrent requests do not interleave, and a
// file opened with O_APPEND keeps whole lines when several worker
// processes write to it.
type accessLog struct {
	mu     sync.Mutex
	w      io.Writer
	json   bool
	pid    string
	log    *slog.Logger
	failed atomic.Bool // a write failed; logged once
	bufs   sync.Pool   // *[]byte
}

func newAccessLog(w io.Writer, format string, log *slog.Logger) (*accessLog, error) {
	a := &accessLog{w: w, pid: strconv.Itoa(os.Getpid()), log: log}
	switch format {
	case "", AccessLogCombined:
	case AccessLogJSON:
		a.json = true
	default:
		return nil, fmt.Errorf("access log format %q: want %s or %s", format, AccessLogCombined, AccessLogJSON)
	}
	return a, nil
}

// write logs one request that started at start and took d.
func (a *accessLog) write(start time.Time, r *http.Request, status int, n int64, d time.Duration, actor, route string) {
	bp, _ := a.bufs.Get().(*[]byte)
	if bp == nil {
		bp = new([]byte)
	}
	b := (*bp)[:0]
	host := r.RemoteAddr
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	target := r.URL.EscapedPath()
	query := redactQuery(r.URL.RawQuery)
	if a.json {
		b = append(b, `{"time":`...)
		b = appendString(b, start.UTC().Format(time.RFC3339Nano))
		b = append(b, `,"pid":`...)
		b = append(b, a.pid...)
		b = append(b, `,"remote":`...)
		b = appendString(b, host)
		b = append(b, `,"method":`...)
		b = appendString(b, r.Method)
		b = append(b, `,"path":`...)
		b = appendString(b, target)
		if query != "" {
			b = append(b, `,"query":`...)
			b = appendString(b, query)
		}
		b = append(b, `,"status":`...)
		b = strconv.AppendInt(b, int64(status), 10)
		b = append(b, `,"bytes":`...)
		b = strconv.AppendInt(b, n, 10)
		b = append(b, `,"duration_ms":`...)
		b = strconv.AppendFloat(b, float64(d.Microseconds())/1000, 'f', 3, 64)
		b = append(b, `,"actor":`...)
		if actor == "" {
			b = append(b, "null"...)
		} else {
			b = appendString(b, actor)
		}
		b = append(b, `,"route":`...)
		b = appendString(b, route)
		b = append(b, `,"proto":`...)
		b = appendString(b, r.Proto)
		b = append(b, `,"referer":`...)
		b = appendString(b, redactURL(r.Referer()))
		b = append(b, `,"user_agent":`...)
		b = appendString(b, r.UserAgent())
		b = append(b, "}\n"...)
	} else {
		b = appendField(b, host)
		b = append(b, " - "...)
		b = appendField(b, actor)
		b = append(b, " ["...)
		b = start.AppendFormat(b, "02/Jan/2006:15:04:05 -0700")
		b = append(b, `] "`...)
		b = appendEscaped(b, r.Method)
		b = append(b, ' ')
		b = appendEscaped(b, target)
		if query != "" {
			b = append(b, '?')
			b = appendEscaped(b, query)
		}
		b = append(b, ' ')
		b = appendEscaped(b, r.Proto)
		b = append(b, `" `...)
		b = strconv.AppendInt(b, int64(status), 10)
		b = append(b, ' ')
		if n > 0 {
			b = strconv.AppendInt(b, n, 10)
		} else {
			b = append(b, '-')
		}
		b = append(b, ` "`...)
		b = appendQuoted(b, redactURL(r.Referer()))
		b = append(b, `" "`...)
		b = appendQuoted(b, r.UserAgent())
		b = append(b, `" `...)
		b = strconv.AppendInt(b, d.Microseconds(), 10)
		b = append(b, ' ')
		b = append(b, a.pid...)
		b = append(b, '\n')
	}
	a.mu.Lock()
	_, err := a.w.Write(b)
	a.mu.Unlock()
	if err != nil && a.failed.CompareAndSwap(false, true) {
		a.log.Warn("cannot write the access log; further errors are not reported", "err", err)
	}
	*bp = b
	a.bufs.Put(bp)
}

// appendField appends s for a space-separated field: "-" when empty,
// escaped otherwise (a space would split the field).
func appendField(b []byte, s string) []byte {
	if s == "" {
		return append(b, '-')
	}
	start := len(b)
	b = appendEscaped(b, s)
	for i := start; i < len(b); i++ {
		if b[i] == ' ' {
			b[i] = '_'
		}
	}
	return b
}

// appendQuoted appends a quoted header field: "-" when absent, as Apache
// writes it.
func appendQuoted(b []byte, s string) []byte {
	if s == "" {
		return append(b, '-')
	}
	return appendEscaped(b, s)
}

// appendEscaped appends s as Apache escapes a quoted log field: '"' and
// '\' get a backslash, control characters and invalid UTF-8 are \xhh.
func appendEscaped(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
			i++
		case c < 0x20 || c == 0x7f:
			b = append(b, '\\', 'x', hex[c>>4], hex[c&15])
			i++
		case c < utf8.RuneSelf:
			b = append(b, c)
			i++
		default:
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				b = append(b, '\\', 'x', hex[c>>4], hex[c&15])
			} else {
				b = append(b, s[i:i+size]...)
			}
			i += size
		}
	}
	return b
}

// redactQuery replaces the values of redactedParams in a raw query string
// with REDACTED; other parameters stay as sent.
func redactQuery(q string) string {
	if q == "" || !strings.Contains(strings.ToLower(q), "token") {
		return q
	}
	parts := strings.Split(q, "&")
	for i, p := range parts {
		k, _, _ := strings.Cut(p, "=")
		if uk, err := url.QueryUnescape(k); err == nil {
			k = uk
		}
		for _, name := range redactedParams {
			if strings.EqualFold(k, name) {
				parts[i] = p[:strings.IndexByte(p+"=", '=')] + "=REDACTED"
			}
		}
	}
	return strings.Join(parts, "&")
}

// redactURL is redactQuery for the query of a full URL (a Referer).
func redactURL(u string) string {
	base, q, ok := strings.Cut(u, "?")
	if !ok {
		return u
	}
	return base + "?" + redactQuery(q)
}
