package loadgen_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
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
// user's server (users 0, 1, 4 and 5 to the first, 2 and 6 to the
// second, 3 and 7 to the third), on both drivers; with two event loops,
// so that users of one loop go to different servers.
func TestBasesSpreadUsers(t *testing.T) {
	forEachDriver(t, func(t *testing.T, driver func(loadgen.Config) loadgen.Config) {
		a, b, c := newCountingServer(t), newCountingServer(t), newCountingServer(t)
		sc, err := loadgen.ParseScenario([]byte(fmt.Sprintf(`
base_url:
  - {url: %s, weight: 2}
  - %s
  - {url: %s}
requests:
  - url: /static.json
  - url: /tmpl/{{.user}}/{{randInt 1 3}}.json
`, a.URL, b.URL, c.URL)), "")
		if err != nil {
			t.Fatal(err)
		}
		res, err := loadgen.Run(context.Background(), driver(loadgen.WithLoops(loadgen.Config{Scenario: sc, Users: 8, MaxRequests: 2000, Duration: 20 * time.Second}, 2)))
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
			users []string
		}{{"a", a, 4, []string{"0", "1", "4", "5"}}, {"b", b, 2, []string{"2", "6"}}, {"c", c, 2, []string{"3", "7"}}} {
			if got := s.srv.conns.Load(); got != s.conns {
				t.Errorf("server %s: %d connections; want %d (users dealt 2:1:1)", s.name, got, s.conns)
			}
			s.srv.mu.Lock()
			static, tmpl := s.srv.paths["/static.json"], 0
			for p, n := range s.srv.paths {
				if rest, ok := strings.CutPrefix(p, "/tmpl/"); ok {
					tmpl += n
					if u, _, _ := strings.Cut(rest, "/"); !slices.Contains(s.users, u) {
						t.Errorf("server %s got %s, from user %s; want only users %v", s.name, p, u, s.users)
					}
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
	})
}

// TestBasesWithPaths: base URLs with a path of their own (a server behind a
// prefix) prefix every relative request, fixed, templated in its path or
// query, or with a templated body, on both drivers.
func TestBasesWithPaths(t *testing.T) {
	forEachDriver(t, func(t *testing.T, driver func(loadgen.Config) loadgen.Config) {
		a, b := newCountingServer(t), newCountingServer(t)
		sc, err := loadgen.ParseScenario([]byte(fmt.Sprintf(`
base_url: [%s/v1, %s/v2/]
requests:
  - url: /fixed
  - url: /t/{{randInt 1 9}}?i={{.iter}}
  - {url: /post, method: POST, json: {n: "{{.iter}}"}}
`, a.URL, b.URL)), "")
		if err != nil {
			t.Fatal(err)
		}
		res, err := loadgen.Run(context.Background(), driver(loadgen.WithLoops(loadgen.Config{Scenario: sc, Users: 4, MaxRequests: 400, Duration: 20 * time.Second}, 2)))
		if err != nil {
			t.Fatal(err)
		}
		if res.Total.Failures != 0 {
			t.Fatalf("%d failures: %v", res.Total.Failures, res.Total.Errors[0].Message)
		}
		for _, s := range []struct {
			srv    *countingServer
			prefix string
		}{{a, "/v1/"}, {b, "/v2/"}} {
			s.srv.mu.Lock()
			kinds := map[string]bool{}
			for p := range s.srv.paths {
				rest, ok := strings.CutPrefix(p, s.prefix)
				if !ok {
					t.Errorf("server with base %s got %s", s.prefix, p)
					continue
				}
				kinds[strings.SplitN(rest, "/", 2)[0]] = true
			}
			s.srv.mu.Unlock()
			if len(kinds) != 3 {
				t.Errorf("server with base %s got requests %v; want fixed, t and post", s.prefix, kinds)
			}
		}
	})
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
