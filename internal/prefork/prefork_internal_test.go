package prefork

import (
	"bytes"
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
