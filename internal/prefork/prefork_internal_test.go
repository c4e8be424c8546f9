package prefork

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	m := &Master{Backoff: 100 * time.Millisecond, MaxBackoff: time.Second}
	want := []time.Duration{100, 200, 400, 800, 1000, 1000}
	for i, w := range want {
		if got := m.backoff(i + 1); got != w*time.Millisecond {
			t.Errorf("backoff(%d) = %v; want %v", i+1, got, w*time.Millisecond)
		}
	}
}

func TestLineWriterPrefixesAndKeepsTail(t *testing.T) {
	var out bytes.Buffer
	tl := &tail{}
	lw := &lineWriter{prefix: "[worker 2] ", dst: &syncWriter{w: &out}, tail: tl}
	// Lines arrive split across writes, as exec's copy delivers them.
	for _, chunk := range []string{"hel", "lo\nwor", "ld\r\n", "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\nlast without newline"} {
		if _, err := lw.Write([]byte(chunk)); err != nil {
			t.Fatal(err)
		}
	}
	lw.flush()
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 13 || lines[0] != "[worker 2] hello" || lines[1] != "[worker 2] world" || lines[12] != "[worker 2] last without newline" {
		t.Errorf("output = %q", out.String())
	}
	got := tl.String()
	if strings.Contains(got, "world") || !strings.HasPrefix(got, "    b\n") || !strings.HasSuffix(got, "    last without newline") {
		t.Errorf("tail = %q; want the last %d lines from b", got, tailLines)
	}
}

func TestReservePortThenListen(t *testing.T) {
	addr, f, err := reservePort("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if addr.Port == 0 {
		t.Fatal("reservePort returned port 0")
	}
	// Two SO_REUSEPORT listeners can join the reserved port.
	for range 2 {
		ln, err := listenReusePort(t.Context(), addr.String())
		if err != nil {
			t.Fatalf("listen on reserved %s: %v", addr, err)
		}
		defer ln.Close()
	}
}

func TestInProcessStatus(t *testing.T) {
	p := NewInProcess()
	mux := http.NewServeMux()
	mux.Handle(StatusPath, p.StatusHandler())
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") })
	srv := httptest.NewServer(p.Wrap(mux))
	defer srv.Close()
	for range 3 {
		resp, err := http.Get(srv.URL + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got, want := resp.Header.Get(PidHeader), strconv.Itoa(os.Getpid()); got != want {
			t.Errorf("%s = %q; want %q", PidHeader, got, want)
		}
	}
	resp, err := http.Get(srv.URL + StatusPath)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	if len(st.Workers) != 1 || st.Workers[0].PID != os.Getpid() || st.Workers[0].Requests != 3 || st.Workers[0].InFlight != 1 {
		t.Errorf("status = %+v; want one worker (this pid) with 3 requests served and 1 in flight", st)
	}
}

// BenchmarkMiddleware measures what a worker adds to every request
// (counters, the pid header, the drain-aware response writer).
func BenchmarkMiddleware(b *testing.B) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") })
	req := httptest.NewRequest(http.MethodGet, "/db/table.json", nil)
	b.Run("bare", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			ok.ServeHTTP(httptest.NewRecorder(), req)
		}
	})
	b.Run("worker", func(b *testing.B) {
		w := &Worker{pid: "1", nudge: make(chan struct{}, 1)}
		h := w.Middleware(ok)
		b.ReportAllocs()
		for b.Loop() {
			h.ServeHTTP(httptest.NewRecorder(), req)
		}
	})
	b.Run("in-process", func(b *testing.B) {
		h := NewInProcess().Wrap(ok)
		b.ReportAllocs()
		for b.Loop() {
			h.ServeHTTP(httptest.NewRecorder(), req)
		}
	})
}
