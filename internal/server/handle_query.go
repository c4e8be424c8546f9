package server

import (
	"database/sql"
	"net/http"
	"regexp"
	"strings"
	"time"

	"lode/internal/sqlitedb"
)

// QueryResult is the data of an arbitrary SQL query page (/DB/-/query).
type QueryResult struct {
	Database  string
	SQL       string
	Params    map[string]string
	Columns   []string
	Rows      [][]any
	Truncated bool
	QueryMS   float64
}

var (
	allowedSQL = []*regexp.Regexp{
		regexp.MustCompile(`^select\b`),
		regexp.MustCompile(`^explain\s+select\b`),
		regexp.MustCompile(`^explain\s+query\s+plan\s+select\b`),
		regexp.MustCompile(`^with\b`),
		regexp.MustCompile(`^explain\s+with\b`),
		regexp.MustCompile(`^explain\s+query\s+plan\s+with\b`),
	}
	// pragma is only allowed as one of these table-valued functions.
	pragmaRE       = regexp.MustCompile(`pragma`)
	allowedPragmas = regexp.MustCompile(`^pragma_(database_list|foreign_key_list|function_list|index_info|index_list|index_xinfo|pragma_list|table_info|table_xinfo|table_list)`)
)

// validateSelect is Datasette's validate_sql_select: comment lines are
// dropped, then the statement must start with SELECT, WITH or EXPLAIN of
// those, and may only mention the read-only pragma functions. It is a
// friendly first check; the read-only connection, the authorizer and
// sqlite3_stmt_readonly are what actually stop writes.
func validateSelect(q string) error {
	var lines []string
	for _, l := range strings.Split(q, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "--") {
			lines = append(lines, l)
		}
	}
	low := strings.ToLower(strings.TrimSpace(strings.Join(lines, "\n")))
	ok := false
	for _, re := range allowedSQL {
		if re.MatchString(low) {
			ok = true
			break
		}
	}
	if !ok {
		return &apiError{Status: http.StatusBadRequest, Message: "Statement must be a SELECT", Title: "Invalid SQL"}
	}
	for _, loc := range pragmaRE.FindAllStringIndex(low, -1) {
		if !allowedPragmas.MatchString(low[loc[0]:]) {
			return &apiError{Status: http.StatusBadRequest, Message: "Statement contained a disallowed PRAGMA", Title: "Invalid SQL"}
		}
	}
	if _, rest := splitStatement(q); !onlyComments(rest) {
		// Python's sqlite3, under Datasette, refuses the same way; the
		// driver would run every statement and answer with the last.
		return &apiError{Status: http.StatusBadRequest, Message: "You can only execute one statement at a time.", Title: "Invalid SQL"}
	}
	return nil
}

// skipQuoted reports whether a string literal, quoted identifier or
// comment starts at q[i], and returns the index of its last byte (len(q)
// when it is not closed), so a scanner's i++ continues after it.
func skipQuoted(q string, i int) (int, bool) {
	switch c := q[i]; c {
	case '\'', '"', '`', '[':
		end := c
		if c == '[' {
			end = ']'
		}
		for i++; i < len(q) && q[i] != end; i++ {
		}
		return i, true
	}
	return skipComment(q, i)
}

// skipComment is skipQuoted for -- and /* */ comments only.
func skipComment(q string, i int) (int, bool) {
	switch {
	case q[i] == '-' && i+1 < len(q) && q[i+1] == '-':
		for ; i < len(q) && q[i] != '\n'; i++ {
		}
		return i, true
	case q[i] == '/' && i+1 < len(q) && q[i+1] == '*':
		if j := strings.Index(q[i+2:], "*/"); j >= 0 {
			return i + j + 3, true
		}
		return len(q), true
	}
	return i, false
}

// splitStatement cuts q at its first semicolon outside string literals,
// quoted identifiers and comments: first is the statement before it, rest
// what follows ("" without a semicolon).
func splitStatement(q string) (first, rest string) {
	for i := 0; i < len(q); i++ {
		if j, ok := skipQuoted(q, i); ok {
			i = j
		} else if q[i] == ';' {
			return q[:i], q[i+1:]
		}
	}
	return q, ""
}

