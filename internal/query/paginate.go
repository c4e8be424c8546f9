package query

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// NullToken is the next-token component Datasette uses for a NULL sort
// value. A text value "$null" is tilde-encoded as "~24null", so the two
// never collide.
const NullToken = "$null"

// ParseNextToken splits a Datasette _next token into its tilde-decoded
// components. The first component of a sorted table's token is the sort
// value; isNull[i] is true when component i was the literal $null.
// Components are raw bytes (they may come from BLOB keys); any text is a
// valid token, so it never fails: a wrong token selects the wrong rows or
// none, never other SQL.
func ParseNextToken(token string) (parts []string, isNull []bool) {
	raw := strings.Split(token, ",")
	parts = make([]string, len(raw))
	isNull = make([]bool, len(raw))
	for i, r := range raw {
		if r == NullToken {
			isNull[i] = true
			continue
		}
		parts[i] = tildeDecodeBytes(r)
	}
	return parts, isNull
}

// keysetArm is one WHERE condition (with its arguments) selecting rows
// after a _next token.
type keysetArm struct {
	clause string
	args   []any
}

// keysetClause turns a _next token into the condition that starts the page
// just after the row the token names, in ORDER BY order: sort column
// (NULLs first ascending, last descending, as SQLite sorts them), then key
// columns ascending. Key columns compare as a row value, which SQLite
// satisfies with a range seek on the primary key or rowid.
//
// Two cases return two arms to be joined with UNION ALL: the rows after a
// non-NULL value in a descending sort (smaller values, then the NULLs) and
// the rows after a NULL in an ascending sort (later NULLs, then every
// value). A single "a OR b IS NULL" condition there makes SQLite collect and
// sort every matching row (a multi-index OR), which on a million-row table
// costs about half a second a page; as two arms each one is an index range
// read in order, and SQLite merges them.
func (s *Select) keysetClause(token string, keys []string) ([]keysetArm, error) {
	parts, isNull := ParseNextToken(token)
	want := len(keys)
	if s.SortColumn != "" {
		want++
	}
	if len(parts) != want {
		return nil, badRequest("Invalid _next token: %s (expected %d comma-separated values)", token, want)
	}
	var sortVal any
	sortNull := false
	if s.SortColumn != "" {
		sortNull = isNull[0]
		if !sortNull {
			sortVal = tokenArg(s.Table, s.SortColumn, parts[0])
		}
		parts, isNull = parts[1:], isNull[1:]
	}
	keyArgs := make([]any, len(keys))
	for i, k := range keys {
		if isNull[i] {
			keyArgs[i] = nil
			continue
		}
		keyArgs[i] = tokenArg(s.Table, k, parts[i])
	}
	refs := make([]string, len(keys))
	for i, k := range keys {
		refs[i] = colRef(k)
	}
	ph := strings.TrimSuffix(strings.Repeat("?, ", len(keys)), ", ")
	after := "(" + strings.Join(refs, ", ") + ") > (" + ph + ")"
	if s.SortColumn == "" {
		return []keysetArm{{"(" + after + ")", keyArgs}}, nil
	}
	c := colRef(s.SortColumn)
	switch {
	case sortNull && !s.SortDesc:
		// NULLs come first ascending: later NULLs, then every value.
		return []keysetArm{
			{"(" + c + " is null and " + after + ")", keyArgs},
			{c + " is not null", nil},
		}, nil
	case sortNull && s.SortDesc:
		// NULLs come last descending: only NULL rows with a later key.
		return []keysetArm{{"(" + c + " is null and " + after + ")", keyArgs}}, nil
	case !s.SortDesc:
		// "c >= v AND (...)" rather than "c > v OR (c = v AND ...)": the
		// range term lets SQLite seek the index instead of scanning it.
		return []keysetArm{{"(" + c + " >= ? and (" + c + " > ? or " + after + "))", append([]any{sortVal, sortVal}, keyArgs...)}}, nil
	default:
		// Smaller values (and equal ones with a later key), then NULLs.
		return []keysetArm{
			{"(" + c + " <= ? and (" + c + " < ? or " + after + "))", append([]any{sortVal, sortVal}, keyArgs...)},
			{c + " is null", nil},
		}, nil
	}
}

