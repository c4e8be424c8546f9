package server_test

import (
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"lode/internal/server"
)

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{
		"0": 0, "512MiB": 512 << 20, "512MB": 512 << 20, "512M": 512 << 20, "1GiB": 1 << 30,
		"2g": 2 << 30, "64KiB": 64 << 10, "4096": 4096, "100B": 100, " 8 MiB ": 8 << 20,
	} {
		if got, err := server.ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1MiB", "1TiB", "MiB", "1.5GiB", "99999999999GiB"} {
		if _, err := server.ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) = nil error; want one", in)
		}
	}
}

func TestPlanMemory(t *testing.T) {
	p, err := server.PlanMemory(512 << 20)
	if err != nil {
		t.Fatal(err)
	}
	if p.SQLiteHard != 128<<20 || p.SQLiteSoft != 64<<20 || p.GoSoft != 256<<20 || p.MaxValue != 32<<20 {
		t.Errorf("PlanMemory(512MiB) = %+v", p)
	}
	if p.SQLiteHard+p.GoSoft >= p.Limit {
		t.Errorf("SQLite's and Go's limits (%d + %d) leave nothing for the rest of the process under %d", p.SQLiteHard, p.GoSoft, p.Limit)
	}
	if p, err := server.PlanMemory(0); err != nil || p.SQLiteHard != 0 || p.GoSoft != 0 || p.MaxValue != 1_000_000_000 {
		t.Errorf("PlanMemory(0) = %+v, %v; want no limits", p, err)
	}
	if _, err := server.PlanMemory(1 << 20); err == nil {
		t.Error("PlanMemory(1MiB) = nil error; want 'at least'")
	}
}

// LimitListener accepts at most n connections at once; the next client
// waits in the listen queue until one closes, and is then served.
func TestLimitListener(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := server.LimitListener(raw, 2, nil)
	var accepted atomic.Int64
	hs := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }),
		ConnState: func(c net.Conn, st http.ConnState) {
			if st == http.StateNew {
				accepted.Add(1)
			}
		},
	}
	go hs.Serve(ln)
	defer hs.Close()
	var conns []net.Conn
	for range 3 {
		c, err := net.Dial("tcp", raw.Addr().String()) // the kernel completes the handshake
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		defer c.Close()
	}
	deadline := time.Now().Add(10 * time.Second)
	for accepted.Load() < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond) // poll interval
	}
	// The third stays unaccepted while the first two are open.
	for end := time.Now().Add(200 * time.Millisecond); time.Now().Before(end); {
		if n := accepted.Load(); n != 2 {
			t.Fatalf("%d connections accepted with a limit of 2", n)
		}
		time.Sleep(5 * time.Millisecond) // poll interval
	}
	conns[0].Close()
	conns[2].SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conns[2].Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 512)
	n, err := conns[2].Read(buf)
	if err != nil || string(buf[:9]) != "HTTP/1.1 " || accepted.Load() != 3 {
		t.Fatalf("third client after one closed: %q, %v (accepted %d)", buf[:n], err, accepted.Load())
	}
	// Close unblocks an Accept waiting for a slot.
	done := make(chan error, 1)
	go func() { done <- hs.Close() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("closing the server hangs on the waiting Accept")
	}
}
