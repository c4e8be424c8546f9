package loadgen_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"lode/internal/loadgen"
)

// countingServer counts the requests and connections it serves.
type countingServer struct {
	*httptest.Server
	reqs, conns atomic.Int64
	mu          sync.Mutex
	paths       map[string]int
}

func newCountingServer(t *testing.T) *countingServer {
	cs := &countingServer{paths: map[string]int{}}
	cs.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cs.reqs.Add(1)
		cs.mu.Lock()
		cs.paths[r.URL.Path]++
		cs.mu.Unlock()
		w.Write([]byte(`{"ok": true}`))
	}))
	cs.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			cs.conns.Add(1)
		}
	}
	cs.Start()
	t.Cleanup(cs.Close)
	return cs
}

// TestBasesSpreadUsers runs one closed-model scenario over three servers
// weighted 2:1:1: of 8 users, 4 keep a connection to the first server and
// 2 to each other one; relative URLs, templated ones included, go to the
// user's server.
func TestBasesSpreadUsers(t *testing.T) {
	a, b, c := newCountingServer(t), newCountingServer(t), newCountingServer(t)
	sc, err := loadgen.ParseScenario([]byte(fmt.Sprintf(`
base_url:
  - {url: %s, weight: 2}
  - %s
  - {url: %s}
requests:
  - url: /static.json
  - url: /tmpl/{{randInt 1 3}}.json
`, a.URL, b.URL, c.URL)), "")
	if err != nil {
		t.Fatal(err)
	}
	res, err := loadgen.Run(context.Background(), loadgen.Config{Scenario: sc, Users: 8, MaxRequests: 2000, Duration: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if res.Total.Failures != 0 {
		t.Fatalf("%d failures: %v", res.Total.Failures, res.Total.Errors[0].Message)
	}
	for _, s := range []struct {
		name  string
		srv   *countingServer
		conns int64
	}{{"a", a, 4}, {"b", b, 2}, {"c", c, 2}} {
		if got := s.srv.conns.Load(); got != s.conns {
			t.Errorf("server %s: %d connections; want %d (users dealt 2:1:1)", s.name, got, s.conns)
		}
		s.srv.mu.Lock()
		static, tmpl := s.srv.paths["/static.json"], 0
		for p, n := range s.srv.paths {
			if strings.HasPrefix(p, "/tmpl/") {
				tmpl += n
			}
		}
		s.srv.mu.Unlock()
		if static == 0 || tmpl == 0 {
			t.Errorf("server %s: %d static and %d templated requests; want both", s.name, static, tmpl)
		}
	}
	if sum := a.reqs.Load() + b.reqs.Load() + c.reqs.Load(); sum < res.Total.Count {
		t.Errorf("servers saw %d requests; the run counted %d", sum, res.Total.Count)
	}
}

func TestParseBase(t *testing.T) {
	for _, tc := range []struct {
		in      string
		url     string
		weight  int
		wantErr string
	}{
		{"http://127.0.0.1:8001", "http://127.0.0.1:8001", 0, ""},
		{"http://127.0.0.1:8002=3", "http://127.0.0.1:8002", 3, ""},
		{"http://127.0.0.1:8002=0", "", 0, "positive integer"},
		{"http://127.0.0.1:8002=x", "", 0, "positive integer"},
		{"127.0.0.1:8002", "", 0, "want http://"},
	} {
		b, err := loadgen.ParseBase(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ParseBase(%q) = %v, %v; want error %q", tc.in, b, err, tc.wantErr)
			}
			continue
		}
		if err != nil || b.URL != tc.url || b.Weight != tc.weight {
			t.Errorf("ParseBase(%q) = %+v, %v; want %s weight %d", tc.in, b, err, tc.url, tc.weight)
		}
	}
	if _, err := loadgen.ParseScenario([]byte("base_url: [{url: http://127.0.0.1:1, weight: -1}]\nrequests: [{url: /}]\n"), ""); err == nil {
		t.Error("a negative base weight parsed")
	}
}
