package loadgen

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"gopkg.in/yaml.v3"
)

// Scenario is what each virtual user (closed model) or arrival (open model)
// executes: one request picked at random by weight. Build one in Go with
// [Scenario.Add] or [URLScenario], or parse YAML with [ParseScenario].
// A Scenario must not be modified after it is passed to [Run]; Run only
// reads it, so one Scenario may serve several concurrent runs.
type Scenario struct {
	// BaseURL is prefixed to request URLs that start with "/". It may be
	// changed after parsing (to point a scenario at another server).
	BaseURL string
	// Bases, if set, replaces BaseURL with several servers (a primary and
	// its replicas): each virtual user, or open-model slot, is dealt one
	// by weight and keeps it (see baseFor). Statistics are per request
	// name, over all bases.
	Bases []Base
	// Headers are sent with every request (request headers override them).
	Headers map[string]string
	// Requests are the weighted requests; at least one is required.
	Requests []*Request
	// ThinkMin and ThinkMax bound a uniformly random pause a closed-model
	// user takes after each request. The open model ignores think time:
	// its arrivals follow the schedule.
	ThinkMin, ThinkMax time.Duration
	// Data, if set, feeds one row per request into templates as .row.
	Data *Data

	mu       sync.Mutex // guards prepare, so concurrent Runs may share a Scenario
	prepared bool
	base     string // baseKey when prepared; a change re-prepares
	cum      []int  // cumulative weights, for pick
	total    int
	baseCum  []int // cumulative base weights, for baseFor
}

// Request is one named, weighted HTTP request of a Scenario. URL, header
// values and Body are Go text/template texts; a text without "{{" is sent
// as is and costs nothing per request. Templates see .row (the fed data
// row, a map), .user (the virtual user number) and .iter (the request
// number of that user), plus the functions randInt MIN MAX, uuid and env
// NAME (the environment variable NAME, e.g. a token: {{env "TOKEN"}}).
type Request struct {
	// Name labels the request in every statistic; defaults to the URL path.
	Name string
	// Weight is the relative frequency of the request; 0 means 1.
	Weight int
	// Method defaults to GET.
	Method string
	// URL is absolute, or a path joined to Scenario.BaseURL.
	URL string
	// Headers are extra request headers.
	Headers map[string]string
	// Body is sent as the request body. A JSON body built from YAML gets a
	// Content-Type: application/json header unless Headers set one.
	Body string
	// Checks judge the response; any failure counts the request as an
	// error with the check's message. Without a status check a status of
	// 400 or more is an error (as in Locust).
	Checks []Check

	line     int // YAML line, for messages
	method   string
	needBody bool // a check needs the body
	// forms holds where the request goes: one form per base URL when
	// the URL is a path and the scenario has several Bases (a user's
	// base picks it, see baseFor), else one.
	forms    []urlForm
	bodyT    *tmpl
	jsonBody any              // parsed json: body whose string leaves are templates
	jsonT    map[string]*tmpl // the templates among jsonBody's leaves
	headerT  []headerTemplate
}

// urlForm is a request's URL against one base URL, split into what is
// fixed and what is rendered per request.
type urlForm struct {
	scheme string // http or https (fixed even when the URL is templated)
	// hostTg holds where to send the request when scheme://host is
	// fixed (nothing is templated, or only the path and query are);
	// uri is then the request-URI, or uriT its template. Otherwise
	// urlT renders the whole URL, which is parsed per request.
	hostTg *target
	prefix string // scheme://host of hostTg
	uri    string
	uriT   *tmpl
	urlT   *tmpl
	static *target // the whole request when nothing is templated
}

type headerTemplate struct {
	name string
	t    *tmpl
	raw  string
}

// Check is one assertion on a response. Exactly one of Status or JSONPath
// is set. With JSONPath and neither Equals nor Exists, the path must exist.
type Check struct {
	// Status lists the accepted status codes.
	Status []int
	// JSONPath is a dotted path into the JSON body, e.g. "rows.0.id".
	JSONPath string
	// Equals, if not nil, is the value the path must hold (compared after
	// JSON round-trip, so 3 equals 3.0).
	Equals any
	// Absent inverts the existence check: the path must not exist.
	Absent bool
}

