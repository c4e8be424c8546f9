package server

import (
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"lode/internal/query"
)

// withMagic returns values with the magic parameters among names that a
// canned query uses filled in from the request, as Datasette fills them:
// _actor_KEY (a field of the actor), _header_NAME (a request header,
// "_" read as "-"), _cookie_NAME, _now_epoch, _now_date_utc,
// _now_datetime_utc and _random_chars_N. A value the client sent for a
// magic name is dropped, so an anonymous request cannot pose as an actor
// with ?_actor_id=root; a magic name with no value here (no actor, no such
// cookie) stays missing. values is not changed.
func withMagic(r *http.Request, rt *route, names []string, values url.Values) url.Values {
	var out url.Values
	for _, n := range names {
		if !isMagic(n) {
			continue
		}
		if out == nil {
			out = make(url.Values, len(values)+1)
			for k, vs := range values {
				out[k] = vs
			}
		}
		delete(out, n)
		if v, ok := magicValue(r, rt, n); ok {
			out.Set(n, v)
		}
	}
	if out == nil {
		return values
	}
	return out
}

// isMagic reports a name of one of the magic parameter families.
func isMagic(name string) bool {
	kind, key, ok := strings.Cut(strings.TrimPrefix(name, "_"), "_")
	if !ok || !strings.HasPrefix(name, "_") || key == "" {
		return false
	}
	switch kind {
	case "actor", "header", "cookie", "now", "random":
		return true
	}
	return false
}

func magicValue(r *http.Request, rt *route, name string) (string, bool) {
	if !isMagic(name) {
		return "", false
	}
	kind, key, _ := strings.Cut(strings.TrimPrefix(name, "_"), "_")
	switch kind {
	case "actor":
		if rt.access == nil || rt.access.actor == nil {
			return "", false
		}
		v, ok := rt.access.actor[key]
		if !ok {
			return "", false
		}
		return query.PyStr(v), true
	case "header":
		h := r.Header.Values(strings.ReplaceAll(key, "_", "-"))
		if len(h) == 0 {
			return "", true // Datasette: an absent header is ""
		}
		return h[0], true
	case "cookie":
		c, err := r.Cookie(key)
		if err != nil {
			return "", false
		}
		return c.Value, true
	case "now":
		now := time.Now().UTC()
		switch key {
		case "epoch":
			return strconv.FormatInt(now.Unix(), 10), true
		case "date_utc":
			return now.Format("2006-01-02"), true
		case "datetime_utc":
			return now.Format("2006-01-02T15:04:05") + "Z", true
		}
	case "random":
		n, err := strconv.Atoi(strings.TrimPrefix(key, "chars_"))
		if !strings.HasPrefix(key, "chars_") || err != nil || n < 0 || n > 1<<16 {
			return "", false
		}
		b := make([]byte, (n+1)/2)
		_, _ = rand.Read(b)
		return hex.EncodeToString(b)[:n], true
	}
	return "", false
}

// namedArgs binds each of names (a statement's :named parameters in order
// of first use, which is SQLite's numbering) to its value in values, ""
// when absent. A name that does not start with a letter (_actor_id) is
// bound by its position: database/sql refuses such names.
func namedArgs(names []string, values url.Values) []any {
	args := make([]any, len(names))
	for i, n := range names {
		if n != "" && (n[0] >= 'a' && n[0] <= 'z' || n[0] >= 'A' && n[0] <= 'Z') {
			args[i] = sql.Named(n, values.Get(n))
		} else {
			args[i] = values.Get(n)
		}
	}
	return args
}

// missingParam is the first of names without a value, or "".
func missingParam(names []string, values url.Values) string {
	for _, n := range names {
		if _, ok := values[n]; !ok {
			return n
		}
	}
	return ""
}
