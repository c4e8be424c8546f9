package web

import "strings"

// The parts of a page that grow with the data (rows, header cells, facet
// values) are written in Go rather than through html/template, which
// reflects on every field it prints. The writers below escape exactly as
// their call sites did before the move, so the HTML is byte-for-byte the
// same: rows use html.EscapeString's rules, and what html/template used to
// print (header cells, facets, suggested facets) uses html/template's. They
// append to a byte slice, like strconv's Append functions: no allocation,
// and no write barrier per write as a strings.Builder behind a pointer has.

// escText holds the replacement of each byte html.EscapeString escapes.
var escText = [256]string{
	'<':  "&lt;",
	'>':  "&gt;",
	'&':  "&amp;",
	'\'': "&#39;",
	'"':  "&#34;",
}

// escTemplate holds html/template's replacements for element text and
// quoted attribute values (its htmlEscaper and attrEscaper on a string):
// html.EscapeString's, plus '+' (it may start a UTF-7 sequence) and NUL,
// which becomes U+FFFD. Every escaped byte is ASCII, so escaping byte by
// byte equals html/template's rune loop, invalid UTF-8 included.
var escTemplate = [256]string{
	0:    "\uFFFD",
	'<':  "&lt;",
	'>':  "&gt;",
	'&':  "&amp;",
	'\'': "&#39;",
	'"':  "&#34;",
	'+':  "&#43;",
}

func appendWith(b []byte, s string, table *[256]string) []byte {
	last := 0
	for i := 0; i < len(s); i++ {
		if r := table[s[i]]; r != "" {
			b = append(append(b, s[last:i]...), r...)
			last = i + 1
		}
	}
	return append(b, s[last:]...)
}

// appendEscaped appends s escaped as html.EscapeString does: <, >, &, '
// and ", enough for element text and quoted attribute values.
func appendEscaped(b []byte, s string) []byte { return appendWith(b, s, &escText) }

// appendTemplateEscaped appends s as html/template prints a string in
// element text or in a quoted attribute that is not a URL.
func appendTemplateEscaped(b []byte, s string) []byte { return appendWith(b, s, &escTemplate) }

// appendTemplateURL appends s as html/template prints a string that is the
// whole value of a quoted URL attribute (href="{{.}}"): its urlFilter,
// urlNormalizer and attrEscaper in turn. A URL whose scheme is not http,
// https or mailto becomes "#ZgotmplZ"; bytes a URL may not contain are
// percent-encoded (valid %XX escapes are kept); & and + are then escaped
// for the attribute. Quotes, < and > are always percent-encoded, so the
// value cannot leave its attribute.
func appendTemplateURL(b []byte, s string) []byte {
	if !templateSafeURL(s) {
		return append(b, "#ZgotmplZ"...)
	}
	const hex = "0123456789abcdef"
	last := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		var repl string
		switch {
		case c == '&':
			repl = "&amp;"
		case c == '+':
			repl = "&#43;"
		case c == '%':
			if i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
				continue
			}
		case urlKeep(c):
			continue
		}
		b = append(b, s[last:i]...)
		if repl != "" {
			b = append(b, repl...)
		} else {
			b = append(b, '%', hex[c>>4], hex[c&0xf])
		}
		last = i + 1
	}
	return append(b, s[last:]...)
}

// templateSafeURL is html/template's isSafeURL: relative URLs and the
// http, https and mailto schemes are safe.
func templateSafeURL(s string) bool {
	if protocol, _, ok := strings.Cut(s, ":"); ok && !strings.Contains(protocol, "/") {
		return strings.EqualFold(protocol, "http") || strings.EqualFold(protocol, "https") || strings.EqualFold(protocol, "mailto")
	}
	return true
}

// urlKeep reports whether html/template's URL normalizer keeps byte c as
// is: RFC 3986 unreserved and reserved characters except ' ( and ).
func urlKeep(c byte) bool {
	switch c {
	case '!', '#', '$', '&', '*', '+', ',', '/', ':', ';', '=', '?', '@', '[', ']', '-', '.', '_', '~':
		return true
	}
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
