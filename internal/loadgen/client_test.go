package loadgen_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"lode/internal/loadgen"
)

// rawServer answers every request on a real 127.0.0.1:0 listener with the
// bytes resp(n) returns (n counts requests from 1), then closes the
// connection if closeAfter says so. It lets the test send framings that
// net/http's server never produces.
func rawServer(t *testing.T, resp func(n int64) string, closeAfter func(n int64) bool) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var count atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func(c net.Conn) {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					// Read one request head (the tests send no bodies).
					for {
						line, err := br.ReadString('\n')
						if err != nil {
							return
						}
						if line == "\r\n" {
							break
						}
					}
					n := count.Add(1)
					if _, err := io.WriteString(c, resp(n)); err != nil {
						return
					}
					if closeAfter(n) {
						return
					}
				}
			}(c)
		}
	}()
	return "http://" + ln.Addr().String() + "/"
}

// forEachDriver runs f for each way the closed model can drive
// connections: event loops (Linux, http://) and a goroutine per user on
// the blocking client (https://, other systems, and the open model).
func forEachDriver(t *testing.T, f func(t *testing.T, driver func(loadgen.Config) loadgen.Config)) {
	t.Run("loops", func(t *testing.T) {
		f(t, func(c loadgen.Config) loadgen.Config {
			if runtime.GOOS == "linux" && !loadgen.UsesLoops(c) {
				t.Fatal("the closed model does not use event loops on Linux for an http:// target")
			}
			return c
		})
	})
	t.Run("goroutines", func(t *testing.T) { f(t, loadgen.WithoutLoops) })
}

func TestClientFramings(t *testing.T) {
	forEachDriver(t, testClientFramings)
}

func testClientFramings(t *testing.T, driver func(loadgen.Config) loadgen.Config) {
	never := func(int64) bool { return false }
	always := func(int64) bool { return true }
	tests := []struct {
		name       string
		resp       string
		closeAfter func(int64) bool
		wantBytes  int64 // per request
	}{
		{"content-length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", never, 5},
		{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhel\r\n2;ext=1\r\nlo\r\n0\r\nX-Trailer: 1\r\n\r\n", never, 5},
		{"close-delimited", "HTTP/1.1 200 OK\r\n\r\nhello", always, 5},
		{"connection close", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 5\r\n\r\nhello", always, 5},
		{"100 continue first", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok", never, 2},
		{"204 no body", "HTTP/1.1 204 No Content\r\n\r\n", never, 0},
		{"HTTP/1.0 closes", "HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nhello", always, 5},
		{"HTTP/1.0 keep-alive", "HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 5\r\n\r\nhello", never, 5},
		// The server closes each kept-alive connection after answering,
		// without saying so: the next request on it must be retried on a
		// new connection, not counted as an error.
		{"silent close after keep-alive", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", always, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url := rawServer(t, func(int64) string { return tt.resp }, tt.closeAfter)
			res, err := loadgen.Run(context.Background(), driver(loadgen.Config{
				Scenario: loadgen.URLScenario(url), Users: 2, MaxRequests: 50,
			}))
			if err != nil {
				t.Fatal(err)
			}
			if res.Total.Count != 50 || res.Total.Failures != 0 || res.Total.Bytes != 50*tt.wantBytes {
				t.Fatalf("count %d failures %d (%v) bytes %d; want 50, 0, %d", res.Total.Count, res.Total.Failures, messages(res.Total.Errors), res.Total.Bytes, 50*tt.wantBytes)
			}
		})
	}
}

func TestClientMalformedAndTruncated(t *testing.T) {
	forEachDriver(t, testClientMalformedAndTruncated)
}

func testClientMalformedAndTruncated(t *testing.T, driver func(loadgen.Config) loadgen.Config) {
	tests := []struct {
		name, resp, want string
	}{
		{"garbage", "SSH-2.0-OpenSSH\r\n\r\n", "malformed response"},
		{"truncated body", "HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nshort", "connection closed by server before the response was complete"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url := rawServer(t, func(int64) string { return tt.resp }, func(int64) bool { return true })
			res, err := loadgen.Run(context.Background(), driver(loadgen.Config{
				Scenario: loadgen.URLScenario(url), Users: 1, MaxRequests: 3,
			}))
			if err != nil {
				t.Fatal(err)
			}
			if res.Total.Failures != 3 || len(res.Total.Errors) != 1 || !strings.Contains(res.Total.Errors[0].Message, tt.want) {
				t.Fatalf("failures %d, errors %v; want 3 × %q", res.Total.Failures, messages(res.Total.Errors), tt.want)
			}
		})
	}
}

func TestClientSendsMethodHeadersBody(t *testing.T) {
	forEachDriver(t, testClientSendsMethodHeadersBody)
}

func testClientSendsMethodHeadersBody(t *testing.T, driver func(loadgen.Config) loadgen.Config) {
	var got atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got.Store(r.Method + " " + r.URL.RequestURI() + " " + r.Header.Get("Authorization") + " " + r.Header.Get("Content-Type") + " " + string(b))
		if r.Method == http.MethodHead {
			w.Header().Set("Content-Length", "100") // HEAD: no body follows
		}
	}))
	defer srv.Close()
	sc := &loadgen.Scenario{BaseURL: srv.URL, Headers: map[string]string{"Authorization": "Bearer t"}}
	sc.Add(&loadgen.Request{Method: "post", URL: "/db/t/-/insert?x=1", Body: `{"row":{"a":1}}`, Headers: map[string]string{"content-type": "application/json"}})
	res, err := loadgen.Run(context.Background(), driver(loadgen.Config{Scenario: sc, Users: 1, MaxRequests: 2}))
	if err != nil || res.Total.Failures != 0 {
		t.Fatalf("run: %v %v", err, res.Total.Errors)
	}
	want := `POST /db/t/-/insert?x=1 Bearer t application/json {"row":{"a":1}}`
	if g := got.Load().(string); g != want {
		t.Fatalf("server saw %q; want %q", g, want)
	}
	head := (&loadgen.Scenario{}).Add(&loadgen.Request{Method: "HEAD", URL: srv.URL + "/h"})
	res, err = loadgen.Run(context.Background(), driver(loadgen.Config{Scenario: head, Users: 1, MaxRequests: 3}))
	if err != nil || res.Total.Failures != 0 || res.Total.Count != 3 {
		t.Fatalf("HEAD run: %v count %d errors %v", err, res.Total.Count, messages(res.Total.Errors))
	}
}

