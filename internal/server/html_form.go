package server

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"

	"lode/internal/query"
	"lode/internal/web"
)

// htmlFilterOps are the filter builder's operators, from the query
// package's list (Datasette's order and labels).
var htmlFilterOps = func() []web.Option {
	var out []web.Option
	for _, l := range query.Lookups() {
		out = append(out, web.Option{Value: l.Key, Label: l.Display})
	}
	return out
}()

// htmlLookup returns the filter operator called key.
func htmlLookup(key string) (query.Lookup, bool) {
	for _, l := range query.Lookups() {
		if l.Key == key {
			return l, true
		}
	}
	return query.Lookup{}, false
}

// htmlFilterQuery turns a submitted filter-builder form (repeated
// _filter_column/_filter_op/_filter_value fields) into the canonical query
// string of the same view: one col__op=value parameter per filled row, the
// form's other fields (hidden _sort, _facet, _size, and _search when set)
// kept as they are. ok is false when q is not a filter-builder submission.
func htmlFilterQuery(q url.Values) (query string, ok bool) {
	cols, has := q[web.FilterColumnField]
	if !has {
		return "", false
	}
	ops, vals := q[web.FilterOpField], q[web.FilterValueField]
	out := url.Values{}
	for k, vs := range q {
		switch k {
		case web.FilterColumnField, web.FilterOpField, web.FilterValueField:
			continue
		case "_search", "_next":
			// A new filter starts again from page 1; an empty search is no search.
			if k == "_search" && vs[0] != "" {
				out[k] = vs
			}
			continue
		}
		out[k] = vs
	}
	for i, col := range cols {
		if col == "" {
			continue
		}
		op, val := "exact", ""
		if i < len(vals) {
			val = vals[i]
		}
		if i < len(ops) {
			if l, ok := htmlLookup(ops[i]); ok {
				op = l.Key
				if l.NoArgument {
					val = "1" // as Datasette's form sends for is null & co.
				}
			}
		}
		out.Add(col+"__"+op, val)
	}
	return out.Encode(), true
}

// htmlCSRFCookie holds the CSRF token of the HTML write forms; the form repeats it
// in web.CSRFField. A cross-site page can make a browser send the cookie but
// cannot read it, so it cannot fill in the field (double-submit cookie, the
// scheme of Datasette's asgi-csrf). SameSite=Lax keeps the cookie off
// cross-site POSTs as well.
const htmlCSRFCookie = "lode_csrftoken"

// errHTMLCSRF is the message of a form POST whose token is missing or wrong.
var errHTMLCSRF = errors.New("form token missing or wrong (CSRF check failed): reload the page and submit the form again")

// htmlCSRFToken returns the request's CSRF token, creating one (and its cookie)
// when the browser has none yet.
func htmlCSRFToken(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(htmlCSRFCookie); err == nil && htmlValidToken(c.Value) {
		return c.Value
	}
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+).
	tok := hex.EncodeToString(b[:])
	http.SetCookie(w, &http.Cookie{
		Name: htmlCSRFCookie, Value: tok, Path: "/",
		HttpOnly: true, SameSite: http.SameSiteLaxMode,
	})
	return tok
}

func htmlValidToken(s string) bool {
	if len(s) != 32 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// htmlCheckCSRF reports errHTMLCSRF unless the parsed form's token equals the cookie.
func htmlCheckCSRF(r *http.Request) error {
	c, err := r.Cookie(htmlCSRFCookie)
	if err != nil || !htmlValidToken(c.Value) {
		return errHTMLCSRF
	}
	if subtle.ConstantTimeCompare([]byte(r.PostFormValue(web.CSRFField)), []byte(c.Value)) != 1 {
		return errHTMLCSRF
	}
	return nil
}
