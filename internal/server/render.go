package server

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
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
	buf := getBuf()
	defer putBuf(buf)
	b := buf.Bytes()[:0]
	ctype := "application/json; charset=utf-8"
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
		o.set("rows", rawRows{cols: p.cols, rows: p.rows, arrays: p.shape == "arrays"})
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
				if i > 0 {
					b = append(b, '\n')
				}
				b = appendRowObject(b, keys, row)
			}
		} else {
			b = append(b, '[')
			for i, row := range p.rows {
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
	if !stream {
		opt.MaxRows = s.settings.MaxReturnedRows
		res, err := db.Query(r.Context(), q, args, opt)
		if err != nil {
			s.fail(w, r, rt, err)
			return
		}
		writeCSVRows(w, rt, filename, res.Columns, res.Rows)
		return
	}
	// Streaming has no overall time limit (the client asked for every
	// row); max_csv_mb bounds the size instead. The wait for a connection
	// keeps the limit.
	opt.WaitLimit, opt.TimeLimit = opt.TimeLimit, 0
	var cs *csvStream
	err := db.Each(r.Context(), q, args, opt, func(cols []string) error {
		csvHeaders(w, rt, filename)
		cs = s.newCSVStream(w)
		return cs.header(cols)
	}, func(row []any) error {
		return cs.row(row)
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

func writeCSVRows(w http.ResponseWriter, rt *route, filename string, cols []string, rows [][]any) {
	csvHeaders(w, rt, filename)
	writeCSVBody(w, cols, rows, true)
}

// writeCSVBody writes rows (and the header row when header is set) as CSV
// and reports the first write error (a closed connection, or errCSVLimit).
func writeCSVBody(w io.Writer, cols []string, rows [][]any, header bool) error {
	cw := csv.NewWriter(w)
	cw.UseCRLF = true
	if header {
		cw.Write(cols)
	}
	rec := make([]string, len(cols))
	for _, row := range rows {
		for i, v := range row {
			rec[i] = csvValue(v)
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// errCSVLimit ends a CSV stream that reached max_csv_mb.
var errCSVLimit = errors.New("CSV size limit (max_csv_mb) reached")

// csvStream writes streamed CSV one whole record at a time, so the
// max_csv_mb limit (0 = none) cuts the output at a row boundary.
type csvStream struct {
	out *bufio.Writer
	buf bytes.Buffer
	cw  *csv.Writer
	rec []string
	n   int64
	max int64
}

func (s *Server) newCSVStream(w io.Writer) *csvStream {
	c := &csvStream{out: bufio.NewWriterSize(w, 32<<10), max: int64(s.settings.MaxCSVMB) << 20}
	c.cw = csv.NewWriter(&c.buf)
	c.cw.UseCRLF = true
	return c
}

// header writes the column names.
func (c *csvStream) header(cols []string) error { return c.write(cols) }

// row writes one row of SQLite values.
func (c *csvStream) row(vals []any) error {
	c.rec = c.rec[:0]
	for _, v := range vals {
		c.rec = append(c.rec, csvValue(v))
	}
	return c.write(c.rec)
}

func (c *csvStream) write(rec []string) error {
	c.buf.Reset()
	c.cw.Write(rec)
	c.cw.Flush()
	if c.max > 0 && c.n+int64(c.buf.Len()) > c.max {
		return errCSVLimit
	}
	c.n += int64(c.buf.Len())
	_, err := c.out.Write(c.buf.Bytes())
	return err
}

func (c *csvStream) flush() error { return c.out.Flush() }
