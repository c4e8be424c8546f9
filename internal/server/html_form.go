package server

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"lode/internal/web"
)

// htmlFilterOps are the table filter operators the HTML filter builder offers,
// in Datasette's order, with Datasette's labels. The value is the suffix of
// a col__op=value parameter.
var htmlFilterOps = []web.Option{
	{Value: "exact", Label: "="},
	{Value: "not", Label: "!="},
	{Value: "contains", Label: "contains"},
	{Value: "endswith", Label: "ends with"},
	{Value: "startswith", Label: "starts with"},
	{Value: "gt", Label: ">"},
	{Value: "gte", Label: "≥"},
	{Value: "lt", Label: "<"},
	{Value: "lte", Label: "≤"},
	{Value: "like", Label: "like"},
	{Value: "notlike", Label: "not like"},
	{Value: "glob", Label: "glob"},
	{Value: "in", Label: "in"},
	{Value: "notin", Label: "not in"},
	{Value: "arraycontains", Label: "array contains"},
	{Value: "arraynotcontains", Label: "array does not contain"},
	{Value: "date", Label: "date"},
	{Value: "isnull", Label: "is null"},
	{Value: "notnull", Label: "is not null"},
	{Value: "isblank", Label: "is blank"},
	{Value: "notblank", Label: "is not blank"},
}

// htmlNoValueOps take no value: the builder sends "1" for them, as Datasette does.
var htmlNoValueOps = map[string]bool{"isnull": true, "notnull": true, "isblank": true, "notblank": true}

func htmlIsFilterOp(op string) bool {
	for _, o := range htmlFilterOps {
		if o.Value == op {
			return true
		}
	}
	return false
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
		if i < len(ops) && htmlIsFilterOp(ops[i]) {
			op = ops[i]
		}
		if i < len(vals) {
			val = vals[i]
		}
		if htmlNoValueOps[op] {
			val = "1"
		}
		out.Add(col+"__"+op, val)
	}
	return out.Encode(), true
}

// htmlActiveFilters reads the filters of a table view from its query string, for
// the filter builder and the page's "where ..." sentence: col=value (exact)
// and col__op=value for known columns and operators, in key order. Keys that
// start with "_" and have no "__" are special parameters, never filters.
func htmlActiveFilters(q url.Values, columns []string) []web.Filter {
	known := make(map[string]bool, len(columns))
	for _, c := range columns {
		known[c] = true
	}
	var out []web.Filter
	for _, key := range slices.Sorted(maps.Keys(q)) {
		if strings.HasPrefix(key, "_") && !strings.Contains(key, "__") {
			continue // a special parameter like _sort, as in Datasette
		}
		col, op := key, "exact"
		if !known[key] {
			i := strings.LastIndex(key, "__")
			if i <= 0 || !known[key[:i]] || !htmlIsFilterOp(key[i+2:]) {
				continue
			}
			col, op = key[:i], key[i+2:]
		}
		for _, v := range q[key] {
			out = append(out, web.Filter{Column: col, Op: op, Value: v})
		}
	}
	return out
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