// Data feeds rows from a CSV (with a header line) or JSONL file into
// request templates as .row. Rows are taken in order (wrapping around) or
// at random.
type Data struct {
	// Rows are the data rows; each is a column-name → value map.
	Rows []map[string]any
	// Random picks rows at random instead of in order.
	Random bool

	next atomic.Uint64
}

// row returns the row for one request. Safe for concurrent use.
func (d *Data) row() map[string]any {
	if d == nil || len(d.Rows) == 0 {
		return nil
	}
	if d.Random {
		return d.Rows[rand.IntN(len(d.Rows))]
	}
	i := d.next.Add(1) - 1
	return d.Rows[i%uint64(len(d.Rows))]
}

// URLScenario returns a Scenario of one GET request of rawURL, named by the
// URL's path (with query), like wrk or hey.
func URLScenario(rawURL string) *Scenario {
	s := &Scenario{}
	s.Add(&Request{URL: rawURL})
	return s
}

// Add appends a request and returns the Scenario, for chaining.
func (s *Scenario) Add(r *Request) *Scenario {
	s.mu.Lock()
	s.Requests = append(s.Requests, r)
	s.prepared = false
	s.mu.Unlock()
	return s
}

// placeholderBase stands in for a missing base_url while a parsed
// scenario is checked, so that its other errors show at parse time; the
// base URL may still come from lode load --base-url (or BaseURL) before
// Run, which prepares the scenario again and requires one.
const placeholderBase = "http://base-url.invalid"

// prepare validates the scenario and compiles its templates. It is called
// by Run.
func (s *Scenario) prepare() error { return s.prepareWith(false) }

// prepareWith prepares the scenario; with parsing set (ParseScenario) a
// request path without a base URL is checked against a placeholder and
// the scenario stays unprepared.
func (s *Scenario) prepareWith(parsing bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.prepared && s.base == s.baseKey() {
		return nil
	}
	if err := s.prepareBases(); err != nil {
		return err
	}
	if len(s.Requests) == 0 {
		return errors.New("scenario has no requests: give a URL or at least one entry under requests:")
	}
	if s.ThinkMax < s.ThinkMin {
		s.ThinkMax = s.ThinkMin
	}
	s.cum = s.cum[:0]
	s.total = 0
	var bases []string
	for _, b := range s.bases() {
		bases = append(bases, b.URL)
	}
	hasBase := bases[0] != ""
	if !hasBase && parsing {
		bases[0] = placeholderBase
	}
	for i, r := range s.Requests {
		where := fmt.Sprintf("request %d", i+1)
		if r.Name != "" {
			where = fmt.Sprintf("request %q", r.Name)
		}
		if r.line > 0 {
			where = fmt.Sprintf("line %d: %s", r.line, where)
		}
		if err := s.prepareRequest(r, bases); err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		s.total += r.Weight
		s.cum = append(s.cum, s.total)
	}
	s.prepared, s.base = hasBase || !parsing, s.baseKey()
	return nil
}