func TestClientTLSAndTimeout(t *testing.T) {
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "secure")
	}))
	defer tlsSrv.Close()
	res, err := loadgen.Run(context.Background(), loadgen.Config{
		Scenario: loadgen.URLScenario(tlsSrv.URL), Users: 2, MaxRequests: 20, Insecure: true,
	})
	if err != nil || res.Total.Count != 20 || res.Total.Failures != 0 || res.Total.Bytes != 20*6 {
		t.Fatalf("TLS run: err %v count %d failures %d %v", err, res.Total.Count, res.Total.Failures, messages(res.Total.Errors))
	}
	// Without --insecure the self-signed certificate is refused.
	res, err = loadgen.Run(context.Background(), loadgen.Config{
		Scenario: loadgen.URLScenario(tlsSrv.URL), Users: 1, MaxRequests: 2,
	})
	if err != nil || res.Total.Failures != 2 || !strings.Contains(res.Total.Errors[0].Message, "certificate") {
		t.Fatalf("TLS without insecure: err %v errors %v; want 2 certificate errors", err, messages(res.Total.Errors))
	}

	forEachDriver(t, testClientTimeout)
}

func testClientTimeout(t *testing.T, driver func(loadgen.Config) loadgen.Config) {
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	}))
	defer hang.Close()
	res, err := loadgen.Run(context.Background(), driver(loadgen.Config{
		Scenario: loadgen.URLScenario(hang.URL), Users: 2, MaxRequests: 4, Timeout: 100 * time.Millisecond,
	}))
	if err != nil || res.Total.Failures != 4 || len(res.Total.Errors) != 1 || res.Total.Errors[0].Message != "timeout after 100ms" {
		t.Fatalf("timeouts: err %v failures %d errors %v; want 4 × timeout after 100ms", err, res.Total.Failures, messages(res.Total.Errors))
	}
	if tte := res.Total.Errors[0].Latency.Percentile(50); tte < 100*time.Millisecond {
		t.Fatalf("time to error %v; want ≥ the 100ms timeout", tte)
	}
}

// TestLoopReadsEarlyAnswer: a server that answers before reading a large
// request body (413) and then stops reading gets its answer counted, not
// a timeout, from the event loop (which must not spin on the readable
// socket while its write waits).
func TestLoopReadsEarlyAnswer(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("event loops run on Linux")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func(c net.Conn) {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					line, err := br.ReadString('\n')
					if err != nil || line == "\r\n" {
						break
					}
				}
				io.WriteString(c, "HTTP/1.1 413 Payload Too Large\r\nContent-Length: 9\r\n\r\ntoo large")
				<-done // hold the connection without reading the body
			}(c)
		}
	}()
	big := strings.Repeat("x", 16<<20)
	cfg := loadgen.Config{Scenario: (&loadgen.Scenario{}).Add(&loadgen.Request{Method: "POST", URL: "http://" + ln.Addr().String() + "/up", Body: big}),
		Users: 1, MaxRequests: 2, Timeout: 20 * time.Second}
	if !loadgen.UsesLoops(cfg) {
		t.Fatal("an http:// closed-model run does not use event loops on Linux")
	}
	res, err := loadgen.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Total.Count != 2 || len(res.Total.Errors) != 1 || res.Total.Errors[0].Message != "413 too large" {
		t.Fatalf("count %d, errors %v; want 2 × 413 too large", res.Total.Count, messages(res.Total.Errors))
	}
}
