package server

import (
	"net/http"
	"strings"

	"lode/internal/query"
)

// routes registers every route. All routes live here so that the write API
// (POST routes, owned by write*.go) and HTML pages can be added in one
// place. Go 1.22 patterns match whole segments, so "/fixtures.json" arrives
// as {db}="fixtures.json" and splitFormat separates the extension. Names in
// URLs are tilde-encoded (Datasette's scheme: "/" is ~2F, "." is ~2E).
func (s *Server) routes() {
	m := http.NewServeMux()
	s.mux = m
	m.HandleFunc("GET /{$}", s.handleIndex)
	m.HandleFunc("GET /-/{file}", s.handleInstanceMeta)
	m.HandleFunc("GET /{db}", s.handleDatabase)
	m.HandleFunc("GET /{db}/-/{file}", s.handleDatabaseMeta)
	m.HandleFunc("GET /{db}/{table}", s.handleTable)
	m.HandleFunc("GET /{db}/{table}/{pk}", s.handleRow)
	// Anything else is a JSON 404, never the mux's plain-text page.
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			s.writeError(w, r, &apiError{Status: http.StatusMethodNotAllowed, Message: "Method not allowed: " + r.Method})
			return
		}
		s.writeError(w, r, notFound("Not found: "+r.URL.Path))
	})
	s.routesHTML() // html.go: HTML pages, static assets, HTML error pages
}

// Formats a page can be rendered in.
const (
	formatHTML = ""
	formatJSON = "json"
	formatCSV  = "csv"
)

// splitFormat splits "facetable.json" into ("facetable", "json"). A segment
// without a known extension is an HTML page.
func splitFormat(seg string) (name, format string) {
	if i := strings.LastIndexByte(seg, '.'); i >= 0 {
		switch ext := seg[i+1:]; ext {
		case formatJSON, formatCSV:
			return seg[:i], ext
		}
	}
	return seg, formatHTML
}

// decodeName tilde-decodes a database or table name from a URL segment.
func decodeName(seg string) (string, error) {
	name, err := query.TildeDecode(seg)
	if err != nil {
		return "", badRequest("Invalid name encoding: " + err.Error())
	}
	return name, nil
}
