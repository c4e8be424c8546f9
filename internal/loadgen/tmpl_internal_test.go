package loadgen

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestTemplateNativeMatchesTextTemplate: the native parts produce exactly
// what text/template produces, and are used for the actions they cover.
func TestTemplateNativeMatchesTextTemplate(t *testing.T) {
	d := &tmplData{Row: map[string]any{"name": "ann", "n": 3.0, "nested": map[string]any{"k": "v"}}, User: 7, Iter: 42}
	tests := []struct {
		text   string
		native bool
	}{
		{"/u/{{.user}}/i/{{.iter}}", true},
		{"/p?name={{.row.name}}&k={{ .row.nested.k }}", true},
		{"{{- .user -}} x {{.iter}}", true},
		{"/n/{{.row.n}}", true},          // a number: text/template formats it
		{"/missing/{{.row.nope}}", true}, // an error, from text/template
		{"/q/{{printf \"%03d\" .user}}", false},
		{"{{if .user}}yes{{end}}", false},
		{"{{.user | print}}", false},
		{"{{$x := .user}}{{$x}}", false},
		{"{{randInt .user .user}}", false},
	}
	for _, tt := range tests {
		tp, err := parseTemplate("t", tt.text)
		if err != nil {
			t.Fatalf("parse %q: %v", tt.text, err)
		}
		if (tp.parts != nil) != tt.native {
			t.Errorf("%q: native %v; want %v", tt.text, tp.parts != nil, tt.native)
		}
		got, gotErr := tp.appendTo([]byte("pre:"), d)
		var want strings.Builder
		wantErr := tp.t.Execute(&want, d.asMap())
		if (gotErr == nil) != (wantErr == nil) {
			t.Errorf("%q: error %v; text/template: %v", tt.text, gotErr, wantErr)
			continue
		}
		if gotErr == nil && string(got) != "pre:"+want.String() {
			t.Errorf("%q = %q; text/template gives %q", tt.text, got[4:], want.String())
		}
	}
}

func TestTemplateRandomActions(t *testing.T) {
	tp, err := parseTemplate("t", "{{randInt 3 5}}/{{uuid}}/{{randInt 9 2}}")
	if err != nil || tp.parts == nil {
		t.Fatalf("parse: %v, native %v", err, tp != nil && tp.parts != nil)
	}
	uuid := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	seen := map[int]bool{}
	for i := 0; i < 300; i++ {
		b, err := tp.appendTo(nil, &tmplData{})
		if err != nil {
			t.Fatal(err)
		}
		parts := strings.Split(string(b), "/")
		n, _ := strconv.Atoi(parts[0])
		if n < 3 || n > 5 || !uuid.MatchString(parts[1]) || parts[2] != "9" {
			t.Fatalf("output %q: want randInt in [3,5], a v4 UUID, and 9 for randInt 9 2", b)
		}
		seen[n] = true
	}
	if len(seen) != 3 {
		t.Fatalf("randInt 3 5 gave %v in 300 draws; want all of 3, 4, 5", seen)
	}
	if s, _ := templateFuncs["uuid"].(func() string); s == nil || !uuid.MatchString(s()) {
		t.Fatal("the uuid template function does not return a v4 UUID")
	}
}

// TestRenderMatchesStaticRequest: a templated request renders the same
// bytes as the request written out by hand, including a path that needs
// escaping (rendered through net/url).
func TestRenderMatchesStaticRequest(t *testing.T) {
	d := &tmplData{Row: map[string]any{"name": "ann lee", "id": "12"}, User: 3, Iter: 9}
	tests := []struct{ tmpl, plain string }{
		{"http://127.0.0.1:8001/db/t.json?id={{.row.id}}&u={{.user}}", "http://127.0.0.1:8001/db/t.json?id=12&u=3"},
		{"http://127.0.0.1:8001/db/{{.row.name}}/{{.iter}}", "http://127.0.0.1:8001/db/ann lee/9"},
		{"http://127.0.0.1:8001/a%2Fb/{{.iter}}", "http://127.0.0.1:8001/a%2Fb/9"},
		{"http://{{.row.id}}.localhost:8001/x", "http://12.localhost:8001/x"},
		{"http://localhost:8001{{.row.id}}/x", "http://localhost:800112/x"},
	}
	for _, tt := range tests {
		for _, method := range []string{"GET", "POST"} {
			mk := func(u string) *Request {
				r := &Request{Method: method, URL: u, Body: `{"n": {{.iter}}}`, Headers: map[string]string{"X-User": "u{{.user}}", "Accept": "a/b"}}
				if !strings.Contains(u, "{{") {
					r.Body, r.Headers["X-User"] = `{"n": 9}`, "u3"
				}
				sc := (&Scenario{}).Add(r)
				if err := sc.prepare(); err != nil {
					t.Fatalf("prepare %q: %v", u, err)
				}
				return r
			}
			tr, pr := mk(tt.tmpl), mk(tt.plain)
			var dst target
			got, err := tr.render(d, 0, &dst)
			if err != nil {
				t.Fatalf("render %q: %v", tt.tmpl, err)
			}
			want := pr.forms[0].static
			if string(got.wire) != string(want.wire) || got.addr != want.addr || got.host != want.host || got.scheme != want.scheme {
				t.Errorf("%s %q renders\n%q to %s\nwant\n%q to %s", method, tt.tmpl, got.wire, got.addr, want.wire, want.addr)
			}
			// Rendering again into the same buffers gives the same bytes.
			again, _ := tr.render(d, 0, &dst)
			if string(again.wire) != string(want.wire) {
				t.Errorf("second render of %q differs: %q", tt.tmpl, again.wire)
			}
		}
	}
}

// FuzzPlainRequestURI: what plainRequestURI passes through unchanged is
// what net/url would have sent.
func FuzzPlainRequestURI(f *testing.F) {
	for _, s := range []string{"/a/b?c=d&e=f", "/%41%2f", "/x y", "/a#b", "/%zz", "//x", "/?", "/a;b=c@d:e", "/[x]"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !plainRequestURI([]byte(s)) {
			return
		}
		tg, err := parseTarget("http://h" + s)
		if err != nil {
			t.Fatalf("plainRequestURI(%q) but net/url: %v", s, err)
		}
		if tg.requestURI != s {
			t.Fatalf("plainRequestURI(%q) but net/url sends %q", s, tg.requestURI)
		}
	})
}
