package replica_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

func must(m map[string]any, err error) map[string]any {
	if err != nil {
		return map[string]any{}
	}
	return m
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

func mkdir(t testing.TB, dir string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// runLode runs the lode binary with args and returns its combined output.
func runLode(t testing.TB, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(lodeBin, args...)
	cmd.Env = append(os.Environ(), "LODE_SECRET="+testSecret)
	out, err := cmd.CombinedOutput()
	return string(out), err
}