// prepareRequest validates r and compiles its templates; a URL that is a
// path is joined to each of bases (the base URLs, in Bases' order).
func (s *Scenario) prepareRequest(r *Request, bases []string) error {
	if r.Weight < 0 {
		return fmt.Errorf("weight %d: want 0 or more", r.Weight)
	}
	if r.Weight == 0 {
		r.Weight = 1
	}
	r.method = strings.ToUpper(r.Method)
	if r.method == "" {
		r.method = http.MethodGet
	}
	for _, c := range r.method {
		if c < 'A' || c > 'Z' {
			return fmt.Errorf("method %q: want a word like GET or POST", r.Method)
		}
	}
	if r.URL == "" {
		return errors.New("url is empty: give an absolute URL or a path with base_url")
	}
	r.forms = r.forms[:0]
	if strings.HasPrefix(r.URL, "/") {
		if bases[0] == "" {
			return fmt.Errorf("url %q is a path but the scenario has no base_url: add base_url: http://HOST:PORT to the scenario, or pass --base-url", r.URL)
		}
		for _, b := range bases {
			f, err := prepareURL(strings.TrimRight(b, "/") + r.URL)
			if err != nil {
				return err
			}
			r.forms = append(r.forms, f)
		}
	} else {
		f, err := prepareURL(r.URL)
		if err != nil {
			return err
		}
		r.forms = append(r.forms, f)
	}
	if r.Name == "" {
		r.Name = nameFromURL(r.URL)
	}
	var err error
	r.jsonT = nil
	if r.jsonBody == nil {
		if r.bodyT, err = parseTemplate("body", r.Body); err != nil {
			return err
		}
	} else if err := r.compileJSON(r.jsonBody); err != nil {
		return err
	}
	r.headerT = r.headerT[:0]
	names := make([]string, 0, len(s.Headers)+len(r.Headers))
	merged := map[string]string{}
	for k, v := range s.Headers {
		merged[http.CanonicalHeaderKey(k)] = v
	}
	for k, v := range r.Headers {
		merged[http.CanonicalHeaderKey(k)] = v
	}
	if r.jsonBody != nil && merged["Content-Type"] == "" {
		merged["Content-Type"] = "application/json"
	}
	for k := range merged {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if strings.ContainsAny(k, " \r\n:") {
			return fmt.Errorf("header name %q is not valid", k)
		}
		v := merged[k]
		if strings.ContainsAny(v, "\r\n") {
			return fmt.Errorf("header %s: value must not contain a line break", k)
		}
		t, err := parseTemplate("header "+k, v)
		if err != nil {
			return err
		}
		r.headerT = append(r.headerT, headerTemplate{name: k, t: t, raw: v})
	}
	for i, c := range r.Checks {
		if (len(c.Status) == 0) == (c.JSONPath == "") {
			return fmt.Errorf("check %d: give exactly one of status or json", i+1)
		}
	}
	for i := range r.Checks {
		c := &r.Checks[i]
		if _, isNull := c.Equals.(jsonNull); c.Equals != nil && !isNull {
			if c.Equals, err = jsonRoundTrip(c.Equals); err != nil {
				return fmt.Errorf("check %d equals: %w", i+1, err)
			}
		}
	}
	r.needBody = false
	for _, c := range r.Checks {
		if c.JSONPath != "" {
			r.needBody = true
		}
	}
	if r.bodyT == nil && r.jsonBody == nil && !anyHeaderTemplate(r.headerT) {
		for i := range r.forms {
			f := &r.forms[i]
			if f.hostTg == nil || f.uriT != nil {
				continue
			}
			tg, err := r.renderForm(f, &tmplData{}, &target{})
			if err != nil {
				return err
			}
			f.static = tg
		}
	}
	return nil
}

// prepareURL validates the URL full (scheme and, when not templated,
// host) and splits it into what is fixed and what is rendered per
// request.
func prepareURL(full string) (urlForm, error) {
	var f urlForm
	tpl := strings.Index(full, "{{")
	if tpl < 0 {
		tg, err := parseTarget(full)
		if err != nil {
			return f, err
		}
		f.scheme, f.hostTg, f.uri = tg.scheme, tg, tg.requestURI
		f.prefix = tg.scheme + "://" + tg.hostHeader
		return f, nil
	}
	// Validate the scheme now; only the template parts vary.
	pre := full[:tpl]
	switch {
	case strings.HasPrefix(pre, "http://"):
		f.scheme = "http"
	case strings.HasPrefix(pre, "https://"):
		f.scheme = "https"
	default:
		return f, fmt.Errorf("url %q: want http:// or https://", full)
	}
	// A template after the host's "/" leaves scheme://host fixed.
	rest := pre[len(f.scheme)+3:]
	if slash := strings.IndexByte(rest, '/'); slash > 0 && !strings.ContainsAny(rest[:slash], "?#") {
		prefix := pre[:len(f.scheme)+3+slash]
		if tg, err := parseTarget(prefix); err == nil && tg.requestURI == "/" {
			t, err := parseTemplate("url", full[len(prefix):])
			if err != nil {
				return f, err
			}
			f.hostTg, f.prefix, f.uriT = tg, prefix, t
			return f, nil
		}
	}
	t, err := parseTemplate("url", full)
	if err != nil {
		return f, err
	}
	f.urlT = t
	return f, nil
}

