package loadgen_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"lode/internal/loadgen"
)

// TestMain lets the test binary act as an out-of-process hello-world
// server ("loadgen-helper-hello"), so that BenchmarkGeneratorCPU measures
// the generator's own CPU (getrusage of this process) without the
// server's mixed in.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == helperHello {
		os.Exit(serveHello())
	}
	os.Exit(m.Run())
}

const helperHello = "loadgen-helper-hello"

// serveHello serves "Hello, World!" (the Go hello server wrk is usually
// measured against, as in testdata/hello) on a free loopback port, prints
// the address, and exits when its stdin closes, so it never outlives the
// test binary that started it.
func serveHello() int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println(ln.Addr().String())
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}()
	err = http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("Hello, World!"))
	}))
	fmt.Fprintln(os.Stderr, err)
	return 1
}

// startHelloProcess starts serveHello in a child process and returns its
// base URL; the child is stopped at cleanup.
func startHelloProcess(tb testing.TB) string {
	tb.Helper()
	cmd := exec.Command(os.Args[0], helperHello)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		stdin.Close()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	addr := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		addr <- strings.TrimSpace(line)
	}()
	select {
	case a := <-addr:
		if a == "" {
			tb.Fatal("hello helper process printed no address")
		}
		return "http://" + a
	case <-time.After(30 * time.Second):
		tb.Fatal("hello helper process did not start within 30s")
	}
	return ""
}

// BenchmarkGeneratorCPU tracks what the generator itself costs per
// request: a closed loop of 32 users against a hello-world server in
// another process (so the CPU numbers are the generator's alone), for a
// plain URL and for a templated one. One op is one request; cpu-µs/req is
// the generator's user+system CPU time per request (getrusage), the number
// to compare with wrk's (about 6 µs on the machine issue 21 measured);
// allocs/op are the generator's heap allocations per request.
//
//	go test -tags sqlite_fts5 -run '^$' -bench GeneratorCPU -benchtime 200000x ./internal/loadgen/
func BenchmarkGeneratorCPU(b *testing.B) {
	base := startHelloProcess(b)
	for _, bc := range []struct{ name, url string }{
		{"url", base + "/"},
		{"template", base + "/?id={{randInt 1 1000}}"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			// A short run first, so connections, buffers and the
			// histograms' first pages do not count.
			warm := loadgen.Config{Scenario: loadgen.URLScenario(bc.url), Users: 32, MaxRequests: 2000, NoHistory: true}
			if _, err := loadgen.Run(context.Background(), warm); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			res, err := loadgen.Run(context.Background(), loadgen.Config{
				Scenario: loadgen.URLScenario(bc.url), Users: 32, MaxRequests: int64(b.N), NoHistory: true,
			})
			if err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			if res.Total.Failures > 0 {
				b.Fatalf("%d of %d requests failed: %+v", res.Total.Failures, res.Total.Count, res.Total.Errors)
			}
			n := float64(res.Total.Count)
			b.ReportMetric(float64(res.CPU.User+res.CPU.System)/1e3/n, "cpu-µs/req")
			b.ReportMetric(res.Total.RPS, "req/s")
		})
	}
}

// BenchmarkClosedLoopHello measures the generator end to end against an
// in-process hello-world server (both share the CPU, so this is a floor;
// compare with wrk and hey as described in README.md).
//
//	go test -tags sqlite_fts5 -run '^$' -bench ClosedLoop ./internal/loadgen/
func BenchmarkClosedLoopHello(b *testing.B) {
	for _, users := range []int{1, 32} {
		b.Run(map[int]string{1: "users=1", 32: "users=32"}[users], func(b *testing.B) {
			srv := helloServer(b)
			b.ReportAllocs()
			b.ResetTimer()
			res, err := loadgen.Run(context.Background(), loadgen.Config{
				Scenario: loadgen.URLScenario(srv.URL), Users: users, MaxRequests: int64(b.N),
			})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(res.Total.RPS, "req/s")
			b.ReportMetric(float64(res.Total.P99.Microseconds()), "p99-µs")
		})
	}
}

// BenchmarkHistogramRecord is the cost of recording one latency.
func BenchmarkHistogramRecord(b *testing.B) {
	h := loadgen.NewHistogram()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		h.Record(1000 + int64ToDuration(i%100000))
	}
}

func int64ToDuration(i int) time.Duration { return time.Duration(i) * time.Microsecond }
