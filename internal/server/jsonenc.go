package server

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"math"
	"net/http"
	"strconv"
	"sync"
	"unicode/utf8"

	"lode/internal/query"
)

// The row encoder appends SQLite values straight into a byte buffer: no
// per-row maps, no reflection. Buffers are pooled.
var bufPool = sync.Pool{New: func() any { return bytes.NewBuffer(make([]byte, 0, 16<<10)) }}

func getBuf() *bytes.Buffer { b := bufPool.Get().(*bytes.Buffer); b.Reset(); return b }
func putBuf(b *bytes.Buffer) {
	if b.Cap() <= 1<<20 {
		bufPool.Put(b)
	}
}

// appendValue appends v as JSON. SQLite values follow Datasette: integers
// and floats as numbers (non-finite floats as null, as Datasette does),
// text as strings, blobs as {"$base64": true, "encoded": "..."}.
func appendValue(b []byte, v any) []byte {
	switch x := v.(type) {
	case nil:
		return append(b, "null"...)
	case int64:
		return strconv.AppendInt(b, x, 10)
	case int:
		return strconv.AppendInt(b, int64(x), 10)
	case float64:
		return appendFloat(b, x)
	case string:
		return appendString(b, x)
	case []byte:
		if utf8.Valid(x) {
			return appendString(b, string(x)) // as Datasette: a blob that is text is text
		}
		b = append(b, `{"$base64": true, "encoded": "`...)
		b = base64.StdEncoding.AppendEncode(b, x)
		return append(b, `"}`...)
	case bool:
		return strconv.AppendBool(b, x)
	case []string:
		return appendStrings(b, x)
	case query.Label:
		b = append(b, `{"value": `...)
		b = appendValue(b, x.Value)
		b = append(b, `, "label": `...)
		b = appendValue(b, x.Label)
		return append(b, '}')
	case json.RawMessage:
		return append(b, x...)
	case orderedJSON:
		return x.appendTo(b)
	case pyFloat:
		return appendPyFloat(b, float64(x))
	case rowObject:
		return appendRowObject(b, encodeKeys(x.cols), x.row)
	case rawRows:
		return x.appendTo(b)
	default:
		j, err := json.Marshal(x)
		if err != nil {
			return append(b, "null"...)
		}
		return append(b, j...)
	}
}

// appendFloat writes a float so it stays a float when parsed again (1.0,
// not 1), like Python's json.
func appendFloat(b []byte, f float64) []byte {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return append(b, "null"...)
	}
	start := len(b)
	b = strconv.AppendFloat(b, f, 'g', -1, 64)
	for _, c := range b[start:] {
		if c == '.' || c == 'e' || c == 'E' {
			return b
		}
	}
	return append(b, ".0"...)
}

// pyFloat is a float written as Python's json writes it, Infinity,
// -Infinity and NaN included (Datasette's _json_infinity=1).
type pyFloat float64

func appendPyFloat(b []byte, f float64) []byte {
	switch {
	case math.IsInf(f, 1):
		return append(b, "Infinity"...)
	case math.IsInf(f, -1):
		return append(b, "-Infinity"...)
	case math.IsNaN(f):
		return append(b, "NaN"...)
	}
	return appendFloat(b, f)
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// appendStrings appends a JSON array of strings, spaced like Python's json.
func appendStrings(b []byte, ss []string) []byte {
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = appendString(b, s)
	}
	return append(b, ']')
}

// jsonContentType is the Content-Type header value of JSON responses,
// shared (net/http only reads it).
var jsonContentType = []string{"application/json; charset=utf-8"}

// appendRowObject appends one row as {"col": value, ...}; keys are the
// pre-encoded column names.
func appendRowObject(b []byte, keys [][]byte, row []any) []byte {
	b = append(b, '{')
	for i, v := range row {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = append(b, keys[i]...)
		b = append(b, ": "...)
		b = appendValue(b, v)
	}
	return append(b, '}')
}

func appendRowArray(b []byte, row []any) []byte {
	b = append(b, '[')
	for i, v := range row {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = appendValue(b, v)
	}
	return append(b, ']')
}

// encodeKeys pre-encodes column names as JSON strings.
func encodeKeys(cols []string) [][]byte {
	keys := make([][]byte, len(cols))
	for i, c := range cols {
		keys[i] = appendString(nil, c)
	}
	return keys
}

// writeJSONStatus writes v (any JSON-marshalable value) with status.
func writeJSONStatus(w http.ResponseWriter, status int, v any) {
	buf := getBuf()
	defer putBuf(buf)
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		buf.Reset()
		buf.WriteString(`{"ok": false, "error": "response could not be encoded", "status": 500, "title": null}`)
		status = http.StatusInternalServerError
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// orderedJSON is a JSON object whose keys keep insertion order; values are
// appended with appendValue (so rows and labels use the fast path).
type orderedJSON struct {
	keys []string
	vals []any
}

func (o *orderedJSON) set(k string, v any) {
	for i, kk := range o.keys {
		if kk == k {
			o.vals[i] = v
			return
		}
	}
	o.keys = append(o.keys, k)
	o.vals = append(o.vals, v)
}

// MarshalJSON lets an orderedJSON nest inside values encoded by
// encoding/json.
func (o orderedJSON) MarshalJSON() ([]byte, error) { return o.appendTo(nil), nil }

func (o *orderedJSON) appendTo(b []byte) []byte {
	b = append(b, '{')
	for i, k := range o.keys {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = appendString(b, k)
		b = append(b, ": "...)
		b = appendValue(b, o.vals[i])
	}
	return append(b, '}')
}

// rowObject renders one result row as a JSON object in column order.
type rowObject struct {
	cols []string
	row  []any
}

// rawRows renders result rows in a shape, lazily inside orderedJSON.
// With a limit it stops after the row that takes the buffer past it (the
// caller then refuses the response).
type rawRows struct {
	cols   []string
	rows   [][]any
	arrays bool
	limit  int
}

func (r rawRows) appendTo(b []byte) []byte {
	b = append(b, '[')
	var keys [][]byte
	if !r.arrays {
		keys = encodeKeys(r.cols)
	}
	for i, row := range r.rows {
		if r.limit > 0 && len(b) > r.limit {
			break
		}
		if i > 0 {
			b = append(b, ", "...)
		}
		if r.arrays {
			b = appendRowArray(b, row)
		} else {
			b = appendRowObject(b, keys, row)
		}
	}
	return append(b, ']')
}
