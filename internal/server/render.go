package server

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"lode/internal/query"
	"lode/internal/sqlitedb"
)

// render writes a page: HTML when the route has no extension, otherwise
// JSON built by jsonFn.
func (s *Server) render(w http.ResponseWriter, r *http.Request, rt *route, data any, jsonFn func() any) {
	if rt.format == formatHTML {
		if err := s.html.render(w, r, rt, data); err != nil {
			s.fail(w, r, rt, err)
		}
		return
	}
	v := jsonFn()
	if o, ok := v.(orderedJSON); ok {
		buf := getBuf()
		defer putBuf(buf)
		b := o.appendTo(buf.Bytes()[:0])
		b = append(b, '\n')
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Write(b)
		return
	}
	writeJSONStatus(w, http.StatusOK, v)
}

// rowsPage describes rows to render in one of Datasette's _shape forms.
type rowsPage struct {
	cols      []string
	rows      [][]any
	truncated bool
	shape     string
	// table pages always carry "next" (null when there is no next page).
	isTable bool
	next    string
	nextURL string
	// pkIdx are the indexes of the key columns, for _shape=object.
	pkIdx []int
	// build adds the _extra keys (and facet_results) to the object form.
	build func(o *orderedJSON, extras map[string]bool)
	// jsonCols says that ?_json=COLUMN applies: a query's page, or a
	// table's with _extra=columns (Datasette's rule: it needs "columns").
	jsonCols bool
}

// jsonRowValues applies ?_json=COLUMN (text that is JSON is sent as JSON)
// and ?_json_infinity=1 (infinities sent as Python's Infinity, else null)
// to the rows about to be written; without them the rows are unchanged.
func jsonRowValues(params url.Values, cols []string, rows [][]any, jsonCols bool) [][]any {
	var parse map[int]bool
	if jsonCols {
		for _, c := range params["_json"] {
			if i := slices.Index(cols, c); i >= 0 {
				if parse == nil {
					parse = map[int]bool{}
				}
				parse[i] = true
			}
		}
	}
	inf := isTrue(params.Get("_json_infinity"))
	if parse == nil && !inf {
		return rows
	}
	out := make([][]any, len(rows))
	for i, row := range rows {
		nr := append([]any(nil), row...)
		for j, v := range nr {
			switch x := v.(type) {
			case float64:
				if inf {
					nr[j] = pyFloat(x)
				}
			case string:
				if parse[j] && json.Valid([]byte(x)) {
					nr[j] = json.RawMessage(x)
				}
			}
		}
		out[i] = nr
	}
	return out
}

// extrasOf parses _extra=a,b&_extra=c.
func extrasOf(params url.Values) map[string]bool {
	out := map[string]bool{}
	for _, v := range params["_extra"] {
		for _, e := range strings.Split(v, ",") {
			if e = strings.TrimSpace(e); e != "" {
				out[e] = true
			}
		}
	}
	return out
}