// tokenArg converts one decoded token component back into the value to
// bind for column name. Tokens carry text only; for columns without TEXT
// affinity a component that is exactly the canonical text of an integer or
// a float (as PyStr writes it) is bound as that number, so an untyped column
// holding numbers compares number to number as ORDER BY does. For typed
// numeric columns SQLite's affinity would convert the text anyway.
func tokenArg(t *Table, column, v string) any {
	aff := "INTEGER"
	if c := t.Column(column); c != nil {
		aff = Affinity(c.Type)
		if aff == "BLOB" && c.Type != "" {
			// A declared BLOB column (e.g. a binary UUID key): the
			// token carried its bytes.
			return []byte(v)
		}
	}
	if aff == "TEXT" {
		return v
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil && strconv.FormatInt(n, 10) == v {
		return n
	}
	if f, err := strconv.ParseFloat(v, 64); err == nil && PyStr(f) == v {
		return f
	}
	return v
}

// Affinity returns SQLite's column affinity for a declared type, following
// the rules of https://sqlite.org/datatype3.html#determination_of_column_affinity:
// "INTEGER", "TEXT", "BLOB", "REAL" or "NUMERIC".
func Affinity(declared string) string {
	t := strings.ToUpper(declared)
	switch {
	case strings.Contains(t, "INT"):
		return "INTEGER"
	case strings.Contains(t, "CHAR"), strings.Contains(t, "CLOB"), strings.Contains(t, "TEXT"):
		return "TEXT"
	case t == "" || strings.Contains(t, "BLOB"):
		return "BLOB"
	case strings.Contains(t, "REAL"), strings.Contains(t, "FLOA"), strings.Contains(t, "DOUB"):
		return "REAL"
	}
	return "NUMERIC"
}

// NextToken returns the Datasette-format next token for the page whose last
// shown row is lastRow (values in Columns order, as scanned from SQL).
// Call it only when SQL returned more than PageSize rows and PageSize > 0;
// pass row PageSize-1. A view's token is the offset of the next page
// (Datasette pages views with OFFSET: they have no key).
//
// The format is Datasette's: the tilde-encoded text of each key value
// (rowid, or the primary keys in order) joined by commas, prefixed by the
// sort value when _sort/_sort_desc is used, with $null for a NULL sort
// value. Text follows Python's str(): floats as repr (0.5, 1e+16), so the
// tokens equal the ones Datasette would hand out.
func (s *Select) NextToken(lastRow []any) string {
	if s.Table.IsView {
		return strconv.Itoa(s.Offset + s.PageSize)
	}
	if !s.Paginated || len(s.keyIdx) == 0 {
		return ""
	}
	var parts []string
	if s.sortIdx >= 0 {
		v := unwrapLabel(at(lastRow, s.sortIdx))
		if v == nil {
			parts = append(parts, NullToken)
		} else {
			parts = append(parts, TildeEncode(PyStr(v)))
		}
	}
	for _, i := range s.keyIdx {
		parts = append(parts, TildeEncode(PyStr(unwrapLabel(at(lastRow, i)))))
	}
	return strings.Join(parts, ",")
}

// Hide drops the columns selected only for the next token
// (TokenColumns) from Columns and from rows, in place. Call it after
// NextToken, which needs them.
func (s *Select) Hide(rows [][]any) {
	if s.TokenColumns == 0 {
		return
	}
	n := len(s.Columns) - s.TokenColumns
	s.Columns = s.Columns[:n:n]
	for i, row := range rows {
		if len(row) > n {
			rows[i] = row[:n:n]
		}
	}
	s.TokenColumns = 0
}

func at(row []any, i int) any {
	if i < 0 || i >= len(row) {
		return nil
	}
	return row[i]
}

// Label is an expanded foreign-key value ({"value": 1, "label": "San
// Francisco"} in Datasette's JSON). NextToken unwraps it.
type Label struct {
	Value any `json:"value"`
	Label any `json:"label"`
}

func unwrapLabel(v any) any {
	switch l := v.(type) {
	case Label:
		return l.Value
	case *Label:
		if l != nil {
			return l.Value
		}
	}
	return v
}

// PyStr formats a value scanned from SQLite the way Python's str() does,
// which is what Datasette puts in tokens, toggle URLs and labels: integers
// in decimal, floats as repr ("1.0", "0.1", "1e+16", "inf"), text as is,
// NULL as "None", blobs as their bytes.
func PyStr(v any) string {
	switch v := v.(type) {
	case nil:
		return "None"
	case string:
		return v
	case []byte:
		return string(v)
	case int64:
		return strconv.FormatInt(v, 10)
	case int:
		return strconv.Itoa(v)
	case int32:
		return strconv.FormatInt(int64(v), 10)
	case uint64:
		return strconv.FormatUint(v, 10)
	case float64:
		return pyFloat(v)
	case float32:
		return pyFloat(float64(v))
	case bool:
		if v {
			return "True"
		}
		return "False"
	case time.Time:
		return v.Format("2006-01-02 15:04:05")
	}
	return fmt.Sprint(v)
}

// pyFloat is Python's float repr: the shortest digits that round-trip, in
// fixed notation when the decimal exponent is in [-4, 16), else scientific
// with at least two exponent digits; fixed notation always has a ".0".
// Table pages format every REAL cell with it, so it builds the text in a
// stack buffer and allocates once.
func pyFloat(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	case math.IsNaN(f):
		return "nan"
	}
	var eb [32]byte
	e := strconv.AppendFloat(eb[:0], f, 'e', -1, 64) // e.g. "-1.2345e+06"
	var out [48]byte
	b := out[:0]
	if e[0] == '-' {
		b = append(b, '-')
		e = e[1:]
	}
	i := bytes.IndexByte(e, 'e')
	mant, expStr := e[:i], e[i+1:]
	exp := 0
	for _, c := range expStr[1:] {
		exp = exp*10 + int(c-'0')
	}
	if expStr[0] == '-' {
		exp = -exp
	}
	// The significant digits: "1.2345" -> "12345".
	var db [24]byte
	digits := append(append(db[:0], mant[0]), mant[min(2, len(mant)):]...)
	switch {
	case exp < -4 || exp >= 16:
		b = append(b, digits[0])
		if len(digits) > 1 {
			b = append(append(b, '.'), digits[1:]...)
		}
		b = append(b, 'e')
		if exp < 0 {
			b = append(b, '-')
			exp = -exp
		} else {
			b = append(b, '+')
		}
		if exp < 10 {
			b = append(b, '0')
		}
		b = strconv.AppendInt(b, int64(exp), 10)
	case exp < 0:
		b = append(b, "0."...)
		for range -exp - 1 {
			b = append(b, '0')
		}
		b = append(b, digits...)
	case exp+1 >= len(digits):
		b = append(b, digits...)
		for range exp + 1 - len(digits) {
			b = append(b, '0')
		}
		b = append(b, ".0"...)
	default:
		b = append(append(append(b, digits[:exp+1]...), '.'), digits[exp+1:]...)
	}
	return string(b)
}

// NextURL returns the absolute URL of the next page (Datasette's next_url):
// the request URL with _next replaced by token and, for sorted tables,
// _sort or _sort_desc replaced by the sort column; those keys move to the
// end of the query string. It returns "" when token is "".
func (s *Select) NextURL(req RequestURL, token string) string {
	if token == "" {
		return ""
	}
	add := []queryPair{{"_next", token}}
	if s.SortColumn != "" {
		if s.SortDesc {
			add = append(add, queryPair{"_sort_desc", s.SortColumn})
		} else {
			add = append(add, queryPair{"_sort", s.SortColumn})
		}
	}
	var pairs []queryPair
	for _, p := range parseQueryPairs(req.RawQuery) {
		replaced := false
		for _, a := range add {
			replaced = replaced || p.k == a.k
		}
		if !replaced {
			pairs = append(pairs, p)
		}
	}
	return req.Base + req.Path + encodePairs(append(pairs, add...))
}
