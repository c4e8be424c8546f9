package loadgen_test

import (
	"os"
	"testing"

	"lode/internal/loadgen"
)

// FuzzParseScenario feeds arbitrary YAML to the scenario parser: it never
// panics, and returns either a scenario with at least one request or an
// error with a message. Corpus: testdata/fuzz/FuzzParseScenario.
func FuzzParseScenario(f *testing.F) {
	if b, err := os.ReadFile("testdata/scenario.yaml"); err == nil {
		f.Add(string(b))
	}
	for _, s := range []string{
		"requests:\n  - url: /x.json\n",
		"base_url: http://127.0.0.1:1\nrequests:\n  - {name: a, method: POST, url: '/d/t/-/insert', json: {row: {a: '{{.row.a}}'}}, weight: 3}\n",
		"requests:\n  - url: /x\n    checks: [{status: [200, 201]}, {json: ok, equals: true}]\n    think: 10ms\n",
		"requests: []\n", "", "- a\n", "requests:\n  - url: '{{'\n", "requests:\n  - {url: /x, weight: -1}\n",
		"data: missing.csv\nrequests:\n  - url: /x\n", "&a [*a]", "requests: {url: /x}\n",
	} {
		f.Add(s)
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, src string) {
		sc, err := loadgen.ParseScenario([]byte(src), dir)
		if err != nil {
			if err.Error() == "" {
				t.Fatalf("ParseScenario(%q): empty error message", src)
			}
			return
		}
		if sc == nil {
			t.Fatalf("ParseScenario(%q) = nil, nil", src)
		}
	})
}