// compileJSON parses every string leaf of a JSON body that is a template,
// so that syntax errors show before the run and no request parses one.
func (r *Request) compileJSON(v any) error {
	switch x := v.(type) {
	case string:
		t, err := parseTemplate("json body", x)
		if err != nil || t == nil {
			return err
		}
		if r.jsonT == nil {
			r.jsonT = map[string]*tmpl{}
		}
		r.jsonT[x] = t
	case map[string]any:
		for _, e := range x {
			if err := r.compileJSON(e); err != nil {
				return err
			}
		}
	case []any:
		for _, e := range x {
			if err := r.compileJSON(e); err != nil {
				return err
			}
		}
	}
	return nil
}

func anyHeaderTemplate(hs []headerTemplate) bool {
	for _, h := range hs {
		if h.t != nil {
			return true
		}
	}
	return false
}

func nameFromURL(raw string) string {
	if i := strings.Index(raw, "://"); i >= 0 {
		rest := raw[i+3:]
		if j := strings.IndexByte(rest, '/'); j >= 0 {
			return rest[j:]
		}
		return "/"
	}
	return raw
}

// render builds the wire request for one execution of r, by the user
// whose base is base (an index into Scenario.Bases, see baseFor), in
// dst, whose buffers are reused from one execution to the next, and
// returns it; a request with nothing templated returns its prebuilt
// target.
func (r *Request) render(d *tmplData, base int, dst *target) (*target, error) {
	f := r.form(base)
	if f.static != nil {
		return f.static, nil
	}
	return r.renderForm(f, d, dst)
}

// form returns the URL form for the base with index base.
func (r *Request) form(base int) *urlForm {
	if len(r.forms) > 1 {
		return &r.forms[base]
	}
	return &r.forms[0]
}

// renderForm renders r to the URL form f.
func (r *Request) renderForm(f *urlForm, d *tmplData, dst *target) (*target, error) {
	var err error
	// The body first: its length goes in the head.
	body := dst.body[:0]
	switch {
	case r.jsonBody != nil:
		v, err := r.renderJSON(r.jsonBody, d)
		if err != nil {
			return nil, err
		}
		b, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("json body: %w", err)
		}
		body = append(body, b...)
	case r.bodyT != nil:
		if body, err = r.bodyT.appendTo(body, d); err != nil {
			return nil, err
		}
	default:
		body = append(body, r.Body...)
	}
	dst.body = body

	w := append(dst.wire[:0], r.method...)
	w = append(w, ' ')
	hostHeader := ""
	if f.hostTg != nil {
		*dst = target{scheme: f.hostTg.scheme, addr: f.hostTg.addr, host: f.hostTg.host, wire: dst.wire, body: dst.body, url: dst.url}
		hostHeader = f.hostTg.hostHeader
		if f.uriT == nil {
			w = append(w, f.uri...)
		} else {
			m := len(w)
			if w, err = f.uriT.appendTo(w, d); err != nil {
				return nil, err
			}
			if !plainRequestURI(w[m:]) {
				// Let net/url escape it, as for a URL without templates.
				tg, err := parseTarget(f.prefix + string(w[m:]))
				if err != nil {
					return nil, err
				}
				w = append(w[:m], tg.requestURI...)
			}
		}
	} else {
		u, err := f.urlT.appendTo(dst.url[:0], d)
		dst.url = u
		if err != nil {
			return nil, err
		}
		tg, err := parseTarget(string(u))
		if err != nil {
			return nil, err
		}
		*dst = target{scheme: tg.scheme, addr: tg.addr, host: tg.host, wire: dst.wire, body: dst.body, url: dst.url}
		hostHeader = tg.hostHeader
		w = append(w, tg.requestURI...)
	}
	w = append(w, " HTTP/1.1\r\nHost: "...)
	w = append(w, hostHeader...)
	w = append(w, "\r\n"...)
	hasUA := false
	for _, h := range r.headerT {
		if h.name == "Host" || h.name == "Content-Length" {
			continue
		}
		hasUA = hasUA || h.name == "User-Agent"
		w = append(w, h.name...)
		w = append(w, ": "...)
		if h.t == nil {
			w = append(w, h.raw...)
		} else {
			m := len(w)
			if w, err = h.t.appendTo(w, d); err != nil {
				return nil, err
			}
			if bytes.ContainsAny(w[m:], "\r\n") {
				return nil, fmt.Errorf("header %s: value must not contain a line break", h.name)
			}
		}
		w = append(w, "\r\n"...)
	}
	if !hasUA {
		w = append(w, "User-Agent: lode-load\r\n"...)
	}
	if len(body) > 0 || r.method == http.MethodPost || r.method == http.MethodPut || r.method == http.MethodPatch {
		w = append(w, "Content-Length: "...)
		w = strconv.AppendInt(w, int64(len(body)), 10)
		w = append(w, "\r\n"...)
	}
	w = append(w, "\r\n"...)
	w = append(w, body...)
	dst.wire = w
	dst.head = r.method == http.MethodHead
	return dst, nil
}

