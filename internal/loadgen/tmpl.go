package loadgen

import (
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"text/template/parse"
)

// tmpl is one request template (URL, header value or body). The actions
// a load test uses per request — {{randInt 1 1000}}, {{.user}},
// {{.iter}}, {{uuid}} and a string field of the data row ({{.row.id}}) —
// are compiled to native code that appends to the request buffer: going
// through text/template costs a map, reflection and several allocations
// per execution, about as much CPU as sending the request. Any other
// template (pipelines, if, range, other types) runs through text/template,
// whose output is the reference: the native parts produce the same bytes.
type tmpl struct {
	t     *template.Template
	parts []tmplPart // nil: always execute t
}

type partKind uint8

const (
	partText partKind = iota
	partUser
	partIter
	partRandInt
	partUUID
	partRow // a string field of .row
)

type tmplPart struct {
	kind   partKind
	text   string
	lo, hi int
	path   []string // field names under .row
}

// tmplData is what request templates see.
type tmplData struct {
	Row  map[string]any
	User int
	Iter int64
}

func (d *tmplData) asMap() map[string]any {
	return map[string]any{"row": d.Row, "user": d.User, "iter": d.Iter}
}

var templateFuncs = template.FuncMap{
	"env":     os.Getenv,
	"randInt": randInt,
	"uuid":    func() string { return string(appendUUID(nil)) },
}

func randInt(lo, hi int) int {
	if hi <= lo {
		return lo
	}
	return lo + rand.IntN(hi-lo+1)
}

// appendUUID appends a random (version 4) UUID.
func appendUUID(b []byte) []byte {
	var u [16]byte
	x, y := rand.Uint64(), rand.Uint64()
	for i := 0; i < 8; i++ {
		u[i], u[8+i] = byte(x>>(8*i)), byte(y>>(8*i))
	}
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	const hex = "0123456789abcdef"
	for i, c := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			b = append(b, '-')
		}
		b = append(b, hex[c>>4], hex[c&0xf])
	}
	return b
}

// parseTemplate compiles text; nil (and no error) when it has no "{{".
func parseTemplate(what, text string) (*tmpl, error) {
	if !strings.Contains(text, "{{") {
		return nil, nil
	}
	t, err := template.New(what).Funcs(templateFuncs).Option("missingkey=error").Parse(text)
	if err != nil {
		return nil, fmt.Errorf("%s template: %w", what, err)
	}
	return &tmpl{t: t, parts: compileParts(t)}, nil
}

// compileParts returns the native form of t, or nil when t uses anything
// beyond text and the actions listed on tmpl.
func compileParts(t *template.Template) []tmplPart {
	if t.Tree == nil || t.Tree.Root == nil || len(t.Templates()) > 1 {
		return nil
	}
	var parts []tmplPart
	for _, n := range t.Tree.Root.Nodes {
		switch n := n.(type) {
		case *parse.TextNode:
			parts = append(parts, tmplPart{kind: partText, text: string(n.Text)})
		case *parse.ActionNode:
			p := n.Pipe
			if p == nil || len(p.Decl) > 0 || len(p.Cmds) != 1 {
				return nil
			}
			part, ok := compileCommand(p.Cmds[0].Args)
			if !ok {
				return nil
			}
			parts = append(parts, part)
		default:
			return nil
		}
	}
	return parts
}

func compileCommand(args []parse.Node) (tmplPart, bool) {
	switch a := args[0].(type) {
	case *parse.FieldNode:
		if len(args) != 1 {
			return tmplPart{}, false
		}
		switch {
		case slices.Equal(a.Ident, []string{"user"}):
			return tmplPart{kind: partUser}, true
		case slices.Equal(a.Ident, []string{"iter"}):
			return tmplPart{kind: partIter}, true
		case len(a.Ident) >= 2 && a.Ident[0] == "row":
			return tmplPart{kind: partRow, path: a.Ident[1:]}, true
		}
	case *parse.IdentifierNode:
		switch {
		case a.Ident == "uuid" && len(args) == 1:
			return tmplPart{kind: partUUID}, true
		case a.Ident == "randInt" && len(args) == 3:
			lo, ok1 := intConst(args[1])
			hi, ok2 := intConst(args[2])
			if ok1 && ok2 {
				return tmplPart{kind: partRandInt, lo: lo, hi: hi}, true
			}
		}
	}
	return tmplPart{}, false
}

func intConst(n parse.Node) (int, bool) {
	num, ok := n.(*parse.NumberNode)
	if !ok || !num.IsInt || int64(int(num.Int64)) != num.Int64 {
		return 0, false
	}
	return int(num.Int64), true
}

// appendTo appends t's output for d to b. On an error b's new bytes are
// not meaningful.
func (t *tmpl) appendTo(b []byte, d *tmplData) ([]byte, error) {
	if t.parts != nil {
		if out, ok := t.appendFast(b, d); ok {
			return out, nil
		}
	}
	w := appendWriter{b: b}
	if err := t.t.Execute(&w, d.asMap()); err != nil {
		return b, fmt.Errorf("template: %w", err)
	}
	return w.b, nil
}

// appendFast runs the native parts; false when a row field is missing or
// not a string, so text/template formats it (or reports the error).
func (t *tmpl) appendFast(b []byte, d *tmplData) ([]byte, bool) {
	start := len(b)
	for i := range t.parts {
		p := &t.parts[i]
		switch p.kind {
		case partText:
			b = append(b, p.text...)
		case partUser:
			b = strconv.AppendInt(b, int64(d.User), 10)
		case partIter:
			b = strconv.AppendInt(b, d.Iter, 10)
		case partRandInt:
			b = strconv.AppendInt(b, int64(randInt(p.lo, p.hi)), 10)
		case partUUID:
			b = appendUUID(b)
		case partRow:
			s, ok := rowString(d.Row, p.path)
			if !ok {
				return b[:start], false
			}
			b = append(b, s...)
		}
	}
	return b, true
}

func rowString(row map[string]any, path []string) (string, bool) {
	var cur any = row
	for _, k := range path {
		m, ok := cur.(map[string]any)
		if !ok || m == nil {
			return "", false
		}
		if cur, ok = m[k]; !ok {
			return "", false
		}
	}
	s, ok := cur.(string)
	return s, ok
}

// execString runs t and returns its output as a string.
func (t *tmpl) execString(d *tmplData) (string, error) {
	b, err := t.appendTo(nil, d)
	return string(b), err
}

type appendWriter struct{ b []byte }

func (w *appendWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}