// onlyComments reports whether s (what follows a statement) holds nothing
// but whitespace, semicolons and comments. A string literal in s always
// leaves a quote behind, so it counts as content.
func onlyComments(s string) bool {
	for i := 0; i < len(s); i++ {
		if j, ok := skipComment(s, i); ok {
			i = j
			continue
		}
		switch s[i] {
		case ' ', '\t', '\r', '\n', ';':
		default:
			return false
		}
	}
	return true
}

// namedParams returns the :name parameters of q in order of first use,
// skipping string literals, quoted identifiers and comments.
func namedParams(q string) []string {
	var out []string
	seen := map[string]bool{}
	for i := 0; i < len(q); i++ {
		if j, ok := skipQuoted(q, i); ok {
			i = j
			continue
		}
		if q[i] == ':' && (i == 0 || q[i-1] != ':') {
			j := i + 1
			for j < len(q) && (q[j] == '_' || q[j] >= 'a' && q[j] <= 'z' || q[j] >= 'A' && q[j] <= 'Z' || q[j] >= '0' && q[j] <= '9') {
				j++
			}
			if j > i+1 {
				name := q[i+1 : j]
				if !seen[name] {
					seen[name] = true
					out = append(out, name)
				}
				i = j - 1
			}
		}
	}
	return out
}

func (s *Server) serveQuery(w http.ResponseWriter, r *http.Request, db *sqlitedb.DB, format string) {
	if !s.settings.AllowSQL {
		s.writeError(w, r, forbidden("Permission denied: execute-sql (the allow_sql setting is off)"))
		return
	}
	params := r.URL.Query()
	q := params.Get("sql")
	if strings.TrimSpace(q) == "" {
		s.writeError(w, r, badRequest("Missing sql parameter: use ?sql=SELECT..."))
		return
	}
	s.serveSQL(w, r, db, format, q)
}

// serveSQL runs the read-only statement q (from ?sql= or a canned read
// query) with its :named parameters taken from the query string, under the
// SQL time limit and row cap, and renders it in format with the request's
// _shape and _extra.
func (s *Server) serveSQL(w http.ResponseWriter, r *http.Request, db *sqlitedb.DB, format, q string) {
	params := r.URL.Query()
	if err := validateSelect(q); err != nil {
		s.writeError(w, r, err)
		return
	}
	res := &QueryResult{Database: db.Name, SQL: q, Params: map[string]string{}}
	var args []any
	for _, name := range namedParams(q) {
		v := params.Get(name)
		res.Params[name] = v
		args = append(args, sql.Named(name, v))
	}
	opt := sqlitedb.QueryOptions{
		TimeLimit:     time.Duration(s.settings.SQLTimeLimitMS) * time.Millisecond,
		CheckReadOnly: true,
	}
	// Only the statement runs, without what follows its semicolon
	// (validateSelect allowed only whitespace and comments there): the
	// driver would otherwise run that tail as an empty statement and
	// answer with its empty result.
	run, _ := splitStatement(q)
	stream := format == formatCSV && params.Get("_stream") == "on" && s.settings.AllowCSVStream
	if format == formatCSV {
		s.writeCSV(w, r, db, run, args, opt, stream, db.Name+".csv")
		return
	}
	opt.MaxRows = s.settings.MaxReturnedRows
	start := time.Now()
	out, err := db.Query(r.Context(), run, args, opt)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	res.QueryMS = float64(time.Since(start).Microseconds()) / 1000
	res.Columns, res.Rows, res.Truncated = out.Columns, out.Rows, out.Truncated
	shape := params.Get("_shape")
	if shape == "object" {
		s.writeError(w, r, badRequest("_shape=object is only available on tables"))
		return
	}
	s.renderRows(w, r, format, res, rowsPage{
		cols: res.Columns, rows: res.Rows, truncated: res.Truncated, shape: shape,
		build: func(o *orderedJSON, extras map[string]bool) {
			if extras["columns"] {
				o.set("columns", res.Columns)
			}
			if extras["query"] {
				o.set("query", map[string]any{"sql": res.SQL, "params": res.Params})
			}
			if extras["query_ms"] {
				o.set("query_ms", res.QueryMS)
			}
		},
	})
}