// plainRequestURI reports whether net/url would send b (a path and query
// starting with "/") unchanged as the request-URI: only characters that
// need no escaping, and "%" only before two hex digits.
func plainRequestURI(b []byte) bool {
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("-._~!$&'()*+,;=:@/?", c) >= 0:
		case c == '%' && i+2 < len(b) && isHex(b[i+1]) && isHex(b[i+2]):
		default:
			return false
		}
	}
	return len(b) > 0 && b[0] == '/'
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// target is one serialised request and where to send it. A rendered
// target's buffers are reused for the next request of the same user.
type target struct {
	scheme     string
	addr       string // host:port to dial
	host       string // host name without port (TLS server name, safety check)
	hostHeader string
	requestURI string
	wire       []byte
	head       bool

	body, url []byte // scratch buffers for rendering
}

func parseTarget(raw string) (*target, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("url %q: %w", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("url %q: want http:// or https://", raw)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("url %q has no host", raw)
	}
	tg := &target{scheme: u.Scheme, host: u.Hostname(), hostHeader: u.Host}
	port := u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "https" {
			port = "443"
		}
	}
	tg.addr = joinHostPort(tg.host, port)
	tg.requestURI = u.RequestURI()
	return tg, nil
}

func joinHostPort(h, p string) string {
	if strings.Contains(h, ":") {
		return "[" + h + "]:" + p
	}
	return h + ":" + p
}

// renderJSON executes the templates in the string leaves of v. A leaf that
// is exactly one action such as "{{.row.id}}" takes the value's own type,
// so a number stays a number.
func (r *Request) renderJSON(v any, d *tmplData) (any, error) {
	switch x := v.(type) {
	case string:
		t := r.jsonT[x]
		if t == nil {
			return x, nil
		}
		if val, ok := lookupSimple(x, d); ok {
			return val, nil
		}
		out, err := t.execString(d)
		if err != nil {
			return nil, fmt.Errorf("json body %w", err)
		}
		return out, nil
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			r, err := r.renderJSON(e, d)
			if err != nil {
				return nil, err
			}
			out[k] = r
		}
		return out, nil
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			r, err := r.renderJSON(e, d)
			if err != nil {
				return nil, err
			}
			out[i] = r
		}
		return out, nil
	}
	return v, nil
}

