package loadgen

import (
	"bytes"
	"encoding/json"
	"html"
	"net/http"
	"regexp"
	"strconv"
	"strings"
)

// statusMessage is the group message of a failed response: its status and
// what the body says caused it, e.g. "503 database is locked" or "500
// OperationalError: database is locked". Failures are counted by this
// message, so it must name the cause and nothing that varies per request.
func statusMessage(resp response) string {
	msg := bodyMessage(resp.body)
	if msg == "" {
		msg = http.StatusText(resp.status)
	}
	return clip(strconv.Itoa(resp.status) + " " + msg)
}

// bodyMessage reads the cause of an error from a response body, whatever
// the server:
//   - JSON: the "error" field (Datasette, Lode; an object is kept as JSON),
//     else "detail" or "message", else the "errors" list (Datasette's write
//     API, joined with "; "); a string "code" (Lode's SQLite extended
//     code, e.g. SQLITE_BUSY_SNAPSHOT) is kept in brackets, so lock
//     failures of different kinds are counted apart;
//   - HTML: Django's debug page as "ExceptionName: value", else the
//     <title>, else the first <h1>, else the first line of text;
//   - text: a Python traceback's last line, Django's plain-text debug page
//     as "ExceptionName: value", else the first line.
//
// Python exception names lose their module path ("django.db.utils.
// OperationalError" → "OperationalError"). When the body mentions a lock
// ("database is locked", SQLITE_BUSY) that the chosen message does not, the
// message gets " (database is locked)", so a server that answers a lock
// with a generic page still counts as a lock error. "" when the body says
// nothing usable.
func bodyMessage(body []byte) string {
	t := bytes.TrimSpace(body)
	if len(t) == 0 {
		return ""
	}
	var msg string
	switch {
	case t[0] == '{':
		msg = jsonMessage(t)
	case t[0] == '<':
		msg = htmlMessage(t)
	default:
		msg = textMessage(string(t))
	}
	msg = strings.Join(strings.Fields(msg), " ")
	if lockPhrase(body) && !lockPhrase([]byte(msg)) {
		if msg == "" {
			return "database is locked"
		}
		msg += " (database is locked)"
	}
	return msg
}

func jsonMessage(b []byte) string {
	var e struct {
		Error   any `json:"error"`
		Detail  any `json:"detail"`
		Message any `json:"message"`
		Errors  any `json:"errors"`
		Code    any `json:"code"`
	}
	if json.Unmarshal(b, &e) != nil {
		return textMessage(string(b))
	}
	msg := ""
	for _, v := range []any{e.Error, e.Detail, e.Message} {
		switch x := v.(type) {
		case nil:
			continue
		case string:
			msg = x
		default:
			j, _ := json.Marshal(x)
			msg = string(j)
		}
		if msg != "" {
			break
		}
	}
	if list, ok := e.Errors.([]any); ok && msg == "" {
		var parts []string
		for _, v := range list {
			if s, ok := v.(string); ok && s != "" {
				parts = append(parts, s)
			}
		}
		msg = strings.Join(parts, "; ")
	}
	if code, ok := e.Code.(string); ok && code != "" && msg != "" {
		msg += " (" + code + ")"
	}
	return msg
}

var (
	titleRE   = regexp.MustCompile(`(?is)<title[^>]*>(.*?)</title>`)
	h1RE      = regexp.MustCompile(`(?is)<h1[^>]*>(.*?)</h1>`)
	tagRE     = regexp.MustCompile(`(?s)<[^>]*>`)
	excValRE  = regexp.MustCompile(`(?is)<pre class="exception_value">(.*?)</pre>`)
	scriptRE  = regexp.MustCompile(`(?is)<(script|style)[^>]*>.*?</(script|style)>`)
	djangoRE  = regexp.MustCompile(`^([A-Za-z_][\w.]*) at (/\S*)$`)
	pyExcRE   = regexp.MustCompile(`^((?:[a-z_]\w*\.)+)?([A-Z]\w*)(?:: (.*))?$`)
	pyKindRE  = regexp.MustCompile(`(Error|Exception|Warning|Exit|Interrupt|Failure|Violation|Timeout)$`)
	lockWords = []string{"database is locked", "database table is locked", "sqlite_busy", "database is busy"}
)

// htmlText turns an HTML fragment into its text.
func htmlText(s string) string {
	return strings.Join(strings.Fields(html.UnescapeString(tagRE.ReplaceAllString(s, " "))), " ")
}

func htmlMessage(b []byte) string {
	s := string(b)
	var title string
	if m := titleRE.FindStringSubmatch(s); m != nil {
		title = htmlText(m[1])
	}
	// Django's debug page: <title>OperationalError at /write/</title> and
	// the message in <pre class="exception_value">.
	if m := djangoRE.FindStringSubmatch(title); m != nil {
		name := pyName(m[1])
		if v := excValRE.FindStringSubmatch(s); v != nil {
			if val := firstLine(htmlText(v[1])); val != "" {
				return name + ": " + val
			}
		}
		return name
	}
	if title != "" {
		return title
	}
	if m := h1RE.FindStringSubmatch(s); m != nil {
		if h := htmlText(m[1]); h != "" {
			return h
		}
	}
	return firstLine(htmlText(scriptRE.ReplaceAllString(s, " ")))
}

func textMessage(s string) string {
	lines := strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n")
	var nonEmpty []string
	for _, l := range lines {
		if l = strings.TrimSpace(l); l != "" {
			nonEmpty = append(nonEmpty, l)
		}
	}
	if len(nonEmpty) == 0 {
		return ""
	}
	// Django's plain-text debug page: "OperationalError at /write/", then
	// the exception's message.
	if m := djangoRE.FindStringSubmatch(nonEmpty[0]); m != nil && len(nonEmpty) > 1 {
		return pyName(m[1]) + ": " + nonEmpty[1]
	}
	// A Python traceback ends with "module.ExceptionName: message".
	if i := indexOf(nonEmpty, "Traceback (most recent call last):"); i >= 0 {
		for _, l := range nonEmpty[i+1:] {
			if m := pyException(l); m != "" {
				return m
			}
		}
	}
	if m := pyException(nonEmpty[0]); m != "" {
		return m
	}
	return nonEmpty[0]
}

// pyName drops a dotted module path from a Python name.
func pyName(s string) string {
	if i := strings.LastIndexByte(s, '.'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// pyException returns a Python exception line ("sqlite3.OperationalError:
// database is locked") without the module path, or "" when line is not
// one: the name must carry a module path or end like an exception's
// (Error, Exception, Failure, ...).
func pyException(line string) string {
	m := pyExcRE.FindStringSubmatch(line)
	if m == nil || (m[1] == "" && !pyKindRE.MatchString(m[2])) {
		return ""
	}
	if m[3] != "" {
		return m[2] + ": " + m[3]
	}
	return m[2]
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return strings.TrimSpace(s[:i])
	}
	return s
}

func indexOf(list []string, s string) int {
	for i, l := range list {
		if l == s {
			return i
		}
	}
	return -1
}

// lockPhrase reports whether b mentions SQLite lock contention.
func lockPhrase(b []byte) bool {
	l := bytes.ToLower(b)
	for _, w := range lockWords {
		if bytes.Contains(l, []byte(w)) {
			return true
		}
	}
	return false
}
