package server

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"runtime"
	"runtime/pprof"
	"sort"
	"strings"
	"time"

	"lode/internal/sqlitedb"
)

// IndexResult is the data of the instance index page (/.json, /).
type IndexResult struct {
	Databases []IndexDatabase
}

// IndexDatabase is one database on the index page, in Datasette's shape.
type IndexDatabase struct {
	Name                    string       `json:"name"`
	Hash                    *string      `json:"hash"`
	Color                   string       `json:"color"`
	Path                    string       `json:"path"`
	TablesAndViewsTruncated []IndexTable `json:"tables_and_views_truncated"`
	TablesAndViewsMore      bool         `json:"tables_and_views_more"`
	TablesCount             int          `json:"tables_count"`
	TableRowsSum            int64        `json:"table_rows_sum"`
	ShowTableRowCounts      bool         `json:"show_table_row_counts"`
	HiddenTableRowsSum      int64        `json:"hidden_table_rows_sum"`
	HiddenTablesCount       int          `json:"hidden_tables_count"`
	ViewsCount              int          `json:"views_count"`
	Private                 bool         `json:"private"`
}

// IndexTable is a table summary on the index page.
type IndexTable struct {
	Name                       string   `json:"name"`
	Columns                    []string `json:"columns"`
	PrimaryKeys                []string `json:"primary_keys"`
	Count                      *int64   `json:"count"`
	Hidden                     bool     `json:"hidden"`
	FTSTable                   *string  `json:"fts_table"`
	NumRelationshipsForSorting int      `json:"num_relationships_for_sorting"`
	Private                    bool     `json:"private"`

	view bool // a view, listed as Datasette lists one: name and private
}

// MarshalJSON writes a view as {"name", "private"}, a table with every
// field.
func (t IndexTable) MarshalJSON() ([]byte, error) {
	if t.view {
		return json.Marshal(struct {
			Name    string `json:"name"`
			Private bool   `json:"private"`
		}{t.Name, t.Private})
	}
	type plain IndexTable
	return json.Marshal(plain(t))
}

// serveIndex serves / and /.json: the databases the actor may see, each
// with its biggest visible tables.
func (s *Server) serveIndex(w http.ResponseWriter, r *http.Request, rt *route) {
	acc := rt.access
	res := &IndexResult{}
	for _, name := range s.dbNames {
		if !acc.canViewDatabase(name) {
			continue
		}
		db := s.dbs[name]
		sch, err := s.schemaOf(r.Context(), db)
		if err != nil {
			s.fail(w, r, rt, err)
			return
		}
		tables := s.visibleTables(acc, name, sch)
		counts := s.tableCounts(r.Context(), db, tables)
		d := IndexDatabase{Name: name, Color: dbColor(name), Path: "/" + tildeEncode(name), ShowTableRowCounts: true,
			Private: acc.privateDatabase(name)}
		var visible, views []IndexTable
		for _, t := range tables {
			if t.IsView {
				d.ViewsCount++
				views = append(views, IndexTable{Name: t.Name, Private: acc.private(name, t.Name), view: true})
				continue
			}
			n := counts[t.Name]
			if t.Hidden {
				d.HiddenTablesCount++
				if n != nil {
					d.HiddenTableRowsSum += *n
				}
				continue
			}
			d.TablesCount++
			if n != nil {
				d.TableRowsSum += *n
			}
			visible = append(visible, IndexTable{
				Name: t.Name, Columns: t.ColumnNames(), PrimaryKeys: nonNil(t.PrimaryKeys), Count: n,
				FTSTable: strPtr(t.FTSTable), Private: acc.private(name, t.Name),
			})
		}
		sort.SliceStable(visible, func(i, j int) bool {
			a, b := visible[i], visible[j]
			ca, cb := derefCount(a.Count), derefCount(b.Count)
			if ca != cb {
				return ca > cb
			}
			return a.Name > b.Name
		})
		d.TablesAndViewsMore = len(visible)+d.ViewsCount > 5
		if len(visible) > 5 {
			visible = visible[:5]
		}
		// Datasette fills the five places left by tables with views.
		visible = append(visible, views[:min(len(views), 5-len(visible))]...)
		d.TablesAndViewsTruncated = nonNilSlice(visible)
		res.Databases = append(res.Databases, d)
	}
	s.render(w, r, rt, res, func() any {
		dbs := orderedJSON{}
		for _, d := range res.Databases {
			dbs.set(d.Name, d)
		}
		o := orderedJSON{}
		o.set("databases", dbs)
		o.set("metadata", map[string]any{})
		return o
	})
}

