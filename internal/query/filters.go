package query

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Lookup describes one filter operator, for the HTML filter UI.
type Lookup struct {
	Key        string // URL suffix: col__KEY=value
	Display    string // label shown in a filter form, e.g. "!=", "contains"
	NoArgument bool   // isnull, notnull, isblank, notblank take no value
}

// lookups are Datasette's filters in its order (datasette/filters.py).
var lookups = []Lookup{
	{"exact", "=", false},
	{"not", "!=", false},
	{"contains", "contains", false},
	{"notcontains", "does not contain", false},
	{"endswith", "ends with", false},
	{"startswith", "starts with", false},
	{"gt", ">", false},
	{"gte", "\u2265", false},
	{"lt", "<", false},
	{"lte", "\u2264", false},
	{"like", "like", false},
	{"notlike", "not like", false},
	{"glob", "glob", false},
	{"in", "in", false},
	{"notin", "not in", false},
	{"arraycontains", "array contains", false},
	{"arraynotcontains", "array does not contain", false},
	{"date", "date", false},
	{"isnull", "is null", true},
	{"notnull", "is not null", true},
	{"isblank", "is blank", true},
	{"notblank", "is not blank", true},
}

// Lookups returns the filter operators in Datasette's order.
func Lookups() []Lookup { return append([]Lookup(nil), lookups...) }

func lookupByKey(key string) (Lookup, bool) {
	for _, l := range lookups {
		if l.Key == key {
			return l, true
		}
	}
	return Lookup{}, false
}

// parseFilter turns one non-special query pair into a Filter. ok is false
// for pairs Datasette ignores (an unknown __lookup on a name that is not a
// column). An unknown column is a 400 with SQLite's "no such column" wording,
// which is what Datasette reports when the statement fails to prepare.
func parseFilter(t *Table, key, value string) (f Filter, ok bool, err error) {
	column, op := key, "exact"
	if i := strings.LastIndex(key, "__"); i >= 0 {
		if _, known := lookupByKey(key[i+2:]); known {
			column, op = key[:i], key[i+2:]
		} else if !t.hasColumn(key) {
			return Filter{}, false, nil
		}
	}
	if !t.hasColumn(column) {
		return Filter{}, false, invalidSQL("no such column: %s", column)
	}
	l, _ := lookupByKey(op)
	if l.NoArgument {
		value = ""
	}
	return Filter{Column: column, Op: op, Value: value}, true, nil
}

// sql returns the WHERE clause for f and its arguments.
func (f Filter) sql(t *Table) (string, []any, error) {
	c := colRef(f.Column)
	switch f.Op {
	case "exact":
		return c + " = ?", []any{f.Value}, nil
	case "not":
		return c + " != ?", []any{f.Value}, nil
	case "contains":
		return c + " like ?", []any{"%" + f.Value + "%"}, nil
	case "notcontains":
		return c + " not like ?", []any{"%" + f.Value + "%"}, nil
	case "endswith":
		return c + " like ?", []any{"%" + f.Value}, nil
	case "startswith":
		return c + " like ?", []any{f.Value + "%"}, nil
	case "gt", "gte", "lt", "lte":
		op := map[string]string{"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}[f.Op]
		return c + " " + op + " ?", []any{numericArg(f.Value)}, nil
	case "like":
		return c + " like ?", []any{f.Value}, nil
	case "notlike":
		return c + " not like ?", []any{f.Value}, nil
	case "glob":
		return c + " glob ?", []any{f.Value}, nil
	case "in", "notin":
		vals, err := splitIn(f.Value)
		if err != nil {
			return "", nil, err
		}
		ph := strings.TrimSuffix(strings.Repeat("?, ", len(vals)), ", ")
		op := " in ("
		if f.Op == "notin" {
			op = " not in ("
		}
		return c + op + ph + ")", vals, nil
	case "arraycontains":
		return "? in (select value from json_each(" + QuoteIdent(t.Name) + "." + c + "))", []any{f.Value}, nil
	case "arraynotcontains":
		return "? not in (select value from json_each(" + QuoteIdent(t.Name) + "." + c + "))", []any{f.Value}, nil
	case "date":
		return "date(" + c + ") = ?", []any{f.Value}, nil
	case "isnull":
		return c + " is null", nil, nil
	case "notnull":
		return c + " is not null", nil, nil
	case "isblank":
		return "(" + c + " is null or " + c + " = '')", nil, nil
	case "notblank":
		return "(" + c + " is not null and " + c + " != '')", nil, nil
	}
	return "", nil, badRequest("unknown filter: %s", f.Op)
}

// numericArg mirrors Datasette's numeric=True filters: a value made only of
// ASCII digits is bound as an integer, anything else as text (SQLite's
// column affinity then does the rest).
func numericArg(v string) any {
	if isDigits(v) {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			return n
		}
	}
	return v
}

