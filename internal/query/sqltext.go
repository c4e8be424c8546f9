package query

import (
	"regexp"
	"strconv"
	"strings"
)

// This file is Lode's one scanner of SQL text: everything that looks at
// user-written or configured SQL without running it (statement splitting,
// parameter names, Datasette's SELECT check) walks the text with
// skipQuoted, so string literals, quoted identifiers and comments are
// skipped the same way everywhere.

// skipQuoted reports whether a string literal, quoted identifier or
// comment starts at q[i], and returns the index of its last byte (len(q)
// when it is not closed), so a scanner's i++ continues after it. A doubled
// quote ('it”s') reads as two adjacent literals, which skips the same
// bytes.
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

// FirstStatement cuts q at its first semicolon outside string literals,
// quoted identifiers and comments: first is the statement before it, rest
// what follows ("" without a semicolon).
func FirstStatement(q string) (first, rest string) {
	for i := 0; i < len(q); i++ {
		if j, ok := skipQuoted(q, i); ok {
			i = j
		} else if q[i] == ';' {
			return q[:i], q[i+1:]
		}
	}
	return q, ""
}

// OnlyComments reports whether s (what follows a statement) holds nothing
// but whitespace, semicolons and comments. A string literal in s always
// leaves a quote behind, so it counts as content.
func OnlyComments(s string) bool {
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

// SplitStatements splits a write script into its statements on semicolons
// outside string literals, quoted identifiers and comments, dropping empty
// ones. (CREATE TRIGGER bodies, which contain semicolons, are not supported
// in scripts.)
func SplitStatements(q string) []string {
	var out []string
	for q != "" {
		first, rest := FirstStatement(q)
		if s := strings.TrimSpace(first); s != "" && !OnlyComments(s) {
			out = append(out, s)
		}
		if len(first) == len(q) {
			break
		}
		q = rest
	}
	return out
}

// Params are the parameters of a statement: Named are the :name
// parameters in order of first use; Other are parameters Lode cannot bind
// from a query string (?, ?NNN, @name, $name), as written.
type Params struct {
	Named []string
	Other []string
}

// ParseParams finds the parameters of q outside string literals, quoted
// identifiers and comments. A ':' right after another ':' starts no
// parameter.
func ParseParams(q string) Params {
	var p Params
	seen := map[string]bool{}
	for i := 0; i < len(q); i++ {
		if j, ok := skipQuoted(q, i); ok {
			i = j
			continue
		}
		switch c := q[i]; c {
		case ':', '@', '$', '?':
			if c == ':' && i > 0 && q[i-1] == ':' {
				continue
			}
			if (c == '$' || c == '@') && i > 0 && (isIdentByte(q[i-1], false) || q[i-1] == '$') {
				continue // inside an identifier such as a$b
			}
			j := i + 1
			for j < len(q) && isIdentByte(q[j], c == '?') {
				j++
			}
			if c == ':' {
				if j > i+1 {
					if name := q[i+1 : j]; !seen[name] {
						seen[name] = true
						p.Named = append(p.Named, name)
					}
				}
			} else if c == '?' || j > i+1 {
				p.Other = append(p.Other, q[i:j])
			}
			i = j - 1
		}
	}
	return p
}

// NamedParams returns the :name parameters of q in order of first use.
func NamedParams(q string) []string { return ParseParams(q).Named }

// isIdentByte reports whether c continues a parameter name: ASCII letters,
// digits, '_' and any byte of a non-ASCII UTF-8 character (as SQLite's
// tokenizer); digits only after '?'.
func isIdentByte(c byte, digitsOnly bool) bool {
	if digitsOnly {
		return c >= '0' && c <= '9'
	}
	return c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80
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

// ValidateSelect is Datasette's validate_sql_select plus Lode's checks on
// the statement's shape: comment lines are dropped, then the statement must
// start with SELECT, WITH or EXPLAIN of those, may only mention the
// read-only pragma functions, must be one statement, and may only use
// :named parameters. It is a friendly first check; the read-only
// connection, the authorizer and sqlite3_stmt_readonly are what actually
// stop writes. Errors are *Error with the title "Invalid SQL".
func ValidateSelect(q string) error {
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
		return invalidSQL("Statement must be a SELECT")
	}
	for _, loc := range pragmaRE.FindAllStringIndex(low, -1) {
		if !allowedPragmas.MatchString(low[loc[0]:]) {
			return invalidSQL("Statement contained a disallowed PRAGMA")
		}
	}
	if _, rest := FirstStatement(q); !OnlyComments(rest) {
		// Python's sqlite3, under Datasette, refuses the same way; the
		// driver would run every statement and answer with the last.
		e := invalidSQL("You can only execute one statement at a time.")
		e.SQL = true
		return e
	}
	return CheckParams(q)
}

// CheckParams refuses a statement with parameters that a query string
// cannot fill: only :named parameters are bound from ?name=value.
func CheckParams(q string) error {
	if other := ParseParams(q).Other; len(other) > 0 {
		return invalidSQL("Unsupported parameter %s: only :named parameters are supported (write :name and pass ?name=value)", other[0])
	}
	return nil
}

// NamePositional rewrites each bare ? parameter of q (outside string
// literals, quoted identifiers and comments) as :p0, :p1, ... in order,
// the names Datasette gives a table page's parameters, so that Lode's own
// SQL can be opened in the SQL editor, which binds only :named
// parameters. n is the number of parameters renamed; ?NNN is left alone.
func NamePositional(q string) (named string, n int) {
	var b strings.Builder
	last := 0
	for i := 0; i < len(q); i++ {
		if j, ok := skipQuoted(q, i); ok {
			i = j
			continue
		}
		if q[i] == '?' && (i+1 == len(q) || !isIdentByte(q[i+1], true)) {
			b.WriteString(q[last:i])
			b.WriteString(":p")
			b.WriteString(strconv.Itoa(n))
			n++
			last = i + 1
		}
	}
	if n == 0 {
		return q, 0
	}
	b.WriteString(q[last:])
	return b.String(), n
}
