package server

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"slices"
	"strings"

	"lode/internal/query"
	"lode/internal/sqlitedb"
)

// serveBlob answers a .blob URL with one cell's bytes as a download, as
// Datasette's blob renderer: /DB/TABLE/PK.blob?_blob_column=COL for a
// row, /DB/-/query.blob?sql=...&_blob_column=COL&_blob_hash=SHA256 (or
// /DB/CANNED.blob?...) for a query's cell (the links in CSV files).
func (s *Server) serveBlob(w http.ResponseWriter, r *http.Request, rt *route) {
	col := rt.params.Get("_blob_column")
	if !rt.params.Has("_blob_column") {
		s.fail(w, r, rt, badRequest("?_blob_column= is required"))
		return
	}
	var res *sqlitedb.Result
	var err error
	opt := sqlitedb.QueryOptions{TimeLimit: ms(s.settings.SQLTimeLimitMS), MaxRows: s.settings.MaxReturnedRows}
	var bits []string
	if rt.kind == routeRow {
		rq, qerr := s.rowLookup(s.queryTable(rt.schema, rt.table)).Query(rt.pk)
		if qerr != nil {
			s.fail(w, r, rt, qerr)
			return
		}
		opt.Prepared = true
		res, err = rt.db.Query(r.Context(), rq.SQL, rq.Args, opt)
		bits = append(bits, cssClass(rt.table.Name), strings.Join(rt.pk, ","))
	} else {
		// A query's cell: ?sql= or a canned read query's SQL.
		q := rt.params.Get("sql")
		if rt.canned != nil {
			q = rt.canned.SQL
		}
		if err := query.ValidateSelect(q); err != nil {
			s.fail(w, r, rt, err)
			return
		}
		run, _ := query.FirstStatement(q)
		opt.CheckReadOnly = true
		names := query.NamedParams(run)
		bind := rt.params
		if rt.canned != nil {
			bind = withMagic(r, rt, names, bind)
		}
		res, err = rt.db.Query(r.Context(), run, namedArgs(names, bind), opt)
	}
	if err != nil {
		s.fail(w, r, rt, err)
		return
	}
	i := slices.Index(res.Columns, col)
	if i < 0 {
		s.fail(w, r, rt, badRequest(col+" is not a valid column"))
		return
	}
	if len(res.Rows) == 0 {
		s.fail(w, r, rt, notFound(msgRowNotFound))
		return
	}
	row := res.Rows[0]
	hash := rt.params.Get("_blob_hash")
	if hash != "" {
		row = nil
		for _, candidate := range res.Rows {
			b, _ := candidate[i].([]byte)
			sum := sha256.Sum256(b)
			if hex.EncodeToString(sum[:]) == hash {
				row = candidate
				break
			}
		}
		if row == nil {
			s.fail(w, r, rt, badRequest("Link has expired - the requested binary content has changed or could not be found."))
			return
		}
	}
	var body []byte
	switch v := row[i].(type) {
	case []byte:
		body = v
	case string:
		body = []byte(v)
	case nil:
	default:
		body = []byte(query.PyStr(v))
	}
	bits = append(bits, cssClass(col))
	if hash != "" {
		bits = append(bits, hash[:min(6, len(hash))])
	}
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Disposition", `attachment; filename="`+strings.ReplaceAll(strings.Join(bits, "-"), `"`, "")+`.blob"`)
	h.Set("Content-Type", "application/binary")
	w.Write(body)
}
