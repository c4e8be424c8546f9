package query

import (
	"net/url"
	"strings"
)

// This file is Lode's one query-string parser. Datasette reads query
// strings with Python's parse_qs/parse_qsl, and Lode follows it everywhere
// (table arguments, ?sql= parameters, toggle and next URLs), so that a
// value means the same wherever it is read: pairs are separated by '&'
// only (a ';' is part of the value), '+' is a space, an invalid %-escape
// is kept literally, and blank values are kept.

// ParseQuery parses a raw query string into values, in order.
func ParseQuery(raw string) url.Values {
	v := url.Values{}
	for _, p := range parseQueryPairs(raw) {
		v[p.k] = append(v[p.k], p.v)
	}
	return v
}

// ParsePairs parses a raw query string into its key, value pairs in order
// (blank values kept).
func ParsePairs(raw string) [][2]string {
	pairs := parseQueryPairs(raw)
	out := make([][2]string, len(pairs))
	for i, p := range pairs {
		out[i] = [2]string{p.k, p.v}
	}
	return out
}

// PathWithReplacedArgs is Datasette's path_with_replaced_args: req's path
// with its query's non-blank pairs, minus those whose key args replace,
// plus args' pairs with a non-empty value, encoded with quote_plus rules.
func PathWithReplacedArgs(req RequestURL, args [][2]string) string {
	replace := map[string]bool{}
	for _, a := range args {
		replace[a[0]] = true
	}
	var pairs []queryPair
	for _, p := range parseQueryPairs(req.RawQuery) {
		if p.v != "" && !replace[p.k] {
			pairs = append(pairs, p)
		}
	}
	for _, a := range args {
		if a[1] != "" {
			pairs = append(pairs, queryPair{a[0], a[1]})
		}
	}
	return req.Path + encodePairs(pairs)
}

// queryPair is one key=value of a query string, in order.
type queryPair struct{ k, v string }

// parseQueryPairs splits a raw query string like Python's parse_qsl with
// keep_blank_values: pairs in order, separated by '&' only, '+' as space,
// invalid %-escapes kept as they are.
func parseQueryPairs(raw string) []queryPair {
	var out []queryPair
	for _, part := range strings.Split(raw, "&") {
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		out = append(out, queryPair{unquotePlus(k), unquotePlus(v)})
	}
	return out
}

// unquotePlus is Python's urllib.parse.unquote_plus: '+' is a space, %XX
// a byte, and a '%' not followed by two hex digits stays literal.
func unquotePlus(s string) string {
	if !strings.ContainsAny(s, "+%") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '+':
			b.WriteByte(' ')
		case c == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]):
			b.WriteByte(unhex(s[i+1])<<4 | unhex(s[i+2]))
			i += 2
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// encodePairs is Python's urlencode (quote_plus) with a leading "?", or ""
// when there are no pairs.
func encodePairs(pairs []queryPair) string {
	if len(pairs) == 0 {
		return ""
	}
	var b strings.Builder
	for i, p := range pairs {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(url.QueryEscape(p.k))
		b.WriteByte('=')
		b.WriteString(url.QueryEscape(p.v))
	}
	return "?" + b.String()
}

// removePairs drops pairs with key k (and value v when matchValue).
func removePairs(pairs []queryPair, k, v string, matchValue bool) []queryPair {
	var out []queryPair
	for _, p := range pairs {
		if p.k == k && (!matchValue || p.v == v) {
			continue
		}
		out = append(out, p)
	}
	return out
}

func hasPair(pairs []queryPair, k, v string) bool {
	for _, p := range pairs {
		if p.k == k && p.v == v {
			return true
		}
	}
	return false
}
