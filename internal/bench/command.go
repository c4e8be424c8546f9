package bench

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// splitCommand splits a command template into arguments the way a POSIX
// shell would for plain words and quotes, without running a shell: 'single
// quotes' keep everything literally, "double quotes" keep spaces and take
// backslash escapes of \ " $ and `, and a backslash outside quotes escapes
// the next character. Placeholders are substituted after splitting, so a
// {db} path with spaces stays one argument. There is no variable expansion,
// globbing or redirection: a target that needs them can name a shell
// (command: sh -c '...').
func splitCommand(s string) ([]string, error) {
	var (
		args    []string
		cur     strings.Builder
		inWord  bool
		quote   rune // 0, '\'' or '"'
		escaped bool
	)
	for _, r := range s {
		switch {
		case escaped:
			if quote == '"' && !strings.ContainsRune("\\\"$`\n", r) {
				cur.WriteRune('\\')
			}
			if r != '\n' { // backslash-newline joins lines
				cur.WriteRune(r)
				inWord = true
			}
			escaped = false
		case quote == '\'':
			if r == '\'' {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case quote == '"':
			switch r {
			case '"':
				quote = 0
			case '\\':
				escaped = true
			default:
				cur.WriteRune(r)
			}
		case r == '\\':
			escaped = true
		case r == '\'' || r == '"':
			quote, inWord = r, true
		case r == ' ' || r == '\t' || r == '\n' || r == '\r':
			if inWord {
				args = append(args, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	switch {
	case quote != 0:
		return nil, fmt.Errorf("unterminated %c quote in %q", quote, s)
	case escaped:
		return nil, fmt.Errorf("trailing backslash in %q", s)
	}
	if inWord {
		args = append(args, cur.String())
	}
	return args, nil
}

// Placeholders a target's command, setup, check, dir and env may use.
var (
	// cellPlaceholders are filled per run.
	cellPlaceholders = []string{"db", "dir", "port", "host", "workers", "journal_mode", "synchronous",
		"busy_timeout", "busy_timeout_ms", "txlock", "writer"}
	// studyPlaceholders are fixed for the whole study.
	studyPlaceholders = []string{"examples", "workdir"}
	// postgresPlaceholders exist when the target uses the postgres service.
	postgresPlaceholders = []string{"pg_host", "pg_port", "pg_user", "pg_db", "pg_url"}
)

var placeholderRE = regexp.MustCompile(`\{([a-z_]+)\}`)

// checkPlaceholders returns an error naming the first {name} in s that is
// not a known placeholder (a typo such as {worker} would otherwise reach
// the server literally).
func checkPlaceholders(s string, allowed []string) error {
	for _, m := range placeholderRE.FindAllStringSubmatch(s, -1) {
		if !slices.Contains(allowed, m[1]) {
			return fmt.Errorf("unknown placeholder {%s}; known: {%s}", m[1], strings.Join(allowed, "}, {"))
		}
	}
	return nil
}

// expand replaces every {name} of vals in s; unknown names stay as they
// are (checkPlaceholders rejected them when the matrix was parsed).
func expand(s string, vals map[string]string) string {
	return placeholderRE.ReplaceAllStringFunc(s, func(m string) string {
		if v, ok := vals[m[1:len(m)-1]]; ok {
			return v
		}
		return m
	})
}

// expandArgs substitutes placeholders in each argument of a split command.
func expandArgs(args []string, vals map[string]string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = expand(a, vals)
	}
	return out
}

// errEmptyCommand is returned for a command template without a program.
var errEmptyCommand = errors.New("empty command")