// lookupSimple resolves a template that is exactly "{{.a.b}}".
func lookupSimple(s string, d *tmplData) (any, bool) {
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, "{{") || !strings.HasSuffix(s, "}}") {
		return nil, false
	}
	inner := strings.TrimSpace(s[2 : len(s)-2])
	if !strings.HasPrefix(inner, ".") || strings.ContainsAny(inner, " |()\"") || strings.Count(s, "{{") != 1 {
		return nil, false
	}
	parts := strings.Split(inner[1:], ".")
	var cur any
	switch parts[0] {
	case "row":
		cur = d.Row
	case "user":
		cur = d.User
	case "iter":
		cur = d.Iter
	default:
		return nil, false
	}
	for _, part := range parts[1:] {
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = mm[part]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// ---- YAML ----

// ParseScenarioFile reads a YAML scenario. Relative data file paths are
// resolved against the scenario file's directory.
func ParseScenarioFile(path string) (*Scenario, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read scenario: %w", err)
	}
	s, err := ParseScenario(b, filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// ParseScenario parses a YAML scenario; dir resolves relative data file
// paths. Errors name the offending line. The format:
//
//	base_url: http://127.0.0.1:8001
//	headers: {Authorization: "Bearer xyz"}
//	think: 100ms            # or "50ms..200ms"
//	data: {file: people.csv, order: random}   # or sequential (default); .csv or .jsonl
//	requests:
//	  - name: table
//	    weight: 9
//	    url: /fixtures/facetable.json?_size=10
//	    checks:
//	      - status: 200
//	      - json: rows.0.pk
//	  - name: insert
//	    method: POST
//	    url: /data/people/-/insert
//	    json: {row: {name: "{{.row.name}}", age: "{{.row.age}}"}}
//	    checks: [{status: [200, 201]}, {json: ok, equals: true}]
func ParseScenario(b []byte, dir string) (*Scenario, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		return nil, fmt.Errorf("scenario YAML: %w", err)
	}
	if len(root.Content) == 0 {
		return nil, errors.New("scenario is empty: want a mapping with requests:")
	}
	top := root.Content[0]
	if top.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("line %d: scenario must be a mapping with requests:", top.Line)
	}
	if err := checkKeys(top, "scenario", "base_url", "headers", "think", "data", "requests"); err != nil {
		return nil, err
	}
	s := &Scenario{}
	var reqNode *yaml.Node
	for i := 0; i+1 < len(top.Content); i += 2 {
		k, v := top.Content[i].Value, top.Content[i+1]
		var err error
		switch k {
		case "base_url":
			err = decodeBaseURL(v, s)
		case "headers":
			err = decodeHeaders(v, &s.Headers)
		case "think":
			var t string
			if err = decodeScalar(v, &t); err == nil {
				s.ThinkMin, s.ThinkMax, err = parseThink(t)
				if err != nil {
					err = fmt.Errorf("line %d: think %q: %w", v.Line, t, err)
				}
			}
		case "data":
			s.Data, err = decodeData(v, dir)
		case "requests":
			reqNode = v
		}
		if err != nil {
			return nil, err
		}
	}
	if reqNode == nil {
		return nil, fmt.Errorf("line %d: scenario has no requests: list", top.Line)
	}
	if reqNode.Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("line %d: requests must be a list", reqNode.Line)
	}
	for _, rn := range reqNode.Content {
		r, err := decodeRequest(rn)
		if err != nil {
			return nil, err
		}
		s.Requests = append(s.Requests, r)
	}
	if err := s.prepareWith(true); err != nil {
		return nil, err
	}
	return s, nil
}

func checkKeys(n *yaml.Node, what string, allowed ...string) error {
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: %s must be a mapping", n.Line, what)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		ok := false
		for _, a := range allowed {
			if k.Value == a {
				ok = true
				break
			}
		}
		if !ok {
			return fmt.Errorf("line %d: unknown %s field %q (want one of %s)", k.Line, what, k.Value, strings.Join(allowed, ", "))
		}
	}
	return nil
}

func decodeScalar(n *yaml.Node, v any) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: want a single value", n.Line)
	}
	if err := n.Decode(v); err != nil {
		return fmt.Errorf("line %d: %q: %w", n.Line, n.Value, yamlTypeErr(err))
	}
	return nil
}

// yamlTypeErr strips yaml's own "line N:" prefix, since we add ours.
func yamlTypeErr(err error) error {
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		msg := te.Errors[0]
		if i := strings.Index(msg, ": "); strings.HasPrefix(msg, "line ") && i > 0 {
			msg = msg[i+2:]
		}
		return errors.New(msg)
	}
	return err
}

func decodeHeaders(n *yaml.Node, out *map[string]string) error {
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: headers must be a mapping of name: value", n.Line)
	}
	m := map[string]string{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		var v string
		if err := decodeScalar(n.Content[i+1], &v); err != nil {
			return err
		}
		m[n.Content[i].Value] = v
	}
	*out = m
	return nil
}