func isDigits(v string) bool {
	if v == "" {
		return false
	}
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return false
		}
	}
	return true
}

// splitIn parses the value of __in / __notin: a JSON list if it starts
// with "[", otherwise comma-separated values with surrounding spaces
// trimmed.
func splitIn(v string) ([]any, error) {
	if !strings.HasPrefix(v, "[") {
		parts := strings.Split(v, ",")
		out := make([]any, len(parts))
		for i, p := range parts {
			out[i] = strings.TrimSpace(p)
		}
		return out, nil
	}
	dec := json.NewDecoder(bytes.NewReader([]byte(v)))
	dec.UseNumber()
	var raw []any
	if err := dec.Decode(&raw); err != nil || dec.More() {
		return nil, badRequest("Invalid JSON list for __in filter: %s", v)
	}
	out := make([]any, len(raw))
	for i, x := range raw {
		switch x := x.(type) {
		case nil, string:
			out[i] = x
		case bool:
			if x {
				out[i] = int64(1)
			} else {
				out[i] = int64(0)
			}
		case json.Number:
			if n, err := x.Int64(); err == nil {
				out[i] = n
			} else if f, err := x.Float64(); err == nil {
				out[i] = f
			} else {
				out[i] = x.String()
			}
		default:
			return nil, badRequest("__in list items must be strings, numbers or null: %s", v)
		}
	}
	return out, nil
}

// Human returns Datasette's English description of the filter, e.g.
// `state = "CA"` or `_city_id > 1`.
func (f Filter) Human() string {
	c, v := f.Column, f.Value
	switch f.Op {
	case "exact":
		if isDigits(v) {
			return c + " = " + v
		}
		return c + ` = "` + v + `"`
	case "not":
		if isDigits(v) {
			return c + " != " + v
		}
		return c + ` != "` + v + `"`
	case "contains", "arraycontains":
		return c + ` contains "` + v + `"`
	case "arraynotcontains", "notcontains":
		return c + ` does not contain "` + v + `"`
	case "endswith":
		return c + ` ends with "` + v + `"`
	case "startswith":
		return c + ` starts with "` + v + `"`
	case "gt":
		return c + " > " + v
	case "gte":
		return c + " \u2265 " + v
	case "lt":
		return c + " < " + v
	case "lte":
		return c + " \u2264 " + v
	case "like":
		return c + ` like "` + v + `"`
	case "notlike":
		return c + ` not like "` + v + `"`
	case "glob":
		return c + ` glob "` + v + `"`
	case "in", "notin":
		vals, err := splitIn(v)
		if err != nil {
			return c + " " + f.Op + " " + v
		}
		word := " in "
		if f.Op == "notin" {
			word = " not in "
		}
		return c + word + pyJSONList(vals)
	case "date":
		return `"` + c + `" is on date ` + v
	case "isnull":
		return c + " is null"
	case "notnull":
		return c + " is not null"
	case "isblank":
		return c + " is blank"
	case "notblank":
		return c + " is not blank"
	}
	return fmt.Sprintf("%s %s %s", c, f.Op, v)
}

// pyJSONList formats values like Python's json.dumps(list): ", " between
// items, non-ASCII escaped.
func pyJSONList(vals []any) string {
	parts := make([]string, len(vals))
	for i, v := range vals {
		switch v := v.(type) {
		case string:
			parts[i] = pyJSONString(v)
		case nil:
			parts[i] = "null"
		case float64:
			parts[i] = PyStr(v)
		default:
			parts[i] = fmt.Sprint(v)
		}
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// pyJSONString encodes s like Python's json.dumps with ensure_ascii=True.
func pyJSONString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\b':
			b.WriteString(`\b`)
		case r == '\f':
			b.WriteString(`\f`)
		case r < 0x20 || (r >= 0x7f && r < 0x10000):
			if r < 0x7f {
				fmt.Fprintf(&b, `\u%04x`, r)
			} else if r == 0x7f {
				b.WriteRune(r)
			} else {
				fmt.Fprintf(&b, `\u%04x`, r)
			}
		case r >= 0x10000:
			r -= 0x10000
			fmt.Fprintf(&b, `\u%04x\u%04x`, 0xd800+(r>>10), 0xdc00+(r&0x3ff))
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
