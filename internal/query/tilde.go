package query

import (
	"errors"
	"strings"
	"unicode/utf8"
)

// ErrTildeDecode is returned by TildeDecode when the decoded bytes are not
// valid UTF-8 (Python's decoder would silently replace them; Lode refuses).
var ErrTildeDecode = errors.New("query: tilde-decoded value is not valid UTF-8")

// tildeSafe reports whether b passes through TildeEncode unchanged. It is
// Datasette's _TILDE_ENCODING_SAFE: ASCII letters, digits, '_' and '-'. Unlike
// percent-encoding, '.' and '~' are escaped, so "a.json" stays unambiguous
// in a URL path.
func tildeSafe(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '_' || b == '-'
}

// TildeEncode returns s in Datasette's tilde encoding: every UTF-8 byte
// outside [A-Za-z0-9_-] becomes ~XX (upper-case hex), except the space,
// which becomes '+'. For example "/foo/bar" becomes "~2Ffoo~2Fbar".
func TildeEncode(s string) string {
	const hex = "0123456789ABCDEF"
	n := 0
	for i := 0; i < len(s); i++ {
		if !tildeSafe(s[i]) && s[i] != ' ' {
			n++
		}
	}
	if n == 0 && !strings.Contains(s, " ") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 2*n)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case tildeSafe(c):
			b.WriteByte(c)
		case c == ' ':
			b.WriteByte('+')
		default:
			b.WriteByte('~')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		}
	}
	return b.String()
}

// TildeDecode reverses TildeEncode the way Datasette's tilde_decode does:
// ~XX becomes the byte XX, '+' becomes a space, and anything else
// (including '%' and a '~' not followed by two hex digits) is kept as is.
// It returns ErrTildeDecode when the result is not valid UTF-8.
func TildeDecode(s string) (string, error) {
	out := tildeDecodeBytes(s)
	if !utf8.ValidString(out) {
		return "", ErrTildeDecode
	}
	return out, nil
}

// tildeDecodeBytes is TildeDecode without the UTF-8 check, for keys and
// tokens that may carry BLOB values.
func tildeDecodeBytes(s string) string {
	if !strings.ContainsAny(s, "~+") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '+':
			b.WriteByte(' ')
		case c == '~' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]):
			b.WriteByte(unhex(s[i+1])<<4 | unhex(s[i+2]))
			i += 2
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}
