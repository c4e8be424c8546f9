package query

import (
	"regexp"
	"strings"
)

var filterColumnN = regexp.MustCompile(`^_filter_column_\d+$`)

// FormRedirect turns the HTML filter form's arguments into the canonical
// table URL, like Datasette's filters_should_redirect and _sort_by_desc
// handling: ?_filter_column=state&_filter_op=exact&_filter_value=CA (also
// numbered _filter_column_1 ...) becomes ?state__exact=CA, and
// ?_sort=x&_sort_by_desc=on becomes ?_sort_desc=x. It returns the path and
// query to redirect to, and false when no redirect is needed.
func FormRedirect(req RequestURL) (string, bool) {
	pairs := parseQueryPairs(req.RawQuery)
	get := func(k string) (string, bool) {
		for _, p := range pairs {
			if p.k == k {
				return p.v, true
			}
		}
		return "", false
	}
	type arg struct {
		k, v   string
		remove bool
	}
	var args []arg
	split := func(op, value string) (string, string) {
		if o, v, ok := strings.Cut(op, "__"); ok {
			return o, v
		}
		return op, value
	}
	if col, ok := get("_filter_column"); ok || hasKey(pairs, "_filter_op") || hasKey(pairs, "_filter_value") {
		op, _ := get("_filter_op")
		val, _ := get("_filter_value")
		op, val = split(op, val)
		if col != "" {
			args = append(args, arg{k: col + "__" + op, v: val})
		}
		for _, k := range []string{"_filter_column", "_filter_op", "_filter_value"} {
			if hasKey(pairs, k) {
				args = append(args, arg{k: k, remove: true})
			}
		}
	}
	for _, p := range pairs {
		if !filterColumnN.MatchString(p.k) {
			continue
		}
		n := p.k[strings.LastIndex(p.k, "_")+1:]
		op, _ := get("_filter_op_" + n)
		if op == "" {
			op = "exact"
		}
		val, _ := get("_filter_value_" + n)
		op, val = split(op, val)
		if p.v != "" {
			args = append(args, arg{k: p.v + "__" + op, v: val})
		}
		args = append(args, arg{k: "_filter_column_" + n, remove: true}, arg{k: "_filter_op_" + n, remove: true}, arg{k: "_filter_value_" + n, remove: true})
	}
	if len(args) == 0 {
		if _, ok := get("_sort_by_desc"); !ok {
			return "", false
		}
		sort, _ := get("_sort")
		args = append(args, arg{k: "_sort_by_desc", remove: true}, arg{k: "_sort", remove: true})
		if sort != "" {
			args = append(args, arg{k: "_sort_desc", v: sort})
		}
		// _sort_desc replaces any earlier one.
		pairs = removePairs(pairs, "_sort_desc", "", false)
	}
	for _, a := range args {
		if a.remove {
			pairs = removePairs(pairs, a.k, "", false)
		}
	}
	for _, a := range args {
		if !a.remove {
			pairs = append(pairs, queryPair{a.k, a.v})
		}
	}
	return req.Path + encodePairs(pairs), true
}

func hasKey(pairs []queryPair, k string) bool {
	for _, p := range pairs {
		if p.k == k {
			return true
		}
	}
	return false
}