func parseThink(s string) (lo, hi time.Duration, err error) {
	s = strings.TrimSpace(s)
	if a, b, ok := strings.Cut(s, ".."); ok {
		if lo, err = time.ParseDuration(strings.TrimSpace(a)); err != nil {
			return 0, 0, err
		}
		if hi, err = time.ParseDuration(strings.TrimSpace(b)); err != nil {
			return 0, 0, err
		}
		if hi < lo || lo < 0 {
			return 0, 0, errors.New("want MIN..MAX with 0 <= MIN <= MAX")
		}
		return lo, hi, nil
	}
	lo, err = time.ParseDuration(s)
	if err != nil || lo < 0 {
		return 0, 0, errors.New("want a duration like 100ms or a range like 50ms..200ms")
	}
	return lo, lo, nil
}

func decodeData(n *yaml.Node, dir string) (*Data, error) {
	if err := checkKeys(n, "data", "file", "order"); err != nil {
		return nil, err
	}
	var file, order string
	for i := 0; i+1 < len(n.Content); i += 2 {
		var err error
		switch n.Content[i].Value {
		case "file":
			err = decodeScalar(n.Content[i+1], &file)
		case "order":
			err = decodeScalar(n.Content[i+1], &order)
		}
		if err != nil {
			return nil, err
		}
	}
	if file == "" {
		return nil, fmt.Errorf("line %d: data needs file: (a .csv or .jsonl file)", n.Line)
	}
	random := false
	switch order {
	case "", "sequential":
	case "random":
		random = true
	default:
		return nil, fmt.Errorf("line %d: data order %q: want sequential or random", n.Line, order)
	}
	if !filepath.IsAbs(file) && dir != "" {
		file = filepath.Join(dir, file)
	}
	d, err := LoadData(file)
	if err != nil {
		return nil, fmt.Errorf("line %d: %w", n.Line, err)
	}
	d.Random = random
	return d, nil
}

// LoadData reads a data file for feeding: CSV with a header line (values
// stay strings) or JSONL (one JSON object per line), chosen by extension
// (.csv, .jsonl or .ndjson).
func LoadData(path string) (*Data, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("data file: %w", err)
	}
	defer f.Close()
	d := &Data{}
	switch strings.ToLower(filepath.Ext(path)) {
	case ".csv":
		d.Rows, err = readCSV(f)
	case ".jsonl", ".ndjson":
		d.Rows, err = readJSONL(f)
	default:
		return nil, fmt.Errorf("data file %s: want a .csv or .jsonl file", path)
	}
	if err != nil {
		return nil, fmt.Errorf("data file %s: %w", path, err)
	}
	if len(d.Rows) == 0 {
		return nil, fmt.Errorf("data file %s has no rows", path)
	}
	return d, nil
}

func readCSV(r io.Reader) ([]map[string]any, error) {
	cr := csv.NewReader(r)
	head, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("header line: %w", err)
	}
	var rows []map[string]any
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return rows, nil
		}
		if err != nil {
			return nil, err
		}
		m := make(map[string]any, len(head))
		for i, h := range head {
			m[h] = rec[i]
		}
		rows = append(rows, m)
	}
}

