package server

import (
	"net/http"
	"strings"

	"lode/internal/query"
)

// The ?_extra= blocks of Datasette 1.0, in its order, with its
// descriptions (the "extras" extra lists them). A block answers on the
// scopes it names: a table or view page, a row page, a query.
type extraScope uint8

const (
	scopeTable extraScope = 1 << iota
	scopeRow
	scopeQuery
)

type extraDef struct {
	name        string
	description string
	scopes      extraScope
}

var extraDefs = []extraDef{
	{"count", "Total count of rows matching these filters", scopeTable},
	{"count_sql", "SQL query used to calculate the total count", scopeTable},
	{"facet_results", "Results of facets calculated against this data", scopeTable},
	{"facets_timed_out", "Facet calculations that timed out", scopeTable},
	{"suggested_facets", "Suggestions for facets that might return interesting results", scopeTable},
	{"human_description_en", "Human-readable description of the filters", scopeTable},
	{"next_url", "Full URL for the next page of results", scopeTable},
	{"columns", "Column names returned by this query", scopeTable | scopeRow | scopeQuery},
	{"all_columns", "All columns in the table, regardless of _col/_nocol filtering", scopeTable},
	{"primary_keys", "Primary keys for this table", scopeTable | scopeRow},
	{"display_columns", "Column metadata used by the HTML table display", scopeTable},
	{"render_cell", "Rendered HTML for each cell using the render_cell plugin hook", scopeTable | scopeRow | scopeQuery},
	{"debug", "Extra debug information", scopeTable | scopeRow | scopeQuery},
	{"request", "Full information about the request", scopeTable | scopeRow | scopeQuery},
	{"query", "Details of the underlying SQL query", scopeTable | scopeRow | scopeQuery},
	{"column_types", "Column type assignments for this table", scopeTable | scopeRow},
	{"set_column_type_ui", "Information needed to build an interface for assigning column types", scopeTable},
	{"metadata", "Metadata about the table, database or stored query", scopeTable | scopeRow | scopeQuery},
	{"extras", "List of ?_extra= blocks that can be used on this page", scopeTable | scopeRow | scopeQuery},
	{"database", "Database name", scopeTable | scopeRow | scopeQuery},
	{"table", "Table name", scopeTable | scopeRow},
	{"database_color", "Color assigned to the database", scopeTable | scopeRow | scopeQuery},
	{"renderers", "Alternative output renderers available for this table", scopeTable},
	{"custom_table_templates", "Custom template names considered for this table", scopeTable},
	{"sorted_facet_results", "Facet results sorted for display", scopeTable},
	{"table_definition", "SQL definition for this table", scopeTable},
	{"view_definition", "SQL definition for this view", scopeTable},
	{"is_view", "Whether this resource is a view instead of a table", scopeTable},
	{"private", "Whether this resource is private to the current actor", scopeTable | scopeRow | scopeQuery},
	{"expandable_columns", "Foreign key columns that can be expanded with labels", scopeTable},
	{"foreign_key_tables", "Tables that link to this row using foreign keys", scopeRow},
	{"form_hidden_args", "Hidden form arguments used by the HTML table interface", scopeTable},
}

// extrasList is the "extras" block: every extra of the scope, whether the
// request asked for it, and the URL that toggles it.
func extrasList(r *http.Request, scope extraScope, asked map[string]bool) []map[string]any {
	req := requestURL(r)
	var out []map[string]any
	for _, d := range extraDefs {
		if d.scopes&scope == 0 {
			continue
		}
		var toggle string
		if asked[d.name] {
			v := d.name
			toggle = query.PathWithRemovedArgs(req, "_extra", &v)
		} else {
			toggle = query.PathWithAddedArgs(req, [2]string{"_extra", d.name})
		}
		out = append(out, map[string]any{"name": d.name, "description": d.description,
			"toggle_url": req.Base + toggle, "selected": asked[d.name]})
	}
	return out
}

// requestExtra is the "request" block: the request's URL and arguments.
func requestExtra(r *http.Request, rt *route) map[string]any {
	req := requestURL(r)
	full := req.Path
	if req.RawQuery != "" {
		full += "?" + req.RawQuery
	}
	args := map[string][]string{}
	for k, v := range rt.params {
		args[k] = v
	}
	return map[string]any{"url": req.Base + full, "path": req.Path, "full_path": full, "host": r.Host, "args": args}
}

// urlVars are the path's parts as Datasette's router names them, for the
// "debug" block.
func urlVars(rt *route) map[string]any {
	v := map[string]any{"database": rt.dbName}
	if rt.kind == routeTable || rt.kind == routeRow {
		v["table"] = rt.name
	}
	if rt.kind == routeRow {
		v["pks"] = strings.Join(rt.pk, ",")
	}
	if rt.format != "" {
		v["format"] = rt.format
	}
	return v
}

// renderCells is the "render_cell" block: one object per row of the
// cells that render differently from their value, which with no plugins
// is none.
func renderCells(rows [][]any) []map[string]any {
	out := make([]map[string]any, len(rows))
	for i := range out {
		out[i] = map[string]any{}
	}
	return out
}

// commonExtras sets the blocks every scope shares.
func (s *Server) commonExtras(o *orderedJSON, extras map[string]bool, r *http.Request, rt *route, scope extraScope, rows [][]any) {
	if extras["render_cell"] {
		o.set("render_cell", renderCells(rows))
	}
	if extras["request"] {
		o.set("request", requestExtra(r, rt))
	}
	if extras["extras"] {
		o.set("extras", extrasList(r, scope, extras))
	}
	if extras["database"] {
		o.set("database", rt.db.Name)
	}
	if extras["database_color"] {
		o.set("database_color", dbColor(rt.db.Name))
	}
}
