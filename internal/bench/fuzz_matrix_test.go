package bench_test

import (
	"os"
	"testing"

	"lode/internal/bench"
)

// FuzzParseMatrix feeds arbitrary YAML to the matrix parser: it never
// panics or blows up (a cross product is bounded before it is built), and
// returns either a matrix or an error with a message. Corpus:
// testdata/fuzz/FuzzParseMatrix.
func FuzzParseMatrix(f *testing.F) {
	if b, err := os.ReadFile("default.yaml"); err == nil {
		f.Add(string(b))
	}
	for _, s := range []string{
		"cells:\n  - {journal_mode: [wal, delete], workload: write, concurrency: [1, 8]}\n",
		"name: x\nduration: 1s\ncells:\n  - {workers: [1, 2, 4], workload: read}\n",
		"targets:\n  ds: {command: 'datasette serve {db} -p {port}'}\ncells:\n  - {target: ds, workload: read}\n",
		"cells: []\n", "", "cells:\n  - {bogus: 1}\n", "cells:\n  - {rate: -5}\n", "cells: 5\n",
		"cells:\n  - {busy_timeout: 20s, txlock: [deferred, immediate], workload: txn}\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		m, err := bench.ParseMatrix("fuzz.yaml", []byte(src))
		if err != nil {
			if err.Error() == "" {
				t.Fatalf("ParseMatrix(%q): empty error message", src)
			}
			return
		}
		if m == nil {
			t.Fatalf("ParseMatrix(%q) = nil, nil", src)
		}
	})
}
