// Command hello is the target of lode load's speed and accuracy
// comparisons (compare.sh): a Go net/http hello world that can also sleep
// a known time per request and stall periodically, like a server pausing
// for a checkpoint or a garbage collection.
//
//	go run ./internal/loadgen/testdata/hello -addr 127.0.0.1:18080
//	go run ./internal/loadgen/testdata/hello -sleep 2ms -stall-every 10s -stall 1s
package main

import (
	"flag"
	"log"
	"net/http"
	"sync"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:18080", "listen address (loopback)")
	sleep := flag.Duration("sleep", 0, "time to sleep per request")
	every := flag.Duration("stall-every", 0, "stall periodically, counting from the first request (0: never)")
	stall := flag.Duration("stall", time.Second, "length of each stall, at the end of each period")
	flag.Parse()
	var once sync.Once
	var t0 time.Time
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if *every > 0 {
			once.Do(func() { t0 = time.Now() })
			// Requests arriving in the last `stall` of each period wait
			// until the period ends.
			if phase := time.Since(t0) % *every; phase >= *every-*stall {
				time.Sleep(*every - phase)
			}
		}
		if *sleep > 0 {
			time.Sleep(*sleep)
		}
		w.Write([]byte("Hello, World!"))
	})
	log.Fatal(http.ListenAndServe(*addr, nil))
}
