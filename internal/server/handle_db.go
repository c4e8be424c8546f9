package server

import (
	"net/http"
	"net/url"
	"sort"

	"lode/internal/query"
	"lode/internal/sqlitedb"
)

// DatabaseResult is the data of a database page (/DB.json).
type DatabaseResult struct {
	Database string
	Path     string
	Size     int64
	Tables   []DatabaseTable
	Views    []string
	Hidden   int
	// TableColumns maps every table and view to its sorted column names
	// (views map to an empty list, as in Datasette).
	TableColumns    map[string][]string
	AllowExecuteSQL bool
}

// DatabaseTable is one table on a database page.
type DatabaseTable struct {
	Name        string              `json:"name"`
	Columns     []string            `json:"columns"`
	PrimaryKeys []string            `json:"primary_keys"`
	Count       *int64              `json:"count"`
	Hidden      bool                `json:"hidden"`
	FTSTable    *string             `json:"fts_table"`
	ForeignKeys map[string][]fkJSON `json:"foreign_keys"`
	Private     bool                `json:"private"`
}

type fkJSON struct {
	OtherTable  string `json:"other_table"`
	Column      string `json:"column"`
	OtherColumn string `json:"other_column"`
}

func fksJSON(fks []sqlitedb.ForeignKey) []fkJSON {
	out := make([]fkJSON, 0, len(fks))
	for _, fk := range fks {
		out = append(out, fkJSON{OtherTable: fk.OtherTable, Column: fk.Column, OtherColumn: fk.OtherColumn})
	}
	return out
}

// lookupDB resolves the {db} segment: name and format.
func (s *Server) lookupDB(r *http.Request) (*sqlitedb.DB, string, error) {
	seg, format := splitFormat(r.PathValue("db"))
	name, err := decodeName(seg)
	if err != nil {
		return nil, format, err
	}
	db := s.dbs[name]
	if db == nil {
		return nil, format, notFound(msgDatabaseNotFound)
	}
	return db, format, nil
}

func (s *Server) handleDatabase(w http.ResponseWriter, r *http.Request) {
	if seg := r.PathValue("db"); seg == ".json" || seg == "index.json" {
		s.serveIndex(w, r, formatJSON)
		return
	}
	db, format, err := s.lookupDB(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if format == formatCSV {
		s.writeError(w, r, notFound("Not found: "+r.URL.Path))
		return
	}
	// /DB.json?sql= was the pre-1.0 query URL: redirect like Datasette.
	if r.URL.Query().Has("sql") {
		target := "/" + tildeEncode(db.Name) + "/-/query"
		if format != formatHTML {
			target += "." + format
		}
		// A bare 302 like Datasette's (http.Redirect would add an HTML body).
		w.Header().Set("Location", target+"?"+r.URL.RawQuery)
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusFound)
		return
	}
	sch, err := db.Schema(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	res := &DatabaseResult{
		Database: db.Name, Path: "/" + tildeEncode(db.Name), Size: dbFileSize(db),
		TableColumns: map[string][]string{}, AllowExecuteSQL: s.settings.AllowSQL,
	}
	counts := s.tableCounts(r.Context(), db, sch)
	for _, t := range sch.Tables {
		cols := t.ColumnNames()
		if t.IsView {
			res.Views = append(res.Views, t.Name)
			res.TableColumns[t.Name] = []string{}
			continue
		}
		sorted := append([]string(nil), cols...)
		sort.Strings(sorted)
		res.TableColumns[t.Name] = sorted
		if t.Hidden {
			res.Hidden++
		}
		res.Tables = append(res.Tables, DatabaseTable{
			Name: t.Name, Columns: cols, PrimaryKeys: nonNil(t.PrimaryKeys), Count: counts[t.Name],
			Hidden: t.Hidden, FTSTable: strPtr(t.FTSTable),
			ForeignKeys: map[string][]fkJSON{"incoming": fksJSON(t.Incoming), "outgoing": fksJSON(t.Outgoing)},
		})
	}
	s.render(w, r, format, res, func() any {
		views := []map[string]any{}
		for _, v := range res.Views {
			views = append(views, map[string]any{"name": v, "private": false})
		}
		o := orderedJSON{}
		o.set("ok", true)
		o.set("database", res.Database)
		o.set("private", false)
		o.set("path", res.Path)
		o.set("size", res.Size)
		o.set("tables", nonNilSlice(res.Tables))
		o.set("hidden_count", res.Hidden)
		o.set("views", views)
		o.set("queries", []any{})
		o.set("queries_more", false)
		o.set("queries_count", 0)
		o.set("allow_execute_sql", res.AllowExecuteSQL)
		o.set("table_columns", res.TableColumns)
		o.set("metadata", map[string]any{})
		return o
	})
}

// handleDatabaseMeta serves /DB/-/query(.json|.csv).
func (s *Server) handleDatabaseMeta(w http.ResponseWriter, r *http.Request) {
	db, _, err := s.lookupDB(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	name, format := splitFormat(r.PathValue("file"))
	switch name {
	case "query":
		s.serveQuery(w, r, db, format)
	default:
		s.writeError(w, r, notFound("Not found: "+r.URL.Path))
	}
}

// requestURL is the absolute request URL that toggle and next URLs are
// built from.
func requestURL(r *http.Request) query.RequestURL {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return query.RequestURL{Base: scheme + "://" + r.Host, Path: r.URL.EscapedPath(), RawQuery: r.URL.RawQuery}
}

// pathWithReplacedArgs is Datasette's path_with_replaced_args: pairs whose
// key is replaced are dropped, then the new pairs (non-empty) appended, and
// the query re-encoded with quote_plus rules.
func pathWithReplacedArgs(req query.RequestURL, args [][2]string) string {
	replace := map[string]bool{}
	for _, a := range args {
		replace[a[0]] = true
	}
	var parts []string
	for _, kv := range splitQuery(req.RawQuery) {
		if !replace[kv[0]] {
			parts = append(parts, url.QueryEscape(kv[0])+"="+url.QueryEscape(kv[1]))
		}
	}
	for _, a := range args {
		if a[1] != "" {
			parts = append(parts, url.QueryEscape(a[0])+"="+url.QueryEscape(a[1]))
		}
	}
	out := req.Path
	if len(parts) > 0 {
		out += "?"
		for i, p := range parts {
			if i > 0 {
				out += "&"
			}
			out += p
		}
	}
	return out
}

// splitQuery parses a raw query into ordered pairs (like Python's
// parse_qsl, blank values dropped).
func splitQuery(raw string) [][2]string {
	var out [][2]string
	for raw != "" {
		var kv string
		if i := indexAny(raw, "&;"); i >= 0 {
			kv, raw = raw[:i], raw[i+1:]
		} else {
			kv, raw = raw, ""
		}
		if kv == "" {
			continue
		}
		k, v, _ := cut(kv, "=")
		k, err1 := url.QueryUnescape(k)
		v, err2 := url.QueryUnescape(v)
		if err1 != nil || err2 != nil || v == "" {
			continue
		}
		out = append(out, [2]string{k, v})
	}
	return out
}

func indexAny(s, chars string) int {
	for i := 0; i < len(s); i++ {
		for j := 0; j < len(chars); j++ {
			if s[i] == chars[j] {
				return i
			}
		}
	}
	return -1
}

func cut(s, sep string) (string, string, bool) {
	for i := 0; i+len(sep) <= len(s); i++ {
		if s[i:i+len(sep)] == sep {
			return s[:i], s[i+len(sep):], true
		}
	}
	return s, "", false
}

func tildeEncode(s string) string { return query.TildeEncode(s) }