// renderRows renders a table or query result as JSON in the requested
// shape; for HTML it hands data to the HTML renderer.
func (s *Server) renderRows(w http.ResponseWriter, r *http.Request, rt *route, data any, p rowsPage) {
	if rt.format == formatHTML {
		s.render(w, r, rt, data, nil)
		return
	}
	if p.nextURL != "" {
		w.Header().Set("Link", "<"+p.nextURL+`>; rel="next"`)
	}
	p.rows = jsonRowValues(rt.params, p.cols, p.rows, p.jsonCols)
	buf := getBuf()
	defer putBuf(buf)
	b := buf.Bytes()[:0]
	ctype := "application/json; charset=utf-8"
	// The rows' values are bounded by max_response_mb already; escaping
	// and base64 can still make their JSON larger. Encoding stops at the
	// first row past the limit.
	limit := int(s.settings.maxResponseBytes())
	over := func() bool { return limit > 0 && len(b) > limit }
	switch p.shape {
	case "", "objects", "arrays":
		o := orderedJSON{}
		o.set("ok", true)
		if p.isTable {
			if p.next == "" {
				o.set("next", nil)
			} else {
				o.set("next", p.next)
			}
		}
		o.set("rows", rawRows{cols: p.cols, rows: p.rows, arrays: p.shape == "arrays", limit: limit})
		if p.build != nil {
			p.build(&o, extrasOf(rt.params))
		}
		o.set("truncated", p.truncated)
		b = o.appendTo(b)
	case "array":
		keys := encodeKeys(p.cols)
		if isTrue(rt.params.Get("_nl")) {
			ctype = "text/plain"
			for i, row := range p.rows {
				if over() {
					break
				}
				if i > 0 {
					b = append(b, '\n')
				}
				b = appendRowObject(b, keys, row)
			}
		} else {
			b = append(b, '[')
			for i, row := range p.rows {
				if over() {
					break
				}
				if i > 0 {
					b = append(b, ", "...)
				}
				b = appendRowObject(b, keys, row)
			}
			b = append(b, ']')
		}
	case "arrayfirst":
		b = append(b, '[')
		for i, row := range p.rows {
			if over() {
				break
			}
			if i > 0 {
				b = append(b, ", "...)
			}
			if len(row) > 0 {
				b = appendValue(b, row[0])
			} else {
				b = append(b, "null"...)
			}
		}
		b = append(b, ']')
	case "object":
		if len(p.pkIdx) == 0 {
			// Datasette's answer, 200 included.
			writeJSONStatus(w, http.StatusOK, map[string]any{"ok": false, "error": "_shape=object not available for tables with no primary keys"})
			return
		}
		keys := encodeKeys(p.cols)
		b = append(b, '{')
		for i, row := range p.rows {
			if over() {
				break
			}
			if i > 0 {
				b = append(b, ", "...)
			}
			var parts []string
			for _, j := range p.pkIdx {
				parts = append(parts, query.TildeEncode(query.PyStr(unwrapLabel(row[j]))))
			}
			b = appendString(b, strings.Join(parts, ","))
			b = append(b, ": "...)
			b = appendRowObject(b, keys, row)
		}
		b = append(b, '}')
	default:
		s.fail(w, r, rt, badRequest("Invalid _shape: "+p.shape))
		return
	}
	if over() {
		s.fail(w, r, rt, errResponseTooLarge)
		return
	}
	if ctype != "text/plain" {
		b = append(b, '\n')
	}
	w.Header().Set("Content-Type", ctype)
	w.Write(b)
}

func unwrapLabel(v any) any {
	if l, ok := v.(query.Label); ok {
		return l.Value
	}
	return v
}

// csvValue formats a value for CSV the way Datasette does: NULL is empty,
// numbers as Python prints them, blobs as a size note.
func csvValue(v any) string {
	switch x := unwrapLabel(v).(type) {
	case nil:
		return ""
	case string:
		return x
	case int64:
		return strconv.FormatInt(x, 10)
	case []byte:
		return fmt.Sprintf("<Binary: %d bytes>", len(x))
	default:
		return query.PyStr(x)
	}
}