func readJSONL(r io.Reader) ([]map[string]any, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	var rows []map[string]any
	for line := 1; sc.Scan(); line++ {
		t := bytes.TrimSpace(sc.Bytes())
		if len(t) == 0 {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(t, &m); err != nil {
			return nil, fmt.Errorf("line %d: want one JSON object per line: %w", line, err)
		}
		rows = append(rows, m)
	}
	return rows, sc.Err()
}

func decodeRequest(n *yaml.Node) (*Request, error) {
	if err := checkKeys(n, "request", "name", "weight", "method", "url", "path", "headers", "body", "json", "checks"); err != nil {
		return nil, err
	}
	r := &Request{line: n.Line}
	hasURL := false
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i].Value, n.Content[i+1]
		var err error
		switch k {
		case "name":
			err = decodeScalar(v, &r.Name)
		case "weight":
			err = decodeScalar(v, &r.Weight)
		case "method":
			err = decodeScalar(v, &r.Method)
		case "url", "path":
			// path: is accepted as a synonym, the word lode bench's
			// matrix files used for a target's workloads.
			if hasURL {
				return nil, fmt.Errorf("line %d: give url: or path:, not both (they are the same field)", v.Line)
			}
			hasURL = true
			err = decodeScalar(v, &r.URL)
		case "headers":
			err = decodeHeaders(v, &r.Headers)
		case "body":
			err = decodeScalar(v, &r.Body)
		case "json":
			var x any
			if err = v.Decode(&x); err != nil {
				err = fmt.Errorf("line %d: json body: %w", v.Line, yamlTypeErr(err))
			} else if x, err = normaliseYAML(x); err != nil {
				err = fmt.Errorf("line %d: json body: %w", v.Line, err)
			} else {
				r.jsonBody = x
			}
		case "checks":
			r.Checks, err = decodeChecks(v)
		}
		if err != nil {
			return nil, err
		}
	}
	if r.jsonBody != nil && r.Body != "" {
		return nil, fmt.Errorf("line %d: give body: or json:, not both", n.Line)
	}
	if r.URL == "" {
		return nil, fmt.Errorf("line %d: request has no url:", n.Line)
	}
	return r, nil
}

// normaliseYAML turns yaml's map[string]any/[]any into JSON-marshalable
// values and rejects non-string keys.
func normaliseYAML(v any) (any, error) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			n, err := normaliseYAML(e)
			if err != nil {
				return nil, err
			}
			x[k] = n
		}
	case []any:
		for i, e := range x {
			n, err := normaliseYAML(e)
			if err != nil {
				return nil, err
			}
			x[i] = n
		}
	case map[any]any:
		return nil, errors.New("object keys must be strings")
	}
	return v, nil
}

func decodeChecks(n *yaml.Node) ([]Check, error) {
	if n.Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("line %d: checks must be a list", n.Line)
	}
	var out []Check
	for _, cn := range n.Content {
		if err := checkKeys(cn, "check", "status", "json", "equals", "absent"); err != nil {
			return nil, err
		}
		var c Check
		hasEquals := false
		for i := 0; i+1 < len(cn.Content); i += 2 {
			k, v := cn.Content[i].Value, cn.Content[i+1]
			var err error
			switch k {
			case "status":
				if v.Kind == yaml.SequenceNode {
					err = v.Decode(&c.Status)
				} else {
					var st int
					err = v.Decode(&st)
					c.Status = []int{st}
				}
				if err != nil {
					err = fmt.Errorf("line %d: status: want a code or a list of codes: %w", v.Line, yamlTypeErr(err))
				}
				for _, st := range c.Status {
					if err == nil && (st < 100 || st > 599) {
						err = fmt.Errorf("line %d: status %d: want 100-599", v.Line, st)
					}
				}
			case "json":
				err = decodeScalar(v, &c.JSONPath)
			case "equals":
				hasEquals = true
				var x any
				if err = v.Decode(&x); err == nil {
					x, err = normaliseYAML(x)
				}
				if err == nil {
					c.Equals, err = jsonRoundTrip(x)
				}
				if err != nil {
					err = fmt.Errorf("line %d: equals: %w", v.Line, err)
				}
			case "absent":
				err = decodeScalar(v, &c.Absent)
			}
			if err != nil {
				return nil, err
			}
		}
		if (len(c.Status) == 0) == (c.JSONPath == "") {
			return nil, fmt.Errorf("line %d: a check needs exactly one of status: or json:", cn.Line)
		}
		if hasEquals && c.JSONPath == "" {
			return nil, fmt.Errorf("line %d: equals: needs json:", cn.Line)
		}
		if hasEquals && c.Equals == nil {
			c.Equals = jsonNull{}
		}
		out = append(out, c)
	}
	return out, nil
}

// jsonNull marks "equals: null" (a nil Equals means "no equality check").
type jsonNull struct{}

func jsonRoundTrip(v any) (any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var out any
	err = json.Unmarshal(b, &out)
	return out, err
}
