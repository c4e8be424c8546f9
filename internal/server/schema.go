package server

import (
	"net/http"
	"slices"
	"strings"

	"lode/internal/sqlitedb"
)

// serveSchema serves the schema pages, as Datasette 1.0 does: the CREATE
// statements of every database the actor may view (/-/schema), of one
// database (/DB/-/schema) or of one table or view (/DB/TABLE/-/schema),
// as JSON, Markdown (.md) or plain text. `dclient schema` reads them.
func (s *Server) serveSchema(w http.ResponseWriter, r *http.Request, rt *route) {
	opt := sqlitedb.QueryOptions{TimeLimit: ms(s.settings.SQLTimeLimitMS)}
	// dbSchema is Datasette's group_concat of sqlite_master's statements,
	// less those of tables and views the actor may not view (with their
	// indexes and triggers): Datasette shows a denied table's columns
	// here to anyone who may view the database, which the listings do
	// not; Lode keeps the two consistent (README, "What a denied table
	// means").
	dbSchema := func(db *sqlitedb.DB) (string, error) {
		res, err := db.Query(r.Context(), "select sql, tbl_name from sqlite_master where sql is not null", nil, opt)
		if err != nil {
			return "", err
		}
		var b strings.Builder
		for _, row := range res.Rows {
			sql, _ := row[0].(string)
			table, _ := row[1].(string)
			if !rt.access.canViewTable(db.Name, table) {
				continue
			}
			if b.Len() > 0 {
				b.WriteString(";\n")
			}
			b.WriteString(sql)
		}
		return b.String(), nil
	}
	switch rt.kind {
	case routeInstance:
		var schemas []map[string]any
		var md []string
		// Datasette lists the databases by name here.
		for _, name := range slices.Sorted(slices.Values(s.dbNames)) {
			if !rt.access.canViewDatabase(name) {
				continue
			}
			text, err := dbSchema(s.dbs[name])
			if err != nil {
				s.fail(w, r, rt, err)
				return
			}
			schemas = append(schemas, map[string]any{"database": name, "schema": text})
			md = append(md, "# Schema for "+name+"\n\n```sql\n"+text+"\n```")
		}
		if rt.format == "md" {
			writeMarkdown(w, strings.Join(md, "\n\n"))
			return
		}
		writeSchema(w, rt, http.StatusOK, map[string]any{"schemas": nonNilSlice(schemas)})
	case routeDatabaseAction:
		text, err := dbSchema(rt.db)
		if err != nil {
			s.fail(w, r, rt, err)
			return
		}
		if rt.format == "md" {
			writeMarkdown(w, "# Schema for "+rt.db.Name+"\n\n```sql\n"+text+"\n```\n")
			return
		}
		writeSchema(w, rt, http.StatusOK, map[string]any{"database": rt.db.Name, "schema": text})
	case routeTableAction:
		res, err := rt.db.Query(r.Context(), "select sql from sqlite_master where name = ? and sql is not null", []any{rt.name}, opt)
		if err != nil {
			s.fail(w, r, rt, err)
			return
		}
		if len(res.Rows) == 0 {
			writeSchema(w, rt, http.StatusNotFound, map[string]any{"ok": false, "error": msgTableNotFound})
			return
		}
		text, _ := res.Rows[0][0].(string)
		if rt.format == "md" {
			writeMarkdown(w, "# Schema for "+rt.db.Name+"."+rt.name+"\n\n```sql\n"+text+"\n```\n")
			return
		}
		writeSchema(w, rt, http.StatusOK, map[string]any{"database": rt.db.Name, "table": rt.name, "schema": text})
	}
}

// writeSchema writes a schema page's data: JSON for .json, else the text
// Datasette's HTML page would show (Lode has no HTML schema page: the JSON
// is shown).
func writeSchema(w http.ResponseWriter, rt *route, status int, v map[string]any) {
	if rt.format != formatJSON && status != http.StatusOK {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(status)
		w.Write([]byte(v["error"].(string)))
		return
	}
	writeJSONStatus(w, status, v)
}

func writeMarkdown(w http.ResponseWriter, text string) {
	w.Header().Set("Content-Type", "text/markdown; charset=utf-8")
	w.Write([]byte(text))
}
