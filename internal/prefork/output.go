package prefork

import (
	"bytes"
	"io"
	"strings"
	"sync"
)

// maxLine bounds a buffered partial line; longer output is emitted in pieces.
const maxLine = 64 << 10

// tailLines is how many of a worker's last output lines the master keeps to
// name the cause when it gives up on a crash loop.
const tailLines = 10

// syncWriter serialises whole lines from many workers onto one writer so
// lines of different workers never interleave mid-line.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) writeLine(line []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, _ = s.w.Write(line) // output is best effort: a closed stderr must not stop the master
}

// tail keeps the last tailLines lines of a worker's stdout and stderr.
type tail struct {
	mu    sync.Mutex
	lines []string
}

func (t *tail) add(line string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lines = append(t.lines, line)
	if len(t.lines) > tailLines {
		t.lines = t.lines[len(t.lines)-tailLines:]
	}
}

// String returns the kept lines, indented, one per line.
func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.lines) == 0 {
		return "    (no output)"
	}
	return "    " + strings.Join(t.lines, "\n    ")
}

// lineWriter receives a worker's stdout or stderr (exec copies the pipe into
// it) and writes each complete line to dst with the worker's prefix.
type lineWriter struct {
	mu     sync.Mutex
	prefix string
	dst    *syncWriter
	tail   *tail
	buf    []byte
}

// Write implements io.Writer; it never fails.
func (lw *lineWriter) Write(b []byte) (int, error) {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	lw.buf = append(lw.buf, b...)
	for {
		i := bytes.IndexByte(lw.buf, '\n')
		if i < 0 {
			break
		}
		lw.emit(lw.buf[:i])
		lw.buf = lw.buf[i+1:]
	}
	if len(lw.buf) > maxLine {
		lw.emit(lw.buf)
		lw.buf = lw.buf[:0]
	}
	lw.buf = append([]byte(nil), lw.buf...) // drop the consumed prefix's memory
	return len(b), nil
}

// flush emits a final line that had no newline.
func (lw *lineWriter) flush() {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	if len(lw.buf) > 0 {
		lw.emit(lw.buf)
		lw.buf = nil
	}
}

func (lw *lineWriter) emit(line []byte) {
	line = bytes.TrimRight(line, "\r")
	lw.tail.add(string(line))
	out := make([]byte, 0, len(lw.prefix)+len(line)+1)
	out = append(out, lw.prefix...)
	out = append(out, line...)
	out = append(out, '\n')
	lw.dst.writeLine(out)
}