func derefCount(n *int64) int64 {
	if n == nil {
		return -1
	}
	return *n
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func nonNilSlice[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func strPtr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// dbColor is Datasette's database colour: the first six hex digits of the
// MD5 of the name.
func dbColor(name string) string {
	sum := md5.Sum([]byte(name))
	return hex.EncodeToString(sum[:])[:6]
}

// tableCounts counts the rows of tables, each under
// index_count_time_limit_ms; a count that takes longer is nil (unknown).
func (s *Server) tableCounts(ctx context.Context, db *sqlitedb.DB, tables []*sqlitedb.Table) map[string]*int64 {
	out := map[string]*int64{}
	limit := time.Duration(s.settings.IndexCountTimeLimitMS) * time.Millisecond
	for _, t := range tables {
		if t.IsView {
			continue
		}
		n, ok, err := db.Count(ctx, "SELECT count(*) FROM "+sqlitedb.QuoteIdent(t.Name), nil, limit)
		if err == nil && ok {
			out[t.Name] = &n
		}
	}
	return out
}

// instancePages are the /-/NAME pages serveInstance answers itself, one
// per case of its switch; AddStatusEndpoint refuses these names.
var instancePages = []string{"auth-token", "actor", "versions", "settings", "config", "databases", "plugins", "threads", "schema", "metrics"}

// serveInstance serves the instance pages (JSON, with or without .json),
// then the status endpoints the embedding program added.
func (s *Server) serveInstance(w http.ResponseWriter, r *http.Request, rt *route) {
	var v any
	switch rt.action {
	case "auth-token":
		if s.api == nil {
			s.fail(w, r, rt, forbidden("Invalid token"))
			return
		}
		s.api.handleAuthToken(w, r, rt)
		return
	case "actor":
		var actor any
		if a := rt.access.actor; a != nil {
			if r := rt.access.restr; r != nil {
				// A restricted token's actor shows its restrictions, as
				// Datasette's "_r".
				m := maps.Clone(a)
				m["_r"] = r
				actor = m
			} else {
				actor = a
			}
		}
		v = map[string]any{"actor": actor}
	case "versions":
		v = s.versions(r.Context())
	case "settings":
		v = s.settingsJSON()
	case "config":
		settings := map[string]any{}
		def := DefaultSettings()
		f := def.fields()
		cur := s.settings
		cf := cur.fields()
		for k := range s.explicit {
			if _, ok := f[k]; ok {
				settings[k] = derefAny(cf[k])
			}
		}
		// Datasette's is its configuration with secrets redacted: {}
		// when it has none. Lode's shows only the settings (README).
		if len(settings) == 0 {
			v = map[string]any{}
		} else {
			v = map[string]any{"settings": settings}
		}
	case "databases":
		var list []map[string]any
		for _, n := range s.dbNames {
			if !rt.access.canViewDatabase(n) {
				continue
			}
			db := s.dbs[n]
			list = append(list, map[string]any{
				"name": n, "route": n, "path": db.GivenPath, "size": dbFileSize(db),
				"is_mutable": !db.Immutable(), "is_memory": false, "hash": nil,
			})
		}
		v = nonNilSlice(list)
	case "plugins":
		v = []any{}
	case "threads":
		v = threadsJSON()
	case "schema":
		s.serveSchema(w, r, rt)
		return
	case "metrics":
		if rt.format != formatHTML {
			s.fail(w, r, rt, notFound("Not found: "+r.URL.Path+" (the metrics are at /-/metrics)"))
			return
		}
		s.serveMetrics(w, r, rt)
		return
	default:
		if h := s.statusEndpoints[rt.action]; h != nil {
			if rt.format != formatJSON {
				s.fail(w, r, rt, notFound("Not found: "+r.URL.Path+" (the status is at /-/"+rt.action+".json)"))
				return
			}
			w.Header().Set("Cache-Control", "no-store")
			h.ServeHTTP(w, r)
			return
		}
		// Datasette reads /-/NAME.json as a table NAME of a database "-".
		s.fail(w, r, rt, notFound(msgDatabaseNotFound))
		return
	}
	writeJSONStatus(w, http.StatusOK, v)
}

func derefAny(p any) any {
	switch p := p.(type) {
	case *int:
		return *p
	case *bool:
		return *p
	}
	return nil
}

// threadsJSON is /-/threads.json in Datasette's shape, for Go: the
// process's OS threads (runtime threadcreate profile) and its goroutines
// as tasks (counted, not listed: their stacks are not for the public).
func threadsJSON() map[string]any {
	n := pprof.Lookup("threadcreate").Count()
	threads := make([]map[string]any, 0, n)
	for i := 0; i < n; i++ {
		threads = append(threads, map[string]any{"name": fmt.Sprintf("thread-%d", i), "ident": i, "daemon": i > 0})
	}
	return map[string]any{"num_threads": n, "threads": threads, "num_tasks": runtime.NumGoroutine(), "tasks": []string{}}
}

// settingsJSON is /-/settings.json: the settings, and each database's
// SQLite settings as read back when it was opened (never a wait for a
// connection: the writer may hold the write connection for as long as it
// serves).
func (s *Server) settingsJSON() map[string]any {
	out := map[string]any{}
	for k, p := range s.settings.fields() {
		out[k] = derefAny(p)
	}
	// Datasette's settings that Lode has fixed values for.
	out["base_url"] = "/"
	out["force_https_urls"] = false
	out["trace_debug"] = false
	out["max_insert_rows"] = DefaultMaxInsertRows
	if s.api != nil {
		out["max_insert_rows"] = s.api.cfg.MaxInsertRows
	}
	sq := map[string]any{}
	for _, n := range s.dbNames {
		eff := s.dbs[n].EffectiveSettings()
		sq[n] = map[string]any{
			"journal_mode": eff.JournalMode, "synchronous": eff.Synchronous,
			"busy_timeout_ms": eff.BusyTimeout.Milliseconds(), "txlock": eff.TxLock,
			"cache_size": eff.CacheSize, "mmap_size": eff.MmapSize, "immutable": eff.Immutable,
			"read_conns": eff.ReadConns,
		}
	}
	out["sqlite"] = sq
	return out
}

// version is Lode's version as /-/versions.json and lode_info report it.
func (s *Server) version() string {
	if s.cfg.Version == "" {
		return "(devel)"
	}
	return s.cfg.Version
}

func (s *Server) versions(ctx context.Context) map[string]any {
	sqliteInfo := map[string]any{}
	var anyDB *sqlitedb.DB
	for _, db := range s.dbs {
		anyDB = db
		break
	}
	if anyDB != nil {
		opt := sqlitedb.QueryOptions{TimeLimit: ms(s.settings.SQLTimeLimitMS)}
		if res, err := anyDB.Query(ctx, "SELECT sqlite_version()", nil, opt); err == nil && len(res.Rows) == 1 {
			sqliteInfo["version"] = res.Rows[0][0]
		}
		var opts []string
		if res, err := anyDB.Query(ctx, "PRAGMA compile_options", nil, opt); err == nil {
			for _, row := range res.Rows {
				if s, ok := row[0].(string); ok {
					opts = append(opts, s)
				}
			}
		}
		sqliteInfo["compile_options"] = nonNil(opts)
		var fts []string
		for _, o := range opts {
			if strings.HasPrefix(o, "ENABLE_FTS") {
				fts = append(fts, strings.TrimPrefix(o, "ENABLE_"))
			}
		}
		sort.Sort(sort.Reverse(sort.StringSlice(fts)))
		sqliteInfo["fts_versions"] = nonNil(fts)
		sqliteInfo["extensions"] = map[string]any{"json1": nil}
	}
	return map[string]any{
		"lode":   map[string]any{"version": s.version()},
		"go":     map[string]any{"version": runtime.Version(), "os": runtime.GOOS, "arch": runtime.GOARCH},
		"sqlite": sqliteInfo,
	}
}