// csvHeaders sets Datasette's CSV headers: text/plain unless _dl is set,
// which asks for a download.
func csvHeaders(w http.ResponseWriter, rt *route, filename string) {
	if rt.params.Get("_dl") != "" {
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", `attachment; filename="`+strings.ReplaceAll(filename, `"`, "")+`"`)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
}

// writeCSV runs q and writes its rows as CSV. Without stream the rows are
// capped at max_returned_rows and read before anything is written (so
// errors are proper JSON errors). With stream (_stream=on) every row is
// written as it is read; an error after the first row can only end the
// body early, so it is logged and appended as a final CSV line.
func (s *Server) writeCSV(w http.ResponseWriter, r *http.Request, rt *route, q string, args []any, opt sqlitedb.QueryOptions, stream bool, filename string) {
	db := rt.db
	co := csvOptions{header: rt.params.Get("_header") != "off", blobURL: queryBlobURL(r, rt)}
	if !stream {
		opt.MaxRows = s.settings.MaxReturnedRows
		res, err := db.Query(r.Context(), q, args, opt)
		if err != nil {
			s.fail(w, r, rt, err)
			return
		}
		s.writeCSVRows(w, rt, filename, res.Columns, res.Rows, co)
		return
	}
	// Streaming has no overall time limit (the client asked for every
	// row); max_csv_mb bounds the size instead. The wait for a connection
	// keeps the limit.
	opt.WaitLimit, opt.TimeLimit = opt.TimeLimit, 0
	var cs *csvStream
	var cols []string
	err := db.Each(r.Context(), q, args, opt, func(c []string) error {
		csvHeaders(w, rt, filename)
		cs, cols = s.newCSVStream(w, co), c
		return cs.header(cols)
	}, func(row []any) error {
		return cs.row(cols, row)
	})
	if err != nil && cs == nil {
		s.fail(w, r, rt, err)
		return
	}
	if cs != nil {
		cs.flush()
	}
	s.csvStreamEnded(w, r, err)
}

// queryBlobURL is the URL a query's CSV gives a blob cell, as Datasette:
// the same query as .blob, naming the column and the blob's SHA-256 (a
// canned query's link also has Datasette's _nofacet=1).
func queryBlobURL(r *http.Request, rt *route) func(cols []string, row []any, i int) string {
	return func(cols []string, row []any, i int) string {
		req := requestURL(r)
		sum := sha256.Sum256(row[i].([]byte))
		path := strings.TrimSuffix(req.Path, ".csv") + ".blob"
		extra := "_blob_column=" + url.QueryEscape(cols[i]) + "&_blob_hash=" + hex.EncodeToString(sum[:])
		if rt.canned != nil {
			extra = "_nofacet=1&" + extra
		}
		if req.RawQuery != "" {
			return req.Base + path + "?" + req.RawQuery + "&" + extra
		}
		return req.Base + path + "?" + extra
	}
}

// csvStreamEnded logs how a CSV stream ended early. A stream cut at
// max_csv_mb just ends; any other error after the first row can only be
// reported as a last line, since the 200 status is already sent.
func (s *Server) csvStreamEnded(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, errCSVLimit):
		s.log.Info("csv stream cut at max_csv_mb", "path", r.URL.Path, "max_csv_mb", s.settings.MaxCSVMB)
	case err != nil && r.Context().Err() == nil:
		s.log.Warn("csv stream ended early", "path", r.URL.Path, "error", err)
		fmt.Fprintf(w, "\r\nerror: %s\r\n", err)
	}
}

// writeCSVRows writes a whole CSV answer.
func (s *Server) writeCSVRows(w http.ResponseWriter, rt *route, filename string, cols []string, rows [][]any, co csvOptions) {
	csvHeaders(w, rt, filename)
	cs := s.newCSVStream(w, co)
	cs.max = 0 // max_returned_rows bounds it
	if err := cs.header(cols); err != nil {
		return
	}
	for _, row := range rows {
		if err := cs.row(cols, row); err != nil {
			break
		}
	}
	cs.flush()
}

// csvOptions are Datasette's CSV choices: the header row (_header=off
// drops it), a COLUMN_label column after each labelled foreign key
// (_labels=on), and what a blob cell holds (a URL to download it).
type csvOptions struct {
	header  bool
	labels  map[string]bool
	blobURL func(cols []string, row []any, i int) string
}

// errCSVLimit ends a CSV stream that reached max_csv_mb.
var errCSVLimit = errors.New("CSV size limit (max_csv_mb) reached")

// csvStream writes CSV one whole record at a time, so the max_csv_mb
// limit (0 = none) cuts the output at a row boundary.
type csvStream struct {
	out *bufio.Writer
	buf bytes.Buffer
	cw  *csv.Writer
	rec []string
	n   int64
	max int64
	co  csvOptions
}

func (s *Server) newCSVStream(w io.Writer, co csvOptions) *csvStream {
	c := &csvStream{out: bufio.NewWriterSize(w, 32<<10), max: int64(s.settings.MaxCSVMB) << 20, co: co}
	c.cw = csv.NewWriter(&c.buf)
	c.cw.UseCRLF = true
	return c
}

// header writes the column names (and label columns), unless turned off.
func (c *csvStream) header(cols []string) error {
	if !c.co.header {
		return nil
	}
	c.rec = c.rec[:0]
	for _, col := range cols {
		c.rec = append(c.rec, col)
		if c.co.labels[col] {
			c.rec = append(c.rec, col+"_label")
		}
	}
	return c.write(c.rec)
}

// row writes one row of SQLite values.
func (c *csvStream) row(cols []string, vals []any) error {
	c.rec = c.rec[:0]
	for i, v := range vals {
		if _, blob := v.([]byte); blob && c.co.blobURL != nil {
			c.rec = append(c.rec, c.co.blobURL(cols, vals, i))
		} else {
			c.rec = append(c.rec, csvValue(v))
		}
		if i < len(cols) && c.co.labels[cols[i]] {
			label := ""
			if l, ok := v.(query.Label); ok && l.Label != nil {
				label = csvValue(l.Label)
			}
			c.rec = append(c.rec, label)
		}
	}
	return c.write(c.rec)
}

func (c *csvStream) write(rec []string) error {
	c.buf.Reset()
	if len(rec) == 1 && rec[0] == "" {
		// A lone empty field, written as Python's csv does (an empty
		// line would read as no record at all).
		c.buf.WriteString("\"\"\r\n")
	} else {
		c.cw.Write(rec)
		c.cw.Flush()
	}
	if c.max > 0 && c.n+int64(c.buf.Len()) > c.max {
		return errCSVLimit
	}
	c.n += int64(c.buf.Len())
	_, err := c.out.Write(c.buf.Bytes())
	return err
}

func (c *csvStream) flush() error { return c.out.Flush() }
