package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"lode/internal/server"
)

// TestProtocolErrorsAreJSON: the errors net/http answers before a request
// exists (headers too large, malformed HTTP) reach the client as JSON
// with their status and a message, like every other error; a handler's
// own responses pass unchanged, even when they look like one.
func TestProtocolErrorsAreJSON(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := server.ServeListener(raw, 8, nil)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/imitate" {
			io.WriteString(w, "ok")
			return
		}
		// A text answer that imitates Go's own error.
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Connection", "close")
		io.WriteString(w, "431 Request Header Fields Too Large")
	})
	hs := server.NewHTTPServer(context.Background(), h, nil)
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	addr := raw.Addr().String()

	// send writes raw requests on one connection and reads the responses.
	send := func(t *testing.T, reqs ...string) []*http.Response {
		t.Helper()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		br := bufio.NewReader(c)
		var out []*http.Response
		for _, req := range reqs {
			if _, err := io.WriteString(c, req); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("reading the answer to %.60q: %v", req, err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body = io.NopCloser(strings.NewReader(string(b)))
			out = append(out, resp)
		}
		return out
	}
	jsonErr := func(t *testing.T, resp *http.Response, status int, wantMsg string) {
		t.Helper()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != status || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
			t.Fatalf("status %d %q; want %d JSON: %s", resp.StatusCode, resp.Header.Get("Content-Type"), status, b)
		}
		var e struct {
			OK     *bool  `json:"ok"`
			Error  string `json:"error"`
			Status int    `json:"status"`
		}
		if err := json.Unmarshal(b, &e); err != nil || e.OK == nil || *e.OK || e.Status != status || !strings.Contains(e.Error, wantMsg) {
			t.Fatalf("body %s (%v); want ok false, status %d, an error with %q", b, err, status, wantMsg)
		}
	}

	long := "GET /db/-/query.json?sql=select+'" + strings.Repeat("x", 100<<10) + "' HTTP/1.1\r\nHost: x\r\n\r\n"
	jsonErr(t, send(t, long)[0], 431, "at most 64 KiB")
	bigHeader := "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("y", 100<<10) + "\r\n\r\n"
	jsonErr(t, send(t, bigHeader)[0], 431, "canned query")
	jsonErr(t, send(t, "GARBAGE\r\n\r\n")[0], 400, "Bad Request")
	jsonErr(t, send(t, "GET / HTTP/1.1\r\n\r\n")[0], 400, "missing required Host header")
	jsonErr(t, send(t, "GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n")[0], 501, "Unsupported transfer encoding")

	// A handler's answer is left alone, also when a bad request follows
	// it on the same connection.
	rs := send(t, "GET /imitate HTTP/1.1\r\nHost: x\r\n\r\n")
	if b, _ := io.ReadAll(rs[0].Body); rs[0].StatusCode != 200 || string(b) != "431 Request Header Fields Too Large" || rs[0].Header.Get("Content-Type") != "text/plain; charset=utf-8" {
		t.Fatalf("handler's answer changed: %d %q %s", rs[0].StatusCode, rs[0].Header.Get("Content-Type"), b)
	}
	rs = send(t, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", long)
	if rs[0].StatusCode != 200 {
		t.Fatalf("first request: %d", rs[0].StatusCode)
	}
	jsonErr(t, rs[1], 431, "at most 64 KiB")
}
